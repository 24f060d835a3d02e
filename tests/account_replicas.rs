//! One account, many replicas, one real Redis (Debian's `redis-server`, started here): three
//! gateway processes under concurrent demand fetch exactly one token and one ticket; a token
//! WeChat stopped accepting, reported to all three at once, is refreshed exactly once
//! fleet-wide; neither ever reaches a log line. Replicas in this process, on one clock, do the
//! same at every expiry.

mod common;

use std::time::Duration;

use common::process::{ConfigDir, Process};
use common::redis_server::RedisServer;
use common::replicas::{eventually, redis_state, Cluster};
use common::*;
use openid_gateway::util::clock::{Clock, ManualClock, SystemClock};
use serde_json::Value;

const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

fn url_of(page: &str) -> String {
    let page: String = url::form_urlencoded::byte_serialize(page.as_bytes()).collect();
    format!("http://{PUBLIC_HOST}/.gateway/jssdk/config?url={page}")
}

/// Asks for `wx.config` of `page` with `client`, as jssdk.js does.
async fn ask(client: reqwest::Client, page: String) -> (u16, Value) {
    let res = client.get(url_of(&page)).header("sec-fetch-site", "same-origin").send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_fetch_one_token_and_one_ticket_and_heal_a_bad_token_once() {
    let redis = RedisServer::start();
    let clock = ManualClock::new(SystemClock.now());
    let mock = strict_mock(APPID, WECHAT_SECRET, PUBLIC_HOST, false, &clock);
    let mock_srv = serve_mock(&mock);
    let m = mock_srv.url();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\npublic_url = \"http://{PUBLIC_HOST}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = {{ file = \"admin.token\" }}\n\
         [log]\nlevel = \"debug\"\n\
         [wechat]\nappid = \"{APPID}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
         authorize_url = \"{m}/connect/oauth2/authorize\"\napi_base = \"{m}\"\n\
         [session]\nkeys = [{{ file = \"session.key\" }}]\n\
         [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"hs256.key\" }}\n\
         {}\n[[routes]]\npath = \"/\"\nupstream = \"http://127.0.0.1:9\"\naudience = \"shop\"\n",
        redis_state(&redis.url())
    );
    let dir = ConfigDir::new(&toml);
    std::fs::write(dir.path().join("admin.token"), ADMIN_TOKEN).unwrap();
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Process::start(&dir, name, &[]).await);
    }
    let clients: Vec<reqwest::Client> = replicas
        .iter()
        .map(|p| reqwest::Client::builder().resolve(PUBLIC_HOST, p.addr("listen")).build().unwrap())
        .collect();

    // Eight pages at once on each replica.
    let asks = (0..24).map(|i| ask(clients[i % 3].clone(), format!("http://{PUBLIC_HOST}/page/{i}?q=1"))).collect();
    let answers = join_all(asks).await;
    for (i, (status, c)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "{c}");
        assert_eq!(jssdk_verdict(&m, c, &format!("http://{PUBLIC_HOST}/page/{i}?q=1")).await, "config:ok");
    }
    let s = mock.stats();
    assert_eq!((s.stable_calls, s.tokens_issued, s.ticket_calls, s.tickets_issued), (1, 1, 1, 1), "{s:?}");

    // Every replica hands backends the same token.
    let admin = |p: &Process, path: &str| format!("http://{}{path}", p.addr("admin.listen"));
    let mut tokens = Vec::new();
    for p in &replicas {
        let res = reqwest::Client::new().get(admin(p, "/wechat/access_token")).bearer_auth(ADMIN_TOKEN).send().await;
        let body: Value = res.unwrap().json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    assert!(tokens.iter().all(|t| t == &tokens[0]) && mock.token_valid(&tokens[0]));
    let stale = tokens[0].clone();

    // WeChat stops accepting it; backends behind one replica report it, at once.
    mock.invalidate_tokens();
    let reports = (0..9)
        .map(|_| {
            let (url, stale) = (admin(&replicas[0], "/wechat/access_token/refresh"), stale.clone());
            async move {
                let body = serde_json::json!({ "access_token": stale }).to_string();
                let res = reqwest::Client::new().post(url).bearer_auth(ADMIN_TOKEN).body(body).send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        })
        .collect();
    let answers = join_all(reports).await;
    let new = answers[0].1["access_token"].as_str().unwrap().to_string();
    for (status, body) in &answers {
        assert_eq!((*status, body["access_token"].as_str()), (200, Some(new.as_str())), "{body}");
    }
    assert_eq!(answers.iter().filter(|(_, b)| b["refreshed"] == true).count(), 1, "{answers:?}");
    assert!(new != stale && mock.token_valid(&new));
    let s = mock.stats();
    assert_eq!((s.stable_calls, s.tokens_issued), (2, 2), "exactly one refresh fleet-wide: {s:?}");

    // The other replicas follow within their look at Redis (every 5 s), and the ticket follows
    // its token, once for the fleet.
    for (r, client) in clients.iter().enumerate() {
        let page = format!("http://{PUBLIC_HOST}/after/{r}");
        eventually(&format!("replica {r} signs with the new ticket"), Duration::from_secs(15), || async {
            let (status, c) = ask(client.clone(), page.clone()).await;
            status == 200 && jssdk_verdict(&m, &c, &page).await == "config:ok"
        })
        .await;
    }
    let s = mock.stats();
    assert_eq!((s.ticket_calls, s.tickets_issued), (2, 2), "{s:?}");
    let token_of = |p: &Process| {
        let url = admin(p, "/wechat/access_token");
        async move {
            let res = reqwest::Client::new().get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
            res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
        }
    };
    for p in &replicas {
        assert_eq!(token_of(p).await, new, "every replica hands backends the new token");
    }

    // Neither the tokens nor the tickets reach a log line, at debug level.
    let ticket = |token: &str| {
        let url = format!("{m}/cgi-bin/ticket/getticket?access_token={token}&type=jsapi");
        async move {
            reqwest::get(url).await.unwrap().json::<Value>().await.unwrap()["ticket"].as_str().unwrap().to_string()
        }
    };
    let secrets = [stale.clone(), new.clone(), ticket(&new).await];
    let logs: Vec<String> = replicas.iter().map(Process::log).collect();
    let fetched: usize = logs.iter().map(|l| l.matches("new access_token from WeChat").count()).sum();
    assert_eq!(fetched, 2, "one fetch, one refresh, said where they happened: {logs:?}");
    for log in &logs {
        for s in &secrets {
            assert!(!log.contains(s.as_str()), "a credential in the log: {log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_clock_fetch_once_per_expiry() {
    let redis = RedisServer::start();
    let c = Cluster::start(3, &redis_state(&redis.url()), "").await;
    let clients: Vec<reqwest::Client> =
        c.replicas.iter().map(|r| reqwest::Client::builder().resolve(PUBLIC_HOST, r.addr).build().unwrap()).collect();
    for round in 0..3u64 {
        // Past the refresh time of what is held (three minutes before it ends), not past its end.
        if round > 0 {
            c.clock.advance(7200 - 100);
        }
        let asks = (0..15).map(|i| ask(clients[i % 3].clone(), format!("http://{PUBLIC_HOST}/r{round}/{i}"))).collect();
        for (status, body) in join_all(asks).await {
            assert_eq!(status, 200, "round {round}: {body}");
        }
        let s = c.mock.stats();
        let expected = (round + 1, round + 1, round + 1, round + 1);
        let seen = (s.stable_calls, s.tokens_issued, s.ticket_calls, s.tickets_issued);
        assert_eq!(seen, expected, "round {round}: one call of each per expiry, fleet-wide: {s:?}");
        // A page signed now verifies.
        let page = format!("http://{PUBLIC_HOST}/check/{round}");
        let (_, cfg) = ask(clients[0].clone(), page.clone()).await;
        assert_eq!(jssdk_verdict(&c.mock_url, &cfg, &page).await, "config:ok", "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_of_a_wecom_app_fetch_one_corp_token() {
    let redis = RedisServer::start();
    let clock = ManualClock::new(SystemClock.now());
    let mut cfg = strict_mock_config(APPID, WECHAT_SECRET, PUBLIC_HOST, false);
    cfg.corp = Some(mock_corp());
    let mock = openid_gateway::dev::mock_wechat::MockWechat::with_clock(cfg, std::sync::Arc::new(clock.clone()));
    let mock_srv = serve_mock(&mock);
    let upstream = Recorder::default();
    let up_srv = openid_gateway::serve::server::start_on(
        pingora::services::listening::Service::new("upstream".into(), upstream.clone()),
        listener(),
    )
    .unwrap();
    let m = mock_srv.url();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\npublic_url = \"http://{PUBLIC_HOST}\"\nprovider = \"wecom\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"debug\"\n\
         [wecom]\ncorpid = \"{CORPID}\"\nagentid = {AGENTID}\nsecret = {{ file = \"corp.secret\" }}\n\
         authorize_url = \"{m}/connect/oauth2/authorize\"\napi_base = \"{m}\"\n\
         [session]\nkeys = [{{ file = \"session.key\" }}]\n\
         [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"hs256.key\" }}\n\
         {}\n[[routes]]\npath = \"/\"\nupstream = \"{}\"\naudience = \"tools\"\nkeep_fragment = false\n",
        redis_state(&redis.url()),
        up_srv.url()
    );
    let dir = ConfigDir::new(&toml);
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Process::start(&dir, name, &[]).await);
    }
    // Three members at once on each replica, each in WeCom's browser.
    let logins = (0..9)
        .map(|i| {
            let b = browser(WECOM_UA, PUBLIC_HOST, replicas[i % 3].addr("listen"));
            let login_as = format!("{m}/mock/login-as?user=alice");
            async move {
                b.get(&login_as).await;
                b.walk(&format!("http://{PUBLIC_HOST}/tool/{i}")).await.pop().unwrap().status
            }
        })
        .collect();
    assert!(join_all(logins).await.iter().all(|s| *s == 200));
    let s = mock.stats();
    assert_eq!((s.corp_token_calls, s.corp_tokens_issued, s.corp_userinfo_calls), (1, 1, 9), "{s:?}");
    for seen in upstream.seen() {
        let token = seen.headers["x-openid-token"].to_str().unwrap().to_string();
        assert_eq!((claims(&token).sub.as_str(), claims(&token).member), ("alice", Some(true)));
    }

    // The corp token and the secret never reach a log line, at debug level.
    let token = reqwest::get(format!("{m}/cgi-bin/gettoken?corpid={CORPID}&corpsecret={CORP_SECRET}"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(mock.corp_token_valid(&token));
    let logs: Vec<String> = replicas.iter().map(Process::log).collect();
    let fetched: usize = logs.iter().map(|l| l.matches("new access_token from WeCom").count()).sum();
    assert_eq!(fetched, 1, "{logs:?}");
    for log in &logs {
        assert!(!log.contains(&token) && !log.contains(CORP_SECRET), "a credential in the log: {log}");
    }
}
