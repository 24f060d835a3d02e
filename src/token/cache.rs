//! Signed tokens remembered per (session, audience), so a busy session costs one signature
//! per reuse window instead of one per request. Sharded read-write locks keep hits from
//! contending; each shard holds at most its share of the configured size and forgets stale
//! tokens (then everything) when full.

use std::sync::Arc;

use crate::session::Session;
use crate::util::sharded::ShardedMap;
#[cfg(test)]
use crate::util::sharded::SHARDS;

/// Everything that goes into a token besides times and `jti`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    openid: String,
    appid: String,
    /// The session's issue time: a new login (another scope or profile) is another session.
    session_issued: u64,
    scope: crate::wechat::Scope,
    audience: String,
}

impl CacheKey {
    pub fn new(user: &Session, audience: &str) -> Self {
        Self {
            openid: user.openid.clone(),
            appid: user.appid.clone(),
            session_issued: user.issued,
            scope: user.scope,
            audience: audience.to_string(),
        }
    }
}

struct Entry {
    token: Arc<str>,
    issued: u64,
}

/// A bounded map from a session and audience to the last token signed for them.
pub struct TokenCache {
    tokens: ShardedMap<CacheKey, Entry>,
    reuse_for: u64,
}

impl TokenCache {
    /// Remembers about `size` tokens, each reused for `reuse_for` seconds after signing
    /// (0: never reused).
    pub fn new(size: usize, reuse_for: u64) -> Self {
        Self { tokens: ShardedMap::new(size), reuse_for }
    }

    /// The token for `key` if it was signed less than the reuse window before `now`.
    pub fn get(&self, key: &CacheKey, now: u64) -> Option<Arc<str>> {
        self.tokens.get(key, |e| (now >= e.issued && now < e.issued + self.reuse_for).then(|| e.token.clone()))
    }

    pub fn put(&self, key: CacheKey, token: Arc<str>, now: u64) {
        if self.reuse_for == 0 {
            return;
        }
        self.tokens.insert(key, Entry { token, issued: now }, |e| now < e.issued + self.reuse_for);
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(openid: &str, aud: &str) -> CacheKey {
        CacheKey::new(&Session { openid: openid.into(), appid: "wx1".into(), ..Session::default() }, aud)
    }

    #[test]
    fn reused_only_within_the_window() {
        let c = TokenCache::new(100, 150);
        c.put(key("o1", "a"), "T1".into(), 1000);
        assert_eq!(c.get(&key("o1", "a"), 1149).as_deref(), Some("T1"));
        assert_eq!(c.get(&key("o1", "a"), 1150), None);
        assert_eq!(c.get(&key("o1", "b"), 1000), None, "another audience");
        assert_eq!(c.get(&key("o2", "a"), 1000), None, "another user");
    }

    #[test]
    fn bounded() {
        let c = TokenCache::new(64, 150);
        for i in 0..10_000 {
            c.put(key(&format!("o{i}"), "a"), "T".into(), 1000);
        }
        assert!(c.len() <= 64 + SHARDS, "{}", c.len());
    }

    #[test]
    fn zero_window_never_remembers() {
        let c = TokenCache::new(64, 0);
        c.put(key("o1", "a"), "T".into(), 1000);
        assert!(c.is_empty());
    }
}
