//! Several replicas on one real Redis (Debian's `redis-server`, started here) behave as one
//! gateway: a double callback split across two replicas is exchanged once and logs both copies
//! in; logout and revocation hold on every replica; rate limits hold for the sum; killing Redis
//! degrades but never breaks logins, and shared behaviour resumes when it returns; a Redis
//! Cluster does the same across slots.

mod common;

use std::time::Duration;

use common::redis_server::{RedisCluster, RedisServer};
use common::replicas::{eventually, redis_state, url, Cluster};
use common::*;
use openid_gateway::shared::{digest, Eviction};

/// How long a replica may take to learn what another did.
const SETTLE: Duration = Duration::from_secs(5);

/// The callback of a login started on `replica` 0, presented on replicas 0 and 1 at once, with
/// the same login cookie, as WeChat's double callback does.
async fn split_double_callback(c: &Cluster) -> (u16, u16, Vec<String>) {
    let b = c.browser(0);
    let callback = b.callback_url(&url("/shop")).await;
    let login = format!("ogw_login={}", cookie_value(&b.cookies("/.gateway/callback"), "ogw_login").unwrap());
    let (one, other) = (c.browser(0), c.browser(1));
    let headers = [("cookie", login.as_str())];
    let (a, z) = tokio::join!(one.get_with(&callback, &headers), other.get_with(&callback, &headers));
    let sessions = [&a, &z]
        .iter()
        .flat_map(|p| p.set_cookies())
        .filter(|c| c.starts_with("ogw_session=") && !c.starts_with("ogw_session=;"))
        .collect();
    (a.status, z.status, sessions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_callback_split_across_replicas_is_exchanged_once_and_logs_both_in() {
    let redis = RedisServer::start();
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    for round in 0..3 {
        let before = c.exchanges();
        let (a, z, sessions) = split_double_callback(&c).await;
        assert_eq!((a, z), (302, 302), "round {round}: both copies log the browser in");
        assert_eq!(sessions.len(), 2, "round {round}: each copy sets a session");
        assert_eq!(c.exchanges() - before, 1, "round {round}: exactly one exchange at WeChat");
    }
    // Without shared state each replica exchanges its own copy: the second one fails at WeChat.
    let alone = Cluster::start(2, "", "").await;
    let (a, z, _) = split_double_callback(&alone).await;
    assert_eq!(alone.exchanges(), 2);
    assert!(a != 302 || z != 302, "the memory backend cannot share an exchange ({a}, {z})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_revocation_hold_on_every_replica() {
    let redis = RedisServer::start();
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    let kept = c.login(0).await;
    assert!(c.forwarded(1, "/shop", &kept).await, "a session made on one replica works on the other");

    // Logout on replica 0: a copy of the cookie made before is refused on replica 1.
    let b = c.browser(0);
    assert_eq!(b.get_with(&url("/.gateway/logout"), &[("cookie", &kept)]).await.status, 302);
    eventually("the logged-out cookie is refused on replica 1", SETTLE, || async {
        !c.forwarded(1, "/shop", &kept).await
    })
    .await;
    assert!(!c.forwarded(0, "/shop", &kept).await);

    // Revoke every session of the user from replica 0's admin listener.
    let (s1, s2) = (c.login(0).await, c.login(1).await);
    assert!(c.forwarded(1, "/shop", &s1).await && c.forwarded(0, "/shop", &s2).await);
    let openid = c.mock.openid_for("alice");
    let revoke = format!("{}/revoke?openid={openid}", c.replicas[0].admin);
    let res = reqwest::Client::new().post(&revoke).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    for (replica, cookie) in [(0, &s1), (1, &s1), (0, &s2), (1, &s2)] {
        let refused = || async { !c.forwarded(replica, "/shop", cookie).await };
        eventually(&format!("the revoked session is refused on replica {replica}"), SETTLE, refused).await;
    }
    // A login after the revocation stands (revocations cover sessions issued up to their second).
    c.clock.advance(1);
    let fresh = c.login(1).await;
    assert!(c.forwarded(0, "/shop", &fresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_for_the_sum_over_replicas() {
    let redis = RedisServer::start();
    let limits = "[rate_limit]\nlogin_per_minute = 2\nburst = 4\n";
    let c = Cluster::start(2, &redis_state(&redis.url()), limits).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        // A new browser each time: the per-browser loop breaker never counts.
        statuses.push(c.browser(i % 2).get(&url("/.gateway/login?return=/shop")).await.status);
    }
    assert_eq!(statuses, [302, 302, 302, 302, 429, 429], "a burst of 4 for the address, whichever replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_degrades_logins_but_never_breaks_them_and_sharing_resumes() {
    let mut redis = RedisServer::start();
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    let session = c.login(0).await;
    let ready = |i: usize| {
        let url = format!("{}/readyz", c.replicas[i].admin);
        async move {
            let res = reqwest::get(&url).await.unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(ready(0).await.1["state"]["status"], "ok");
    // Each replica has loaded the revocations (else its /readyz would say it knows none).
    for replica in &c.replicas {
        eventually("the first sync", SETTLE, || async { replica.state.eviction() == Eviction::Never }).await;
    }

    redis.kill();
    for replica in 0..2 {
        c.login(replica).await;
        assert!(c.forwarded(replica, "/shop", &session).await, "an existing session is refused without Redis");
        let (status, body) = ready(replica).await;
        assert_eq!(status, 200, "degraded is not unready: {body}");
        assert_eq!(body["state"], serde_json::json!({"backend": "redis", "status": "degraded"}));
    }
    let metrics = reqwest::get(format!("{}/metrics", c.replicas[0].admin)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ogw_state_degraded 1"), "{metrics}");
    // A revocation Redis did not take says so: it holds on this replica only.
    let revoke = format!("{}/revoke?openid=o-nobody", c.replicas[0].admin);
    assert_eq!(reqwest::Client::new().post(&revoke).send().await.unwrap().status(), 503);

    redis.restart();
    // Each replica tries Redis again at most once a second, on its own traffic.
    let mut back = false;
    for _ in 0..20 {
        c.login(0).await;
        c.login(1).await;
        if ready(0).await.1["state"]["status"] == "ok" && ready(1).await.1["state"]["status"] == "ok" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "the replicas did not return to Redis by themselves");
    let before = c.exchanges();
    let (a, z, _) = split_double_callback(&c).await;
    assert_eq!((a, z, c.exchanges() - before), (302, 302, 1), "shared exchanges resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_shares_claims_and_limits_across_slots() {
    let cluster = RedisCluster::start();
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let state = format!("[state]\nbackend = \"redis\"\nurls = [{}]\ncluster = true\n", urls.join(", "));
    let c = Cluster::start(2, &state, "[rate_limit]\nlogin_per_minute = 2\nburst = 30\n").await;
    // Many codes: their keys fall on every node's slots.
    for round in 0..6 {
        let before = c.exchanges();
        let (a, z, sessions) = split_double_callback(&c).await;
        assert_eq!((a, z, sessions.len()), (302, 302, 2), "round {round}");
        assert_eq!(c.exchanges() - before, 1, "round {round}: one exchange");
    }
    let cookie = c.login(1).await;
    assert!(c.forwarded(0, "/shop", &cookie).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_can_fail_closed_while_redis_is_unreachable() {
    let mut redis = RedisServer::start();
    let state = format!("{}revocation_fail = \"closed\"\n", redis_state(&redis.url()));
    let c = Cluster::start(1, &state, "").await;
    let session = c.login(0).await;
    assert!(c.forwarded(0, "/shop", &session).await);
    redis.kill();
    // Once its revocation_cache has passed.
    let refused = || async { c.browser(0).get_with(&url("/shop"), &[("cookie", &session)]).await.status == 503 };
    eventually("the session is refused while Redis is unreachable", SETTLE, refused).await;
    let page = c.browser(0).get_with(&url("/shop"), &[("cookie", &session)]).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("暂时无法确认登录状态"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_copied_to_another_code_in_redis_logs_no_one_in() {
    let redis = RedisServer::start();
    let c = Cluster::start(2, &redis_state(&redis.url()), "").await;
    // A real login publishes a sealed outcome for its code.
    let b = c.browser(0);
    let callback = b.callback_url(&url("/shop")).await;
    let code = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    assert_eq!(b.get(&callback).await.status, 302);
    // Published once this replica's own waiters have it: after the answer, maybe.
    let mut conn = redis.connect();
    let key = format!("ogw:{{c:{}}}:result", digest(&[APPID, &code]));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let blob = loop {
        match conn.command(&["GET", &key]).unwrap() {
            common::redis_server::Reply::Bulk(Some(blob)) => break String::from_utf8(blob).unwrap(),
            other => assert!(std::time::Instant::now() < deadline, "no published outcome: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // Someone who can write to Redis plants it for a made-up code, claimed for their own login.
    let mallory = c.browser(1);
    let theirs = mallory.callback_url(&url("/shop")).await;
    let state = url::Url::parse(&theirs).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let made_up = "made-up-code-0001";
    let key = digest(&[APPID, made_up]);
    conn.ok(&["SET", &format!("ogw:{{c:{key}}}:claim"), &state]);
    conn.ok(&["SET", &format!("ogw:{{c:{key}}}:result"), &blob]);
    let forged = mallory.get(&url(&format!("/.gateway/callback?code={made_up}&state={state}"))).await;
    assert!(
        !forged.set_cookies().iter().any(|c| c.starts_with("ogw_session=") && !c.starts_with("ogw_session=;")),
        "a planted outcome logged someone in: {} {:?}",
        forged.status,
        forged.set_cookies()
    );
}

/// App hosts on replicas of their own, the login host on another, one Redis: a ticket taken on
/// one app-host replica is refused on the other, even with a copy of its nonce cookie, and a
/// logout everywhere on one ends the sessions another replica handed out from the same login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_host_replicas_share_spent_tickets_and_global_logout() {
    let redis = RedisServer::start();
    let hosts = "[[app_hosts]]\nhost = \"mall.test\"\naudience = \"mall\"\n\n\
                 [[app_hosts]]\nhost = \"members.test\"\naudience = \"members\"\n";
    let c = Cluster::start(3, &redis_state(&redis.url()), hosts).await;
    let [login, one, two] = [0, 1, 2].map(|i| c.replicas[i].addr);
    let b = browser_on(&[(PUBLIC_HOST, login), ("mall.test", one), ("members.test", two)]);
    let pages = b.walk_until("http://mall.test/", |u| u.contains("/.gateway/ticket?")).await;
    let ticket = pages.last().unwrap().next_url().unwrap();
    let nonce = cookie_value(&b.cookies_at("http://mall.test/.gateway/ticket"), "ogw_handoff").unwrap();
    assert_eq!(b.get(&ticket).await.status, 302, "taken on replica 1");
    let thief = browser_on(&[("mall.test", two)]);
    thief.set_cookie_at("http://mall.test/.gateway/", &format!("ogw_handoff={nonce}; Path=/.gateway"));
    let replay = thief.get(&ticket).await;
    assert_eq!(replay.status, 400, "replayed on replica 2: {}", replay.body);
    assert!(replay.body.contains("已经使用过"));

    // members.test (replica 2) logs in from the same login host session.
    assert_eq!(b.walk("http://members.test/").await.last().unwrap().status, 200);
    let members = cookie_value(&b.cookies_at("http://members.test/"), "ogw_session").unwrap();
    let copy = browser_on(&[("members.test", two)]);
    copy.set_cookie_at("http://members.test/", &format!("ogw_session={members}"));
    let before = c.upstream.seen().len();
    assert_eq!(copy.get("http://members.test/a").await.status, 200);
    assert_eq!(c.upstream.seen().len(), before + 1);
    // Logout everywhere, on replica 1: replica 2 refuses members.test's session after the cache.
    let out = b.get("http://mall.test/.gateway/logout?everywhere=1").await;
    assert!(out.location().starts_with("http://gw.test/.gateway/logout?return="), "{}", out.location());
    let refused = || async {
        let before = c.upstream.seen().len();
        copy.get("http://members.test/b").await;
        c.upstream.seen().len() == before
    };
    eventually("replica 2 refuses a session of the ended login", SETTLE, refused).await;
    assert_eq!(c.exchanges(), 1);
}
