//! The real-browser suite: headless Chromium (Debian's) driven by tests/browser/e2e.mjs
//! (playwright-core) against the gateway, the mock WeChat and the demo app on loopback.
//! Screenshots go to target/browser-screenshots.

mod common;

use std::process::Command;

use common::node::{browser_suite, CHROMIUM};
use common::*;
use openid_gateway::config::TokenConfig;
use openid_gateway::dev::demo::DemoApp;
use openid_gateway::serve::server::start_on;
use pingora::services::listening::Service as ListeningService;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_end_to_end() {
    let suite = browser_suite();
    let token = TokenConfig { issuer: "https://issuer.test".into(), ..hs256_token_config() };
    let app =
        start_on(ListeningService::new("demo".into(), DemoApp::new(&token, "shop").unwrap()), listener()).unwrap();
    let h = Harness::with(Setup {
        public_authority: Some(format!("{PUBLIC_HOST}:GWPORT")),
        mock_allow_port: true,
        upstream_url: Some(app.url()),
        wechat: "jssdk_url = \"MOCK/open/js/jweixin-1.6.0.js\"\n".into(),
        routes: "[[app_hosts]]\nhost = \"shop2.test\"\naudience = \"shop2\"\n\n\
                 [[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n\n\
                 [[routes]]\npath = \"/public\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n"
            .into(),
        ..Setup::default()
    })
    .await;
    let gw = format!("http://{PUBLIC_HOST}:{}", h.gateway_addr.port());
    let app2 = format!("http://shop2.test:{}", h.gateway_addr.port());
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("e2e.mjs")
            .current_dir(suite)
            .env("GW", &gw)
            .env("MOCK", format!("http://127.0.0.1:{}", h.mock_addr.port()))
            .env("APP2", &app2)
            .env("HOST_RULES", format!("MAP {PUBLIC_HOST} 127.0.0.1, MAP shop2.test 127.0.0.1"))
            .env("OUT", &out)
            .env("CHROMIUM", CHROMIUM)
            .env("LOGIN_LIMIT", "3")
            .output()
            .map(|o| (o, h))
    });
    let (output, _h) = run.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser suite failed:\n{stdout}\n{stderr}");
    let results: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for check in [
        "hash_route_kept",
        "app_sees_route",
        "token_verified_by_app",
        "session_persists",
        "fetch_with_session",
        "fetch_gets_401_json",
        "fetch_login_url",
        "login_url_works",
        "logout_returns",
        "logout_clears_session",
        "login_again_after_logout",
        "loop_breaker_page",
        "loop_breaker_at_most_n",
        "qr_decodes_to_url",
        "app_host_hash_route_kept",
        "app_host_sees_route",
        "app_host_token_verified",
        "app_host_via_login_host",
        "app_host_one_exchange",
        "app_host_own_cookie",
    ] {
        assert_eq!(results[check], "ok", "{check}: {stdout}");
    }
}

/// The JS-SDK in a real browser: a page with a query string and a hash route includes
/// `jssdk.js`; the signature it gets verifies at the mock WeChat (the stand-in SDK checks it as
/// WeChat does) and against SHA-1 computed in Node over the page's own URL; a page on a host the
/// gateway does not serve for the account is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_jssdk() {
    use openid_gateway::serve::admin::AdminApp;
    let suite = browser_suite();
    let token = TokenConfig { issuer: "https://issuer.test".into(), ..hs256_token_config() };
    let app =
        start_on(ListeningService::new("demo".into(), DemoApp::new(&token, "shop").unwrap()), listener()).unwrap();
    let h = Harness::with_files(
        Setup {
            public_authority: Some(format!("{PUBLIC_HOST}:GWPORT")),
            mock_allow_port: true,
            upstream_url: Some(app.url()),
            wechat: "jssdk_url = \"MOCK/open/js/jweixin-1.6.0.js\"\n".into(),
            tables: "[admin]\ntoken = { file = \"admin.token\" }\n".into(),
            ..Setup::default()
        },
        &[("admin.token", "admin-token-for-tests-0123456789")],
    )
    .await;
    // The ticket WeChat gives the gateway's token: the same the gateway will be given.
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    let res = reqwest::Client::new()
        .get(format!("{}/wechat/access_token", admin.url()))
        .bearer_auth("admin-token-for-tests-0123456789")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap().to_string();
    let ticket_url = h.mock_url(&format!("/cgi-bin/ticket/getticket?access_token={access_token}&type=jsapi"));
    let ticket: serde_json::Value = reqwest::get(ticket_url).await.unwrap().json().await.unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_string();

    let port = h.gateway_addr.port();
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("jssdk.mjs")
            .current_dir(suite)
            .env("GW", format!("http://{PUBLIC_HOST}:{port}"))
            .env("OTHER", format!("http://other.test:{port}"))
            .env("TICKET", &ticket)
            .env("HOST_RULES", format!("MAP {PUBLIC_HOST} 127.0.0.1, MAP other.test 127.0.0.1"))
            .env("OUT", &out)
            .env("CHROMIUM", CHROMIUM)
            .output()
            .map(|o| (o, h))
    });
    let (output, h) = run.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "jssdk browser suite failed:\n{stdout}\n{stderr}");
    let results: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for check in [
        "config_answered",
        "jssdk_ready",
        "signed_url_is_the_pages",
        "signature_matches_independent_sha1",
        "hash_route_untouched",
        "unserved_host_refused",
        "refusal_shown",
    ] {
        assert_eq!(results[check], "ok", "{check}: {stdout}");
    }
    let s = h.mock.stats();
    assert!(s.jssdk_ok >= 1, "the mock WeChat accepted the signature: {s:?}");
    assert_eq!((s.tokens_issued, s.tickets_issued), (1, 1), "{s:?}");
}
