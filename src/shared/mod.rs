//! What several replicas share (`[state]` in the config): the claim on each WeChat code and the
//! result of its one exchange, the one exchange each login nonce buys, the per-address rates,
//! and revocations. With the memory backend all of it lives in this process, as one replica
//! needs. With Redis, every replica sees the same; when Redis is unreachable each replica goes
//! on with its own state (degraded, said in `/readyz`, metrics and the log) and returns to
//! Redis by itself.
//!
//! Every method that asks Redis returns `None` when there is no Redis or it did not answer:
//! the caller then decides locally, as with the memory backend.

mod credentials;
mod eviction;
mod local;
mod record;
pub mod remote;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::config::StateConfig;
use crate::observe::metrics::Metrics;
use crate::session::Session;
use record::{user_key, Record};
use remote::{Remote, SetupError};
use sync::Revocations;

pub use eviction::Eviction;

/// How often a waiting replica looks for the result of an exchange another one is making.
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// Token-bucket (GCRA) admission: KEYS[1] holds the theoretical arrival time in ms.
/// ARGV: now (ms), interval (ms per request), burst. Returns 0 (admitted) or the wait in ms.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > interval * burst then
  return next_tat - now - interval * burst
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.max(next_tat - now, 1))
return 0
";

/// Who presented a code first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This replica: it exchanges the code and publishes the result.
    First,
    /// Another replica did, on behalf of this browser (login nonce).
    Taken { browser: String },
}

/// Whether a session still stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Valid,
    Revoked,
    /// Redis could not be asked and revocation fails closed.
    Unknown,
}

/// The shared state of the gateway; outlives reloads.
pub struct SharedState {
    remote: Option<Arc<Remote>>,
    /// Every revocation this replica knows (its own, and with Redis every replica's), those
    /// Redis has yet to take, and whether Redis may evict them.
    revocations: Arc<Revocations>,
    /// (appid, openid, sid, issued) -> (revoked, when asked).
    cache: Mutex<HashMap<String, (bool, Instant)>>,
    cache_for: Duration,
    fail_open: bool,
    /// One-time ids (tickets) spent here -> until when they are remembered.
    spent: Mutex<HashMap<String, u64>>,
}

impl SharedState {
    /// This process only.
    pub fn memory() -> Self {
        Self {
            remote: None,
            revocations: Arc::default(),
            cache: Mutex::default(),
            cache_for: Duration::ZERO,
            fail_open: true,
            spent: Mutex::default(),
        }
    }

    pub fn new(config: &StateConfig, metrics: Arc<Metrics>) -> Result<Self, SetupError> {
        match config {
            StateConfig::Memory => Ok(Self::memory()),
            StateConfig::Redis(r) => {
                let state = Self {
                    remote: Some(Arc::new(Remote::new(r, metrics)?)),
                    cache_for: r.revocation_cache,
                    fail_open: r.revocation_fail_open,
                    ..Self::memory()
                };
                if let Some(remote) = &state.remote {
                    sync::start(remote, &state.revocations);
                }
                Ok(state)
            }
        }
    }

    /// Revocations this replica knows (its own and, with Redis, every replica's), expired ones
    /// not yet swept included.
    pub fn revocations_known(&self) -> usize {
        self.revocations.local.len()
    }

    /// Revocations made here that Redis has yet to take (it did not answer).
    pub fn revocations_unshared(&self) -> usize {
        self.revocations.unshared.len()
    }

    /// Whether the Redis in use may evict revocations, as last asked.
    pub fn eviction(&self) -> Eviction {
        self.revocations.eviction.lock().clone()
    }

