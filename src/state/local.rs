//! Revocations kept in this process: all there is with the memory backend, and what a replica
//! still knows while Redis is unreachable (its own logouts and revocations).

use std::collections::HashMap;

use parking_lot::Mutex;

/// Entries are dropped when they expire; past this many, expired ones are swept first.
const SWEEP_AT: usize = 100_000;

/// Revoked sessions, users and apps, each until its expiry (seconds).
#[derive(Default)]
pub struct LocalRevocations {
    /// Nothing was ever revoked here: the common case costs one load.
    any: std::sync::atomic::AtomicBool,
    /// Session id -> until.
    sessions: Mutex<HashMap<String, u64>>,
    /// `appid openid` -> (revoked at, until).
    users: Mutex<HashMap<String, (u64, u64)>>,
    /// appid -> (revoked at, until).
    apps: Mutex<HashMap<String, (u64, u64)>>,
}

impl LocalRevocations {
    fn mark(&self) {
        self.any.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn revoke_session(&self, sid: &str, until: u64, now: u64) {
        self.mark();
        let mut m = self.sessions.lock();
        sweep(&mut m, now, |u| *u);
        m.insert(sid.to_string(), until);
    }

    pub fn revoke_user(&self, appid: &str, openid: &str, at: u64, until: u64) {
        self.mark();
        let mut m = self.users.lock();
        sweep(&mut m, at, |(_, u)| *u);
        m.insert(format!("{appid} {openid}"), (at, until));
    }

    pub fn revoke_app(&self, appid: &str, at: u64, until: u64) {
        self.mark();
        self.apps.lock().insert(appid.to_string(), (at, until));
    }

    /// Is a session `sid` of `openid` in `appid`, issued at `issued`, revoked at `now`?
    pub fn is_revoked(&self, appid: &str, openid: &str, sid: &str, issued: u64, now: u64) -> bool {
        if !self.any.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let by_session = !sid.is_empty() && self.sessions.lock().get(sid).is_some_and(|until| now < *until);
        let by_time = |entry: Option<&(u64, u64)>| entry.is_some_and(|(at, until)| now < *until && issued <= *at);
        by_session
            || by_time(self.users.lock().get(&format!("{appid} {openid}")))
            || by_time(self.apps.lock().get(appid))
    }
}

fn sweep<V>(m: &mut HashMap<String, V>, now: u64, until: impl Fn(&V) -> u64) {
    if m.len() >= SWEEP_AT {
        m.retain(|_, v| now < until(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_cover_what_was_issued_before_them_until_they_expire() {
        let r = LocalRevocations::default();
        r.revoke_session("s1", 2000, 1000);
        assert!(r.is_revoked("wx", "o1", "s1", 900, 1500));
        assert!(!r.is_revoked("wx", "o1", "s1", 900, 2000), "expired with the session");
        assert!(!r.is_revoked("wx", "o1", "s2", 900, 1500));
        r.revoke_user("wx", "o2", 1000, 5000);
        assert!(r.is_revoked("wx", "o2", "", 999, 1500));
        assert!(!r.is_revoked("wx", "o2", "", 1001, 1500), "a login after the revocation stands");
        assert!(!r.is_revoked("wx2", "o2", "", 999, 1500), "another app");
        r.revoke_app("wx3", 1000, 5000);
        assert!(r.is_revoked("wx3", "anyone", "x", 1000, 1200));
    }
}
