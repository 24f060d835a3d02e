//! Routes (host patterns, policies, public paths), domain verification files, logout and
//! return-URL validation, and trusted proxies.

mod common;

use openid_gateway::http::canonical::{canonical_path, PathRules};

use common::*;
use openid_gateway::wechat::authorize::encode_component;

const ROUTES: &str = "\
[[routes]]\nhost = \"api.gw.test\"\nupstream = \"UPSTREAM\"\naudience = \"api\"\npolicy = \"optional\"\n\n\
[[routes]]\nhost = \"*.gw.test\"\nupstream = \"UPSTREAM\"\naudience = \"wild\"\npublic_paths = [\"/static\", \"/healthz\"]\n\n\
[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"any\"\n\n\
[[routes]]\npath = \"/deep/er\"\nupstream = \"UPSTREAM\"\naudience = \"deep\"\npolicy = \"public\"\n";

fn setup() -> Setup {
    Setup {
        routes: ROUTES.into(),
        top: "mp_verify = [\"abc123XYZ\"]\nallowed_return_hosts = [\"partner.example.org\"]\n".into(),
        tables: "cookie_domain = \"gw.test\"\n".into(),
        ..Setup::default()
    }
}

fn aud_of_last(h: &Harness) -> Option<String> {
    h.upstream.last().headers.get("x-openid-token").map(|t| claims(t.to_str().unwrap()).aud)
}

