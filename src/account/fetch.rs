//! Getting a credential: from this process, from the replicas' Redis, or from WeChat by one
//! caller at a time; and the refresh of a token a use found bad.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::health::{LOGIN_MAX_PAUSE, MAX_PAUSE};
use super::{health, Account, CredentialError, Held, Kind, FORCES_A_DAY, FORCE_EVERY, RECHECK};
use crate::shared::{digest, POLL_EVERY};
use crate::util::clock::{base62_nonce, beijing_day};
use crate::wechat::ExchangeError;

/// What a credential is fetched for: the token, a ticket with `token`, or a token to replace
/// `stale`, which a use found bad.
#[derive(Clone, Copy)]
pub(super) enum Need<'a> {
    Token,
    Ticket { token: &'a Held },
    Replace { stale: &'a Held },
}

impl Need<'_> {
    fn kind(&self) -> Kind {
        match self {
            Need::Ticket { .. } => Kind::Ticket,
            _ => Kind::Token,
        }
    }

    /// What a credential of this need is bound to: a ticket to its token's digest.
    fn bound(&self) -> String {
        match self {
            Need::Ticket { token } => digest(&[&token.value]),
            _ => String::new(),
        }
    }

    fn stale(&self) -> Option<&str> {
        match self {
            Need::Replace { stale } => Some(stale.value.as_str()),
            _ => None,
        }
    }
}

