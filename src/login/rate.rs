//! Per-client-address rate limits on the two doors an anonymous client can push on: login
//! starts (each mints a login cookie) and callbacks (each may cost an exchange at WeChat).
//! A token bucket (GCRA, the `governor` crate) per address and door, on the gateway's clock.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::http::error::GatewayError;
use crate::shared::SharedState;
use crate::util::clock::Clock;

/// Keys kept at most before idle ones are forgotten.
const PRUNE_ABOVE: usize = 100_000;

/// The gateway's clock as `governor` reads it.
#[derive(Clone)]
struct Millis(Arc<dyn Clock>);

impl GovernorClock for Millis {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_millis())
    }
}

type Limiter = RateLimiter<IpAddr, DashMapStateStore<IpAddr>, Millis, NoOpMiddleware<Duration>>;

/// Which door a client knocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    LoginStart,
    Callback,
}

/// The limits of both doors.
pub struct RateLimits {
    login: Option<Limiter>,
    callback: Option<Limiter>,
    clock: Millis,
    config: RateLimitConfig,
    /// Buckets shared by every replica, when there is shared state.
    shared: Option<Arc<SharedState>>,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig, clock: Arc<dyn Clock>) -> Self {
        let clock = Millis(clock);
        let limiter = |per_minute: u32| {
            let rate = NonZeroU32::new(per_minute)?;
            let burst = NonZeroU32::new(config.burst).unwrap_or(rate);
            Some(Limiter::new(Quota::per_minute(rate).allow_burst(burst), DashMapStateStore::default(), clock.clone()))
        };
        Self {
            login: limiter(config.login_per_minute),
            callback: limiter(config.callback_per_minute),
            clock,
            config: *config,
            shared: None,
        }
    }

    /// Keeps the buckets in `state`, so the limits hold for the sum over replicas.
    pub fn with_shared(mut self, state: Arc<SharedState>) -> Self {
        self.shared = Some(state);
        self
    }

    /// [`RateLimits::admit`], refused as `TooMany` (429, naming the wait).
    pub async fn knock(&self, door: Door, client: Option<IpAddr>) -> Result<(), GatewayError> {
        self.admit(door, client).await.map_err(|wait| GatewayError::TooMany { wait })
    }

    /// Like [`RateLimits::check`], in the shared buckets when there are any (and they answer).
    pub async fn admit(&self, door: Door, client: Option<IpAddr>) -> Result<(), Duration> {
        let (per_minute, name) = match door {
            Door::LoginStart => (self.config.login_per_minute, "login"),
            Door::Callback => (self.config.callback_per_minute, "callback"),
        };
        if let (Some(state), Some(ip), true) = (&self.shared, client, per_minute > 0) {
            let now = self.clock.0.now_millis();
            if let Some(verdict) = state.admit(&format!("{name}:{ip}"), now, per_minute, self.config.burst).await {
                return verdict;
            }
        }
        self.check(door, client)
    }

    /// `Ok` if `client` may pass `door` now; `Err(wait)` with the time until it may.
    /// A request whose address is unknown is not limited.
    pub fn check(&self, door: Door, client: Option<IpAddr>) -> Result<(), Duration> {
        let limiter = match door {
            Door::LoginStart => &self.login,
            Door::Callback => &self.callback,
        };
        let (Some(limiter), Some(ip)) = (limiter, client) else { return Ok(()) };
        if limiter.len() > PRUNE_ABOVE {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::ManualClock;

    fn limits(per_minute: u32, burst: u32) -> (RateLimits, ManualClock) {
        let clock = ManualClock::new(1_000);
        let cfg = RateLimitConfig { login_per_minute: per_minute, callback_per_minute: per_minute, burst };
        (RateLimits::new(&cfg, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn a_burst_then_the_rate_per_address_and_door() {
        let (l, clock) = limits(6, 3);
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(l.check(Door::LoginStart, a), Ok(()));
        }
        let wait = l.check(Door::LoginStart, a).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10), "6 a minute: one every 10 s");
        assert_eq!(l.check(Door::LoginStart, b), Ok(()), "another address has its own bucket");
        assert_eq!(l.check(Door::Callback, a), Ok(()), "the other door has its own bucket");
        clock.advance(10);
        assert_eq!(l.check(Door::LoginStart, a), Ok(()));
        assert!(l.check(Door::LoginStart, a).is_err());
    }

    #[test]
    fn zero_turns_a_door_off_and_unknown_addresses_pass() {
        let (l, _) = limits(0, 0);
        let a = Some("10.0.0.1".parse().unwrap());
        for _ in 0..100 {
            assert_eq!(l.check(Door::Callback, a), Ok(()));
        }
        let (l, _) = limits(1, 1);
        assert_eq!(l.check(Door::Callback, None), Ok(()));
        assert_eq!(l.check(Door::Callback, None), Ok(()));
    }
}