/// A browser whose resolver sends `host` to the gateway, sharing `b`'s cookies.
fn on_host(h: &Harness, b: &Browser, host: &str) -> Browser {
    Browser { client: nav_client(WECHAT_UA, host, h.gateway_addr, b.jar.clone()), ..b.clone() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_policies_and_public_paths() {
    let h = Harness::with(setup()).await;
    let b = h.browser();
    let api = on_host(&h, &b, "api.gw.test");
    let shop = on_host(&h, &b, "shop.gw.test");

    // Without a session: optional forwards without token, public paths pass, the rest logs in.
    assert_eq!(api.get("http://api.gw.test/me").await.status, 200);
    assert_eq!(aud_of_last(&h), None);
    assert_eq!(shop.get("http://shop.gw.test/static/app.js").await.status, 200);
    assert_eq!(shop.get("http://shop.gw.test/healthz").await.status, 200);
    assert_eq!(b.get(&h.url("/deep/er/x")).await.status, 200);
    let before = h.upstream.seen().len();
    assert!(shop.get("http://shop.gw.test/cart").await.body.contains("location.hash"), "required: into login");
    assert_eq!(h.upstream.seen().len(), before);

    // Log in on the app's host; the session (Domain=gw.test) serves every route.
    assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
    assert_eq!(aud_of_last(&h).as_deref(), Some("any"));
    api.get("http://api.gw.test/me").await;
    assert_eq!(aud_of_last(&h).as_deref(), Some("api"), "exact host beats wildcard");
    shop.get("http://shop.gw.test/cart").await;
    assert_eq!(aud_of_last(&h).as_deref(), Some("wild"));
    b.get(&h.url("/deep/er/x")).await;
    assert_eq!(aud_of_last(&h).as_deref(), Some("deep"), "longest prefix; public still carries the token");
    b.get(&h.url("/deep/x")).await;
    assert_eq!(aud_of_last(&h).as_deref(), Some("any"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_verification_files_are_served_on_the_apps_hosts() {
    let h = Harness::with(setup()).await;
    let b = h.browser();
    for (browser, url) in [
        (&b, h.url("/MP_verify_abc123XYZ.txt")),
        (&on_host(&h, &b, "shop.gw.test"), "http://shop.gw.test/MP_verify_abc123XYZ.txt".to_string()),
    ] {
        let p = browser.get(&url).await;
        assert_eq!((p.status, p.body.as_str()), (200, "abc123XYZ"), "{url}");
    }
    let other = b.get(&h.url("/MP_verify_unknown.txt")).await;
    assert_ne!(other.body, "unknown");
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_goes_where_asked() {
    let h = Harness::with(setup()).await;
    let b = h.browser();
    assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
    let out = b.get(&h.url("/.gateway/logout?return=/bye")).await;
    assert_eq!(out.location(), "/bye");
    let cleared = out.set_cookies();
    assert!(cleared
        .iter()
        .any(|c| c.starts_with("ogw_session=;") && c.contains("Max-Age=0") && c.contains("Domain=gw.test")));
    assert!(cleared.iter().any(|c| c.starts_with("ogw_login=;") && c.contains("Max-Age=0")));
    assert!(b.get(&h.url("/private")).await.body.contains("location.hash"), "logged out");
    let to_partner = b.get(&h.url("/.gateway/logout?return=https://partner.example.org/x")).await;
    assert_eq!(to_partner.location(), "https://partner.example.org/x");
}

const OPEN_REDIRECTS: [&str; 16] = [
    "//evil.example",
    "///evil.example/",
    "/\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example/",
    "http://gw.test.evil.example/",
    "https://gw.test@evil.example/",
    "javascript:alert(document.cookie)",
    "/%0d%0aSet-Cookie:x=1",
    "/x\r\nSet-Cookie: x=1",
    "%2F%2Fevil.example",
    " //evil.example",
    "//evil.example%2F%2E%2E",
    "data:text/html;base64,PHNjcmlwdD4=",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirect_payloads_are_refused() {
    let h = Harness::with(setup()).await;
    let b = h.browser();
    for payload in OPEN_REDIRECTS {
        // As the attacker would write them: raw, and encoded once more.
        let raw_query = payload.replace('\r', "%0D").replace('\n', "%0A").replace(' ', "%20");
        for query in [raw_query, encode_component(payload)] {
            for endpoint in ["login", "logout"] {
                let p = b.get(&h.url(&format!("/.gateway/{endpoint}?return={query}"))).await;
                // What the gateway reads: the query value, decoded once.
                let seen: String =
                    url::form_urlencoded::parse(format!("return={query}").as_bytes()).next().unwrap().1.into();
                let plain_path = seen.starts_with('/')
                    && !seen.starts_with("//")
                    && !seen.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace());
                let canonical = canonical_path(seen.split(['?', '#']).next().unwrap(), &PathRules::default());
                if let (true, Ok(canonical)) = (plain_path, canonical) {
                    // A literal path on this site, in its canonical form: harmless.
                    assert_eq!(p.status, 302, "{endpoint} {query:?}");
                    let to_wechat = p.location().starts_with(&h.mock_url("/connect/"));
                    let canonical = format!("{}{}", canonical, &seen[seen.find(['?', '#']).unwrap_or(seen.len())..]);
                    assert!(to_wechat || p.location() == canonical, "{endpoint} {query:?} -> {}", p.location());
                } else {
                    assert_eq!(p.status, 400, "{endpoint} {query:?} -> {}", p.location());
                    assert!(p.body.contains("无效的跳转地址"));
                }
                assert!(!p.location().contains("evil"), "{endpoint} {query:?} -> {}", p.location());
                assert!(p.set_cookies().iter().all(|c| !c.starts_with("x=")), "no header injection");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_are_believed_others_are_not() {
    let h = Harness::with(Setup { top: "trusted_proxies = [\"127.0.0.0/8\"]\n".into(), ..setup() }).await;
    let b = h.browser();
    let p = b
        .get_with(
            &h.url("/me"),
            &[("X-Forwarded-Host", "api.gw.test"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.9")],
        )
        .await;
    assert_eq!(p.status, 200, "routed by the forwarded host (api.gw.test: optional)");
    let seen = h.upstream.last();
    let header = |k: &str| seen.headers.get(k).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("x-forwarded-for"), "203.0.113.9, 127.0.0.1");
    assert_eq!(header("x-forwarded-proto"), "https");
    assert_eq!(header("x-forwarded-host"), "api.gw.test");

    // Not trusted (the default): the same headers are ignored.
    let plain = Harness::with(setup()).await;
    let p = plain
        .browser()
        .get_with(&plain.url("/me"), &[("X-Forwarded-Host", "api.gw.test"), ("X-Forwarded-For", "203.0.113.9")])
        .await;
    assert!(p.body.contains("location.hash"), "routed by Host (gw.test: required)");
}
