//! Revocations that hold: a logout on one replica keeps holding on every replica while Redis
//! is unreachable (each keeps a copy in step from Redis), and after Redis restarts empty (a
//! replica that knew them writes them back, so a new replica learns them too); a Redis that
//! may evict them is named in `/readyz`.

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{RedisServer, Reply};
use common::replicas::{redis_state, url, Cluster};
use openid_gateway::state::Eviction;

/// Polls `check` until it holds, 10 s at most.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: never");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_holds_on_every_replica_through_an_outage_and_an_empty_restart() {
    let mut redis = RedisServer::start();
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    let (ended, kept) = (c.login(0).await, c.login(1).await);
    assert!(c.forwarded(1, "/shop", &ended).await, "a session made on one replica works on the other");

    // Logged out on replica 0; replica 1's copy learns it from Redis.
    let out = c.browser(0).get_with(&url("/.gateway/logout"), &[("cookie", &ended)]).await;
    assert_eq!(out.status, 302);
    eventually("replica 1's copy holds replica 0's revocation", || async {
        c.replicas[1].state.revocations_known() >= 1
    })
    .await;

    // Redis goes away: the copy keeps the revocation on replica 1, past any cache.
    redis.kill();
    for replica in [1, 0] {
        assert!(!c.forwarded(replica, "/shop", &ended).await, "the logged-out session came back on replica {replica}");
        // Positive control: an unrevoked session is still accepted (revocation_fail = "open").
        assert!(c.forwarded(replica, "/shop", &kept).await, "replica {replica} refuses everyone");
    }
    c.clock.advance(2);
    assert!(!c.forwarded(1, "/shop", &ended).await, "a second later, still refused");

    // Redis comes back empty: the replicas write back what they know.
    redis.restart();
    let mut conn = redis.connect();
    let all = "ogw:{rev}:all";
    let restored = || {
        let n = conn.command(&["ZCARD", all]);
        matches!(n, Ok(Reply::Int(n)) if n >= 1)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut restored = restored;
    while !restored() {
        assert!(Instant::now() < deadline, "no replica wrote the revocations back to the emptied Redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A replica started now, which never saw the logout, learns it from Redis.
    let later = Cluster::start(1, &redis_state(&redis.url()), "").await;
    eventually("a new replica loads the revocations", || async { later.replicas[0].state.revocations_known() >= 1 })
        .await;
    assert!(!later.forwarded(0, "/shop", &ended).await, "a new replica accepted the logged-out session");
    assert!(later.forwarded(0, "/shop", &kept).await, "positive control: the kept session works there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_redis_that_may_evict_revocations() {
    let redis = RedisServer::start();
    // Positive control: with Redis's default, noeviction, no warning.
    let safe = Cluster::start(1, &redis_state(&redis.url()), "").await;
    let ready = |admin: String| async move {
        reqwest::get(format!("{admin}/readyz")).await.unwrap().json::<serde_json::Value>().await.unwrap()
    };
    eventually("the policy is read", || async { safe.replicas[0].state.eviction() == Eviction::Never }).await;
    let body = ready(safe.replicas[0].admin.clone()).await;
    assert_eq!(body["state"], serde_json::json!({"backend": "redis", "status": "ok"}), "{body}");

    redis.connect().ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let evicting = Cluster::start(1, &redis_state(&redis.url()), "").await;
    let admin = evicting.replicas[0].admin.clone();
    eventually("readyz warns of allkeys-lru", || {
        let admin = admin.clone();
        async move { ready(admin).await["state"]["warning"].as_str().is_some_and(|w| w.contains("allkeys-lru")) }
    })
    .await;
    let body = ready(admin).await;
    assert_eq!(body["ready"], true, "a warning, not unready: {body}");
}
