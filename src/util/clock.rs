//! Time and randomness, injected so that expiry and nonces can be tested without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;

/// Seconds since the Unix epoch, as the gateway sees them.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;

    /// Milliseconds since the Unix epoch (rate limits); whole seconds unless the clock has better.
    fn now_millis(&self) -> u64 {
        self.now().saturating_mul(1000)
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; shared by clones. It keeps milliseconds.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// At `start` seconds since the Unix epoch.
    pub fn new(start: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start.saturating_mul(1000))))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds.saturating_mul(1000), Ordering::SeqCst);
    }

    pub fn advance_millis(&self, millis: u64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst) / 1000
    }

    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `d` in whole milliseconds (saturating): how the gateway keeps short lifetimes (logins,
/// hand-offs, tickets), so a `2s` ticket lives 2 s, not 1 to 2.
/// Days as WeChat counts its daily quotas: from midnight in Beijing (UTC+8); `now` in seconds.
pub fn beijing_day(now: u64) -> u64 {
    (now + 8 * 3600) / 86_400
}

pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A lifetime of `ms` milliseconds as a cookie's `Max-Age`: whole seconds, rounded up, so the
/// cookie outlives what it carries rather than the reverse.
pub fn max_age_secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// A source of random bytes: the operating system's in production.
pub trait Entropy: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// The production source: `rand`'s thread-local ChaCha12 generator, seeded from the operating
/// system and reseeded from it every 64 KiB of output (and after a fork). A CSPRNG like the
/// system's, without a `getrandom` system call for every request id, nonce and session id.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::thread_rng().fill_bytes(buf);
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random string of `len` characters from `[0-9A-Za-z]`, unbiased (rejection sampling).
pub fn base62_nonce(entropy: &dyn Entropy, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        entropy.fill(&mut buf);
        for b in buf {
            // 248 = 62 * 4: values above it would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_is_base62_of_the_asked_length() {
        let n = base62_nonce(&OsEntropy, 32);
        assert_eq!(n.len(), 32);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(n, base62_nonce(&OsEntropy, 32));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100);
        let shared = c.clone();
        c.advance(5);
        assert_eq!(shared.now(), 105);
    }
}
