//! The committed gateway.toml: `openid-gateway check` accepts it, and the embedded demo it
//! describes completes the silent login in a desktop browser, ending on the demo app's page
//! that verified the token itself.

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use openid_gateway::config;
use openid_gateway::runtime::{Deps, Gateway};
use openid_gateway::serve::run::demo_services;
use openid_gateway::serve::server::{proxy_service, server_conf, start_on};

fn free() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_demo_logs_a_desktop_browser_in() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml")).unwrap();
    let (gw_l, mock_l, app_l) = (free(), free(), free());
    let (gw, mock, app) = (gw_l.local_addr().unwrap(), mock_l.local_addr().unwrap(), app_l.local_addr().unwrap());
    // The same file with this test's ports instead of 8080-8082.
    let text = text
        .replace("localhost:8080", &format!("localhost:{}", gw.port()))
        .replace("127.0.0.1:8080", &gw.to_string())
        .replace("localhost:8081", &format!("localhost:{}", mock.port()))
        .replace("127.0.0.1:8081", &mock.to_string())
        .replace("127.0.0.1:8082", &app.to_string());
    let loaded = config::parse_str(&text, std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let conf = Arc::new(server_conf(1));
    let (mock_svc, app_svc) = demo_services(&loaded.config).unwrap();
    let _mock = start_on(mock_svc, mock_l).unwrap();
    let _app = start_on(app_svc, app_l).unwrap();
    let gateway = Arc::new(Gateway::new(loaded.config, Deps::default()).unwrap());
    let _gw = start_on(proxy_service(openid_gateway::runtime::live::LiveGateway::fixed(gateway), &conf), gw_l).unwrap();

    let desktop = common::browser(common::DESKTOP_UA, "localhost", gw);
    // Every demo URL names its port, so the mock's URLs still reach the mock.
    let pages = desktop.walk(&format!("http://localhost:{}/welcome", gw.port())).await;
    let last = pages.last().unwrap();
    assert_eq!(last.status, 200);
    assert_eq!(last.url, format!("http://localhost:{}/welcome", gw.port()), "landed back on the page asked for");
    assert!(last.body.contains("你好，微信用户 / Hello, WeChat user"), "{}", last.body);
    assert!(last.body.contains(&openid_gateway::dev::mock_wechat::openid("wx0000000000demo0", "demo-user")));

    // The public corner needs no login: a fresh browser gets there directly.
    let public = common::browser(common::DESKTOP_UA, "localhost", gw)
        .get(&format!("http://localhost:{}/public/", gw.port()))
        .await;
    assert_eq!(public.status, 200);
    assert!(public.body.contains("No identity"));

    // The WeChat-only corner shows a desktop browser the QR page.
    let qr = common::browser(common::DESKTOP_UA, "localhost", gw)
        .get(&format!("http://localhost:{}/wechat-only/", gw.port()))
        .await;
    assert_eq!(qr.status, 200);
    assert!(qr.body.contains("请在微信中打开") && qr.body.contains("<svg"), "{}", qr.body);

    // The demo page configures the JS-SDK: it includes jssdk.js, which loads the mock's
    // stand-in SDK; the gateway signs the page, and the mock accepts the signature as WeChat
    // does, so the page says "JS-SDK ready".
    assert!(last.body.contains("src=\"/.gateway/jssdk.js\""), "{}", last.body);
    let script = desktop.get(&format!("http://localhost:{}/.gateway/jssdk.js", gw.port())).await;
    assert_eq!(script.status, 200);
    assert!(script.body.contains(&format!("http://localhost:{}/open/js/jweixin-1.6.0.js", mock.port())));
    let sdk = reqwest::get(format!("http://localhost:{}/open/js/jweixin-1.6.0.js", mock.port())).await.unwrap();
    assert_eq!(sdk.status(), 200);
    let page = format!("http://localhost:{}/welcome?from=demo", gw.port());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let asked = format!("http://localhost:{}/.gateway/jssdk/config?url={}", gw.port(), enc(&page));
    let answer = desktop.get_with(&asked, &[("accept", "application/json")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let c: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let verdict = common::jssdk_verdict(&format!("http://{mock}"), &c, &page).await;
    assert_eq!(verdict, "config:ok");
}

#[test]
fn check_accepts_the_committed_config() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openid-gateway"))
        .args(["check", "-c", concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (3 route(s))"));
}
