//! The request path before the upstream, piece by piece: the canonical path, the route match,
//! reading a request (client view and canonical target), the whole decision for a required
//! route with a session (cookie opened, revocation checked on the memory backend), and the
//! header rewrite the upstream receives. Session cookie, cached token and revocation on Redis
//! are in `tokens` and `state`.
//!
//! `cargo bench --bench hot_path`; `.ci/run` runs every bench once (`cargo test --benches`) so
//! none rots.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use openid_gateway::http::canonical::{canonical_path, PathRules};
use openid_gateway::http::client::ClientView;
use openid_gateway::http::target;
use openid_gateway::proxy::decide::{decide, Step};
use openid_gateway::proxy::forward;
use openid_gateway::runtime::{Deps, Gateway};
use openid_gateway::util::clock::{Clock, OsEntropy, SystemClock};
use openid_gateway::wechat::{Identity, Scope};
use pingora::http::RequestHeader;

const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";

/// A gateway with a dozen routes over three hosts, HS256 tokens, memory state.
fn gateway() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), "0123456789abcdef0123456789abcdef").unwrap();
    let mut routes = String::new();
    for host in ["", "host = \"api.example.com\"\n", "host = \"*.campaign.example.com\"\n"] {
        for path in ["/", "/static", "/api", "/orders"] {
            routes.push_str(&format!(
                "[[routes]]\n{host}path = \"{path}\"\nupstream = \"http://127.0.0.1:3000\"\naudience = \"shop\"\n\
                 public_paths = [\"/favicon.ico\"]\n"
            ));
        }
    }
    let text = format!(
        "public_url = \"https://h5.example.com\"\nallowed_return_hosts = []\n[wechat]\nappid = \"wx1234567890abcdef\"\n\
         secret = {{ file = \"k\" }}\n[session]\nkeys = [{{ file = \"k\" }}]\ncookie_domain = \"example.com\"\n\
         [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"k\" }}\n{routes}"
    );
    let config = openid_gateway::config::parse_str(&text, dir.path()).unwrap().config;
    Gateway::new(config, Deps::default()).unwrap()
}

/// A page request from WeChat with a session and the headers a phone sends.
fn request(cookie: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/orders/42?from=menu", None).unwrap();
    for (k, v) in [
        ("host", "h5.example.com"),
        ("user-agent", WECHAT_UA),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "zh-CN,zh-Hans;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
        ("referer", "https://h5.example.com/"),
        ("x-openid-token", "forged"),
        ("x-original-url", "/admin"),
    ] {
        req.insert_header(k, v).unwrap();
    }
    req.insert_header("cookie", format!("_ga=GA1.2.3; ogw_session={cookie}; theme=dark")).unwrap();
    req
}

fn benches(c: &mut Criterion) {
    let rules = PathRules::default();
    c.bench_function("canonical_path_clean", |b| {
        b.iter(|| canonical_path(black_box("/orders/42/items"), &rules).unwrap())
    });
    c.bench_function("canonical_path_messy", |b| {
        b.iter(|| canonical_path(black_box("/orders//42/./items/%7Eme/../x"), &rules).unwrap())
    });

    let gw = gateway();
    c.bench_function("route_match_12_routes", |b| {
        b.iter(|| gw.route_for(black_box("spring.campaign.example.com"), black_box("/api/v1/cart")).unwrap())
    });

    let now = SystemClock.now();
    let identity =
        Identity { openid: "oLVPpjqs9BhvzwPj5A-vTYAX3GLc".into(), scope: Scope::Base, ..Identity::default() };
    let (_, set) = gw.apps()[0].sessions.issue(&identity, None, now, &OsEntropy);
    let cookie = set.split(';').next().unwrap().trim_start_matches("ogw_session=").to_string();
    let req = request(&cookie);
    let peer = Some("10.0.0.7".parse().unwrap());
    c.bench_function("read_request_view_and_target", |b| {
        b.iter(|| {
            let view = ClientView::of(black_box(&req), peer, &gw.config.trusted_proxies);
            let t = target::read(&req, &gw.config.paths, &gw.config.limits).unwrap();
            (view, t)
        })
    });

    let view = ClientView::of(&req, peer, &gw.config.trusted_proxies);
    let target = target::read(&req, &gw.config.paths, &gw.config.limits).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    c.bench_function("decide_required_route_with_session", |b| {
        b.iter(|| match rt.block_on(decide(&gw, black_box(&req), &view, &target, "rid")) {
            Step::Forward { user: Some(u), .. } => u,
            other => panic!("not forwarded with a user: {other:?}"),
        })
    });

    let mut headers = req.clone();
    c.bench_function("strip_identity_12_headers", |b| {
        b.iter(|| forward::strip_identity(black_box(&mut headers), &gw.config.token.header))
    });

    c.bench_function("header_rewrite_strip_identity_cookies_overrides", |b| {
        b.iter(|| {
            let mut up = req.clone();
            forward::strip_identity(&mut up, &gw.config.token.header);
            forward::strip_path_overrides(&mut up);
            forward::strip_gateway_cookies(&mut up, &["ogw_session", "ogw_login", "ogw_tries"]).unwrap();
            forward::forwarding_headers(&mut up, &view, "https", &gw.routes()[0].config).unwrap();
            up
        })
    });
}

/// What every request pays after its response: the access log's user hash and the request
/// counter.
fn after_response(c: &mut Criterion) {
    let gw = gateway();
    c.bench_function("access_log_user_hash", |b| b.iter(|| gw.access.user(black_box("oLVPpjqs9BhvzwPj5A-vTYAX3GLc"))));
    let label = gw.routes()[0].label.clone();
    let route = &gw.routes()[0];
    c.bench_function("count_request", |b| {
        b.iter(|| route.counters.count(gw.metrics(), black_box(&label), &http::Method::GET, 200))
    });
}

criterion_group!(hot_path, benches, after_response);
criterion_main!(hot_path);
