//! One WeChat account, many app domains: app hosts log in through the login host (gw.test,
//! the only domain the strict mock accepts) and get the identity with a one-time ticket.

mod common;

use common::*;
use openid_gateway::runtime::live::LiveGateway;
use openid_gateway::runtime::{Deps, Gateway};
use openid_gateway::serve::server::{proxy_service, server_conf, start_on};

/// Every URL the browser requested or was sent to.
fn urls(pages: &[Page]) -> Vec<String> {
    pages.iter().flat_map(|p| [Some(p.url.clone()), p.next_url()]).flatten().collect()
}

/// No URL on a host other than the login host and the mock carries a code, and none at all
/// carries the openid.
fn assert_nothing_leaks(pages: &[Page], openid: &str) {
    for u in urls(pages) {
        let host = url::Url::parse(&u).unwrap().host_str().unwrap().to_string();
        assert!(!u.contains(openid), "the openid in a URL: {u}");
        if host != PUBLIC_HOST && host != "127.0.0.1" {
            assert!(!u.contains("code="), "a code left the login host: {u}");
        }
    }
}

/// Does one request to `url` reach the upstream (rather than a way into the login)?
async fn reaches_upstream(h: &Harness, b: &Browser, url: &str) -> bool {
    let before = h.upstream.seen().len();
    let page = b.get(url).await;
    page.status == 200 && h.upstream.seen().len() == before + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_app_hosts_share_one_login_host_with_their_own_sessions_and_audiences() {
    let h = Harness::with(many_domains_setup()).await;
    let b = h.many_domains_browser();
    let alice = h.mock.openid_for("alice");

    let pages = b.walk("http://mall.test/shop?x=1").await;
    let last = pages.last().unwrap();
    assert_eq!((last.status, last.url.as_str()), (200, "http://mall.test/shop?x=1"), "{:?}", urls(&pages));
    assert_nothing_leaks(&pages, &alice);
    let hops: Vec<String> = urls(&pages).iter().map(|u| u.split('?').next().unwrap().to_string()).collect();
    assert!(hops.contains(&"http://mall.test/.gateway/login".to_string()), "{hops:?}");
    assert!(hops.contains(&"http://gw.test/.gateway/login".to_string()), "{hops:?}");
    assert!(hops.contains(&"http://mall.test/.gateway/ticket".to_string()), "{hops:?}");
    let seen = h.upstream.last();
    assert_eq!(seen.headers["host"], "mall.test");
    let token = claims(seen.headers["x-openid-token"].to_str().unwrap());
    assert_eq!((token.sub.as_str(), token.aud.as_str()), (alice.as_str(), "mall"));
    assert_eq!(h.mock.stats().exchanges, 1);

    // The second and third app hosts use the login host's session: no more codes.
    for (host, aud) in [("spring.campaign.test", "campaign"), ("members.test", "members")] {
        let pages = b.walk(&format!("http://{host}/#/deep")).await;
        assert_eq!(pages.last().unwrap().status, 200, "{:?}", urls(&pages));
        assert_nothing_leaks(&pages, &alice);
        let seen = h.upstream.last();
        assert_eq!(seen.headers["host"], host);
        let token = claims(seen.headers["x-openid-token"].to_str().unwrap());
        assert_eq!((token.sub.as_str(), token.aud.as_str()), (alice.as_str(), aud));
    }
    let stats = h.mock.stats();
    assert_eq!((stats.authorizes, stats.exchanges), (1, 1), "one login, one code exchanged");

    // Each host has a session cookie of its own, host-only; the upstream never sees it.
    assert!(cookie_value(&b.cookies_at("http://mall.test/"), "ogw_session").is_some());
    assert!(cookie_value(&b.cookies_at("http://members.test/"), "members_session").is_some());
    assert!(cookie_value(&b.cookies_at("http://autumn.campaign.test/"), "ogw_session").is_none(), "host-only");
    let sent = h.upstream.last().headers.get("cookie").map(|c| c.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(!sent.contains("members_session") && !sent.contains("ogw_"), "{sent}");

    // Later requests need nobody else.
    let before = h.upstream.seen().len();
    assert_eq!(b.get("http://mall.test/again").await.status, 200);
    assert_eq!(h.upstream.seen().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_one_host_is_no_session_on_another() {
    let h = Harness::with(many_domains_setup()).await;
    let b = h.many_domains_browser();
    assert_eq!(b.walk("http://spring.campaign.test/").await.last().unwrap().status, 200);
    let spring = cookie_value(&b.cookies_at("http://spring.campaign.test/"), "ogw_session").unwrap();
    let login_host = cookie_value(&b.cookies_at("http://gw.test/"), "ogw_session").unwrap();

    // The same cookie name and keys, but sealed for another host: no session here.
    let other = h.many_domains_browser();
    for stolen in [&spring, &login_host] {
        other.set_cookie_at("http://mall.test/", &format!("ogw_session={stolen}"));
        assert!(!reaches_upstream(&h, &other, "http://mall.test/x").await, "a foreign session was accepted");
    }
    // Two hosts of one wildcard entry do not share sessions either.
    other.set_cookie_at("http://autumn.campaign.test/", &format!("ogw_session={spring}"));
    assert!(!reaches_upstream(&h, &other, "http://autumn.campaign.test/x").await);
    // The cookie itself is good where it belongs.
    other.set_cookie_at("http://spring.campaign.test/", &format!("ogw_session={spring}"));
    assert!(reaches_upstream(&h, &other, "http://spring.campaign.test/x").await);
    let token = claims(h.upstream.last().headers["x-openid-token"].to_str().unwrap());
    assert_eq!(token.aud, "campaign");
}

/// The login host and the app hosts on two gateway processes that share the keys, the account
/// and the list; the app hosts' gateway has no AppSecret (`logins = "elsewhere"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_gateways_sharing_the_keys() {
    let login = Harness::with(many_domains_setup()).await;
    let text = std::fs::read_to_string(login.dir.path().join("gateway.toml")).unwrap();
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let text = text
        .replace(&format!("listen = \"{}\"", login.gateway_addr), &format!("listen = \"{addr}\""))
        .replace("public_url = \"http://gw.test\"\n", "public_url = \"http://gw.test\"\nlogins = \"elsewhere\"\n")
        .replace("secret = { file = \"wechat.secret\" }\n", "");
    assert!(text.contains("logins = \"elsewhere\"") && !text.contains("wechat.secret"), "{text}");
    let loaded = openid_gateway::config::parse_str(&text, login.dir.path()).unwrap();
    let deps = Deps { clock: std::sync::Arc::new(login.clock.clone()), ..Deps::default() };
    let app_gw = LiveGateway::fixed(std::sync::Arc::new(Gateway::new(loaded.config, deps).unwrap()));
    let _srv = start_on(proxy_service(app_gw.clone(), &std::sync::Arc::new(server_conf(1))), listener).unwrap();

    let b = browser_on(&[(PUBLIC_HOST, login.gateway_addr), ("mall.test", addr), ("members.test", addr)]);
    let pages = b.walk("http://mall.test/orders#/o/9").await;
    assert_eq!(pages.last().unwrap().status, 200, "{:?}", urls(&pages));
    assert_nothing_leaks(&pages, &login.mock.openid_for("alice"));
    let token = claims(login.upstream.last().headers["x-openid-token"].to_str().unwrap());
    assert_eq!(token.aud, "mall");
    let count =
        |gw: &LiveGateway, step: &str| gw.current().metrics().tickets.with_label_values(&["default", step]).get();
    assert_eq!(count(&login.live, "issued"), 1, "the login host issued the ticket");
    assert_eq!(count(&app_gw, "requested"), 1, "the app hosts' gateway asked for it");
    assert_eq!(count(&app_gw, "redeemed"), 1, "and took it");

    assert_eq!(b.walk("http://members.test/").await.last().unwrap().status, 200);
    assert_eq!(login.mock.stats().exchanges, 1, "one code for both app hosts");

    // The app hosts' gateway runs no login of its own, even when asked on the login host.
    let misrouted = browser_on(&[(PUBLIC_HOST, addr)]);
    for path in ["/.gateway/login?return=/", "/.gateway/callback?code=C&state=S"] {
        assert_eq!(misrouted.get(&format!("http://gw.test{path}")).await.status, 404, "{path}");
    }
}
