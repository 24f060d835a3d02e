//! Revocations kept in this process: all there is with the memory backend; with Redis, a copy
//! of every replica's revocations, kept in step from Redis ([`super::sync`]), so that a
//! revocation any replica has seen holds on every replica while Redis is unreachable.
//!
//! Each entry lives until its own expiry (the time the revoked sessions would have ended
//! anyway): every change, and the sync loop once a second, sweeps the expired ones, in order of
//! expiry, never by scanning, a batch at a time. The copy is bounded ([`MAX_ENTRIES`] of each
//! kind): should it be full of unexpired entries, the one that expires soonest gives way (the
//! new one, if it is the soonest), counted (`/readyz` shows the count) and logged; Redis keeps
//! it while it answers. A lookup takes one shared read lock, never held across an await.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::record::{user_key, Record};

/// Entries of each kind (sessions, users, apps) a replica keeps at most.
pub const MAX_ENTRIES: usize = 500_000;
/// Expired entries of each kind swept under one lock.
const SWEEP_AT_ONCE: usize = 1024;

/// Revoked sessions, users and apps, each until its expiry (seconds).
pub struct LocalRevocations {
    /// Nothing was ever revoked here: the common case costs one load.
    any: AtomicBool,
    kinds: RwLock<Kinds>,
    /// Entries of each kind kept at most.
    bound: usize,
    /// Unexpired entries given up at the bound.
    dropped: AtomicU64,
}

#[derive(Default)]
struct Kinds {
    /// Session id (or login family) -> its app.
    sessions: Expiring<String>,
    /// [`user_key`] -> revoked at.
    users: Expiring<u64>,
    /// appid -> revoked at.
    apps: Expiring<u64>,
}

impl Kinds {
    /// Drops up to `most` entries of each kind expired at `now`.
    fn sweep(&mut self, now: u64, most: usize) {
        self.sessions.sweep(now, most);
        self.users.sweep(now, most);
        self.apps.sweep(now, most);
    }

    fn due(&self, now: u64) -> bool {
        self.sessions.due(now) || self.users.due(now) || self.apps.due(now)
    }
}

impl Default for LocalRevocations {
    fn default() -> Self {
        Self::with_bound(MAX_ENTRIES)
    }
}

impl LocalRevocations {
    /// A copy keeping `bound` entries of each kind at most.
    pub fn with_bound(bound: usize) -> Self {
        Self { any: AtomicBool::new(false), kinds: RwLock::default(), bound: bound.max(1), dropped: AtomicU64::new(0) }
    }

    /// Keeps `record` (a later or longer one of the same key wins); `now` sweeps.
    pub fn apply(&self, record: Record, now: u64) {
        if record.until() <= now {
            return;
        }
        self.any.store(true, Ordering::Release);
        let bound = self.bound;
        let dropped = {
            let mut kinds = self.kinds.write();
            // A batch: so no expired entry is left once the bound is reached.
            kinds.sweep(now, SWEEP_AT_ONCE);
            match record {
                Record::Session { appid, sid, until } => kinds.sessions.keep(&sid, until, appid, bound),
                Record::User { user, at, until } => kinds.users.keep(&user, until, at, bound),
                Record::App { appid, at, until } => kinds.apps.keep(&appid, until, at, bound),
            }
        };
        if dropped {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if total.is_power_of_two() {
                log::warn!(
                    "revocations: this replica keeps {bound} of a kind at most; {total} unexpired one(s) given up, the soonest to expire first (Redis still holds them while it answers)"
                );
            }
        }
    }

    /// Drops the entries expired at `now` (a read lock when there are none).
    pub fn sweep(&self, now: u64) {
        // A batch at a time: lookups wait for one batch at most.
        while self.kinds.read().due(now) {
            self.kinds.write().sweep(now, SWEEP_AT_ONCE);
        }
    }

    /// Unexpired entries given up at the bound so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The bound of each kind.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Every unexpired entry, as records (to write them back to a Redis that lost them).
    pub fn records(&self, now: u64) -> Vec<Record> {
        let kinds = self.kinds.read();
        let sessions = kinds.sessions.live(now).map(|(sid, until, appid)| Record::Session {
            appid: appid.clone(),
            sid: sid.into(),
            until,
        });
        let users = kinds.users.live(now).map(|(user, until, at)| Record::User { user: user.into(), at: *at, until });
        let apps = kinds.apps.live(now).map(|(appid, until, at)| Record::App { appid: appid.into(), at: *at, until });
        sessions.chain(users).chain(apps).collect()
    }

