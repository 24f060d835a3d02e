//! Each WeChat code is exchanged at most once.
//!
//! WeChat's client often sends the callback twice (it aborts the first request and re-issues
//! it), and back or refresh replay it. The first callback for a code starts one exchange in a
//! task of its own, so a dropped request cannot cancel it half way; every callback for the same
//! code from the same browser (same login nonce) waits for and shares that outcome, and it is
//! remembered for the code's lifetime. The same code from another browser gets
//! [`Redeemed::OtherBrowser`] and should start a fresh login.
//!
//! One login (one login cookie, one nonce) buys at most one exchange: a second, different code
//! presented with the same nonce gets [`Redeemed::LoginSpent`] without WeChat being called, so
//! an anonymous client cannot spend the account's API quota with made-up codes.
//!
//! With shared state ([`crate::shared`]) both rules hold across replicas: the first replica to
//! see a code claims it, exchanges it and publishes the (sealed) outcome; a replica that sees
//! the same code from the same browser waits for that outcome instead of exchanging again.

use crate::observe::metrics::Metrics;
use crate::shared::{Claim, SharedState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::util::clock::Clock;
use crate::wechat::{ExchangeError, Identity, WechatClient};

/// WeChat codes live five minutes; the outcome is kept as long.
pub const CODE_TTL_SECS: u64 = 300;
const MAX_ENTRIES: usize = 100_000;

/// Something that turns a code into an identity (the WeChat client, or a fake in tests).
#[async_trait]
pub trait CodeExchanger: Send + Sync + 'static {
    async fn exchange(&self, code: &str) -> Result<Identity, ExchangeError>;
}

#[async_trait]
impl CodeExchanger for WechatClient {
    async fn exchange(&self, code: &str) -> Result<Identity, ExchangeError> {
        WechatClient::exchange(self, code).await
    }
}

type Outcome = Option<Result<Identity, ExchangeError>>;

struct Entry {
    browser: String,
    created: u64,
    outcome: watch::Receiver<Outcome>,
}

/// The outcome of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Done(Result<Identity, ExchangeError>),
    /// The code was first presented by another browser.
    OtherBrowser,
    /// This login already exchanged another code.
    LoginSpent,
}

/// Single-flight code exchanges with a short memory of their outcomes.
pub struct CodeExchanges {
    exchanger: Arc<dyn CodeExchanger>,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Login nonce -> (the one code it exchanged, when).
    spent: Mutex<HashMap<String, (String, u64)>>,
    /// How long a login nonce is remembered: the login cookie's lifetime.
    nonce_ttl: u64,
    /// Where exchanges are counted and timed, and the app's label there.
    metrics: (Arc<Metrics>, String),
    shared: Option<Arc<Shared>>,
    /// The longest one exchange may take; then it is a timeout.
    budget: Duration,
}

/// What sharing exchanges across replicas needs.
pub struct Shared {
    pub state: Arc<SharedState>,
    pub appid: String,
    /// Seals outcomes in the shared store (they hold openids).
    pub sealer: crate::session::seal::Sealer,
    pub entropy: Arc<dyn crate::util::clock::Entropy>,
    /// How long a replica waits for another's exchange: the whole exchange's timeout.
    pub wait: Duration,
}

/// A published outcome, sealed for one code of one app, with the time it stops counting.
#[derive(serde::Serialize, serde::Deserialize)]
struct Published {
    result: Result<Identity, ExchangeError>,
    until: u64,
}

/// The sealing name binds an outcome to its app and code: one cannot be replayed for another.
fn sealed_name(appid: &str, code: &str) -> String {
    format!("ogw-exchange {appid} {code}")
}

impl CodeExchanges {
    /// `login_lifetime`: how long a login cookie lives, and so how long its nonce is remembered.
    pub fn new(exchanger: Arc<dyn CodeExchanger>, clock: Arc<dyn Clock>, login_lifetime: Duration) -> Self {
        Self {
            exchanger,
            clock,
            entries: Mutex::new(HashMap::new()),
            spent: Mutex::new(HashMap::new()),
            nonce_ttl: crate::util::clock::max_age_secs(crate::util::clock::millis(login_lifetime)).max(CODE_TTL_SECS),
            metrics: (Arc::new(Metrics::new()), String::new()),
            shared: None,
            budget: Duration::from_secs(30),
        }
    }

    /// An exchange that has not ended after `budget` ends as a timeout: no waiter waits longer.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Shares claims and outcomes with other replicas through `shared`.
    pub fn with_shared(mut self, shared: Shared) -> Self {
        self.shared = Some(Arc::new(shared));
        self
    }

