//! The committed gateway.toml: `openid-gateway check` accepts it, and the embedded demo it
//! describes completes the silent login in a desktop browser, ending on the demo app's page
//! that verified the token itself.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use openid_gateway::config;
use openid_gateway::runtime::{Deps, Gateway};
use openid_gateway::serve::run::demo_services;
use openid_gateway::serve::server::{proxy_service, server_conf, start_on, Running};

fn free() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// The committed demo config at `file`, served on this test's ports instead of 8080-8082:
/// the gateway's and the mock's addresses, and what keeps them serving.
fn serve_demo(file: &str) -> (SocketAddr, SocketAddr, Vec<Running>) {
    let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let (gw_l, mock_l, app_l) = (free(), free(), free());
    let (gw, mock, app) = (gw_l.local_addr().unwrap(), mock_l.local_addr().unwrap(), app_l.local_addr().unwrap());
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
    let mock_srv = start_on(mock_svc, mock_l).unwrap();
    let app_srv = start_on(app_svc, app_l).unwrap();
    let gateway = Arc::new(Gateway::new(loaded.config, Deps::default()).unwrap());
    let gw_srv =
        start_on(proxy_service(openid_gateway::runtime::live::LiveGateway::fixed(gateway), &conf), gw_l).unwrap();
    (gw, mock, vec![mock_srv, app_srv, gw_srv])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_demo_logs_a_desktop_browser_in() {
    let (gw, mock, _servers) = serve_demo("gateway.toml");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wecom_demo_signs_a_desktop_in_by_scanning() {
    let (gw, mock, _servers) = serve_demo("deploy/gateway.demo-wecom.toml");
    let origin = format!("http://localhost:{}", gw.port());
    // Scans the QR page a fresh desktop browser is sent to, as `user` on the mock phone.
    let scanned_in = |user: &'static str| {
        let origin = origin.clone();
        async move {
            let b = common::browser(common::DESKTOP_UA, "localhost", gw);
            let qr = b.walk(&format!("{origin}/welcome")).await.pop().unwrap();
            assert!(qr.body.contains("企业微信登录"), "{}", qr.body);
            let last = b.walk(&common::scan_qr(&format!("http://{mock}"), &qr, user).await).await.pop().unwrap();
            (b, last)
        }
    };
    let (member, page) = scanned_in("demo-user").await;
    assert_eq!((page.status, page.url.as_str()), (200, format!("{origin}/welcome").as_str()));
    assert!(page.body.contains("你好，企业微信用户 / Hello, WeCom user"), "{}", page.body);
    assert!(page.body.contains("<b id=\"openid\">demo-user</b>") && !page.body.contains("jssdk.js"), "{}", page.body);
    assert_eq!(member.get(&format!("{origin}/staff/")).await.status, 200);
    // Only members sign in by scanning; someone outside the corp signs in on the phone, in
    // WeCom's browser, but the staff corner is not theirs.
    let outsider = common::browser(common::WECOM_UA, "localhost", gw);
    outsider.get(&format!("http://localhost:{}/mock/login-as?user=guest", mock.port())).await;
    let page = outsider.walk(&format!("{origin}/welcome")).await.pop().unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<tr><td>member</td><td>no</td></tr>"), "{}", page.body);
    let staff = outsider.get(&format!("{origin}/staff/")).await;
    assert_eq!(staff.status, 403);
    assert!(staff.body.contains("仅限企业成员"), "{}", staff.body);
}

#[test]
fn check_accepts_the_wecom_demo() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openid-gateway"))
        .args(["check", "-c", concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/gateway.demo-wecom.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
