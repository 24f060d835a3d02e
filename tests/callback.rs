//! The callback: state checks, double callbacks, replays, and every class of WeChat error.

mod common;

use common::*;
use openid_gateway::dev::mock_wechat::Fault;

/// Starts a login and returns the callback URL WeChat sends the browser to.
async fn callback_url(h: &Harness, b: &Browser, path: &str) -> String {
    b.callback_url(&h.url(path)).await
}

fn replace_param(url: &str, key: &str, value: Option<&str>) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            match (k == key, value) {
                (true, Some(new)) => {
                    q.append_pair(k, new);
                }
                (true, None) => {}
                (false, _) => {
                    q.append_pair(k, v);
                }
            }
        }
    }
    u.to_string()
}

fn assert_page(p: &Page, status: u16, zh: &str, en: &str) {
    assert_eq!(p.status, status, "{}", p.body);
    assert!(p.headers.get("location").is_none(), "an error page never redirects");
    let (z, e) = (p.body.find(zh), p.body.find(en));
    assert!(z.is_some() && e.is_some(), "page lacks {zh:?} / {en:?}: {}", p.body);
    assert!(z < e, "Chinese comes first");
    assert!(p.body.contains("Request ID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_state_gets_a_400_page_offering_a_new_login() {
    let h = Harness::start().await;
    let b = h.browser();
    let cb = callback_url(&h, &b, "/orders").await;
    for bad in [replace_param(&cb, "state", Some("AAAAAAAA")), replace_param(&cb, "state", None)] {
        let p = b.get(&bad).await;
        assert_page(&p, 400, "登录校验失败", "Login check failed");
        assert!(p.body.contains("href=\"/orders\""), "offers to start again at the original page");
    }
    assert_eq!(h.mock.stats().exchanges, 0, "a bad state never reaches WeChat");
    // The real callback still works afterwards.
    assert_eq!(b.get(&cb).await.location(), "/orders#");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_login_cookie_or_code() {
    let h = Harness::start().await;
    let b = h.browser();
    let cb = callback_url(&h, &b, "/x").await;
    let stranger = h.browser();
    let p = stranger.get(&h.url("/.gateway/callback?code=nope&state=abc")).await;
    assert_page(&p, 400, "登录没有成功", "Login did not complete");
    assert!(p.body.contains("Cookie"), "names the likely causes");
    let p = b.get(&replace_param(&cb, "code", None)).await;
    assert_page(&p, 400, "未获得授权", "Authorization not given");
    assert_eq!(h.mock.stats().exchanges, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callbacks_with_one_code_make_one_exchange_and_both_tabs_log_in() {
    let h = Harness::start().await;
    let b = h.browser();
    let cb = callback_url(&h, &b, "/tab").await;
    // WeChat re-issues the callback with extra parameters while the first is in flight.
    h.mock.inject(Fault::Slow(std::time::Duration::from_millis(300)));
    let reissued = format!("{cb}&uin=MTIzNDU2&key=abc&pass_ticket=xyz");
    let (first, second) = tokio::join!(b.get(&cb), b.get(&reissued));
    for p in [&first, &second] {
        assert_eq!(p.status, 302, "{}", p.body);
        assert_eq!(p.location(), "/tab#");
        assert!(p.set_cookies().iter().any(|c| c.starts_with("ogw_session=")));
    }
    assert_eq!(h.mock.stats().exchanges, 1);
    // Back button or refresh replays the callback later: same browser, same outcome.
    let replay = b.get(&cb).await;
    assert_eq!(replay.location(), "/tab#");
    assert_eq!(h.mock.stats().exchanges, 1);
    assert_eq!(b.get(&h.url("/tab")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_code_from_another_browser_restarts_that_browsers_login() {
    let h = Harness::start().await;
    let a = h.browser();
    let cb = callback_url(&h, &a, "/shared").await;
    assert_eq!(a.get(&cb).await.status, 302);
    let other = h.browser();
    let p = other.get(&cb).await;
    assert_eq!(p.status, 302);
    assert!(p.location().starts_with(&h.mock_url("/connect/oauth2/authorize?")), "restarted: {}", p.location());
    assert_eq!(h.mock.stats().exchanges, 1, "the used code is never exchanged again");
    // Following it logs the other browser in as itself.
    let pages = other.walk(p.location()).await;
    assert_eq!(pages.last().unwrap().status, 200);
    assert_eq!(h.mock.stats().exchanges, 2);
}

/// Runs one login whose exchange meets `fault`, and returns the callback's page.
async fn login_meeting(h: &Harness, fault: Option<Fault>) -> Page {
    let b = h.browser();
    let cb = callback_url(h, &b, "/pay").await;
    if let Some(f) = fault {
        h.mock.inject(f);
    }
    let page = b.get(&cb).await;
    // Whatever happened, there is no session and no loop: the page is final.
    assert!(page.set_cookies().iter().all(|c| !c.starts_with("ogw_session=")));
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_errcode_class_has_its_own_outcome() {
    let h = Harness::with(Setup { wechat: "timeout = \"400ms\"\n".into(), ..Setup::default() }).await;
    for fault in [Fault::Errcode(-1), Fault::Errcode(45011), Fault::Http500, Fault::Malformed, Fault::Errcode(99999)] {
        let p = login_meeting(&h, Some(fault.clone())).await;
        assert_page(&p, 503, "微信暂时繁忙", "WeChat is busy");
        assert!(p.body.contains("href=\"/pay\""), "{fault:?}: offers a retry");
    }
    let p = login_meeting(&h, Some(Fault::Slow(std::time::Duration::from_millis(1500)))).await;
    assert_page(&p, 503, "微信暂时繁忙", "WeChat is busy");
    for code in [40029, 40163, 42003] {
        let p = login_meeting(&h, Some(Fault::Errcode(code))).await;
        assert_page(&p, 400, "登录链接已失效", "Login link expired");
    }
    for code in [40013, 40125, 41002, 41004, 40002, 40164, 48001] {
        let p = login_meeting(&h, Some(Fault::Errcode(code))).await;
        assert_page(&p, 500, "登录服务配置有误", "Login is misconfigured");
        assert!(!p.body.contains("href="), "{code}: retrying cannot help");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_rejections_from_the_mock() {
    // The gateway's secret is not the one the mock expects: 40125.
    let h = Harness::with(Setup { mock_secret: "another-secret".into(), ..Setup::default() }).await;
    let p = login_meeting(&h, None).await;
    assert_page(&p, 500, "登录服务配置有误", "Login is misconfigured");

    // A code that outlived its five minutes: 40029.
    let h = Harness::start().await;
    let b = h.browser();
    let cb = callback_url(&h, &b, "/late").await;
    h.clock.advance(301);
    let p = b.get(&cb).await;
    assert_page(&p, 400, "登录链接已失效", "Login link expired");
    // The retry link starts a fresh login that works.
    let pages = b.walk(&h.url("/late")).await;
    assert_eq!(pages.last().unwrap().status, 200);
}
