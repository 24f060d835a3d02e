//! Nothing secret in any log line, at the most verbose level: a whole login (double
//! callback, userinfo, logout) runs with the process's real logger at `trace` in JSON,
//! pingora's own lines included, and every captured line is searched for each secret the flow
//! used. Every line is one JSON object; access-log events name users only by a keyed hash.

mod common;

use common::*;
use openid_gateway::config::LogFormat;

fn cookie_values(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(Page::set_cookies)
        .filter_map(|c| c.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_string()))
        .filter(|v| !v.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_at_trace_level_logs_no_secret() {
    let capture = Capture::default();
    openid_gateway::observe::logging::init_with(LogFormat::Json, "trace", Some(Box::new(capture.clone())))
        .expect("the only logger of this test");
    let h = Harness::with(Setup {
        routes: "[[app_hosts]]\nhost = \"mall.test\"\naudience = \"mall\"\n\n\
                 [[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n\n\
                 [[routes]]\npath = \"/vip\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\nscope = \"snsapi_userinfo\"\n"
            .into(),
        ..Setup::default()
    })
    .await;
    let b = h.browser();

    let callback = b.callback_url(&h.url("/shop?item=1")).await;
    let code = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let state = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let login_cookie = cookie_value(&b.cookies("/.gateway/callback"), "ogw_login").expect("login cookie");
    // WeChat's double callback: the same code twice, the second with extra parameters.
    let second = format!("{callback}&uin=MTIz&key=abcdef0123&pass_ticket=pt0123456789");
    let (first, again) = tokio::join!(b.get(&callback), b.get(&second));
    assert_eq!((first.status, again.status), (302, 302));
    let landing = b.get(&h.url("/shop?item=1")).await;
    assert_eq!(landing.status, 200);
    let token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let openid = h.mock.openid_for("alice");

    // Upgrade to userinfo (another code, exchanged with the access token used for /sns/userinfo).
    let vip = b.walk(&h.url("/vip")).await;
    assert_eq!(vip.last().unwrap().status, 200);
    let vip_token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let logout = b.get(&h.url("/.gateway/logout")).await;
    assert_eq!(logout.status, 302);

    // An app host logging in through the login host: its request, ticket and cookies.
    let app = h.many_domains_browser();
    let handoff = app.walk("http://mall.test/cart").await;
    assert_eq!(handoff.last().unwrap().status, 200);
    let sealed_in_urls: Vec<String> = handoff
        .iter()
        .filter_map(|p| p.next_url())
        .filter_map(|u| {
            u.split_once("handoff=").or(u.split_once("ticket=")).map(|(_, v)| v.trim_end_matches('#').to_string())
        })
        .collect();
    assert_eq!(sealed_in_urls.len(), 2, "a hand-off request and a ticket");

    let mut secrets: Vec<(String, String)> = vec![
        ("code".into(), code),
        ("state".into(), state),
        ("login cookie".into(), login_cookie),
        ("token".into(), token),
        ("userinfo token".into(), vip_token),
        ("AppSecret".into(), WECHAT_SECRET.into()),
        ("session key".into(), SESSION_KEY.into()),
        ("HS256 key".into(), HS256_KEY.into()),
        ("pass_ticket".into(), "pt0123456789".into()),
    ];
    for (i, v) in sealed_in_urls.into_iter().enumerate() {
        secrets.push((format!("hand-off value {i}"), v));
    }
    let cookies = cookie_values(&[first, again, landing]).into_iter().chain(cookie_values(&vip));
    for (i, v) in cookies.chain(cookie_values(&handoff)).enumerate() {
        secrets.push((format!("cookie value {i}"), v));
    }
    // An access line is written once its response is out: wait for the last request's.
    let last_landing = |text: &str| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| e["target"] == "access" && e["path"] == "/cart" && e["status"] == 200)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !last_landing(&String::from_utf8_lossy(&capture.0.lock().unwrap())) {
        assert!(std::time::Instant::now() < deadline, "the last request's access line never came");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();

    // Positive control: the capture holds pingora's own trace lines and the gateway's (those of
    // pingora's that print request or response bytes are not written: tests/log_bodies.rs).
    assert!(logged.lines().count() > 50, "too little was captured:\n{logged}");
    let events: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}")))
        .collect();
    assert!(events.iter().all(serde_json::Value::is_object));
    assert!(
        events.iter().any(|e| e["level"] == "TRACE" && e["target"].as_str().unwrap_or("").starts_with("pingora")),
        "no pingora trace lines captured"
    );
    let access: Vec<&serde_json::Value> = events.iter().filter(|e| e["target"] == "access").collect();
    assert!(access.len() >= 4, "access-log events: {access:?}");
    let landed = access
        .iter()
        .find(|e| e["path"] == "/shop" && e["status"] == 200 && e["route"] == "/")
        .expect("the access event of the landing, forwarded upstream");
    for field in ["request_id", "route", "method", "duration_ms", "upstream_ms", "bytes_out", "client", "ua"] {
        assert!(!landed[field].is_null(), "{field} missing from {landed}");
    }
    assert_eq!(landed["ua"], "wechat");
    let user = landed["user"].as_str().unwrap();
    assert!(user.len() == 16 && user.chars().all(|c| c.is_ascii_hexdigit()), "user {user}");
    for e in &access {
        assert!(!e.to_string().contains(&openid), "the plain openid in an access event: {e}");
    }
    assert!(logged.contains("[redacted]"), "nothing needed redacting: the test saw no secret-bearing line");
    for (what, value) in &secrets {
        assert!(!value.is_empty() && !logged.contains(value.as_str()), "the {what} reached the log");
    }
    // No opaque token-like run (sealed cookies, access and refresh tokens) survives either.
    let opaque = regex::Regex::new(r"[A-Za-z0-9_-]{40,}").unwrap();
    assert!(opaque.find(&logged).is_none(), "an opaque token in the log: {:?}", opaque.find(&logged));
}
