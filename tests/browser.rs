//! The real-browser suite: headless Chromium (Debian's) driven by tests/browser/e2e.mjs
//! (playwright-core) against the gateway, the mock WeChat and the demo app on loopback.
//! Screenshots go to target/browser-screenshots.

mod common;

use std::time::Duration;

use common::node::{browser_suite, run_script};
use common::*;
use openid_gateway::config::TokenConfig;
use openid_gateway::dev::demo::DemoApp;
use openid_gateway::dev::mock_wechat::unionid;
use openid_gateway::serve::server::start_on;
use openid_gateway::wechat::Subject;
use pingora::services::listening::Service as ListeningService;

/// How long a browser script may run before it gives up.
const DEADLINE: Duration = Duration::from_secs(120);

/// target/browser-screenshots, where the scripts leave their screenshots.
fn screenshots() -> String {
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    out.to_string_lossy().into_owned()
}

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
    let envs = [
        ("GW", gw),
        ("MOCK", format!("http://127.0.0.1:{}", h.mock_addr.port())),
        ("APP2", app2),
        ("HOST_RULES", format!("MAP {PUBLIC_HOST} 127.0.0.1, MAP shop2.test 127.0.0.1")),
        ("OUT", screenshots()),
        ("LOGIN_LIMIT", "3".into()),
    ];
    let run = tokio::task::spawn_blocking(move || run_script(&suite, "e2e.mjs", &envs, DEADLINE)).await.unwrap();
    run.assert_checks(&[
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
    ]);
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
    let envs = [
        ("GW", format!("http://{PUBLIC_HOST}:{port}")),
        ("OTHER", format!("http://other.test:{port}")),
        ("TICKET", ticket),
        ("HOST_RULES", format!("MAP {PUBLIC_HOST} 127.0.0.1, MAP other.test 127.0.0.1")),
        ("OUT", screenshots()),
    ];
    let run = tokio::task::spawn_blocking(move || run_script(&suite, "jssdk.mjs", &envs, DEADLINE)).await.unwrap();
    run.assert_checks(&[
        "config_answered",
        "jssdk_ready",
        "signed_url_is_the_pages",
        "signature_matches_independent_sha1",
        "hash_route_untouched",
        "unserved_host_refused",
        "refusal_shown",
    ]);
    let s = h.mock.stats();
    assert!(s.jssdk_ok >= 1, "the mock WeChat accepted the signature: {s:?}");
    assert_eq!((s.tokens_issued, s.tickets_issued), (1, 1), "{s:?}");
}

/// Runs tests/browser/desktop_qr.mjs for `provider` against `h` (whose public URL is
/// `http://gw.test:PORT`, the mock allowing the port), and checks what it reports.
async fn desktop_qr(h: &Harness, provider: &str, checks: &[&str]) -> serde_json::Value {
    let suite = browser_suite();
    let envs = [
        ("GW", format!("http://{PUBLIC_HOST}:{}", h.gateway_addr.port())),
        ("MOCK", format!("http://127.0.0.1:{}", h.mock_addr.port())),
        ("PROVIDER", provider.to_string()),
        ("HOST_RULES", format!("MAP {PUBLIC_HOST} 127.0.0.1")),
        ("OUT", screenshots()),
    ];
    let run = tokio::task::spawn_blocking(move || run_script(&suite, "desktop_qr.mjs", &envs, DEADLINE)).await.unwrap();
    let common = [
        "desktop_user_agent",
        "qr_page_before_scan",
        "via_gateway_login",
        "scan_accepted",
        "landed",
        "via_callback",
        "upstream_served",
        "session_set",
    ];
    run.assert_checks(&[&common[..], checks].concat());
    run.results
}

/// The claims of the token the upstream got with the page asked for: the one `/desk/` page it
/// served, with its query.
fn page_claims(h: &Harness) -> openid_gateway::token::Claims {
    let pages: Vec<Seen> = h.upstream.seen().into_iter().filter(|s| s.path.starts_with("/desk/")).collect();
    assert_eq!(pages.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["/desk/page?x=1"]);
    claims(pages[0].headers["x-openid-token"].to_str().unwrap())
}

/// A desktop Chromium (its real User-Agent) on a WeCom app with `desktop_login`: the page it
/// asks for leads to WeCom's web login QR page; alice's scan brings it back signed in as the
/// member alice, on the page asked for with its query and `#fragment`. carol, a member outside
/// the app's visible range, is refused on the QR page and stays signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_desktop_qr_wecom() {
    let mut setup = wecom_setup("desktop_login = true");
    setup.apps = setup
        .apps
        .map(|a| a.replace(&format!("\"http://{PUBLIC_HOST}\""), &format!("\"http://{PUBLIC_HOST}:GWPORT\"")));
    setup.mock_allow_port = true;
    let h = Harness::with(setup).await;
    let results = desktop_qr(
        &h,
        "wecom",
        &[
            "hidden_member_refused",
            "refusal_shown",
            "refused_stays_on_qr_page",
            "refused_no_session",
            "refused_still_signed_out",
        ],
    )
    .await;
    let c = page_claims(&h);
    assert_eq!((c.sub.as_str(), c.provider.as_str(), c.sub_type), ("alice", "wecom", Subject::Member), "{c:?}");
    assert_eq!((c.member, c.corpid.as_deref()), (Some(true), Some(CORPID)), "{c:?}");
    let at_sign_in = &results["stats"];
    assert_eq!(
        (at_sign_in["qr_scans"].as_u64(), at_sign_in["corp_userinfo_calls"].as_u64()),
        (Some(1), Some(1)),
        "{at_sign_in}"
    );
    // carol's refused scan counts as a scan; WeCom gave no code, so none was exchanged.
    let s = h.mock.stats();
    assert_eq!((s.qr_scans, s.corp_userinfo_calls, s.authorizes), (2, 1, 0), "{s:?}");
}

/// A desktop Chromium on the Official Account with a website app and `desktop_login`: the
/// page it asks for leads to WeChat's website login QR page; alice's scan brings it back
/// signed in with the website app's openid of alice and her unionid, on the page asked for
/// with its query and `#fragment`. The used scan id cannot be scanned again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_desktop_qr_website() {
    let h = Harness::with(Setup {
        public_authority: Some(format!("{PUBLIC_HOST}:GWPORT")),
        mock_allow_port: true,
        ..website_setup("")
    })
    .await;
    let results = desktop_qr(&h, "website", &["used_scan_refused"]).await;
    let c = page_claims(&h);
    let openid = h.mock.website_openid_for("alice").expect("the mock plays a website app");
    assert_eq!(
        (c.sub.as_str(), c.sub_type, c.appid.as_str()),
        (openid.as_str(), Subject::WebsiteOpenid, WEBSITE_APPID),
        "{c:?}"
    );
    assert_eq!(c.unionid, Some(unionid("alice")), "{c:?}");
    let at_sign_in = &results["stats"];
    assert_eq!(
        (at_sign_in["qr_scans"].as_u64(), at_sign_in["website_exchanges"].as_u64()),
        (Some(1), Some(1)),
        "{at_sign_in}"
    );
    let s = h.mock.stats();
    assert_eq!((s.qr_scans, s.website_exchanges, s.exchanges, s.authorizes), (1, 1, 0, 0), "{s:?}");
}
