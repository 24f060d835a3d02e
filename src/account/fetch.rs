//! Getting a credential: from this process, from the replicas' Redis, or from WeChat by one
//! caller at a time; and the forced refresh of a token a use found bad.

use std::time::{Duration, Instant};

use super::{health, Account, CredentialError, Held, Kind, FORCE_EVERY};
use crate::shared::{digest, POLL_EVERY};
use crate::util::clock::base62_nonce;
use crate::wechat::ExchangeError;

impl Account {
    /// The credential of `kind` (a ticket: the one `token` fetches): the one held while fresh;
    /// past its refresh time, one caller refreshes it while the others keep the one held as
    /// long as it is usable.
    pub(super) async fn obtain(&self, kind: Kind, token: Option<&Held>) -> Result<Held, CredentialError> {
        let bound = token.map(|t| digest(&[&t.value])).unwrap_or_default();
        let slot = self.memory.slot(kind);
        let held = slot.held.lock().clone().filter(|h| h.bound == bound);
        let now = self.now_ms();
        if let Some(h) = held.as_ref().filter(|h| h.fresh(now)) {
            return Ok(h.clone());
        }
        // A token being refreshed fetches no ticket: the one held serves until the new token
        // comes, and is refreshed with it.
        if let (Some(h), Some(t)) = (&held, token) {
            if !t.fresh(now) && h.usable(now) {
                return Ok(h.clone());
            }
        }
        let _flight = match &held {
            Some(h) if h.usable(now) => match slot.flight.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(h.clone()),
            },
            _ => tokio::time::timeout(self.wait, slot.flight.lock())
                .await
                .map_err(|_| CredentialError::Busy(kind.name()))?,
        };
        if let Some(h) = slot.held.lock().clone().filter(|h| h.bound == bound && h.fresh(self.now_ms())) {
            return Ok(h);
        }
        match self.refresh(kind, token, None).await {
            Ok((h, _)) => Ok(h),
            Err(e) => held.filter(|h| h.usable(self.now_ms())).ok_or(e),
        }
    }

    /// Replaces the token `stale` that a use found bad, if it is still the current one:
    /// `(token, true)` when this call refreshed it; `(current, false)` when another had
    /// already, or a forced refresh happened less than [`FORCE_EVERY`] ago.
    pub async fn refresh_stale(&self, stale: &str) -> Result<(Held, bool), CredentialError> {
        let current = self.token().await?;
        if current.value != stale {
            return Ok((current, false));
        }
        let slot = self.memory.slot(Kind::Token);
        let _flight = tokio::time::timeout(self.wait, slot.flight.lock())
            .await
            .map_err(|_| CredentialError::Busy(Kind::Token.name()))?;
        if let Some(h) = slot.held.lock().clone().filter(|h| h.value != stale && h.usable(self.now_ms())) {
            return Ok((h, false));
        }
        let now = self.now_ms();
        if now < *self.memory.forced_ms.lock() + FORCE_EVERY.as_millis() as u64 {
            self.deps.metrics.credential_heals.with_label_values(&[&self.appid, "too_soon"]).inc();
            return Ok((current, false));
        }
        *self.memory.forced_ms.lock() = now;
        let (fresh, fetched) = self.refresh(Kind::Token, None, Some(stale)).await?;
        let refreshed = fetched && fresh.value != stale;
        let result = if refreshed { "refreshed" } else { "unchanged" };
        self.deps.metrics.credential_heals.with_label_values(&[&self.appid, result]).inc();
        Ok((fresh, refreshed))
    }

    /// Refreshes the credential, this caller holding its slot: through Redis when it answers,
    /// else here alone. `true` when this call fetched it from WeChat.
    async fn refresh(
        &self,
        kind: Kind,
        token: Option<&Held>,
        stale: Option<&str>,
    ) -> Result<(Held, bool), CredentialError> {
        if let Some(wait) = self.memory.health.pausing(kind, self.now_ms()) {
            let last = self.memory.health.last_error(kind).unwrap_or_default();
            return Err(CredentialError::Pausing { kind: kind.name(), last, wait });
        }
        if self.deps.state.shares() {
            if let Some(result) = self.refresh_shared(kind, token, stale).await {
                return result;
            }
        }
        let held = self.fetch(kind, token, stale).await?;
        self.keep(kind, &held);
        Ok((held, true))
    }

    /// One replica at a time fetches; the others take what it stored. `None`: Redis did not
    /// answer.
    async fn refresh_shared(
        &self,
        kind: Kind,
        token: Option<&Held>,
        stale: Option<&str>,
    ) -> Option<Result<(Held, bool), CredentialError>> {
        let state = &self.deps.state;
        let bound = token.map(|t| digest(&[&t.value])).unwrap_or_default();
        let owner = base62_nonce(self.deps.entropy.as_ref(), 20);
        let deadline = Instant::now() + self.wait;
        let good = |h: &Held, now| h.bound == bound && h.fresh(now) && Some(h.value.as_str()) != stale;
        loop {
            if let Some(h) = self.read_shared(kind).await?.filter(|h| good(h, self.now_ms())) {
                self.keep(kind, &h);
                return Some(Ok((h, false)));
            }
            if state.lock_credential(&self.appid, kind.name(), &owner, self.wait).await? {
                let now = self.now_ms();
                let result = match self.read_shared(kind).await.flatten() {
                    Some(h) if good(&h, now) => Ok((h, false)),
                    // A forced refresh anywhere in the fleet less than FORCE_EVERY ago: keep it.
                    Some(h)
                        if stale.is_some()
                            && h.usable(now)
                            && !state.gate(&self.appid, "forced", FORCE_EVERY).await.unwrap_or(true) =>
                    {
                        Ok((h, false))
                    }
                    _ => match self.fetch(kind, token, stale).await {
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
        let mut slot = self.memory.slot(kind).held.lock();
        if slot.as_ref() != Some(held) {
            crate::observe::logging::register_secrets([held.value.as_bytes()]);
            self.deps
                .metrics
                .credential_expiry
                .with_label_values(&[&self.appid, kind.name()])
                .set((held.expires_ms / 1000) as i64);
            *slot = Some(held.clone());
        }
    }

    /// Asks WeChat. A token replacing `stale` is asked for normally first: another server may
    /// have replaced it already; only when WeChat answers `stale` again is a new one forced.
    async fn fetch(&self, kind: Kind, token: Option<&Held>, stale: Option<&str>) -> Result<Held, CredentialError> {
        let api = self.api.as_ref().ok_or_else(|| CredentialError::NoSecret(self.appid.clone()))?;
        let got_ms = self.now_ms();
        let asked = match (kind, token) {
            (Kind::Ticket, Some(t)) => api.ticket(&t.value).await,
            _ => match api.token(false).await {
                Ok(i) if stale == Some(i.value.as_str()) => {
                    self.deps.metrics.credential_fetches.with_label_values(&[&self.appid, kind.name(), "ok"]).inc();
                    api.token(true).await
                }
                other => other,
            },
        };
        match asked {
            Ok(issued) => {
                self.memory.health.succeeded(kind, &self.appid, &self.deps.metrics);
                self.deps.metrics.credential_fetches.with_label_values(&[&self.appid, kind.name(), "ok"]).inc();
                let mut expires_ms = got_ms + issued.expires_in.saturating_mul(1000);
                if let Some(t) = token {
                    // A ticket is asked for again with its token.
                    expires_ms = expires_ms.min(t.expires_ms);
                }
                log::info!(
                    "wechat credentials: account {}: new {} from WeChat, valid {} s",
                    self.appid,
                    kind.name(),
                    expires_ms.saturating_sub(got_ms) / 1000
                );
                let bound = token.map(|t| digest(&[&t.value])).unwrap_or_default();
                Ok(Held { value: issued.value, expires_ms, got_ms, bound })
            }
            Err(e) => {
                let result = match &e {
                    ExchangeError::Rejected { errcode, .. } => errcode.to_string(),
                    _ => "unreachable".to_string(),
                };
                self.deps.metrics.credential_fetches.with_label_values(&[&self.appid, kind.name(), &result]).inc();
                if !matches!(&e, ExchangeError::Rejected { errcode, .. } if health::token_went_bad(*errcode)) {
                    self.memory.health.failed(kind, &self.appid, &e, got_ms, &self.deps.metrics);
                }
                Err(CredentialError::Wechat { kind: kind.name(), source: e })
            }
        }
    }
}
