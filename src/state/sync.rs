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
//! The same loop asks Redis for its `maxmemory-policy`: anything but `noeviction` may evict
//! revocations, which `/readyz` and the log then say.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::AsyncCommands;
use tokio::time::Instant;

use super::local::{LocalRevocations, Record};
use super::remote::Remote;
use crate::clock::{Clock, SystemClock};

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

/// Whether the Redis in use may evict revocations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Eviction {
    /// Not asked yet.
    #[default]
    Unchecked,
    /// `maxmemory-policy noeviction`.
    Never,
    /// Any other policy (its name): revocation keys may go.
    May(String),
    /// Redis would not say (`CONFIG` disabled or renamed).
    Unknown(String),
}

impl Eviction {
    /// What `/readyz` and the log say, if anything needs saying.
    pub fn warning(&self) -> Option<String> {
        match self {
            Eviction::Unchecked | Eviction::Never => None,
            Eviction::May(policy) => Some(format!(
                "Redis maxmemory-policy is {policy}: it may evict revocations (set noeviction; see README, Scaling out)"
            )),
            Eviction::Unknown(why) => Some(format!("Redis maxmemory-policy could not be checked ({why})")),
        }
    }
}

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

/// Starts the loop that keeps `local` in step with `remote`; it ends once the state is gone.
pub fn start(remote: &Arc<Remote>, local: &Arc<LocalRevocations>, eviction: &Arc<Mutex<Eviction>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        log::warn!("revocations: no runtime to keep this replica's copy in step; it holds its own only");
        return;
    };
    let (remote, local, eviction) = (Arc::downgrade(remote), Arc::downgrade(local), Arc::downgrade(eviction));
    runtime.spawn(run(remote, local, eviction));
}

async fn run(remote: Weak<Remote>, local: Weak<LocalRevocations>, eviction: Weak<Mutex<Eviction>>) {
    let mut cursor = Cursor::default();
    loop {
        {
            let (Some(r), Some(l), Some(e)) = (remote.upgrade(), local.upgrade(), eviction.upgrade()) else { return };
            let ok = step(&r, &l, &mut cursor).await.is_some();
            cursor.failed = !ok;
            if ok && cursor.policy_at.is_none_or(|at| at.elapsed() >= POLICY_EVERY) {
                cursor.policy_at = Some(Instant::now());
                check_policy(&r, &e).await;
            }
        }
        tokio::time::sleep(SYNC_EVERY).await;
    }
}

/// One sync: the epoch, then the whole set or the log since the last entry applied.
async fn step(r: &Remote, local: &LocalRevocations, cursor: &mut Cursor) -> Option<()> {
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
    let full = lost
        || cursor.failed
        || cursor.last_id.is_none()
        || cursor.epoch.is_none()
        || cursor.full_at.is_none_or(|at| at.elapsed() >= FULL_EVERY);
    if full {
        load_all(r, &keys, local, cursor, now).await?;
        cursor.full_at = Some(Instant::now());
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

/// Asks Redis for its eviction policy; says so in the log when it changes to a worrying one.
async fn check_policy(r: &Remote, eviction: &Mutex<Eviction>) {
    let asked = r
        .run("read maxmemory-policy", |mut c| async move {
            let got = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async::<Vec<String>>(&mut c).await;
            match got {
                Ok(pairs) => Ok(Ok(pairs)),
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e),
                // A refusal (CONFIG disabled or renamed) is an answer here.
                Err(e) => Ok(Err(e.to_string())),
            }
        })
        .await;
    let now = match asked {
        Some(Ok(pairs)) => match pairs.get(1) {
            Some(policy) if policy == "noeviction" => Eviction::Never,
            Some(policy) => Eviction::May(policy.clone()),
            None => Eviction::Unknown("CONFIG GET answered nothing".into()),
        },
        Some(Err(e)) => Eviction::Unknown(e),
        None => return,
    };
    let mut current = eviction.lock();
    if *current != now {
        if let Some(w) = now.warning() {
            log::warn!("revocations: {w}");
        }
        *current = now;
    }
}