    /// What to tell the operator about revocations that may be lost or unknown here, if
    /// anything: a Redis that may evict them, unexpired ones this replica's copy had to give up
    /// at its bound, and a copy never loaded from a Redis that does not answer (a replica
    /// started during an outage knows only the revocations made on it).
    pub fn revocation_warning(&self) -> Option<String> {
        let rev = &self.revocations;
        let mut parts: Vec<String> = rev.eviction.lock().warning().into_iter().collect();
        let dropped = rev.local.dropped();
        if dropped > 0 {
            parts.push(format!(
                "this replica gave up {dropped} unexpired revocation(s) at its bound of {} of a kind",
                rev.local.bound()
            ));
        }
        if self.remote.as_ref().is_some_and(|r| !r.healthy()) && !rev.loaded() {
            parts.push(
                "this replica has not loaded the revocations from Redis yet: while Redis does not answer, it knows only those made here".into(),
            );
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Are sessions refused while Redis is unreachable?
    pub fn fails_closed(&self) -> bool {
        self.remote.is_some() && !self.fail_open
    }

    /// `memory`, or `redis` and whether it answers.
    pub fn status(&self) -> (&'static str, bool) {
        match &self.remote {
            None => ("memory", true),
            Some(r) => ("redis", r.healthy()),
        }
    }

    /// Claims `code` (of `appid`) for `browser` for `ttl`: `None` when not shared.
    pub async fn claim_code(&self, appid: &str, code: &str, browser: &str, ttl: Duration) -> Option<Claim> {
        let r = self.remote.as_ref()?;
        let key = r.key(&format!("{{c:{}}}:claim", digest(&[appid, code])));
        r.run("claim a code", |mut c| async move {
            if set_new(&mut c, &key, browser, ttl.as_millis() as u64).await? {
                return Ok(Claim::First);
            }
            let holder: Option<String> = c.get(&key).await?;
            Ok(holder.map_or(Claim::First, |browser| Claim::Taken { browser }))
        })
        .await
    }

    /// Publishes the (sealed) result of exchanging `code` for `ttl`.
    pub async fn publish_result(&self, appid: &str, code: &str, payload: &str, ttl: Duration) {
        let Some(r) = self.remote.as_ref() else { return };
        let key = r.key(&format!("{{c:{}}}:result", digest(&[appid, code])));
        let ms = ttl.as_millis() as u64;
        r.run("publish an exchange", |mut c| async move { c.pset_ex::<_, _, ()>(&key, payload, ms).await }).await;
    }

    /// The result published for `code`, if any yet: `None` also when not shared or Redis did
    /// not answer.
    pub async fn peek_result(&self, appid: &str, code: &str) -> Option<String> {
        let r = self.remote.as_ref()?;
        let key = r.key(&format!("{{c:{}}}:result", digest(&[appid, code])));
        r.run("read an exchange", |mut c| async move { c.get::<_, Option<String>>(&key).await }).await.flatten()
    }

    /// Records that login `nonce` exchanges `code`: `Some(false)` if it already exchanged
    /// another; `None` when not shared.
    pub async fn spend_nonce(&self, nonce: &str, code: &str, ttl: Duration) -> Option<bool> {
        let r = self.remote.as_ref()?;
        let key = r.key(&format!("{{n:{}}}", digest(&[nonce])));
        let code = digest(&[code]);
        r.run("spend a login nonce", |mut c| async move {
            if set_new(&mut c, &key, &code, ttl.as_millis() as u64).await? {
                return Ok(true);
            }
            let spent: Option<String> = c.get(&key).await?;
            Ok(spent.is_none_or(|s| s == code))
        })
        .await
    }

    /// One request through the token bucket `bucket` (`per_minute`, `burst`) at `now_ms`:
    /// `Some(Err(wait))` when over; `None` when not shared.
    pub async fn admit(&self, bucket: &str, now_ms: u64, per_minute: u32, burst: u32) -> Option<Result<(), Duration>> {
        let r = self.remote.as_ref()?;
        let key = r.key(&format!("rate:{bucket}"));
        let interval = (60_000 / u64::from(per_minute.max(1))).max(1);
        r.run("rate limit", |mut c| async move {
            let wait: u64 = redis::Script::new(GCRA)
                .key(&key)
                .arg(now_ms)
                .arg(interval)
                // As locally: no burst means a minute's worth.
                .arg(if burst == 0 { per_minute.max(1) } else { burst })
                .invoke_async(&mut c)
                .await?;
            Ok(if wait == 0 { Ok(()) } else { Err(Duration::from_millis(wait)) })
        })
        .await
    }

    /// Ends session `sid` (of `appid`) until `until` (seconds): at once on this replica, on the
    /// others once Redis has it (now, or when it answers again).
    pub async fn revoke_session(&self, appid: &str, sid: &str, until: u64, now: u64) {
        // The copy is checked before the cache: it needs no clearing.
        let record = Record::Session { appid: appid.into(), sid: sid.into(), until };
        self.revocations.local.apply(record.clone(), now);
        let Some(r) = self.remote.as_ref() else { return };
        let key = r.key(&format!("{{rev:{appid}}}:sid:{sid}"));
        let ms = until.saturating_sub(now).max(1) * 1000;
        r.run("revoke a session", |mut c| async move { c.pset_ex::<_, _, ()>(&key, 1, ms).await }).await;
        if sync::publish(r, &record, now).await.is_none() {
            self.revocations.unshared.push(record);
        }
    }

    /// Ends every session of `openid` in `appid` (`None`: of everyone in `appid`) issued up to
    /// `now`, for `lifetime` (seconds): as long as any such session could live. `false` when
    /// Redis did not take it: it holds on this replica now, and on the others once Redis
    /// answers again.
    pub async fn revoke_all(&self, appid: &str, openid: Option<&str>, now: u64, lifetime: u64) -> bool {
        let until = now + lifetime;
        let record = match openid {
            Some(o) => Record::User { user: user_key(appid, o), at: now, until },
            None => Record::App { appid: appid.into(), at: now, until },
        };
        self.revocations.local.apply(record.clone(), now);
        let Some(r) = self.remote.as_ref() else { return true };
        let published = sync::publish(r, &record, now).await.is_some();
        if !published {
            self.revocations.unshared.push(record);
        }
        let key = match openid {
            Some(o) => r.key(&format!("{{rev:{appid}}}:user:{}", digest(&[o]))),
            None => r.key(&format!("{{rev:{appid}}}:app")),
        };
        let ms = lifetime.max(1) * 1000;
        let kept = r.run("revoke sessions", |mut c| async move { c.pset_ex::<_, _, ()>(&key, now, ms).await }).await;
        published && kept.is_some()
    }

    /// Does session `s` still stand at `now`: neither its id nor its family's revoked, nor
    /// its user or app since it was issued? One Redis round trip at most, its answer reused
    /// for `revocation_cache`.
    pub async fn standing(&self, s: &Session, now: u64) -> Standing {
        let (appid, openid, sid, issued) = (s.appid.as_str(), s.openid.as_str(), s.sid.as_str(), s.issued);
        let family = s.family.as_ref().map_or("", |f| f.as_str());
        let local = &self.revocations.local;
        if local.is_revoked(appid, openid, sid, issued, now)
            || (!family.is_empty() && local.is_revoked(appid, openid, family, issued, now))
        {
            return Standing::Revoked;
        }
        let Some(r) = self.remote.as_ref() else { return Standing::Valid };
        let cache_key = format!("{appid} {openid} {sid} {family} {issued}");
        if let Some((revoked, at)) = self.cache.lock().get(&cache_key) {
            if at.elapsed() < self.cache_for {
                return if *revoked { Standing::Revoked } else { Standing::Valid };
            }
        }
        let keys = [
            r.key(&format!("{{rev:{appid}}}:user:{}", digest(&[openid]))),
            r.key(&format!("{{rev:{appid}}}:app")),
            r.key(&format!("{{rev:{appid}}}:sid:{sid}")),
            r.key(&format!("{{rev:{appid}}}:sid:{family}")),
        ];
        let asked = r.run("check a session", |mut c| async move {
            c.mget::<_, Vec<Option<u64>>>(&keys[..if family.is_empty() { 3 } else { 4 }]).await
        });
        let Some(values) = asked.await else {
            return if self.fail_open { Standing::Valid } else { Standing::Unknown };
        };
        let by_time = values.iter().take(2).any(|v| v.is_some_and(|at| issued <= at));
        let by_id = |i: usize, id: &str| !id.is_empty() && values.get(i).is_some_and(Option::is_some);
        let revoked = by_time || by_id(2, sid) || by_id(3, family);
        let mut cache = self.cache.lock();
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(cache_key, (revoked, Instant::now()));
        if revoked {
            Standing::Revoked
        } else {
            Standing::Valid
        }
    }
}

impl SharedState {
    /// Spends the one-time id `id` (kept until `until`, seconds): `true` the first time it is
    /// presented, on this replica or (with Redis) any other; `false` ever after, and while
    /// Redis is unreachable with `revocation_fail = "closed"`.
    pub async fn spend_once(&self, what: &str, id: &str, until: u64, now: u64) -> bool {
        {
            let mut spent = self.spent.lock();
            if spent.len() >= 100_000 {
                spent.retain(|_, u| now < *u);
            }
            if spent.insert(format!("{what} {id}"), until).is_some_and(|u| now < u) {
                return false;
            }
        }
        let Some(r) = self.remote.as_ref() else { return true };
        let key = r.key(&format!("{{once:{}}}", digest(&[what, id])));
        let ms = until.saturating_sub(now).max(1) * 1000;
        let first = r.run("spend a one-time id", |mut c| async move { set_new(&mut c, &key, 1, ms).await });
        // Redis unreachable: this replica's own record decides, unless sharing fails closed.
        first.await.unwrap_or(self.fail_open)
    }
}

/// `SET key value NX PX ms`: `true` when `key` was not there and now holds `value` for `ms`.
async fn set_new<C, V>(c: &mut C, key: &str, value: V, ms: u64) -> redis::RedisResult<bool>
where
    C: redis::aio::ConnectionLike + Send,
    V: redis::ToRedisArgs + Send + Sync,
{
    let set: Option<String> = redis::cmd("SET").arg(key).arg(value).arg("NX").arg("PX").arg(ms).query_async(c).await?;
    Ok(set.is_some())
}

/// 32 hex digits of SHA-256 over `parts`: keys never hold codes, nonces or openids as such.
pub fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}
