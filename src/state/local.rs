//! Revocations kept in this process: all there is with the memory backend; with Redis, a copy
//! of every replica's revocations, kept in step from Redis ([`super::sync`]), so that a
//! revocation any replica has seen holds on every replica while Redis is unreachable.
//!
//! Each entry lives until its own expiry (the time the revoked sessions would have ended
//! anyway) and is then swept. The copy is bounded ([`MAX_ENTRIES`] of each kind): at the bound,
//! expired entries go first; should it still be full, the entry that expires soonest is dropped,
//! counted (`/readyz` shows the count) and logged (Redis keeps it while it answers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::digest;

/// Entries of each kind (sessions, users, apps) a replica keeps at most.
pub const MAX_ENTRIES: usize = 500_000;

/// One revocation as replicas exchange it: a line of words, never a plain openid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Session (or login family) `sid` of `appid`, until `until`.
    Session { appid: String, sid: String, until: u64 },
    /// Every session of one user (`user` = [`user_key`]) issued up to `at`, until `until`.
    User { user: String, at: u64, until: u64 },
    /// Every session of `appid` issued up to `at`, until `until`.
    App { appid: String, at: u64, until: u64 },
}

impl Record {
    /// `s <appid> <sid> <until>`, `u <user key> <at> <until>` or `a <appid> <at> <until>`.
    pub fn line(&self) -> String {
        match self {
            Record::Session { appid, sid, until } => format!("s {appid} {sid} {until}"),
            Record::User { user, at, until } => format!("u {user} {at} {until}"),
            Record::App { appid, at, until } => format!("a {appid} {at} {until}"),
        }
    }

    /// The record of [`Record::line`]; `None` for anything else.
    pub fn parse(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| words.get(i)?.parse::<u64>().ok();
        let word = |i: usize| words.get(i).filter(|w| !w.is_empty()).map(|w| w.to_string());
        match (words.first().copied(), words.len()) {
            (Some("s"), 4) => Some(Record::Session { appid: word(1)?, sid: word(2)?, until: num(3)? }),
            (Some("u"), 4) => Some(Record::User { user: word(1)?, at: num(2)?, until: num(3)? }),
            (Some("a"), 4) => Some(Record::App { appid: word(1)?, at: num(2)?, until: num(3)? }),
            _ => None,
        }
    }

    /// When it stops mattering (seconds).
    pub fn until(&self) -> u64 {
        match self {
            Record::Session { until, .. } | Record::User { until, .. } | Record::App { until, .. } => *until,
        }
    }
}

/// The key of one user of one app: a digest, so no openid is kept or sent as such.
pub fn user_key(appid: &str, openid: &str) -> String {
    digest(&[appid, openid])
}

/// Revoked sessions, users and apps, each until its expiry (seconds).
#[derive(Default)]
pub struct LocalRevocations {
    /// Nothing was ever revoked here: the common case costs one load.
    any: AtomicBool,
    /// Session id -> (until, its app).
    sessions: Mutex<HashMap<String, (u64, String)>>,
    /// [`user_key`] -> (revoked at, until).
    users: Mutex<HashMap<String, (u64, u64)>>,
    /// appid -> (revoked at, until).
    apps: Mutex<HashMap<String, (u64, u64)>>,
    /// Unexpired entries dropped at the bound.
    dropped: AtomicU64,
}

impl LocalRevocations {
    /// Keeps `record` (a later or longer one of the same key wins); `now` sweeps.
    pub fn apply(&self, record: Record, now: u64) {
        if record.until() <= now {
            return;
        }
        self.any.store(true, Ordering::Relaxed);
        let dropped = match record {
            Record::Session { appid, sid, until } => keep(
                &mut self.sessions.lock(),
                sid,
                (until, appid),
                now,
                |(u, _)| *u,
                |old, new| old.0 = old.0.max(new.0),
            ),
            Record::User { user, at, until } => {
                keep(&mut self.users.lock(), user, (at, until), now, |(_, u)| *u, merge)
            }
            Record::App { appid, at, until } => {
                keep(&mut self.apps.lock(), appid, (at, until), now, |(_, u)| *u, merge)
            }
        };
        if dropped {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if total.is_power_of_two() {
                log::warn!(
                    "revocations: this replica keeps {MAX_ENTRIES} of a kind at most; {total} unexpired one(s) dropped, the soonest to expire first (Redis still holds them while it answers)"
                );
            }
        }
    }

    /// Unexpired entries dropped at the bound so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Every unexpired entry, as records (to write them back to a Redis that lost them).
    pub fn records(&self, now: u64) -> Vec<Record> {
        let mut out = Vec::new();
        for (sid, (until, appid)) in self.sessions.lock().iter().filter(|(_, (u, _))| now < *u) {
            out.push(Record::Session { appid: appid.clone(), sid: sid.clone(), until: *until });
        }
        for (user, (at, until)) in self.users.lock().iter().filter(|(_, (_, u))| now < *u) {
            out.push(Record::User { user: user.clone(), at: *at, until: *until });
        }
        for (appid, (at, until)) in self.apps.lock().iter().filter(|(_, (_, u))| now < *u) {
            out.push(Record::App { appid: appid.clone(), at: *at, until: *until });
        }
        out
    }

