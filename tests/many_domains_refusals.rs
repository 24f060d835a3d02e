//! What the login host and app hosts refuse: replayed, expired, foreign-host and nonce-less
//! tickets, damaged or unlisted hand-off requests, open redirects; and logout on one app host
//! or everywhere.

mod common;

use common::*;
use openid_gateway::wechat::authorize::encode_component;

/// Walks from `url` until the next URL would be a ticket, and returns that URL.
async fn ticket_url(b: &Browser, url: &str) -> String {
    let pages = b.walk_until(url, |u| u.contains("/.gateway/ticket?")).await;
    pages.last().unwrap().next_url().filter(|u| u.contains("/.gateway/ticket?ticket=")).expect("a ticket")
}

/// A refusal: the status, a page and never a redirect.
fn assert_refused(page: &Page, status: u16, words: &str) {
    assert_eq!(page.status, status, "{} {}", page.url, page.body);
    assert!(page.location().is_empty() && page.next_url().is_none(), "a refusal redirected: {page:?}");
    assert!(page.body.contains(words), "{words:?} not in {}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ticket_works_once_for_one_host_within_its_lifetime() {
    let h = Harness::with(many_domains_setup()).await;
    let a = h.many_domains_browser();
    let ticket = ticket_url(&a, "http://mall.test/p?q=1").await;
    let nonce = cookie_value(&a.cookies_at("http://mall.test/.gateway/ticket"), "ogw_handoff").expect("nonce cookie");

    // On another app host, even one of the same wildcard entry: refused.
    for other in ["http://members.test", "http://autumn.campaign.test"] {
        let moved = ticket.replace("http://mall.test", other);
        assert_refused(&a.get(&moved).await, 403, "另一个网站");
    }
    // Damaged: refused.
    let cut = &ticket[..ticket.len() - 3];
    assert_refused(&a.get(cut).await, 400, "已损坏");

    // The browser it was made for: a session, and back on the page asked for.
    let thief = h.many_domains_browser();
    thief.set_cookie_at("http://mall.test/.gateway/", &format!("ogw_handoff={nonce}; Path=/.gateway"));
    let taken = a.get(&ticket).await;
    assert_eq!((taken.status, taken.location()), (302, "http://mall.test/p?q=1#"));
    assert!(taken.set_cookies().iter().any(|c| c.starts_with("ogw_session=") && !c.contains("Domain")));
    // Once: not again in the same browser, nor in one holding a copy of its nonce cookie.
    assert_refused(&a.get(&ticket).await, 400, "不属于当前浏览器");
    assert_refused(&thief.get(&ticket).await, 400, "已经使用过");

    // Without the nonce cookie (another browser): refused, and the ticket is dead for its own
    // browser too.
    let b = h.many_domains_browser();
    let ticket = ticket_url(&b, "http://mall.test/b").await;
    assert_refused(&h.many_domains_browser().get(&ticket).await, 400, "不属于当前浏览器");
    assert_refused(&b.get(&ticket).await, 400, "已经使用过");

    // Within its lifetime only; the refusal offers to start over from the page.
    let late = h.many_domains_browser();
    let ticket = ticket_url(&late, "http://mall.test/late").await;
    h.clock.advance(31);
    let page = late.get(&ticket).await;
    assert_refused(&page, 400, "已失效");
    assert!(page.body.contains("href=\"http://mall.test/late\""), "{}", page.body);
    let gw = h.live.current();
    let m = &gw.metrics().tickets;
    let count = |r: &str| m.with_label_values(&["default", r]).get();
    assert_eq!(
        [
            count("issued"),
            count("redeemed"),
            count("no_nonce"),
            count("other_host"),
            count("replayed"),
            count("expired")
        ],
        [3, 1, 2, 2, 2, 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_foreign_and_unlisted_requests_are_refused_by_the_login_host() {
    let h = Harness::with(many_domains_setup()).await;
    let b = h.many_domains_browser();
    let pages = b.walk_until("http://mall.test/", |u| u.contains("/.gateway/login?handoff=")).await;
    let good = pages.last().unwrap().next_url().unwrap();
    assert!(good.starts_with("http://gw.test/.gateway/login?handoff="), "{good}");
    assert_refused(&b.get(&format!("{good}x")).await, 400, "已损坏");

    let now = openid_gateway::util::clock::Clock::now_millis(&h.clock);
    let request = |host: &str, back: &str, expires_ms: u64| {
        format!(r#"{{"h":"{host}","r":"{back}","n":"N0","s":"snsapi_base","x":{expires_ms}}}"#)
    };
    let at_login = |sealed: String| format!("http://gw.test/.gateway/login?handoff={sealed}");
    // Sealed with the gateways' keys (another gateway's list), but for a host not listed here.
    let unlisted =
        seal("ogw-handoff-request-v2", SESSION_KEY, &request("evil.test", "http://evil.test/", now + 60_000));
    assert_refused(&b.get(&at_login(unlisted)).await, 403, "不在本登录服务允许的列表中");
    let elsewhere =
        seal("ogw-handoff-request-v2", SESSION_KEY, &request("mall.test", "http://evil.test/", now + 60_000));
    assert_refused(&b.get(&at_login(elsewhere)).await, 403, "不在本登录服务允许的列表中");
    let foreign_key = "another-gateways-key-0123456789abcdef0123456789";
    let foreign = seal("ogw-handoff-request-v2", foreign_key, &request("mall.test", "http://mall.test/", now + 60_000));
    assert_refused(&b.get(&at_login(foreign)).await, 400, "已损坏");
    let ticket_as_request =
        seal("ogw-ticket-v2", SESSION_KEY, &request("mall.test", "http://mall.test/", now + 60_000));
    assert_refused(&b.get(&at_login(ticket_as_request)).await, 400, "已损坏");
    let expired = seal("ogw-handoff-request-v2", SESSION_KEY, &request("mall.test", "http://mall.test/x", now - 1));
    assert_refused(&b.get(&at_login(expired)).await, 400, "已失效");
    assert_eq!(h.mock.stats().authorizes, 0, "nobody was sent to WeChat");
}

/// Return URLs, hand-off requests and tickets that try to send the browser somewhere else.
const PAYLOADS: &[&str] = &[
    "//evil.test",
    "///evil.test",
    "/\\evil.test",
    "\\\\evil.test",
    "http://evil.test/",
    "HTTP://EVIL.TEST/",
    "https:evil.test",
    "http:/evil.test",
    "http://mall.test.evil.test/",
    "http://mall.test@evil.test/",
    "http://evil.test\\@mall.test/",
    "http://evil.test%2f@mall.test/",
    "http://evil.test#@mall.test/",
    "http://evil.test?@mall.test/",
    "http://%65vil.test/",
    "http://evil.test\u{3002}mall.test/",
    "http://127.0.0.1:1/",
    "http://[::1]/",
    "javascript:alert(1)",
    "data:text/html,hi",
    " http://evil.test",
    "/%2F%2Fevil.test",
    "/ok\r\nLocation: http://evil.test",
    "%2F%2Fevil.test",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_redirect_corpus_finds_nothing() {
    let setup = Setup {
        tables: "[rate_limit]\nlogin_per_minute = 0\ncallback_per_minute = 0\n\n[login_limit]\nmax = 100000\n".into(),
        ..many_domains_setup()
    };
    let h = Harness::with(setup).await;
    let mock = h.mock_addr.to_string();
    let allowed = |u: &str| {
        let u = url::Url::parse(u).unwrap();
        let authority = format!("{}{}", u.host_str().unwrap(), u.port().map(|p| format!(":{p}")).unwrap_or_default());
        authority == PUBLIC_HOST || APP_HOSTS.contains(&authority.as_str()) || authority == mock
    };
    let logged_in = h.many_domains_browser();
    assert_eq!(logged_in.walk("http://mall.test/").await.last().unwrap().status, 200);
    for payload in PAYLOADS {
        let p = encode_component(payload);
        let targets = [
            format!("http://gw.test/.gateway/login?return={p}"),
            format!("http://gw.test/.gateway/login?retry=1&return={p}"),
            format!("http://gw.test/.gateway/logout?return={p}"),
            format!("http://gw.test/.gateway/login?handoff={p}"),
            format!("http://mall.test/.gateway/login?return={p}"),
            format!("http://mall.test/.gateway/logout?return={p}"),
            format!("http://mall.test/.gateway/logout?everywhere=1&return={p}"),
            format!("http://mall.test/.gateway/ticket?ticket={p}"),
        ];
        for target in &targets {
            for b in [&logged_in, &h.many_domains_browser()] {
                for page in b.walk(target).await {
                    assert!(allowed(&page.url), "{payload:?} via {target} reached {}", page.url);
                    if let Some(next) = page.next_url() {
                        assert!(allowed(&next), "{payload:?} via {target} sends to {next}");
                        let redirect_uri = url::Url::parse(&next)
                            .unwrap()
                            .query_pairs()
                            .find(|(k, _)| k == "redirect_uri")
                            .map(|(_, v)| v.into_owned());
                        if let Some(uri) = redirect_uri {
                            assert_eq!(uri, "http://gw.test/.gateway/callback", "{payload:?} via {target}");
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_app_host_or_everywhere() {
    let h = Harness::with(many_domains_setup()).await;
    let b = h.many_domains_browser();
    for host in ["mall.test", "members.test", "spring.campaign.test"] {
        assert_eq!(b.walk(&format!("http://{host}/")).await.last().unwrap().status, 200);
    }
    let reaches = |b: &Browser, url: &'static str| {
        let (h, b) = (&h, b.clone());
        async move {
            let before = h.upstream.seen().len();
            b.get(url).await.status == 200 && h.upstream.seen().len() == before + 1
        }
    };
    let mall = cookie_value(&b.cookies_at("http://mall.test/"), "ogw_session").unwrap();
    let login = cookie_value(&b.cookies_at("http://gw.test/"), "ogw_session").unwrap();

    // Here: this host's session ends (a copy of it too); the others stand.
    let out = b.get("http://mall.test/.gateway/logout?return=/bye").await;
    assert_eq!((out.status, out.location()), (302, "http://mall.test/bye"));
    assert!(!reaches(&b, "http://mall.test/x").await);
    b.set_cookie_at("http://mall.test/", &format!("ogw_session={mall}"));
    assert!(!reaches(&b, "http://mall.test/x").await, "a copy of the ended session still worked");
    assert!(reaches(&b, "http://members.test/x").await && reaches(&b, "http://spring.campaign.test/x").await);

    // Everywhere: through the login host, and every app host's session from that login ends.
    let spring = cookie_value(&b.cookies_at("http://spring.campaign.test/"), "ogw_session").unwrap();
    let pages =
        b.walk_until("http://members.test/.gateway/logout?everywhere=1&return=/bye", |u| u.ends_with("/bye")).await;
    let hops: Vec<String> = pages.iter().map(|p| p.url.clone()).collect();
    assert_eq!(
        hops[1],
        format!("http://gw.test/.gateway/logout?return={}", encode_component("http://members.test/bye"))
    );
    assert_eq!(pages.last().unwrap().next_url().unwrap(), "http://members.test/bye");
    let other = h.many_domains_browser();
    other.set_cookie_at("http://spring.campaign.test/", &format!("ogw_session={spring}"));
    other.set_cookie_at("http://gw.test/", &format!("ogw_session={login}"));
    assert!(!reaches(&other, "http://spring.campaign.test/x").await, "a session handed from the ended login");
    assert!(!reaches(&other, "http://gw.test/x").await, "the login host's session");

    // A new login works everywhere again.
    let before = h.mock.stats().exchanges;
    assert_eq!(b.walk("http://spring.campaign.test/y").await.last().unwrap().status, 200);
    assert_eq!(h.mock.stats().exchanges, before + 1);
    assert!(reaches(&b, "http://spring.campaign.test/z").await);
}

/// A browser that keeps no session cookie anywhere goes round at most `login_limit.max` times,
/// then gets the page explaining why, on the app host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_host_that_keeps_no_session_stops_instead_of_looping() {
    let h = Harness::with(many_domains_setup()).await;
    let store =
        std::sync::Arc::new(Dropping { jar: reqwest::cookie::Jar::default(), drop: vec!["ogw_session".into()] });
    let hosts = [(PUBLIC_HOST, h.gateway_addr), ("mall.test", h.gateway_addr)];
    let client = nav_client_for(WECHAT_UA, &hosts, store);
    let b = Browser {
        client,
        jar: std::sync::Arc::new(reqwest::cookie::Jar::default()),
        origin: "http://mall.test".into(),
    };
    let pages = b.walk("http://mall.test/").await;
    let last = pages.last().unwrap();
    assert_eq!(last.status, 429, "{}", last.body);
    assert!(last.url.starts_with("http://mall.test/") && last.body.contains("Login did not complete"), "{}", last.url);
    assert!(h.mock.stats().authorizes <= 3, "{:?}", h.mock.stats());
}

/// An app host's session never outlives the login host's session it came from (so whatever
/// ends that one ends it too), and a return URL on another port of the app host is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_host_session_ends_with_its_login_host_session() {
    let mut setup = many_domains_setup();
    setup.routes = setup.routes.replace("audience = \"mall\"\n", "audience = \"mall\"\nlifetime = \"30d\"\n");
    let h = Harness::with(setup).await;
    let b = h.many_domains_browser();
    assert_eq!(b.walk("http://gw.test/").await.last().unwrap().status, 200);
    h.clock.advance(6 * 86_400);
    let pages = b.walk("http://mall.test/").await;
    assert_eq!(pages.last().unwrap().status, 200);
    let set = pages.iter().flat_map(Page::set_cookies).find(|c| c.starts_with("ogw_session=")).unwrap();
    assert!(set.contains("Max-Age=86400;"), "not cut to the login host session's day left: {set}");
    h.clock.advance(86_400);
    let before = h.upstream.seen().len();
    b.get("http://mall.test/x").await;
    assert_eq!(h.upstream.seen().len(), before, "outlived the login host session");

    let other_port =
        b.get(&format!("http://mall.test/.gateway/login?return={}", encode_component("http://mall.test:8443/x"))).await;
    assert_refused(&other_port, 400, "跳转");
}

/// A login that replaces the login host's session (a scope upgrade) keeps its family: a logout
/// there still ends the app host sessions handed out before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_after_a_scope_upgrade_still_ends_earlier_app_host_sessions() {
    let mut setup = many_domains_setup();
    setup.routes.push_str(
        "\n[[routes]]\npath = \"/vip\"\nupstream = \"UPSTREAM\"\naudience = \"login-host\"\nscope = \"snsapi_userinfo\"\n",
    );
    let h = Harness::with(setup).await;
    let b = h.many_domains_browser();
    assert_eq!(b.walk("http://mall.test/").await.last().unwrap().status, 200);
    let mall = cookie_value(&b.cookies_at("http://mall.test/"), "ogw_session").unwrap();
    assert_eq!(b.walk("http://gw.test/vip").await.last().unwrap().status, 200);
    assert_eq!(h.mock.stats().exchanges, 2, "the upgrade was a new login");
    assert_eq!(b.get("http://gw.test/.gateway/logout").await.status, 302);
    let copy = h.many_domains_browser();
    copy.set_cookie_at("http://mall.test/", &format!("ogw_session={mall}"));
    let before = h.upstream.seen().len();
    copy.get("http://mall.test/x").await;
    assert_eq!(h.upstream.seen().len(), before, "an app host session outlived the logout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_lives_its_lifetime_to_the_millisecond() {
    let mut setup = many_domains_setup();
    // The first lines of `tables` still belong to `[session]`.
    setup.tables = format!("ticket_lifetime = \"2s\"\n{}", setup.tables);
    let h = Harness::with(setup).await;
    let a = h.many_domains_browser();
    // Issued 0.9 s into a second: whole seconds would end it 1.1 s later.
    h.clock.advance_millis(900);
    let ticket = ticket_url(&a, "http://mall.test/in-time").await;
    h.clock.advance_millis(1999);
    let taken = a.get(&ticket).await;
    assert_eq!((taken.status, taken.location()), (302, "http://mall.test/in-time#"), "{}", taken.body);

    let b = h.many_domains_browser();
    let ticket = ticket_url(&b, "http://mall.test/late").await;
    h.clock.advance_millis(2001);
    assert_refused(&b.get(&ticket).await, 400, "已失效");
}
