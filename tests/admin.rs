//! The admin listener: `/healthz`, `/readyz` naming unreachable upstreams, and `/metrics`
//! moving through a real login (the funnel, tokens, requests by route and status class).

mod common;

use common::*;
use openid_gateway::serve::admin::AdminApp;
use openid_gateway::serve::server::start_on;
use pingora::services::listening::Service as ListeningService;

async fn get(url: &str) -> (u16, String) {
    let res = reqwest::get(url).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The value of the sample `name{labels}` in a Prometheus text page (0 when absent).
fn sample(page: &str, series: &str) -> f64 {
    page.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_login_through_the_funnel() {
    let h = Harness::with(Setup {
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n".into(),
        ..Setup::default()
    })
    .await;
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    let metrics = format!("{}/metrics", admin.url());

    let (status, before) = get(&metrics).await;
    assert_eq!(status, 200);
    let app = &h.config.apps[0].name;
    let starts = format!("ogw_login_starts_total{{app=\"{app}\"}}");
    let callbacks = format!("ogw_login_callbacks_total{{app=\"{app}\"}}");
    let exchanged = format!("ogw_code_exchanges_total{{app=\"{app}\",result=\"ok\"}}");
    assert_eq!(sample(&before, &starts), 0.0);

    let b = h.browser();
    assert_eq!(b.walk(&h.url("/shop")).await.last().unwrap().status, 200);
    assert_eq!(b.get(&h.url("/shop")).await.status, 200);
    // A desktop browser on a route that needs WeChat gets the QR page.
    assert_eq!(
        h.browser_with_ua("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0").get(&h.url("/shop")).await.status,
        200
    );

    let (_, after) = get(&metrics).await;
    assert_eq!(sample(&after, &starts), 1.0, "{after}");
    assert_eq!(sample(&after, &callbacks), 1.0);
    assert_eq!(sample(&after, &exchanged), 1.0);
    assert_eq!(sample(&after, &format!("ogw_wechat_api_duration_seconds_count{{app=\"{app}\"}}")), 1.0);
    assert_eq!(sample(&after, &format!("ogw_qr_pages_total{{app=\"{app}\"}}")), 1.0);
    assert_eq!(sample(&after, "ogw_token_signatures_total"), 1.0, "one signature, then the cache");
    assert_eq!(sample(&after, "ogw_token_cache_total{result=\"hit\"}"), 1.0);
    assert_eq!(sample(&after, "ogw_requests_total{method=\"GET\",route=\"/\",status=\"2xx\"}"), 2.0);
    assert!(sample(&after, "ogw_upstream_duration_seconds_count{route=\"/\"}") >= 2.0);
    assert!(after.contains("# TYPE ogw_connections_open gauge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_say_which_upstream_is_down() {
    let gone = listener();
    let dead = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let h = Harness::with(Setup {
        routes: format!(
            "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n\n\
             [[routes]]\npath = \"/legacy\"\nupstream = \"{dead}\"\naudience = \"shop\"\n"
        ),
        ..Setup::default()
    })
    .await;
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    assert_eq!(get(&format!("{}/healthz", admin.url())).await, (200, "ok\n".into()));
    let (status, body) = get(&format!("{}/readyz", admin.url())).await;
    assert_eq!(status, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], false);
    let upstreams = ready["upstreams"].as_array().unwrap();
    let down: Vec<_> = upstreams.iter().filter(|u| u["reachable"] == false).collect();
    assert_eq!(down.len(), 1, "{body}");
    assert_eq!(down[0]["routes"][0], "/legacy");
    assert!(upstreams.iter().any(|u| u["reachable"] == true && u["routes"][0] == "/"));
    assert_eq!(get(&format!("{}/nothing", admin.url())).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_200_when_every_upstream_answers() {
    let h = Harness::start().await;
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    let (status, body) = get(&format!("{}/readyz", admin.url())).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_needs_the_admin_token_when_one_is_set() {
    let setup = Setup { tables: "[admin]\ntoken = { file = \"admin.token\" }\n".into(), ..Setup::default() };
    let h = Harness::with_files(setup, &[("admin.token", "admin-token-0123456789abcdef")]).await;
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    let url = format!("{}/revoke?openid=o-someone", admin.url());
    let client = reqwest::Client::new();
    let status = |auth: Option<&'static str>| {
        let mut req = client.post(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 403, "no token");
    assert_eq!(status(Some("Bearer admin-token-0123456789abcdeX")).await, 403, "a wrong token");
    assert_eq!(status(Some("Bearer admin-token-0123456789abcdef")).await, 200);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 405, "revoking is a POST");
}