    /// How many entries are kept (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.sessions.lock().len() + self.users.lock().len() + self.apps.lock().len()
    }

    /// Is a session `sid` of `openid` in `appid`, issued at `issued`, revoked at `now`?
    pub fn is_revoked(&self, appid: &str, openid: &str, sid: &str, issued: u64, now: u64) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let by_session = !sid.is_empty() && self.sessions.lock().get(sid).is_some_and(|(until, _)| now < *until);
        let by_time = |entry: Option<&(u64, u64)>| entry.is_some_and(|(at, until)| now < *until && issued <= *at);
        by_session || by_time(self.apps.lock().get(appid)) || {
            let users = self.users.lock();
            !users.is_empty() && by_time(users.get(&user_key(appid, openid)))
        }
    }
}

/// Two revocations of one user or app: the later one covers more sessions, the longer one
/// lasts longer.
fn merge(old: &mut (u64, u64), new: (u64, u64)) {
    *old = (old.0.max(new.0), old.1.max(new.1));
}

/// Inserts `key`; at the bound sweeps expired entries, then drops the soonest to expire.
/// Returns whether an unexpired entry was dropped.
fn keep<V>(
    m: &mut HashMap<String, V>,
    key: String,
    value: V,
    now: u64,
    until: impl Fn(&V) -> u64,
    merge: impl Fn(&mut V, V),
) -> bool {
    if let Some(old) = m.get_mut(&key) {
        merge(old, value);
        return false;
    }
    let mut dropped = false;
    if m.len() >= MAX_ENTRIES {
        m.retain(|_, v| now < until(v));
        if m.len() >= MAX_ENTRIES {
            if let Some(first) = m.iter().min_by_key(|(_, v)| until(v)).map(|(k, _)| k.clone()) {
                m.remove(&first);
                dropped = true;
            }
        }
    }
    m.insert(key, value);
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(sid: &str, until: u64) -> Record {
        Record::Session { appid: "wx".into(), sid: sid.into(), until }
    }

    #[test]
    fn revocations_cover_what_was_issued_before_them_until_they_expire() {
        let r = LocalRevocations::default();
        assert!(!r.is_revoked("wx", "o1", "s1", 900, 1500));
        r.apply(session("s1", 2000), 1000);
        assert!(r.is_revoked("wx", "o1", "s1", 900, 1500));
        assert!(!r.is_revoked("wx", "o1", "s1", 900, 2000), "expired with the session");
        assert!(!r.is_revoked("wx", "o1", "s2", 900, 1500));
        r.apply(Record::User { user: user_key("wx", "o2"), at: 1000, until: 5000 }, 1000);
        assert!(r.is_revoked("wx", "o2", "", 999, 1500));
        assert!(!r.is_revoked("wx", "o2", "", 1001, 1500), "a login after the revocation stands");
        assert!(!r.is_revoked("wx2", "o2", "", 999, 1500), "another app");
        r.apply(Record::App { appid: "wx3".into(), at: 1000, until: 5000 }, 1000);
        assert!(r.is_revoked("wx3", "anyone", "x", 1000, 1200));
        r.apply(session("old", 900), 1000);
        assert!(!r.is_revoked("wx", "o", "old", 0, 1000), "an expired record is not kept");
    }

    #[test]
    fn records_travel_as_lines_and_nothing_else_parses() {
        for r in [
            session("sAbC09", 1_800_000_000),
            Record::User { user: user_key("wx1", "oAbc"), at: 5, until: 9 },
            Record::App { appid: "wx1".into(), at: 5, until: 9 },
        ] {
            assert_eq!(Record::parse(&r.line()), Some(r.clone()));
            assert!(!r.line().contains("oAbc"), "no openid in a record");
        }
        for bad in ["", "s wx sid", "s wx sid x", "x wx sid 5", "s  sid 5", "s wx sid 5 6", "u k 1"] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_copy_is_bounded_and_drops_the_soonest_to_expire_first() {
        let mut m = HashMap::new();
        for i in 0..MAX_ENTRIES as u64 {
            m.insert(format!("s{i}"), 10_000 + i);
        }
        let merge = |old: &mut u64, new: u64| *old = (*old).max(new);
        assert!(keep(&mut m, "late".into(), 99_999, 100, |u| *u, merge), "full of unexpired: one dropped");
        assert_eq!(m.len(), MAX_ENTRIES);
        assert!(!m.contains_key("s0") && m.contains_key("s1") && m.contains_key("late"));
        // Expired entries make room first, without dropping an unexpired one.
        assert!(!keep(&mut m, "later".into(), 99_999, 10_010, |u| *u, merge));
        assert!(m.len() < MAX_ENTRIES);
    }
}
