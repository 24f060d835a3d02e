//! Revocations that hold: a logout on one replica keeps holding on every replica while Redis
//! is unreachable (each keeps a copy in step from Redis), and after Redis restarts empty (the
//! replicas write back what they know); one made while Redis is unreachable is shared once it
//! answers; a replica started during an outage knows nothing until Redis answers; a Redis that
//! may evict revocations is named in `/readyz` and the log.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::redis_server::{RedisServer, Reply};
use common::replicas::{eventually, redis_state, url, Cluster};
use common::Capture;
use openid_gateway::config::LogFormat;
use openid_gateway::shared::Eviction;

/// The tests' `revocation_cache` (see [`redis_state`]), past which a replica asks Redis again.
const CACHE: Duration = Duration::from_millis(100);

/// How long a replica may take to learn what another did.
const SETTLE: Duration = Duration::from_secs(15);

/// Checks `check` over and over until `window` has passed: it must hold every time.
async fn throughout<F: std::future::Future<Output = Result<(), String>>>(window: Duration, check: impl Fn() -> F) {
    let end = Instant::now() + window;
    loop {
        if let Err(e) = check().await {
            panic!("{e}");
        }
        if Instant::now() >= end {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every replica of `c` refuses `ended` and forwards `kept` (the positive control).
async fn holds(c: &Cluster, ended: &str, kept: &str) -> Result<(), String> {
    for i in 0..c.replicas.len() {
        if c.forwarded(i, "/shop", ended).await {
            return Err(format!("replica {i} accepted the revoked session"));
        }
        if !c.forwarded(i, "/shop", kept).await {
            return Err(format!("replica {i} refused a session nobody revoked"));
        }
    }
    Ok(())
}

async fn log_out(c: &Cluster, replica: usize, cookie: &str) {
    let out = c.browser(replica).get_with(&url("/.gateway/logout"), &[("cookie", cookie)]).await;
    assert_eq!(out.status, 302, "logout on replica {replica}");
}

/// `/readyz` of a replica: its status and body.
async fn ready(c: &Cluster, replica: usize) -> (u16, serde_json::Value) {
    let res = reqwest::get(format!("{}/readyz", c.replicas[replica].admin)).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Polls Redis until `args` answers a number of at least `n`.
async fn redis_counts(redis: &RedisServer, args: &[&str], n: i64, what: &str) {
    let mut conn = redis.connect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match conn.command(args) {
            Ok(Reply::Int(have)) if have >= n => return,
            other => assert!(Instant::now() < deadline, "{what}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_holds_on_every_replica_through_an_outage_and_an_empty_restart() {
    let mut redis = RedisServer::start();
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    let (ended, kept) = (c.login(0).await, c.login(1).await);
    // Positive control: both sessions work on both replicas (each caches "not revoked").
    for replica in [0, 1] {
        assert!(c.forwarded(replica, "/shop", &ended).await && c.forwarded(replica, "/shop", &kept).await);
    }

    // Logged out on replica 0; replica 1's copy learns it from Redis.
    log_out(&c, 0, &ended).await;
    eventually("replica 1's copy holds replica 0's revocation", SETTLE, || async {
        c.replicas[1].state.revocations_known() >= 1
    })
    .await;

    // Redis goes away: every replica's copy keeps refusing it, past any cached answer.
    redis.kill();
    throughout(CACHE * 3, || holds(&c, &ended, &kept)).await;
    assert_eq!(ready(&c, 1).await.1["state"]["status"], "degraded", "the refusals did not come from Redis");
    c.clock.advance(60);
    holds(&c, &ended, &kept).await.unwrap();

    // Redis comes back empty: the replicas notice, write back what they know, and still refuse.
    redis.restart();
    redis_counts(&redis, &["ZCARD", "ogw:{rev}:all"], 1, "no replica wrote the revocation back").await;
    throughout(CACHE * 3, || holds(&c, &ended, &kept)).await;

    // A replica started now, which never saw the logout, learns it from Redis.
    let later = Cluster::start(1, &redis_state(&redis.url()), "").await;
    eventually("a new replica loads the revocations", SETTLE, || async {
        later.replicas[0].state.revocations_known() >= 1
    })
    .await;
    holds(&later, &ended, &kept).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_made_while_redis_is_unreachable_is_shared_once_it_answers() {
    // With persistence, as the README asks: Redis comes back with its data.
    let mut redis = RedisServer::start_with(&["--appendonly", "yes"]);
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    let (ended, kept) = (c.login(1).await, c.login(1).await);
    assert!(c.forwarded(0, "/shop", &ended).await && c.forwarded(1, "/shop", &ended).await);
    let epoch = |redis: &RedisServer| redis.connect().command(&["GET", "ogw:{rev}:epoch"]).unwrap();
    eventually("a replica has synced once", SETTLE, || async { c.replicas[0].state.eviction() == Eviction::Never })
        .await;
    let before = epoch(&redis);

    redis.kill();
    log_out(&c, 0, &ended).await;
    assert!(!c.forwarded(0, "/shop", &ended).await, "refused at once on the replica that made it");
    // Nothing can tell replica 1 while Redis is unreachable (revocation_fail = "open").
    assert!(c.forwarded(1, "/shop", &ended).await, "replica 1 learned it without Redis?");
    assert_eq!(ready(&c, 0).await.1["state"]["revocations_unshared"], 1);

    redis.restart();
    assert_eq!(epoch(&redis), before, "Redis kept its data: nothing needs writing back");
    eventually("replica 1 learns it once Redis answers", SETTLE, || async { !c.forwarded(1, "/shop", &ended).await })
        .await;
    holds(&c, &ended, &kept).await.unwrap();
    eventually("nothing waits to be shared", SETTLE, || async {
        ready(&c, 0).await.1["state"].get("revocations_unshared").is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_while_redis_is_unreachable_knows_no_revocation_until_it_answers() {
    let mut redis = RedisServer::start();
    let state = redis_state(&redis.url());
    let first = Cluster::start(1, &state, "").await;
    let (ended, kept) = (first.login(0).await, first.login(0).await);
    log_out(&first, 0, &ended).await;
    redis_counts(&redis, &["ZCARD", "ogw:{rev}:all"], 1, "the logout reached Redis").await;

    redis.kill();
    let during = Cluster::start(1, &state, "").await;
    assert!(during.forwarded(0, "/shop", &kept).await);
    assert!(during.forwarded(0, "/shop", &ended).await, "a replica started during the outage knew the logout?");
    holds(&first, &ended, &kept).await.unwrap();
    // Its /readyz says so (still ready: revocation_fail = "open" chose to serve).
    let unloaded = || async {
        let (status, body) = ready(&during, 0).await;
        status == 200 && body["state"]["warning"].as_str().is_some_and(|w| w.contains("not loaded the revocations"))
    };
    eventually("the newcomer's /readyz says it knows no revocation", SETTLE, unloaded).await;
    assert!(ready(&first, 0).await.1["state"].get("warning").is_none(), "the replica that loaded them warns");

    // Redis back, empty: the replica that knew writes it back, and the newcomer learns it.
    redis.restart();
    eventually("the newcomer learns the logout", SETTLE, || async { !during.forwarded(0, "/shop", &ended).await })
        .await;
    holds(&during, &ended, &kept).await.unwrap();
    eventually("the newcomer's warning goes", SETTLE, || async {
        ready(&during, 0).await.1["state"].get("warning").is_none()
    })
    .await;
}

/// Everything the process logged (the first test to ask starts the logger).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Capture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = Capture::default();
        openid_gateway::observe::logging::init_with(LogFormat::Text, "info", Some(Box::new(capture.clone())))
            .expect("the only logger of this test binary");
        capture
    })
    .0
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_the_log_name_a_redis_that_may_evict_revocations() {
    let logs = logs();
    let logged = |text: &str| String::from_utf8_lossy(&logs.lock().unwrap()).contains(text);
    let warning = |body: &serde_json::Value| body["state"]["warning"].as_str().unwrap_or_default().to_string();

    // Positive control: with Redis's default, noeviction, no warning.
    let safe = RedisServer::start();
    let c = Cluster::start(1, &redis_state(&safe.url()), "").await;
    eventually("the policy is read", SETTLE, || async { c.replicas[0].state.eviction() == Eviction::Never }).await;
    let (status, body) = ready(&c, 0).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], serde_json::json!({"backend": "redis", "status": "ok"}), "{body}");

    let lru = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let c = Cluster::start(1, &redis_state(&lru.url()), "").await;
    eventually("the policy is read", SETTLE, || async { c.replicas[0].state.eviction() != Eviction::Unchecked }).await;
    let (status, body) = ready(&c, 0).await;
    assert_eq!((status, &body["ready"]), (200, &serde_json::json!(true)), "a warning, not unready: {body}");
    let w = warning(&body);
    assert!(w.contains("allkeys-lru") && w.contains("any key") && w.contains("noeviction"), "{body}");
    eventually("the log warns of allkeys-lru", SETTLE, || async { logged("Redis maxmemory-policy is allkeys-lru") })
        .await;

    // CONFIG renamed away: the policy cannot be checked, and the warning says so.
    let hidden = RedisServer::start_with(&["--rename-command", "CONFIG", ""]);
    let c = Cluster::start(1, &redis_state(&hidden.url()), "").await;
    eventually("the policy is asked", SETTLE, || async { c.replicas[0].state.eviction() != Eviction::Unchecked }).await;
    let (status, body) = ready(&c, 0).await;
    assert_eq!(status, 200, "{body}");
    assert!(warning(&body).contains("could not be checked"), "{body}");
    assert_eq!(body["state"]["status"], "ok", "a refused CONFIG is no outage: {body}");
}
