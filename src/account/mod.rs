//! The account's global credentials, shared: one access_token and one `jsapi_ticket` per
//! Official Account, and one corp access_token per WeCom app (`cgi-bin/gettoken`, which every
//! login of the app needs), however many apps of this gateway and replicas on Redis ask for
//! them.
//!
//! A credential is kept until shortly before it expires ([`Held::fresh`]); then one caller
//! refreshes it while the others go on with the one still valid: one at a time in this
//! process, and on the Redis backend one at a time across replicas (a lock with a TTL; the
//! credential stored sealed). A use that WeChat answers `40001`, `42001` or `40014` is healed by
//! one refresh, only if the failing token is still the current one; a token WeChat answers
//! again is replaced by force only once WeChat refuses it on a check, at most once every
//! [`FORCE_EVERY`] and [`FORCES_A_DAY`] times a day (WeCom has no forced refresh: its
//! gettoken answers a new token once the old one is dead). Quota, allow-list and secret errors
//! are reported ([`health`]) and retried after a growing pause, never in a loop; for WeCom,
//! also a lookup refused for this server's IP ([`Account::used`]), and the pause is short.
//!
//! What is held outlives reloads ([`Memory`] lives in the gateway's deps).

mod fetch;
pub mod health;
pub mod jssdk;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, WechatConfig};
use crate::observe::metrics::Metrics;
use crate::session::seal::Sealer;
use crate::shared::SharedState;
use crate::util::clock::{Clock, Entropy};
use crate::wechat::credentials::CredentialApi;
use crate::wechat::errcode::{classify, ErrClass};
use crate::wechat::ExchangeError;
use fetch::Need;
use health::Health;

/// A token is replaced by force at most this often (WeChat ignores forced stable-token
/// refreshes less than 30 s apart)...
pub const FORCE_EVERY: Duration = Duration::from_secs(30);
/// ...and at most this many times a Beijing day, fleet-wide with Redis (WeChat allows 20).
pub const FORCES_A_DAY: u32 = 10;
/// With Redis, a credential held here is compared with the fleet's this often, so one that
/// another replica replaced is followed.
pub const RECHECK: Duration = Duration::from_secs(5);

/// The two credentials of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Token,
    Ticket,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Token => "access_token",
            Kind::Ticket => "jsapi_ticket",
        }
    }
}

/// A credential as held here and in Redis. Times in milliseconds since the Unix epoch.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    #[serde(rename = "v")]
    pub value: String,
    /// When WeChat said it ends.
    #[serde(rename = "e")]
    pub expires_ms: u64,
    /// When it was obtained.
    #[serde(rename = "g")]
    pub got_ms: u64,
    /// A ticket: the digest of the token that fetched it (it is refreshed with its token).
    #[serde(rename = "b", default)]
    pub bound: String,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held(<{} chars>, expires {} ms)", self.value.len(), self.expires_ms)
    }
}

impl Held {
    /// A quarter of its lifetime, at most three minutes, before it ends: late enough that
    /// WeChat has already renewed a stable token (5 minutes before its end), early enough
    /// that a page signed now still configures.
    fn refresh_ms(&self) -> u64 {
        let life = self.expires_ms.saturating_sub(self.got_ms);
        self.expires_ms.saturating_sub((life / 4).min(180_000))
    }

    /// Kept as it is until its refresh time.
    pub fn fresh(&self, now_ms: u64) -> bool {
        now_ms < self.refresh_ms()
    }

    /// Still good to hand out while one caller refreshes it.
    pub fn usable(&self, now_ms: u64) -> bool {
        let life = self.expires_ms.saturating_sub(self.got_ms);
        now_ms + (life / 20).min(5_000) < self.expires_ms
    }

    /// Seconds left, rounded down.
    pub fn expires_in(&self, now_ms: u64) -> u64 {
        self.expires_ms.saturating_sub(now_ms) / 1000
    }
}

