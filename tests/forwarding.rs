//! What reaches the upstream: never a client's identity header, always the forwarding
//! headers; and what happens when the upstream is down.

mod common;

use std::time::{Duration, Instant};

use common::*;

const FORGED: [(&str, &str); 4] = [
    ("X-Openid-Token", "forged-1"),
    ("x-openid-token", "forged-2"),
    ("X_Openid_Token", "forged-3"),
    ("x_OPENID-token", "forged-4"),
];

fn identity_values(seen: &Seen) -> Vec<String> {
    seen.headers
        .iter()
        .filter(|(k, _)| k.as_str().replace('_', "-").eq_ignore_ascii_case("x-openid-token"))
        .map(|(_, v)| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sent_identity_headers_never_reach_the_upstream() {
    let h = Harness::start().await;
    // A public route without a session: every copy is removed and none is added.
    let anon = h.browser();
    assert_eq!(anon.get_with(&h.url("/public/page"), &FORGED).await.status, 200);
    assert!(identity_values(&h.upstream.last()).is_empty());

    // With a session: only the gateway's own token remains.
    let b = logged_in(&h).await;
    assert_eq!(b.get_with(&h.url("/account"), &FORGED).await.status, 200);
    let values = identity_values(&h.upstream.last());
    assert_eq!(values.len(), 1, "{values:?}");
    assert!(values[0].starts_with("eyJ"), "the gateway's JWT, not a forged value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_and_host() {
    let h = Harness::start().await;
    let b = logged_in(&h).await;
    b.get_with(&h.url("/f"), &[("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil.test")]).await;
    let seen = h.upstream.last();
    let header = |k: &str| seen.headers.get(k).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header("x-forwarded-for").as_deref(), Some("127.0.0.1"), "client values are not believed");
    assert_eq!(header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(header("x-forwarded-host").as_deref(), Some(PUBLIC_HOST));
    assert_eq!(header("host").as_deref(), Some(PUBLIC_HOST), "the client's Host is kept by default");
    assert_eq!(header("x-request-id").map(|v| v.len()), Some(16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_may_send_the_upstreams_host() {
    let h = Harness::with(Setup {
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npreserve_host = false\n"
            .into(),
        ..Setup::default()
    })
    .await;
    logged_in(&h).await;
    let host = h.upstream.last().headers.get("host").unwrap().to_str().unwrap().to_string();
    assert!(host.starts_with("127.0.0.1:"), "{host}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_gives_a_502_page_not_a_hang() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let h = Harness::with(Setup {
        routes: format!(
            "[[routes]]\npath = \"/\"\nupstream = \"http://{closed}\"\naudience = \"shop\"\npolicy = \"public\"\n"
        ),
        ..Setup::default()
    })
    .await;
    let started = Instant::now();
    let p = h.browser().get(&h.url("/")).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(p.status, 502, "{}", p.body);
    assert!(p.body.find("服务暂时不可用").unwrap() < p.body.find("Service unavailable").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_reserved_paths_and_unrouted_hosts_are_404() {
    let h = Harness::with(Setup {
        routes: "[[routes]]\nhost = \"only.test\"\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n".into(),
        ..Setup::default()
    })
    .await;
    let b = h.browser();
    assert_eq!(b.get(&h.url("/.gateway/nothing")).await.status, 404);
    assert_eq!(b.get(&h.url("/app")).await.status, 404, "gw.test is not only.test");
    assert!(h.upstream.seen().is_empty());
}
