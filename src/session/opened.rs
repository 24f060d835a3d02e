//! Sessions already opened, by their exact sealed cookie value. A browser sends the same value
//! with every request, and opening it (XChaCha20-Poly1305, then JSON) was the largest part of
//! what a session costs a request. Only values that opened are remembered, so any other value
//! is opened as before; expiry, app and host are checked on every request, revocation by the
//! caller as before. A full shard is emptied.

use super::Session;
use crate::util::sharded::ShardedMap;

/// How many opened sessions each cookie remembers at most.
pub(super) const OPENED_MAX: usize = 16_384;
/// Longer values are opened every time, never remembered: a session cookie is a few hundred
/// bytes, so at most 16,384 entries of at most 4 KiB.
pub(super) const OPENED_VALUE_MAX: usize = 4096;

pub(super) struct Opened(pub(super) ShardedMap<Box<str>, Session>);

impl Default for Opened {
    fn default() -> Self {
        Self(ShardedMap::new(OPENED_MAX))
    }
}

impl Opened {
    pub(super) fn get(&self, value: &str) -> Option<Session> {
        self.0.get(value, |s| Some(s.clone()))
    }

    pub(super) fn put(&self, value: &str, session: &Session) {
        if value.len() <= OPENED_VALUE_MAX {
            self.0.insert(value.into(), session.clone(), |_| false);
        }
    }
}