/// Why no credential could be given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    #[error("WeChat refused the {kind}: {source}")]
    Wechat { kind: &'static str, source: ExchangeError },
    #[error("the {kind} is not asked for again for {}s after: {last}", wait.as_secs().max(1))]
    Pausing { kind: &'static str, last: String, errcode: Option<i64>, wait: Duration },
    #[error("another caller is fetching the {0} and did not finish in time")]
    Busy(&'static str),
    #[error("this gateway has no AppSecret for account {0} (its logins run elsewhere)")]
    NoSecret(String),
}

impl CredentialError {
    /// What a page's visitor may be told: the error code at most; WeChat's message (which
    /// names the server's address) and the advice go to the log and `/readyz`.
    pub fn public(&self) -> String {
        match self {
            CredentialError::Wechat { source: ExchangeError::Rejected { errcode, .. }, .. } => {
                format!("WeChat refused the account's credentials (error {errcode}); the operator sees why in /readyz")
            }
            CredentialError::Pausing { errcode: Some(errcode), wait, .. } => format!(
                "WeChat refused the account's credentials (error {errcode}); asked again in {} s; the operator sees why in /readyz",
                wait.as_secs().max(1)
            ),
            CredentialError::Pausing { wait, .. } => format!(
                "WeChat could not be reached; asked again in {} s; the operator sees why in /readyz",
                wait.as_secs().max(1)
            ),
            CredentialError::Wechat { .. } => "WeChat could not be reached".into(),
            CredentialError::Busy(_) => "the account's credentials are being fetched; try again".into(),
            CredentialError::NoSecret(_) => "this gateway does not hold the account's credentials".into(),
        }
    }
}

/// One slot: what is held, the one refresh at a time, and when it was last compared with
/// the fleet's.
#[derive(Default)]
struct Slot {
    held: parking_lot::Mutex<Option<Held>>,
    flight: tokio::sync::Mutex<()>,
    checked_ms: std::sync::atomic::AtomicU64,
}

/// The forced replacements of the token this replica made today.
#[derive(Default)]
struct Forced {
    /// The Beijing day counted.
    day: u64,
    count: u32,
    last_ms: u64,
}

/// What one account holds; outlives reloads.
#[derive(Default)]
pub struct Memory {
    token: Slot,
    ticket: Slot,
    pub health: Health,
    forced: parking_lot::Mutex<Forced>,
}

impl Memory {
    fn slot(&self, kind: Kind) -> &Slot {
        match kind {
            Kind::Token => &self.token,
            Kind::Ticket => &self.ticket,
        }
    }
}

/// Every account's memory, by appid; lives as long as the process.
#[derive(Default)]
pub struct Memories(parking_lot::Mutex<HashMap<String, Arc<Memory>>>);

impl Memories {
    fn of(&self, appid: &str) -> Arc<Memory> {
        self.0.lock().entry(appid.to_string()).or_default().clone()
    }
}

/// What an account needs from outside.
pub struct AccountDeps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub metrics: Arc<Metrics>,
    pub state: Arc<SharedState>,
    pub memories: Arc<Memories>,
}

/// One Official Account's credentials, or one WeCom app's corp token.
pub struct Account {
    /// The appid, or a WeCom app's `corpid/agentid` ([`WechatConfig::account_key`]).
    pub appid: String,
    api: Option<CredentialApi>,
    /// A WeCom app's: every login needs the token (an Official Account's serves the JS-SDK
    /// and backends). Its failures pause shorter, and a refused use is reported.
    logins_need_token: bool,
    memory: Arc<Memory>,
    /// How long a caller waits for a credential another caller is fetching.
    wait: Duration,
    sealer: Sealer,
    deps: AccountDeps,
}

impl Account {
    fn new(config: &Config, w: &WechatConfig, deps: AccountDeps) -> Self {
        let api = w.secret.as_ref().filter(|s| !s.is_empty()).map(|_| CredentialApi::new(w));
        Self {
            appid: w.account_key(),
            api,
            logins_need_token: w.provider.is_wecom(),
            memory: deps.memories.of(&w.account_key()),
            // A refresh of the token may follow a refused ticket: two calls, and a margin.
            wait: 2 * CredentialApi::timeout(w) + Duration::from_secs(1),
            sealer: Sealer::new(&config.session.keys),
            deps,
        }
    }

    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    fn now_ms(&self) -> u64 {
        self.deps.clock.now_millis()
    }

    /// The access_token in force.
    pub async fn token(&self) -> Result<Held, CredentialError> {
        self.obtain(Need::Token).await
    }

    /// What came of a use of `token` that logins need (WeCom's user lookup): a refusal only
    /// the operator can fix (this server's IP, the secret) is reported as a failed fetch would
    /// be, so `/readyz` and the metrics say it; a use that went through clears it.
    pub fn used(&self, outcome: Result<(), &ExchangeError>) {
        let health = &self.memory.health;
        match outcome {
            Ok(()) => health.succeeded(Kind::Token, &self.appid, &self.deps.metrics),
            Err(e @ ExchangeError::Rejected { errcode, .. })
                if classify(*errcode).0 == ErrClass::Misconfigured && !health::token_went_bad(*errcode) =>
            {
                health.use_failed(Kind::Token, &self.appid, e, self.now_ms(), &self.deps.metrics)
            }
            Err(_) => {}
        }
    }

    /// The `jsapi_ticket` in force. A ticket refused because its token went bad is fetched
    /// again once the token is replaced; not when it could not be.
    pub async fn ticket(&self) -> Result<Held, CredentialError> {
        let token = self.token().await?;
        match self.obtain(Need::Ticket { token: &token }).await {
            Err(e @ CredentialError::Wechat { source: ExchangeError::Rejected { errcode, .. }, .. })
                if health::token_went_bad(errcode) =>
            {
                match self.refresh_stale(&token.value).await? {
                    (new, _) if new.value != token.value => {
                        self.memory.health.succeeded(Kind::Ticket, &self.appid, &self.deps.metrics);
                        self.obtain(Need::Ticket { token: &new }).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }
}

/// The accounts of a gateway, by [`WechatConfig::account_key`]: apps of one account share one.
pub struct Accounts(HashMap<String, Arc<Account>>);

impl Accounts {
    pub fn new(config: &Config, deps: impl Fn() -> AccountDeps) -> Self {
        let mut by_appid: HashMap<String, Arc<Account>> = HashMap::new();
        for app in &config.apps {
            let w = &app.wechat;
            let has_secret = by_appid.get(&w.account_key()).is_some_and(|a| a.api.is_some());
            if !has_secret {
                by_appid.insert(w.account_key(), Arc::new(Account::new(config, w, deps())));
            }
        }
        Self(by_appid)
    }

    pub fn get(&self, appid: &str) -> Option<&Arc<Account>> {
        self.0.get(appid)
    }

    /// Every account, in appid order.
    pub fn all(&self) -> Vec<&Arc<Account>> {
        let mut all: Vec<_> = self.0.values().collect();
        all.sort_by(|a, b| a.appid.cmp(&b.appid));
        all
    }
}

#[cfg(test)]
mod tests;