    /// Counts and times every exchange in `metrics`, labelled `app`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>, app: &str) -> Self {
        self.metrics = (metrics, app.to_string());
        self
    }

    /// Records that login `nonce` exchanges `code`; `false` if it already exchanged another.
    fn spend(&self, nonce: &str, code: &str, now: u64) -> bool {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.nonce_ttl;
        if spent.len() >= MAX_ENTRIES {
            spent.retain(|_, (_, at)| now < *at + ttl);
            if spent.len() >= MAX_ENTRIES {
                spent.clear();
            }
        }
        match spent.get(nonce) {
            Some((c, at)) if now < at + ttl => c == code,
            _ => {
                spent.insert(nonce.to_string(), (code.to_string(), now));
                true
            }
        }
    }

    /// Presents `code` on behalf of `browser` (the login nonce of its login cookie).
    pub async fn redeem(&self, code: &str, browser: &str) -> Redeemed {
        if let Some(found) = self.known(code, browser) {
            return found.await;
        }
        let mut spent_shared = false;
        if let Some(shared) = &self.shared {
            let ttl = Duration::from_secs(CODE_TTL_SECS);
            match shared.state.claim_code(&shared.appid, code, browser, ttl).await {
                Some(Claim::Taken { browser: first }) if first != browser => return Redeemed::OtherBrowser,
                Some(Claim::Taken { .. }) => {
                    if let Some(found) = self.known(code, browser) {
                        return found.await;
                    }
                    return Redeemed::Done(self.outcome_elsewhere(shared, code, browser).await);
                }
                Some(Claim::First) | None => {}
            }
            let ttl = Duration::from_secs(self.nonce_ttl);
            match shared.state.spend_nonce(browser, code, ttl).await {
                Some(false) => return Redeemed::LoginSpent,
                Some(true) => spent_shared = true,
                None => {}
            }
        }
        let outcome = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.now();
            match entries.get(code) {
                Some(e) if e.browser != browser => return Redeemed::OtherBrowser,
                Some(e) => e.outcome.clone(),
                None => {
                    if !self.spend(browser, code, now) && !spent_shared {
                        return Redeemed::LoginSpent;
                    }
                    if entries.len() >= MAX_ENTRIES {
                        prune(&mut entries, now);
                    }
                    let rx = self.start(code.to_string());
                    entries.insert(
                        code.to_string(),
                        Entry { browser: browser.to_string(), created: now, outcome: rx.clone() },
                    );
                    rx
                }
            }
        };
        Redeemed::Done(wait(outcome).await)
    }

    /// The outcome of an exchange this process already started for `code`: `Some` with what
    /// to answer, `None` when it has none.
    fn known(
        &self,
        code: &str,
        browser: &str,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = Redeemed> + Send>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        if entries.get(code).is_some_and(|e| now >= e.created + CODE_TTL_SECS) {
            entries.remove(code);
        }
        let e = entries.get(code)?;
        if e.browser != browser {
            return Some(Box::pin(async { Redeemed::OtherBrowser }));
        }
        let outcome = e.outcome.clone();
        Some(Box::pin(async move { Redeemed::Done(wait(outcome).await) }))
    }

    /// The outcome another replica (or this one, when its copy of the callback came first
    /// meanwhile) publishes for `code`, waited for up to the exchange's whole budget.
    async fn outcome_elsewhere(&self, shared: &Shared, code: &str, browser: &str) -> Result<Identity, ExchangeError> {
        let deadline = std::time::Instant::now() + shared.wait;
        loop {
            if let Some(found) = self.known(code, browser) {
                return match found.await {
                    Redeemed::Done(result) => result,
                    _ => Err(ExchangeError::Timeout),
                };
            }
            if let Some(payload) = shared.state.peek_result(&shared.appid, code).await {
                let published: Option<Published> = shared.sealer.open_json(&sealed_name(&shared.appid, code), &payload);
                match published {
                    Some(p) if self.clock.now() < p.until => return p.result,
                    // Not sealed for this code, or stale: not an outcome.
                    _ => return Err(ExchangeError::Timeout),
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err(ExchangeError::Timeout);
            }
            tokio::time::sleep(crate::shared::POLL_EVERY).await;
        }
    }

    /// Was `code` first presented, within its lifetime, by a browser other than `browser`
    /// (`None`: a browser with no login in progress)?
    pub fn claimed_elsewhere(&self, code: &str, browser: Option<&str>) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        entries.get(code).is_some_and(|e| now < e.created + CODE_TTL_SECS && Some(e.browser.as_str()) != browser)
    }

    fn start(&self, code: String) -> watch::Receiver<Outcome> {
        let (tx, rx) = watch::channel(None);
        let exchanger = self.exchanger.clone();
        let (metrics, app) = self.metrics.clone();
        let shared = self.shared.clone();
        let clock = self.clock.clone();
        let budget = self.budget;
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result =
                tokio::time::timeout(budget, exchanger.exchange(&code)).await.unwrap_or(Err(ExchangeError::Timeout));
            metrics.exchange(&app, started.elapsed(), &result);
            // This replica's waiters first; then the others'.
            let _ = tx.send(Some(result.clone()));
            if let Some(shared) = shared {
                let published = Published { result, until: clock.now() + CODE_TTL_SECS };
                let sealed =
                    shared.sealer.seal_json(&sealed_name(&shared.appid, &code), &published, shared.entropy.as_ref());
                let ttl = Duration::from_secs(CODE_TTL_SECS);
                shared.state.publish_result(&shared.appid, &code, &sealed, ttl).await;
            }
        });
        rx
    }
}

