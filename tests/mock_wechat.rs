//! The mock WeChat is at least as strict as WeChat (../shared/wechat-oauth.md §1-§3).

mod common;

use common::*;
use openid_gateway::wechat::authorize::{authorize_url, encode_component};

const GOOD_REDIRECT: &str = "http://gw.test/.gateway/callback";

fn client(ua: &str) -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(ua).build().unwrap()
}

async fn authorize(h: &Harness, query: &str, ua: &str) -> (u16, String, String) {
    let r = client(ua).get(h.mock_url(&format!("/connect/oauth2/authorize?{query}"))).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

fn query(appid: &str, redirect: &str, scope: &str, state: &str) -> String {
    let url = authorize_url("x", appid, redirect, scope, state);
    url.split_once('?').unwrap().1.split_once('#').unwrap().0.to_string()
}

async fn refused(h: &Harness, q: &str, expect: &str) {
    let (status, location, body) = authorize(h, q, WECHAT_UA).await;
    assert_eq!((status, location.as_str()), (200, ""), "{q} was accepted");
    assert!(body.contains(expect), "{q}: expected {expect:?} in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_is_strict() {
    let h = Harness::start().await;
    let ok = query(APPID, GOOD_REDIRECT, "snsapi_base", "abc123");
    let (status, location, _) = authorize(&h, &ok, WECHAT_UA).await;
    assert_eq!(status, 302);
    assert!(location.starts_with("http://gw.test/.gateway/callback?code=") && location.ends_with("&state=abc123"));

    // Outside WeChat nothing happens.
    let (status, location, body) = authorize(&h, &ok, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120").await;
    assert_eq!((status, location.as_str()), (200, ""));
    assert!(body.contains("请在微信客户端打开链接"));

    let enc = encode_component(GOOD_REDIRECT);
    refused(&h, &format!("redirect_uri={enc}&appid={APPID}&response_type=code&scope=snsapi_base&state=a"), "10005")
        .await;
    refused(&h, &format!("appid={APPID}&redirect_uri={enc}&scope=snsapi_base&response_type=code&state=a"), "10005")
        .await;
    refused(&h, &format!("appid={APPID}&redirect_uri={enc}&response_type=code&scope=snsapi_base"), "10005").await;
    refused(
        &h,
        &format!("appid={APPID}&redirect_uri={enc}&response_type=token&scope=snsapi_base&state=a"),
        "response_type",
    )
    .await;
    refused(&h, &query(APPID, GOOD_REDIRECT, "snsapi_login", "a"), "Scope").await;
    refused(&h, &query("wxNOTTHEAPP", GOOD_REDIRECT, "snsapi_base", "a"), "appid").await;
    let long = "a".repeat(129);
    refused(
        &h,
        &format!("appid={APPID}&redirect_uri={enc}&response_type=code&scope=snsapi_base&state={long}"),
        "state",
    )
    .await;
    refused(
        &h,
        &format!("appid={APPID}&redirect_uri={enc}&response_type=code&scope=snsapi_base&state=a%2Bb%3D"),
        "state",
    )
    .await;
    refused(&h, &format!("appid={APPID}&redirect_uri={enc}&response_type=code&scope=snsapi_base&state="), "10013")
        .await;
    // redirect_uri must be encoded as a whole, on the registered host, with no port or IP.
    refused(
        &h,
        &format!("appid={APPID}&redirect_uri=http://gw.test/cb&response_type=code&scope=snsapi_base&state=a"),
        "encoded",
    )
    .await;
    for bad in ["http://gw.test:8080/cb", "http://other.test/cb", "http://sub.gw.test/cb", "http://127.0.0.1/cb"] {
        refused(&h, &query(APPID, bad, "snsapi_base", "a"), "10003").await;
    }
    // Extra parameters may follow state.
    let (status, ..) = authorize(&h, &format!("{ok}&connect_redirect=1"), WECHAT_UA).await;
    assert_eq!(status, 302);
}

async fn exchange(h: &Harness, q: &str) -> (u16, String, serde_json::Value) {
    let r = client("curl").get(h.mock_url(&format!("/sns/oauth2/access_token?{q}"))).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    (status, ct, serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

async fn fresh_code(h: &Harness) -> String {
    let (_, location, _) = authorize(h, &query(APPID, GOOD_REDIRECT, "snsapi_base", "s"), WECHAT_UA).await;
    let u = url::Url::parse(&location).unwrap();
    u.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_is_single_use_expiring_and_errors_are_http_200_text_plain() {
    let h = Harness::start().await;
    let with = |code: &str| format!("appid={APPID}&secret={WECHAT_SECRET}&code={code}&grant_type=authorization_code");
    let code = fresh_code(&h).await;
    let (status, ct, ok) = exchange(&h, &with(&code)).await;
    assert_eq!((status, ct.as_str()), (200, "text/plain"));
    assert_eq!(ok["openid"], h.mock.openid_for("alice"));
    assert_eq!(ok["expires_in"], 7200);

    let errcode = |v: &serde_json::Value| v["errcode"].as_i64().unwrap();
    let (status, ct, used) = exchange(&h, &with(&code)).await;
    assert_eq!((status, ct.as_str(), errcode(&used)), (200, "text/plain", 40163));
    assert!(used["errmsg"].as_str().unwrap().contains(", rid: "));

    let late = fresh_code(&h).await;
    h.clock.advance(300);
    assert_eq!(errcode(&exchange(&h, &with(&late)).await.2), 40029);

    let code = fresh_code(&h).await;
    let cases = [
        (format!("secret={WECHAT_SECRET}&code={code}&grant_type=authorization_code"), 41002),
        (format!("appid={APPID}&code={code}&grant_type=authorization_code"), 41004),
        (format!("appid=wxOTHER&secret={WECHAT_SECRET}&code={code}&grant_type=authorization_code"), 40013),
        (format!("appid={APPID}&secret=wrong&code={code}&grant_type=authorization_code"), 40125),
        (format!("appid={APPID}&secret={WECHAT_SECRET}&grant_type=authorization_code"), 41008),
        (format!("appid={APPID}&secret={WECHAT_SECRET}&code={code}&grant_type=password"), 40002),
        (with("made-up-code"), 40029),
    ];
    for (q, expected) in cases {
        assert_eq!(errcode(&exchange(&h, &q).await.2), expected, "{q}");
    }
    // None of those consumed the code.
    assert!(exchange(&h, &with(&code)).await.2.get("openid").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_faults_and_stats_over_http() {
    let h = Harness::start().await;
    let c = client(WECHAT_UA);
    let bob: serde_json::Value = c.get(h.mock_url("/mock/openid?user=bob")).send().await.unwrap().json().await.unwrap();
    assert_eq!(bob["openid"], h.mock.openid_for("bob"));

    // A test picks the user with X-Mock-User.
    let r = c
        .get(h.mock_url(&format!("/connect/oauth2/authorize?{}", query(APPID, GOOD_REDIRECT, "snsapi_base", "s"))))
        .header("x-mock-user", "bob")
        .send()
        .await
        .unwrap();
    let code = url::Url::parse(r.headers()["location"].to_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    let r = c.post(h.mock_url("/mock/fault?kind=busy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let q = format!("appid={APPID}&secret={WECHAT_SECRET}&code={code}&grant_type=authorization_code");
    assert_eq!(exchange(&h, &q).await.2["errcode"], -1);
    assert_eq!(exchange(&h, &q).await.2["openid"], h.mock.openid_for("bob"));

    let stats: serde_json::Value = c.get(h.mock_url("/mock/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats, serde_json::json!({"authorizes": 1, "exchanges": 2, "successes": 1}));
}

/// `openid-gateway mock-wechat` as a developer runs it: on port 0 it prints where it listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_wechat_command() {
    use std::io::{BufRead, BufReader};
    let mut child = common::process::KillOnDrop(
        common::process::bin()
            .args(["mock-wechat", "--listen", "127.0.0.1:0", "--appid", APPID, "--domain", "h5.test"])
            .env("MOCK_WECHAT_SECRET", "cli-secret")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("mock WeChat on ").unwrap().to_string();
    let c = client(WECHAT_UA);
    let ask =
        |redirect: &str| format!("{base}/connect/oauth2/authorize?{}", query(APPID, redirect, "snsapi_base", "s1"));
    let ok = c.get(ask("https://h5.test/.gateway/callback")).send().await.unwrap();
    assert_eq!(ok.status(), 302);
    let refused = c.get(ask("https://h5.test:8443/.gateway/callback")).send().await.unwrap();
    assert!(refused.text().await.unwrap().contains("10003"), "ports are refused by default");
    let q = "appid=wx1234567890abcdef&secret=wrong&code=x&grant_type=authorization_code";
    let e: serde_json::Value =
        c.get(format!("{base}/sns/oauth2/access_token?{q}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(e["errcode"], 40125);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}