impl Account {
    /// The credential `need` asks for: the one held while fresh (with Redis, looked up there
    /// again every [`RECHECK`], so what another replica replaced is followed); past its
    /// refresh time, one caller refreshes it while the others keep the one held as long as it
    /// is usable.
    pub(super) async fn obtain(&self, need: Need<'_>) -> Result<Held, CredentialError> {
        let (kind, bound) = (need.kind(), need.bound());
        let slot = self.memory.slot(kind);
        let held = slot.held.lock().clone().filter(|h| h.bound == bound);
        let now = self.now_ms();
        if let Some(h) = held.as_ref().filter(|h| h.fresh(now)) {
            return Ok(self.recheck(kind, &bound, h, now).await);
        }
        // A token being refreshed fetches no ticket: the one held serves until the new token
        // comes, and is refreshed with it.
        if let (Some(h), Need::Ticket { token }) = (&held, need) {
            if !token.fresh(now) && h.usable(now) {
                return Ok(h.clone());
            }
        }
        let _flight = match &held {
            Some(h) if h.usable(now) => match slot.flight.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(h.clone()),
            },
            _ => tokio::time::timeout(2 * self.wait, slot.flight.lock())
                .await
                .map_err(|_| CredentialError::Busy(kind.name()))?,
        };
        if let Some(h) = slot.held.lock().clone().filter(|h| h.bound == bound && h.fresh(self.now_ms())) {
            return Ok(h);
        }
        match self.refresh(need).await {
            Ok((h, _)) => Ok(h),
            Err(e) => held.filter(|h| h.usable(self.now_ms())).ok_or(e),
        }
    }

    /// `held`, or what Redis holds instead when another replica replaced it; Redis is asked
    /// by one caller at most every [`RECHECK`].
    async fn recheck(&self, kind: Kind, bound: &str, held: &Held, now: u64) -> Held {
        let slot = self.memory.slot(kind);
        let last = slot.checked_ms.load(Ordering::Relaxed);
        let due = now >= last + RECHECK.as_millis() as u64;
        if !self.deps.state.shares()
            || !due
            || slot.checked_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return held.clone();
        }
        match self.read_shared(kind).await.flatten() {
            Some(h) if h.value != held.value && h.bound == bound && h.fresh(self.now_ms()) => {
                self.keep(kind, &h);
                h
            }
            _ => held.clone(),
        }
    }

    /// Replaces the token `stale` that a use found bad, if it is still the current one:
    /// `(token, true)` when this call replaced it; `(current, false)` when another replica or
    /// caller had already, or WeChat says `stale` is good, or replacing it now would break
    /// the limits ([`FORCE_EVERY`], [`FORCES_A_DAY`]).
    pub async fn refresh_stale(&self, stale: &str) -> Result<(Held, bool), CredentialError> {
        let current = self.token().await?;
        if current.value != stale {
            return Ok((current, false));
        }
        let slot = self.memory.slot(Kind::Token);
        let _flight = tokio::time::timeout(2 * self.wait, slot.flight.lock())
            .await
            .map_err(|_| CredentialError::Busy(Kind::Token.name()))?;
        if let Some(h) = slot.held.lock().clone().filter(|h| h.value != stale && h.usable(self.now_ms())) {
            return Ok((h, false));
        }
        let (fresh, fetched) = self.refresh(Need::Replace { stale: &current }).await?;
        let replaced = fetched && fresh.value != stale;
        let result = if replaced { "refreshed" } else { "unchanged" };
        self.deps.metrics.credential_heals.with_label_values(&[&self.appid, result]).inc();
        Ok((fresh, replaced))
    }

    /// Refreshes the credential, this caller holding its slot: through Redis when it answers,
    /// else here alone. `true` when this call asked WeChat.
    async fn refresh(&self, need: Need<'_>) -> Result<(Held, bool), CredentialError> {
        if self.deps.state.shares() {
            if let Some(result) = self.refresh_shared(need).await {
                return result;
            }
        }
        let held = self.fetch(need).await?;
        self.keep(need.kind(), &held);
        Ok((held, true))
    }

    /// One replica at a time asks WeChat; the others take what it stored. `None`: Redis did
    /// not answer.
    async fn refresh_shared(&self, need: Need<'_>) -> Option<Result<(Held, bool), CredentialError>> {
        let (kind, bound, stale) = (need.kind(), need.bound(), need.stale());
        let state = &self.deps.state;
        let owner = base62_nonce(self.deps.entropy.as_ref(), 20);
        let deadline = Instant::now() + self.wait;
        let good = |h: &Held, now| h.bound == bound && h.fresh(now) && Some(h.value.as_str()) != stale;
        loop {
            if let Some(h) = self.read_shared(kind).await?.filter(|h| good(h, self.now_ms())) {
                self.keep(kind, &h);
                return Some(Ok((h, false)));
            }
            if state.lock_credential(&self.appid, kind.name(), &owner, self.wait).await? {
                let result = match self.read_shared(kind).await.flatten() {
                    Some(h) if good(&h, self.now_ms()) => Ok((h, false)),
                    _ => match self.fetch(need).await {
                        Ok(h) => {
                            let ttl = Duration::from_millis(h.expires_ms.saturating_sub(self.now_ms()).max(1));
                            let sealed = self.sealer.seal_json(&self.seal_name(kind), &h, self.deps.entropy.as_ref());
                            state.store_credential(&self.appid, kind.name(), &sealed, ttl).await;
                            Ok((h, true))
                        }
                        Err(e) => Err(e),
                    },
                };
                state.unlock_credential(&self.appid, kind.name(), &owner).await;
                if let Ok((h, _)) = &result {
                    self.keep(kind, h);
                }
                return Some(result);
            }
            if Instant::now() >= deadline {
                return Some(Err(CredentialError::Busy(kind.name())));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// What Redis holds: `Some(None)` when it holds nothing usable; `None` when it did not
    /// answer.
    async fn read_shared(&self, kind: Kind) -> Option<Option<Held>> {
        let sealed = self.deps.state.credential(&self.appid, kind.name()).await?;
        Some(sealed.and_then(|s| self.sealer.open_json::<Held>(&self.seal_name(kind), &s)))
    }

    fn seal_name(&self, kind: Kind) -> String {
        format!("ogw-credential {} {}", self.appid, kind.name())
    }

    /// Keeps `held` in this process.
    fn keep(&self, kind: Kind, held: &Held) {
        let slot = self.memory.slot(kind);
        slot.checked_ms.store(self.now_ms(), Ordering::Relaxed);
        let mut kept = slot.held.lock();
        if kept.as_ref() != Some(held) {
            let expiry = (held.expires_ms / 1000) as i64;
            self.deps.metrics.credential_expiry.with_label_values(&[&self.appid, kind.name()]).set(expiry);
            *kept = Some(held.clone());
        }
    }

    /// Asks WeChat, unless a failure's pause is not over. A token replacing a stale one is
    /// asked for normally first (another server may have replaced it already); when WeChat
    /// answers the stale one again, it is checked with a cheap call, and only a token WeChat
    /// refuses there is replaced by force, within the limits.
    async fn fetch(&self, need: Need<'_>) -> Result<Held, CredentialError> {
        let kind = need.kind();
        if let Some(wait) = self.memory.health.pausing(kind, self.now_ms()) {
            let (last, errcode) = self.memory.health.last_error(kind).unwrap_or_default();
            return Err(CredentialError::Pausing { kind: kind.name(), last, errcode, wait });
        }
        let api = self.api.as_ref().ok_or_else(|| CredentialError::NoSecret(self.appid.clone()))?;
        let got_ms = self.now_ms();
        let asked = match need {
            Need::Ticket { token } => api.ticket(&token.value).await,
            Need::Token => api.token(false).await,
            Need::Replace { stale } => match api.token(false).await {
                Ok(same) if same.value == stale.value => {
                    self.count(kind, "ok");
                    if !api.can_force() || api.check(&stale.value).await.is_ok() || !self.may_force(got_ms).await {
                        // Good after all (the use failed for another reason), or not now.
                        return Ok(stale.clone());
                    }
                    api.token(true).await
                }
                other => other,
            },
        };
        match asked {
            Ok(issued) => {
                self.memory.health.succeeded(kind, &self.appid, &self.deps.metrics);
                self.count(kind, "ok");
                let mut expires_ms = got_ms + issued.expires_in.saturating_mul(1000);
                if let Need::Ticket { token } = need {
                    // A ticket is asked for again with its token.
                    expires_ms = expires_ms.min(token.expires_ms);
                }
                log::info!(
                    "wechat credentials: account {}: new {} from {}, valid {} s",
                    self.appid,
                    kind.name(),
                    if self.logins_need_token { "WeCom" } else { "WeChat" },
                    expires_ms.saturating_sub(got_ms) / 1000
                );
                Ok(Held { value: issued.value, expires_ms, got_ms, bound: need.bound() })
            }
            Err(e) => {
                let result = match &e {
                    ExchangeError::Rejected { errcode, .. } => errcode.to_string(),
                    _ => "unreachable".to_string(),
                };
                self.count(kind, &result);
                let healable =
                    matches!(&e, ExchangeError::Rejected { errcode, .. } if health::token_went_bad(*errcode));
                if !healable || kind == Kind::Ticket || self.logins_need_token {
                    // A ticket refused for its token pauses too: its heal follows at once,
                    // and a token that stays bad must not cost a call per page. WeCom's
                    // 40001 on gettoken is a wrong corpsecret.
                    let max_pause = if self.logins_need_token { LOGIN_MAX_PAUSE } else { MAX_PAUSE };
                    self.memory.health.failed(kind, &self.appid, &e, got_ms, &self.deps.metrics, max_pause);
                }
                Err(CredentialError::Wechat { kind: kind.name(), source: e })
            }
        }
    }

    fn count(&self, kind: Kind, result: &str) {
        self.deps.metrics.credential_fetches.with_label_values(&[&self.appid, kind.name(), result]).inc();
    }

    /// May the token be replaced by force now: not within [`FORCE_EVERY`] of the last force
    /// (here, and with Redis anywhere in the fleet), and not more than [`FORCES_A_DAY`] times
    /// a day (WeChat allows 20)?
    async fn may_force(&self, now_ms: u64) -> bool {
        let day = beijing_day(now_ms / 1000);
        {
            let mut forced = self.memory.forced.lock();
            if forced.day != day {
                *forced = super::Forced { day, count: 0, last_ms: 0 };
            }
            let soon = forced.last_ms > 0 && now_ms < forced.last_ms + FORCE_EVERY.as_millis() as u64;
            if soon || forced.count >= FORCES_A_DAY {
                self.deps.metrics.credential_heals.with_label_values(&[&self.appid, "too_soon"]).inc();
                return false;
            }
            forced.count += 1;
            forced.last_ms = now_ms;
        }
        let state = &self.deps.state;
        let fleet = state.gate(&self.appid, "force", FORCE_EVERY).await.unwrap_or(true)
            && state.count_today(&self.appid, "forces", day).await.is_none_or(|n| n <= u64::from(FORCES_A_DAY));
        if !fleet {
            self.deps.metrics.credential_heals.with_label_values(&[&self.appid, "too_soon"]).inc();
        }
        fleet
    }
}
