//! Every replica's copy of the revocations, kept in step through Redis, so that a revocation
//! any replica has seen keeps holding on every replica while Redis is unreachable.
//!
//! A revocation is written, beside its own key, to two keys of one slot (`{rev}`):
//! - `{rev}:all`, a sorted set of every unexpired revocation (scored by its expiry, pruned of
//!   expired ones on every write), from which a replica loads the whole set;
//! - `{rev}:log`, a stream of the new ones (about the last [`LOG_KEPT`]), which each replica reads
//!   from where it left off, every [`SYNC_EVERY`].
//!
//! Only commands of Redis 5.0 are used (streams are 5.0's).
//!
//! A replica loads the whole set when it starts, after any sync that failed (it may have missed
//! log entries), every [`FULL_EVERY`], and when `{rev}:epoch` (a random value set once) has
//! changed: Redis lost its data (restarted without persistence, or evicted keys). Then the
//! replica first writes every unexpired revocation it knows back, so the revocations survive
//! in Redis as long as one replica that knew them runs.
//!
//! A revocation Redis did not take (unreachable) waits in [`Unshared`] and is published by the
//! first sync that reaches Redis again, so it comes to hold on every replica after the outage.
//!
//! The same loop sweeps expired entries from the copy, and asks Redis for its
//! `maxmemory-policy` ([`super::eviction`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::AsyncCommands;
use tokio::time::Instant;

use super::eviction::{self, Eviction};
use super::local::{LocalRevocations, MAX_ENTRIES};
use super::record::Record;
use super::remote::Remote;
use crate::util::clock::{Clock, SystemClock};

/// How often a replica reads the revocations other replicas made.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often it loads the whole set anyway.
const FULL_EVERY: Duration = Duration::from_secs(300);
/// How often it asks for Redis's eviction policy.
const POLICY_EVERY: Duration = Duration::from_secs(60);
/// How many entries of the log Redis keeps (about): far more than a replica that syncs every
/// second needs; one that fell further behind loads the whole set.
const LOG_KEPT: usize = 100_000;
/// Entries read at once.
const PAGE: usize = 5_000;

/// The keys of the shared revocations.
struct Keys {
    all: String,
    log: String,
    epoch: String,
}

impl Keys {
    fn of(r: &Remote) -> Self {
        Self { all: r.key("{rev}:all"), log: r.key("{rev}:log"), epoch: r.key("{rev}:epoch") }
    }
}

/// Writes `record` where every replica reads it. `None`: Redis did not take it.
pub async fn publish(r: &Remote, record: &Record, now: u64) -> Option<()> {
    publish_all(r, std::slice::from_ref(record), now).await
}

async fn publish_all(r: &Remote, records: &[Record], now: u64) -> Option<()> {
    let keys = Keys::of(r);
    r.run("publish a revocation", |mut c| async move {
        for chunk in records.chunks(PAGE) {
            let mut pipe = redis::pipe();
            for record in chunk {
                let line = record.line();
                pipe.zadd(&keys.all, &line, record.until()).ignore();
                pipe.cmd("XADD")
                    .arg(&keys.log)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(LOG_KEPT)
                    .arg("*")
                    .arg("r")
                    .arg(&line)
                    .ignore();
            }
            pipe.zrembyscore(&keys.all, "-inf", now).ignore();
            pipe.query_async::<()>(&mut c).await?;
        }
        Ok(())
    })
    .await
}

/// Where a replica's copy stands.
#[derive(Default)]
struct Cursor {
    /// The last log entry applied; `None` before the first whole load.
    last_id: Option<String>,
    epoch: Option<String>,
    full_at: Option<Instant>,
    failed: bool,
    policy_at: Option<Instant>,
}

/// This replica's side of the revocations: its copy, what Redis has not taken yet, and
/// whether Redis may evict them.
#[derive(Default)]
pub struct Revocations {
    pub local: LocalRevocations,
    pub unshared: Unshared,
    pub eviction: Mutex<Eviction>,
    /// The whole set was loaded from Redis once.
    loaded: AtomicBool,
}

impl Revocations {
    /// Has this replica loaded the whole set from Redis since it started?
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }
}

/// Revocations made here that Redis did not take (unreachable), oldest first, for the next
/// sync that reaches Redis to publish. They hold on this replica meanwhile (its copy has them).
#[derive(Default)]
pub struct Unshared {
    waiting: Mutex<VecDeque<Record>>,
    /// Given up at the bound: they hold on this replica only.
    dropped: AtomicU64,
}

impl Unshared {
    /// Keeps `record` for the next sync; past [`MAX_ENTRIES`] the oldest waiting gives way
    /// (logged).
    pub fn push(&self, record: Record) {
        let mut waiting = self.waiting.lock();
        if waiting.len() >= MAX_ENTRIES {
            waiting.pop_front();
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if total.is_power_of_two() {
                log::warn!(
                    "revocations: {MAX_ENTRIES} wait for Redis at most; {total} made while it did not answer will hold on this replica only"
                );
            }
        }
        waiting.push_back(record);
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Those still unexpired at `now`, to publish.
    fn take(&self, now: u64) -> Vec<Record> {
        self.waiting.lock().drain(..).filter(|r| now < r.until()).collect()
    }

    /// Publishing `records` failed: they wait again, before any newer ones.
    fn put_back(&self, records: Vec<Record>) {
        let mut waiting = self.waiting.lock();
        for record in records.into_iter().rev() {
            if waiting.len() >= MAX_ENTRIES {
                break;
            }
            waiting.push_front(record);
        }
    }
}

/// Starts the loop that keeps `revocations` in step with `remote`; it ends once the state is
/// gone.
pub fn start(remote: &Arc<Remote>, revocations: &Arc<Revocations>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        log::warn!("revocations: no runtime to keep this replica's copy in step; it holds its own only");
        return;
    };
    runtime.spawn(run(Arc::downgrade(remote), Arc::downgrade(revocations)));
}

