//! What a real WeChat H5 app runs into: hash routes, desktop browsers, API calls, loops,
//! and the pages the gateway shows for them.

mod common;

use common::*;
use openid_gateway::pages::h5::qr_svg;
use openid_gateway::wechat::authorize::encode_component;

fn setup_routes(routes: &str) -> Setup {
    Setup { routes: routes.replace("UP", "UPSTREAM"), ..Setup::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fragment_survives_login() {
    let h = Harness::start().await;
    let b = h.browser();
    // The page: script that adds location.hash to the return URL, and a fallback without it.
    let page = b.get(&h.url("/app/")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(
        "location.replace(\"http://gw.test/.gateway/login?return=\"+encodeURIComponent(\"/app/\"+location.hash))"
    ));
    assert!(page.body.contains(
        "<noscript><meta http-equiv=\"refresh\" content=\"0;url=http://gw.test/.gateway/login?return=%2Fapp%2F\">"
    ));
    assert!(page.set_cookies().is_empty(), "the page itself needs no cookie");

    // What the script does: ask to return to /app/#/order/42.
    let login = format!("{}{}", h.url("/.gateway/login?return="), encode_component("/app/#/order/42"));
    let cb = b.callback_url(&login).await;
    let back = b.get(&cb).await;
    assert_eq!(back.location(), "/app/#/order/42");
    assert_eq!(b.get(&h.url("/app/")).await.status, 200);
    assert_eq!(h.upstream.last().path, "/app/", "the fragment never reaches a server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fragment_keeping_the_redirect_is_direct() {
    let h = Harness::with(setup_routes(
        "[[routes]]\npath = \"/\"\nupstream = \"UP\"\naudience = \"shop\"\nkeep_fragment = false\n",
    ))
    .await;
    let p = h.browser().get(&h.url("/a?b=1")).await;
    assert_eq!(p.status, 302);
    assert!(p.location().starts_with(&h.mock_url("/connect/oauth2/authorize?")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_browsers_get_a_qr_page_or_what_the_route_says() {
    let h = Harness::with(setup_routes(
        "[[routes]]\npath = \"/\"\nupstream = \"UP\"\naudience = \"shop\"\n\n\
         [[routes]]\npath = \"/pass\"\nupstream = \"UP\"\naudience = \"shop\"\nnon_wechat = \"pass\"\n\n\
         [[routes]]\npath = \"/login\"\nupstream = \"UP\"\naudience = \"shop\"\nnon_wechat = \"login\"\n",
    ))
    .await;
    let desktop = h.browser_with_ua(DESKTOP_UA);
    let qr = desktop.get(&h.url("/order?id=7")).await;
    assert_eq!(qr.status, 200);
    assert!(qr.body.find("请在微信中打开").unwrap() < qr.body.find("Open in WeChat").unwrap());
    assert!(qr.body.contains(&qr_svg("http://gw.test/order?id=7")), "a QR code of the URL asked for");
    assert!(h.upstream.seen().is_empty());

    let pass = desktop.get_with(&h.url("/pass/x"), &[("X-Openid-Token", "forged")]).await;
    assert_eq!(pass.status, 200);
    assert!(h.upstream.last().headers.get("x-openid-token").is_none(), "forwarded without identity");

    // `login`: sent into the login anyway (the strict mock then refuses a desktop browser).
    let pages = desktop.walk(&h.url("/login/x")).await;
    assert!(pages.iter().any(|p| p.location().starts_with(&h.mock_url("/connect/oauth2/authorize?"))));
    assert!(pages.last().unwrap().body.contains("请在微信客户端打开链接"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_get_401_json_with_a_login_url() {
    let h = Harness::start().await;
    let b = h.browser();
    for headers in [
        vec![("Sec-Fetch-Mode", "cors"), ("Accept", "*/*")],
        vec![("Accept", "application/json")],
        vec![("X-Requested-With", "XMLHttpRequest"), ("Accept", "text/html")],
    ] {
        let mut all = headers.clone();
        all.push(("Referer", "http://gw.test/shop/#/cart"));
        let p = b.get_with(&h.url("/api/orders"), &all).await;
        assert_eq!(p.status, 401, "{headers:?}");
        let json: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        let expected =
            format!("http://gw.test/.gateway/login?return={}", encode_component("http://gw.test/shop/#/cart"));
        assert_eq!(json["error"], "login_required");
        assert_eq!(json["login_url"], expected, "returns to the page that made the call");
        assert_eq!(p.headers["x-login-url"].to_str().unwrap(), expected);
    }
    // A foreign Referer is not a return target: the API URL itself is.
    let p = b.get_with(&h.url("/api/x"), &[("Accept", "application/json"), ("Referer", "https://evil.example/")]).await;
    let json: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(json["login_url"], format!("http://gw.test/.gateway/login?return={}", encode_component("/api/x")));
    assert_eq!(h.mock.stats().authorizes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_loses_its_session_cookie_stops_after_n_tries() {
    let h =
        Harness::with(Setup { tables: "[login_limit]\nmax = 3\nwindow = \"60s\"\n".into(), ..Setup::default() }).await;
    let b = h.browser_dropping(&["ogw_session"]);
    // Left alone, the browser loops by itself: page, login, WeChat, callback, page, ...
    let pages = b.walk(&h.url("/loop")).await;
    let page = pages.last().unwrap();
    assert_eq!(page.status, 429, "the loop breaker ends the walk");
    assert!(page.body.find("登录没有成功").unwrap() < page.body.find("Login did not complete").unwrap());
    assert!(page.body.contains("Cookie") && page.body.contains("public_url") && page.body.contains("Secure"));
    assert!(h.mock.stats().authorizes <= 3, "at most N trips to WeChat: {:?}", h.mock.stats());
    assert_eq!(h.mock.stats().authorizes, 3);

    // The page's retry link starts one more login.
    let retry =
        page.body.split("class=\"btn\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert!(retry.contains("retry=1"));
    let again = b.get(&retry).await;
    assert_eq!(again.status, 302);
    assert!(again.location().starts_with(&h.mock_url("/connect/oauth2/authorize?")));

    // The window ends: logins may start again.
    h.clock.advance(61);
    let fresh = b.walk(&h.url("/loop")).await;
    assert!(fresh.iter().any(|p| p.location().starts_with(&h.mock_url("/connect/"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_cookies_sees_the_loop_page_at_once() {
    let h = Harness::start().await;
    let b = h.browser_dropping(&["*"]);
    let pages = b.walk(&h.url("/x")).await;
    let end = pages.last().unwrap();
    assert_eq!(end.status, 400);
    assert!(end.body.contains("登录没有成功"));
    assert_eq!(h.mock.stats().authorizes, 1);
    assert_eq!(h.mock.stats().exchanges, 0);
}

/// Every page the gateway serves by itself: Chinese first, a phone viewport, no external
/// assets, a request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_page_is_bilingual_phone_sized_self_contained_with_a_request_id() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let h = Harness::with(setup_routes(&format!(
        "[[routes]]\npath = \"/\"\nupstream = \"UP\"\naudience = \"shop\"\n\n\
         [[routes]]\npath = \"/down\"\nupstream = \"http://{closed}\"\naudience = \"shop\"\npolicy = \"public\"\n"
    )))
    .await;
    let b = h.browser();
    let desktop = h.browser_with_ua(DESKTOP_UA);
    let pages = vec![
        b.get(&h.url("/x")).await,                                     // fragment page
        desktop.get(&h.url("/x")).await,                               // QR page
        b.get(&h.url("/.gateway/callback?code=a&state=b")).await,      // no login cookie
        b.get(&h.url("/.gateway/nothing")).await,                      // 404
        b.get(&h.url("/.gateway/logout?return=//evil.example")).await, // refused return
        b.get(&h.url("/down")).await,                                  // 502
    ];
    for p in pages {
        assert!(p.body.contains("请求编号 / Request ID"), "{}: {}", p.url, p.body);
        assert!(p.body.contains("name=\"viewport\" content=\"width=device-width,initial-scale=1\""), "{}", p.url);
        assert!(
            !p.body.contains("src=\"http") && !p.body.contains("<link") && !p.body.contains("url(http"),
            "{}",
            p.url
        );
        assert!(p.body.contains("lang=\"zh-CN\""));
        let h1 = p.body.split("<h1>").nth(1).unwrap_or("");
        assert!(h1.chars().next().is_some_and(|c| !c.is_ascii()), "{}: Chinese title first", p.url);
        assert!(p.headers.get("x-request-id").is_some());
    }
}
