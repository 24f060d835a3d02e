//! The mock WeChat is at least as strict as WeChat (../shared/wechat-oauth.md §1-§3, §7).

mod common;

use common::*;
use openid_gateway::dev::mock_wechat::jssdk_signature;
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
    assert_eq!((&stats["authorizes"], &stats["exchanges"], &stats["successes"]), (&1.into(), &2.into(), &1.into()));
    assert_eq!(stats["tokens_issued"], 0);
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

async fn api(r: reqwest::RequestBuilder) -> serde_json::Value {
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

/// The account's credentials over HTTP: a stable token, its jsapi ticket, a page signed with
/// it checked as `wx.config` would be, and the test hooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stable_token_ticket_and_jssdk_check_over_http() {
    let h = Harness::start().await;
    let c = client("curl");
    let ask = serde_json::json!({
        "grant_type": "client_credential", "appid": APPID, "secret": WECHAT_SECRET, "force_refresh": false,
    })
    .to_string();
    let stable = || c.post(h.mock_url("/cgi-bin/stable_token")).body(ask.clone());
    let first = api(stable()).await;
    let token = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(first["expires_in"], 7200);
    assert_eq!(api(stable()).await["access_token"], token.as_str(), "callers share the stable token");
    let not_json = api(c.post(h.mock_url("/cgi-bin/stable_token")).body("appid=x")).await;
    assert_eq!(not_json["errcode"], 47001);

    let getticket = |t: &str| c.get(h.mock_url(&format!("/cgi-bin/ticket/getticket?access_token={t}&type=jsapi")));
    let t = api(getticket(&token)).await;
    assert_eq!((&t["errcode"], &t["errmsg"], &t["expires_in"]), (&0.into(), &"ok".into(), &7200.into()));
    let ticket = t["ticket"].as_str().unwrap().to_string();

    let page = "http://gw.test/shop/item?id=7";
    let check = |sig: &str| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("appId", APPID),
                ("timestamp", "1700000000"),
                ("nonceStr", "n0nce"),
                ("signature", sig),
                ("url", page),
            ])
            .finish();
        c.get(h.mock_url(&format!("/mock/jssdk/check?{q}"))).send()
    };
    let good = jssdk_signature(&ticket, "n0nce", "1700000000", page);
    let r = check(&good).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["errMsg"], "config:ok");
    let bad = jssdk_signature(&ticket, "n0nce", "1700000001", page);
    let r: serde_json::Value = check(&bad).await.unwrap().json().await.unwrap();
    assert_eq!(r["errMsg"], "config:invalid signature");

    // The hooks: the allow-list, invalidation, a queued fault.
    assert_eq!(c.post(h.mock_url("/mock/allow-ips?ips=10.9.9.9")).send().await.unwrap().status(), 200);
    assert_eq!(api(stable()).await["errcode"], 40164);
    c.post(h.mock_url("/mock/allow-ips?ips=127.0.0.1,::1")).send().await.unwrap();
    assert_eq!(api(stable()).await["access_token"], token.as_str());
    c.post(h.mock_url("/mock/invalidate-tokens")).send().await.unwrap();
    assert_eq!(api(getticket(&token)).await["errcode"], 40001);
    let r: serde_json::Value = check(&good).await.unwrap().json().await.unwrap();
    assert_eq!(r["errMsg"], "config:invalid signature", "the ticket died with its token");
    c.post(h.mock_url("/mock/credential-fault?errcode=-1")).send().await.unwrap();
    assert_eq!(api(stable()).await["errcode"], -1);
    let renewed = api(stable()).await["access_token"].as_str().unwrap().to_string();
    assert!(renewed != token && h.mock.token_valid(&renewed));

    let js = c.get(h.mock_url("/open/js/jweixin-1.6.0.js")).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "application/javascript");
    assert!(js.text().await.unwrap().contains(&format!("\"http://{}\"", h.mock_addr)));

    let stats: serde_json::Value = c.get(h.mock_url("/mock/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!((&stats["stable_calls"], &stats["tokens_issued"]), (&7.into(), &2.into()));
    assert_eq!((&stats["ticket_calls"], &stats["tickets_issued"]), (&2.into(), &1.into()));
    assert_eq!((&stats["jssdk_checks"], &stats["jssdk_ok"]), (&3.into(), &1.into()));
}