    /// How many entries are kept (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        let kinds = self.kinds.read();
        kinds.sessions.entries.len() + kinds.users.entries.len() + kinds.apps.entries.len()
    }

    /// Is a session `sid` of `openid` in `appid`, issued at `issued`, revoked at `now`?
    pub fn is_revoked(&self, appid: &str, openid: &str, sid: &str, issued: u64, now: u64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let kinds = self.kinds.read();
        let by_time = |at: Option<&u64>| at.is_some_and(|at| issued <= *at);
        (!sid.is_empty() && kinds.sessions.get(sid, now).is_some_and(|app| app == appid))
            || by_time(kinds.apps.get(appid, now))
            || (!kinds.users.entries.is_empty() && by_time(kinds.users.get(&user_key(appid, openid), now)))
    }
}

/// Entries of one kind, each until its expiry, indexed by expiry too: sweeping the expired
/// ones and finding the soonest to expire cost a step each, never a scan.
struct Expiring<T> {
    entries: HashMap<Arc<str>, (u64, T)>,
    /// (until, key) of every entry.
    by_expiry: BTreeSet<(u64, Arc<str>)>,
}

impl<T> Default for Expiring<T> {
    fn default() -> Self {
        Self { entries: HashMap::new(), by_expiry: BTreeSet::new() }
    }
}

/// What two revocations of one key keep: for a user or an app, the later one covers more
/// sessions; a session's app stays.
trait Merge {
    fn merge(&mut self, new: Self);
}

impl Merge for u64 {
    fn merge(&mut self, new: u64) {
        *self = (*self).max(new);
    }
}

impl Merge for String {
    fn merge(&mut self, _: String) {}
}

impl<T: Merge> Expiring<T> {
    /// The value of `key` if it has not expired at `now`.
    fn get(&self, key: &str, now: u64) -> Option<&T> {
        self.entries.get(key).filter(|(until, _)| now < *until).map(|(_, v)| v)
    }

    /// Has any entry expired at `now`?
    fn due(&self, now: u64) -> bool {
        self.by_expiry.first().is_some_and(|(until, _)| *until <= now)
    }

    /// Drops up to `most` entries expired at `now`, the first to expire first.
    fn sweep(&mut self, now: u64, most: usize) {
        for _ in 0..most {
            if !self.due(now) {
                return;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.entries.remove(&key);
            }
        }
    }

    /// The unexpired entries: (key, until, value).
    fn live(&self, now: u64) -> impl Iterator<Item = (&str, u64, &T)> {
        self.entries.iter().filter(move |(_, (until, _))| now < *until).map(|(k, (until, v))| (&**k, *until, v))
    }

    /// Keeps `key` until `until` (an entry already there is merged and keeps the later
    /// expiry). At `bound` the entry that expires soonest gives way, which may be the new one:
    /// the caller sweeps a batch first, so no expired entry is left once the bound is reached.
    /// Whether an unexpired entry was given up.
    fn keep(&mut self, key: &str, until: u64, value: T, bound: usize) -> bool {
        if let Some((old_until, old)) = self.entries.get_mut(key) {
            old.merge(value);
            if until > *old_until {
                let probe: (u64, Arc<str>) = (*old_until, key.into());
                let key = self.by_expiry.take(&probe).map_or(probe.1, |(_, k)| k);
                self.by_expiry.insert((until, key));
                *old_until = until;
            }
            return false;
        }
        if self.entries.len() >= bound {
            if self.by_expiry.first().is_some_and(|(soonest, _)| until <= *soonest) {
                return true;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.entries.remove(&key);
            }
            self.insert(key, until, value);
            return true;
        }
        self.insert(key, until, value);
        false
    }

