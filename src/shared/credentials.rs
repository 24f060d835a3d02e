//! The account credentials replicas share on Redis: each stored sealed under
//! `{acct:<digest of appid>}:<kind>` (one cluster slot per account), a lock with a TTL so one
//! replica at a time asks WeChat, and gates that let one thing happen per period fleet-wide.

use std::time::Duration;

use redis::AsyncCommands;

use super::{digest, set_new, SharedState};

/// Deletes KEYS[1] only if it still holds ARGV[1]: a lock is released by its owner only.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl SharedState {
    /// Is there a Redis to share with?
    pub fn shares(&self) -> bool {
        self.remote.is_some()
    }

    fn account_key(&self, appid: &str, rest: &str) -> Option<String> {
        let r = self.remote.as_ref()?;
        Some(r.key(&format!("{{acct:{}}}:{rest}", digest(&[appid]))))
    }

    /// The sealed credential `kind` of `appid`: `Some(None)` when Redis holds none; `None`
    /// when not shared or Redis did not answer.
    pub async fn credential(&self, appid: &str, kind: &str) -> Option<Option<String>> {
        let (r, key) = (self.remote.as_ref()?, self.account_key(appid, kind)?);
        r.run("read a credential", |mut c| async move { c.get::<_, Option<String>>(&key).await }).await
    }

    /// Stores the sealed credential for `ttl`.
    pub async fn store_credential(&self, appid: &str, kind: &str, sealed: &str, ttl: Duration) {
        let (Some(r), Some(key)) = (self.remote.as_ref(), self.account_key(appid, kind)) else { return };
        let ms = ttl.as_millis().max(1) as u64;
        r.run("store a credential", |mut c| async move { c.pset_ex::<_, _, ()>(&key, sealed, ms).await }).await;
    }

    /// Takes the lock on refreshing `kind` for `owner`, for `ttl` at most: `Some(false)`
    /// when another holds it; `None` when Redis did not answer.
    pub async fn lock_credential(&self, appid: &str, kind: &str, owner: &str, ttl: Duration) -> Option<bool> {
        let (r, key) = (self.remote.as_ref()?, self.account_key(appid, &format!("{kind}:lock"))?);
        let ms = ttl.as_millis().max(1) as u64;
        r.run("lock a credential", |mut c| async move { set_new(&mut c, &key, owner, ms).await }).await
    }

    /// Releases the lock if `owner` still holds it.
    pub async fn unlock_credential(&self, appid: &str, kind: &str, owner: &str) {
        let (Some(r), Some(key)) = (self.remote.as_ref(), self.account_key(appid, &format!("{kind}:lock"))) else {
            return;
        };
        r.run("unlock a credential", |mut c| async move {
            redis::Script::new(RELEASE).key(&key).arg(owner).invoke_async::<i64>(&mut c).await
        })
        .await;
    }

    /// `true` for the first caller in the fleet within `every`, `false` for the others;
    /// `None` when Redis did not answer.
    pub async fn gate(&self, appid: &str, what: &str, every: Duration) -> Option<bool> {
        let (r, key) = (self.remote.as_ref()?, self.account_key(appid, &format!("gate:{what}"))?);
        let ms = every.as_millis().max(1) as u64;
        r.run("pass a gate", |mut c| async move { set_new(&mut c, &key, 1, ms).await }).await
    }

    /// Counts one `what` on `day` for the fleet: the count so far, this one included; `None`
    /// when Redis did not answer.
    pub async fn count_today(&self, appid: &str, what: &str, day: u64) -> Option<u64> {
        let (r, key) = (self.remote.as_ref()?, self.account_key(appid, &format!("{what}:{day}"))?);
        r.run("count a credential event", |mut c| async move {
            let (n,): (u64,) =
                redis::pipe().atomic().incr(&key, 1u64).expire(&key, 2 * 86_400).ignore().query_async(&mut c).await?;
            Ok(n)
        })
        .await
    }
}