async fn run(remote: Weak<Remote>, revocations: Weak<Revocations>) {
    let mut cursor = Cursor::default();
    loop {
        {
            let (Some(r), Some(rev)) = (remote.upgrade(), revocations.upgrade()) else { return };
            // Whether Redis answers or not.
            rev.local.sweep(SystemClock.now());
            let ok = step(&r, &rev, &mut cursor).await.is_some();
            cursor.failed = !ok;
            if ok && cursor.policy_at.is_none_or(|at| at.elapsed() >= POLICY_EVERY) {
                cursor.policy_at = Some(Instant::now());
                eviction::check(&r, &rev.eviction).await;
            }
        }
        tokio::time::sleep(SYNC_EVERY).await;
    }
}

/// One sync: the epoch (and the write-back of a lost set), what waits to be shared, then the
/// whole set or the log since the last entry applied.
async fn step(r: &Remote, rev: &Revocations, cursor: &mut Cursor) -> Option<()> {
    let local = &rev.local;
    let keys = Keys::of(r);
    let now = SystemClock.now();
    let fresh: String = format!("{:016x}", rand::random::<u64>());
    let epoch_key = keys.epoch.clone();
    let epoch: String = r
        .run("read the revocations' epoch", |mut c| async move {
            let _: bool = c.set_nx(&epoch_key, &fresh).await?;
            c.get(&epoch_key).await
        })
        .await?;
    let lost = cursor.epoch.as_ref().is_some_and(|seen| *seen != epoch);
    if lost {
        let known = local.records(now);
        log::warn!(
            "revocations: Redis lost them (restarted without persistence, or evicted); writing back the {} this replica knows",
            known.len()
        );
        publish_all(r, &known, now).await?;
    }
    let waiting = rev.unshared.take(now);
    if !waiting.is_empty() {
        if publish_all(r, &waiting, now).await.is_none() {
            rev.unshared.put_back(waiting);
            return None;
        }
        log::info!("revocations: {} made while Redis did not answer are shared now", waiting.len());
    }
    let full = lost
        || cursor.failed
        || cursor.last_id.is_none()
        || cursor.epoch.is_none()
        || cursor.full_at.is_none_or(|at| at.elapsed() >= FULL_EVERY);
    if full {
        load_all(r, &keys, local, cursor, now).await?;
        cursor.full_at = Some(Instant::now());
        rev.loaded.store(true, Ordering::Relaxed);
    } else {
        read_log(r, &keys, local, cursor, now).await?;
    }
    cursor.epoch = Some(epoch);
    Some(())
}

/// Every unexpired revocation, and the log position to go on from.
async fn load_all(r: &Remote, keys: &Keys, local: &LocalRevocations, cursor: &mut Cursor, now: u64) -> Option<()> {
    let log = keys.log.clone();
    // The position first: what is added while the set is read comes again from the log.
    let newest: Vec<(String, Vec<(String, String)>)> = r
        .run("read the revocations' log", |mut c| async move {
            redis::cmd("XREVRANGE").arg(&log).arg("+").arg("-").arg("COUNT").arg(1).query_async(&mut c).await
        })
        .await?;
    let mut offset = 0;
    loop {
        let all = keys.all.clone();
        let lines: Vec<String> = r
            .run("read the revocations", |mut c| async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&all)
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .arg("LIMIT")
                    .arg(offset)
                    .arg(PAGE)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        for line in &lines {
            apply(local, line, now);
        }
        if lines.len() < PAGE {
            break;
        }
        offset += PAGE;
    }
    cursor.last_id = Some(newest.first().map_or_else(|| "0-0".to_string(), |(id, _)| id.clone()));
    Some(())
}

/// The log entries after the last one applied.
async fn read_log(r: &Remote, keys: &Keys, local: &LocalRevocations, cursor: &mut Cursor, now: u64) -> Option<()> {
    loop {
        let after = cursor.last_id.clone().unwrap_or_else(|| "0-0".into());
        let (log, from) = (keys.log.clone(), after.clone());
        let entries: Vec<(String, Vec<(String, String)>)> = r
            .run("read the revocations' log", |mut c| async move {
                // From the last one applied, which comes again (Redis 5 has no exclusive start).
                redis::cmd("XRANGE").arg(&log).arg(&from).arg("+").arg("COUNT").arg(PAGE + 1).query_async(&mut c).await
            })
            .await?;
        let new: Vec<_> = entries.iter().filter(|(id, _)| *id != after).collect();
        for (_, fields) in &new {
            for (_, line) in fields.iter().filter(|(name, _)| name == "r") {
                apply(local, line, now);
            }
        }
        if let Some((id, _)) = new.last() {
            cursor.last_id = Some(id.clone());
        }
        if new.len() < PAGE {
            return Some(());
        }
    }
}

fn apply(local: &LocalRevocations, line: &str, now: u64) {
    match Record::parse(line) {
        Some(record) => local.apply(record, now),
        None => log::warn!("revocations: an entry in Redis is not one (ignored)"),
    }
}