    fn insert(&mut self, key: &str, until: u64, value: T) {
        let key: Arc<str> = key.into();
        self.by_expiry.insert((until, key.clone()));
        self.entries.insert(key, (until, value));
    }
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
        assert!(!r.is_revoked("wx9", "o1", "s1", 900, 1500), "a session id of another app");
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
    fn a_second_revocation_of_one_key_keeps_the_later_time_and_expiry() {
        let r = LocalRevocations::default();
        let user = |at, until| Record::User { user: user_key("wx", "o"), at, until };
        r.apply(user(1000, 3000), 1000);
        r.apply(user(1200, 2000), 1200);
        assert!(r.is_revoked("wx", "o", "", 1100, 2500), "the earlier one's expiry stays");
        assert!(r.is_revoked("wx", "o", "", 1200, 1500), "the later one covers more sessions");
        r.apply(session("s", 2000), 1000);
        r.apply(session("s", 4000), 1000);
        r.sweep(2500);
        assert!(r.is_revoked("wx", "o", "s", 0, 3500), "a longer one outlives the first's expiry");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn the_copy_sweeps_what_expired_without_waiting_for_its_bound() {
        let r = LocalRevocations::default();
        for i in 0..100 {
            r.apply(session(&format!("s{i}"), 1000 + i), 900);
        }
        assert_eq!(r.len(), 100);
        r.sweep(1050);
        assert_eq!(r.len(), 49, "the 51 expired by 1050 are gone");
        assert!(!r.is_revoked("wx", "o", "s50", 0, 1050) && r.is_revoked("wx", "o", "s51", 0, 1050));
        // A change sweeps too.
        r.apply(Record::App { appid: "wx".into(), at: 1080, until: 5000 }, 1080);
        assert_eq!(r.len(), 19 + 1);
        assert_eq!(r.records(1080).len(), 20);
        assert_eq!(r.dropped(), 0, "expiry is not loss");
        // Many more than one batch.
        let many = 3 * SWEEP_AT_ONCE as u64;
        for i in 0..many {
            r.apply(session(&format!("m{i}"), 2000 + i % 7), 1080);
        }
        r.sweep(3000);
        assert_eq!(r.len(), 1, "only the app's, until 5000");
    }

    #[test]
    fn a_full_copy_never_gives_up_an_unexpired_entry_while_expired_ones_remain() {
        for expired in [1, SWEEP_AT_ONCE, 3 * SWEEP_AT_ONCE] {
            let bound = 3 * SWEEP_AT_ONCE;
            let r = LocalRevocations::with_bound(bound);
            for i in 0..bound {
                let until = if i < expired { 2000 } else { 9000 };
                r.apply(session(&format!("s{i}"), until), 1000);
            }
            r.apply(session("new", 9000), 2000);
            assert_eq!(r.dropped(), 0, "{expired} expired");
            assert!(r.is_revoked("wx", "o", "new", 0, 2000));
            let last = format!("s{}", bound - 1);
            assert_eq!(r.is_revoked("wx", "o", &last, 0, 2000), expired < bound);
            assert_eq!(r.len(), bound - expired.min(SWEEP_AT_ONCE) + 1);
        }
    }

    #[test]
    fn at_its_bound_the_copy_gives_up_the_soonest_to_expire_and_counts_it() {
        let r = LocalRevocations::with_bound(3);
        for (sid, until) in [("a", 2000), ("b", 3000), ("c", 4000)] {
            r.apply(session(sid, until), 1000);
        }
        assert_eq!(r.dropped(), 0);
        r.apply(session("d", 5000), 1000);
        assert_eq!((r.len(), r.dropped()), (3, 1), "full of unexpired: one given up, counted");
        assert!(!r.is_revoked("wx", "o", "a", 0, 1500), "the soonest to expire went");
        assert!(["b", "c", "d"].iter().all(|s| r.is_revoked("wx", "o", s, 0, 1500)));
        // A new one that expires sooner than all kept is the one given up.
        r.apply(session("e", 2500), 1000);
        assert_eq!(r.dropped(), 2);
        assert!(!r.is_revoked("wx", "o", "e", 0, 1500) && r.is_revoked("wx", "o", "b", 0, 1500));
        // Expired entries make room first, without giving up an unexpired one.
        r.apply(session("f", 6000), 3500);
        assert_eq!((r.len(), r.dropped()), (3, 2));
        assert!(["c", "d", "f"].iter().all(|s| r.is_revoked("wx", "o", s, 0, 3500)));
        // Updating a kept key never gives anything up; each kind has its own bound.
        r.apply(session("c", 7000), 3500);
        r.apply(Record::App { appid: "wx".into(), at: 3500, until: 9000 }, 3500);
        assert_eq!((r.len(), r.dropped()), (4, 2));
    }
}