async fn wait(mut outcome: watch::Receiver<Outcome>) -> Result<Identity, ExchangeError> {
    match outcome.wait_for(Option::is_some).await {
        Ok(done) => done.clone().unwrap_or_else(|| Err(lost())),
        Err(_) => Err(lost()),
    }
}

fn lost() -> ExchangeError {
    ExchangeError::Network("the exchange task ended without an answer".into())
}

/// Drops expired entries; if that is not enough, the older half.
fn prune(entries: &mut HashMap<String, Entry>, now: u64) {
    entries.retain(|_, e| now < e.created + CODE_TTL_SECS);
    if entries.len() >= MAX_ENTRIES {
        let mut ages: Vec<u64> = entries.values().map(|e| e.created).collect();
        ages.sort_unstable();
        let cutoff = ages[ages.len() / 2];
        entries.retain(|_, e| e.created > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Slow(AtomicUsize);

    #[async_trait]
    impl CodeExchanger for Slow {
        async fn exchange(&self, code: &str) -> Result<Identity, ExchangeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Identity {
                openid: format!("o-{code}"),
                unionid: None,
                scope: crate::wechat::Scope::Base,
                ..Identity::default()
            })
        }
    }

    fn setup() -> (Arc<Slow>, ManualClock, Arc<CodeExchanges>) {
        let fake = Arc::new(Slow(AtomicUsize::new(0)));
        let clock = ManualClock::new(1_000);
        let ex = Arc::new(CodeExchanges::new(fake.clone(), Arc::new(clock.clone()), Duration::from_secs(600)));
        (fake, clock, ex)
    }

    #[tokio::test]
    async fn concurrent_same_browser_share_one_exchange() {
        let (fake, _, ex) = setup();
        let a = tokio::spawn({
            let ex = ex.clone();
            async move { ex.redeem("C1", "b1").await }
        });
        let b = tokio::spawn({
            let ex = ex.clone();
            async move { ex.redeem("C1", "b1").await }
        });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!(a, b);
        assert!(matches!(a, Redeemed::Done(Ok(ref i)) if i.openid == "o-C1"));
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
        // A later replay (back button) is answered from memory.
        assert_eq!(ex.redeem("C1", "b1").await, a);
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn another_browser_is_refused() {
        let (fake, _, ex) = setup();
        assert!(matches!(ex.redeem("C2", "b1").await, Redeemed::Done(Ok(_))));
        assert_eq!(ex.redeem("C2", "b2").await, Redeemed::OtherBrowser);
        assert!(ex.claimed_elsewhere("C2", Some("b2")) && ex.claimed_elsewhere("C2", None));
        assert!(!ex.claimed_elsewhere("C2", Some("b1")) && !ex.claimed_elsewhere("C9", None));
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_dropped_waiter_does_not_cancel_the_exchange() {
        let (fake, _, ex) = setup();
        let first = tokio::spawn({
            let ex = ex.clone();
            async move { ex.redeem("C3", "b1").await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        first.abort();
        assert!(matches!(ex.redeem("C3", "b1").await, Redeemed::Done(Ok(_))));
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn one_login_buys_one_exchange() {
        let (fake, clock, ex) = setup();
        assert!(matches!(ex.redeem("C5", "b1").await, Redeemed::Done(Ok(_))));
        for i in 0..300 {
            assert_eq!(ex.redeem(&format!("made-up-{i}"), "b1").await, Redeemed::LoginSpent);
        }
        assert!(matches!(ex.redeem("C5", "b1").await, Redeemed::Done(Ok(_))), "the double callback still shares");
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
        clock.advance(600);
        assert!(matches!(ex.redeem("C6", "b1").await, Redeemed::Done(Ok(_))), "forgotten with the login cookie");
    }

    #[tokio::test]
    async fn memory_ends_with_the_code_lifetime() {
        let (fake, clock, ex) = setup();
        ex.redeem("C4", "b1").await;
        clock.advance(CODE_TTL_SECS);
        ex.redeem("C4", "b2").await;
        assert_eq!(fake.0.load(Ordering::SeqCst), 2);
    }
}
