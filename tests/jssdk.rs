//! `wx.config` for pages behind the gateway, and the account's token for backends, with the
//! memory backend: the signature verifies at the mock WeChat (which checks it as the JS-SDK
//! does) and against a computation of the rule written here; only the asking host's own pages
//! are signed; apps of one account share one token and one ticket; refusals of WeChat are
//! reported, paused and healed as they should be; the admin endpoints need `admin.token`.

mod common;

use std::net::IpAddr;

use common::*;
use openid_gateway::serve::admin::AdminApp;
use openid_gateway::serve::server::{start_on, Running};
use pingora::services::listening::Service as ListeningService;
use serde_json::Value;

const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

/// The standard setup with `[admin] token`, `[wechat]` extra lines and its admin listener.
async fn start(wechat: &str) -> (Harness, Running) {
    let setup = Setup {
        wechat: wechat.into(),
        tables: "[admin]\ntoken = { file = \"admin.token\" }\n".into(),
        ..Setup::default()
    };
    let h = Harness::with_files(setup, &[("admin.token", ADMIN_TOKEN)]).await;
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    (h, admin)
}

/// `GET <prefix>/jssdk/config?url=<page>` on `host`, as jssdk.js asks (a same-origin fetch).
async fn config(h: &Harness, host: &str, page: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let b = browser(WECHAT_UA, host, h.gateway_addr);
    let url = format!("http://{host}/.gateway/jssdk/config?url={}", urlencode(page));
    let mut all: Vec<(&str, &str)> = vec![("accept", "application/json")];
    if !headers.iter().any(|(k, _)| *k == "sec-fetch-site") {
        all.push(("sec-fetch-site", "same-origin"));
    }
    all.extend_from_slice(headers);
    let p = b.get_with(&url, &all).await;
    (p.status, serde_json::from_str(&p.body).unwrap_or(Value::Null))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// SHA-1 hex of `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, written out here.
fn expected_signature(ticket: &str, c: &Value) -> String {
    let text = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={}",
        c["nonceStr"].as_str().unwrap(),
        c["timestamp"].as_u64().unwrap(),
        c["url"].as_str().unwrap()
    );
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the mock WeChat says of `c` for the page `url`, checked as the JS-SDK checks it.
async fn wechat_says(h: &Harness, c: &Value, url: &str) -> String {
    jssdk_verdict(&h.mock_url(""), c, url).await
}

async fn admin_get(admin: &Running, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", admin.url()));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn admin_refresh(admin: &Running, stale: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/wechat/access_token/refresh", admin.url()))
        .bearer_auth(ADMIN_TOKEN)
        .body(serde_json::json!({ "appid": APPID, "access_token": stale }).to_string())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// The ticket WeChat gives `token` (the one the gateway got for it: a ticket is bound to its
/// token).
async fn ticket_of(h: &Harness, token: &str) -> String {
    let url = h.mock_url(&format!("/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"));
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    body["ticket"].as_str().unwrap_or_else(|| panic!("no ticket: {body}")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_query_and_a_hash_route_gets_a_signature_that_verifies() {
    let (h, admin) = start("").await;
    let page = "http://gw.test/shop/list?cat=%E4%B9%A6&sort=new";
    let (status, c) = config(&h, PUBLIC_HOST, &format!("{page}#/item/7?from=share"), &[]).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["appId"], APPID);
    assert_eq!(c["url"], page, "signed without the fragment, as the browser has it");
    assert_eq!(wechat_says(&h, &c, page).await, "config:ok");

    let (status, t) = admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{t}");
    let token = t["access_token"].as_str().unwrap();
    assert!(h.mock.token_valid(token));
    let expires_in = t["expires_in"].as_u64().unwrap();
    assert!((7000..=7200).contains(&expires_in), "{expires_in}");
    assert_eq!(c["signature"].as_str().unwrap(), expected_signature(&ticket_of(&h, token).await, &c));

    // Many pages, one token and one ticket.
    for i in 0..5 {
        let (status, c) = config(&h, PUBLIC_HOST, &format!("http://gw.test/p{i}"), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(wechat_says(&h, &c, &format!("http://gw.test/p{i}")).await, "config:ok");
    }
    let s = h.mock.stats();
    assert_eq!((s.stable_calls, s.tokens_issued, s.token_calls), (1, 1, 0), "{s:?}");

    // A signature is for the page it was asked for.
    assert_eq!(wechat_says(&h, &c, "http://gw.test/shop/list").await, "config:invalid signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_asking_hosts_own_pages_are_signed_and_other_sites_are_refused() {
    let (h, _admin) = start("").await;
    let refused = |status: u16, c: &Value, code: &str| {
        assert_eq!(c["error"], code, "{c}");
        assert!(!c["message"].as_str().unwrap_or_default().is_empty(), "{c}: says why");
        assert!(c.get("signature").is_none());
        status
    };
    for page in [
        "http://evil.test/",
        "https://gw.test.evil.test/",
        "http://user@gw.test/",
        "/relative/page",
        "javascript:alert(1)",
        "http://gw.test/a b",
    ] {
        let (status, c) = config(&h, PUBLIC_HOST, page, &[]).await;
        assert_eq!(refused(status, &c, "url_refused"), 400, "{page}");
    }
    // The route serves any host, but the gateway serves gw.test for the account: a page on a
    // host pointed at it is not signed, even asked from that host.
    let (status, c) = config(&h, "evil.test", "http://evil.test/", &[]).await;
    assert_eq!(refused(status, &c, "url_refused"), 400);
    // A caller from another site.
    for headers in
        [[("sec-fetch-site", "cross-site")], [("origin", "http://evil.test")], [("referer", "http://evil.test/page")]]
    {
        let (status, c) = config(&h, PUBLIC_HOST, "http://gw.test/", &headers).await;
        assert_eq!(refused(status, &c, "cross_site"), 403, "{headers:?}");
    }
    // No url at all.
    let b = h.browser();
    let p = b.get_with(&h.url("/.gateway/jssdk/config"), &[("accept", "application/json")]).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert_eq!(h.mock.stats().stable_calls, 0, "nothing refused asked WeChat for anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_of_one_account_share_one_token_and_one_ticket() {
    let apps = "[[apps]]\nname = \"mall\"\npublic_url = \"http://gw.test\"\n\
                [apps.wechat]\nappid = \"APPID\"\nsecret = { file = \"wechat.secret\" }\n\
                authorize_url = \"MOCK/connect/oauth2/authorize\"\napi_base = \"MOCK\"\n\n\
                [[apps]]\nname = \"campaign\"\npublic_url = \"http://spring.test\"\n\
                [apps.wechat]\nappid = \"APPID\"\nsecret = { file = \"wechat.secret\" }\n\
                authorize_url = \"MOCK/connect/oauth2/authorize\"\napi_base = \"MOCK\"\n"
        .replace("APPID", APPID);
    let routes = "[[routes]]\nhost = \"gw.test\"\nupstream = \"UPSTREAM\"\naudience = \"mall\"\napp = \"mall\"\n\n\
                  [[routes]]\nhost = \"spring.test\"\nupstream = \"UPSTREAM\"\naudience = \"spring\"\napp = \"campaign\"\n";
    let setup = Setup {
        apps: Some(apps),
        routes: routes.into(),
        tables: "[admin]\ntoken = { file = \"admin.token\" }\n".into(),
        ..Setup::default()
    };
    let h = Harness::with_files(setup, &[("admin.token", ADMIN_TOKEN)]).await;
    let admin = start_on(ListeningService::new("admin".into(), AdminApp::new(h.live.clone())), listener()).unwrap();
    let asks = (0..8).map(|i| {
        let (host, page) =
            if i % 2 == 0 { ("gw.test", "http://gw.test/x") } else { ("spring.test", "http://spring.test/y") };
        let h = &h;
        async move { (page, config(h, host, page, &[]).await) }
    });
    let answers = join_all(asks.collect()).await;
    let s = h.mock.stats();
    assert_eq!((s.tokens_issued, s.tickets_issued), (1, 1), "{s:?}");
    let (_, t) = admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await;
    let ticket = ticket_of(&h, t["access_token"].as_str().unwrap()).await;
    for (page, (status, c)) in answers {
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["signature"].as_str().unwrap(), expected_signature(&ticket, &c), "{page}");
        // The mock's JS接口安全域名 is gw.test only.
        if page.starts_with("http://gw.test/") {
            assert_eq!(wechat_says(&h, &c, page).await, "config:ok", "{page}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_reported_with_what_to_do_and_never_retried_in_a_loop() {
    let (h, admin) = start("").await;
    let readyz = || async { admin_get(&admin, "/readyz", None).await.1 };
    let metrics = || async { reqwest::get(format!("{}/metrics", admin.url())).await.unwrap().text().await.unwrap() };
    assert_eq!(readyz().await["wechat"][0]["status"], "ok");

    // This server is not on the account's IP allow-list.
    h.mock.set_allowed_ips(Some(vec!["10.9.8.7".parse::<IpAddr>().unwrap()]));
    for _ in 0..5 {
        let (status, c) = config(&h, PUBLIC_HOST, "http://gw.test/", &[]).await;
        assert_eq!((status, c["error"].as_str()), (503, Some("credentials_unavailable")), "{c}");
        assert!(c["message"].as_str().unwrap().contains("40164"), "{c}");
    }
    assert_eq!(h.mock.stats().stable_calls, 1, "one refusal, then a pause: no loop of retries");
    let r = readyz().await;
    assert_eq!(r["ready"], true, "logins still work: degraded, not unready");
    let w = &r["wechat"][0];
    assert_eq!((w["appid"].as_str(), w["status"].as_str()), (Some(APPID), Some("degraded")), "{r}");
    assert_eq!(w["errors"][0]["errcode"], 40164, "{r}");
    assert!(w["errors"][0]["error"].as_str().unwrap().contains("IP白名单"), "{r}: says what to do");
    let m = metrics().await;
    assert!(m.contains(&format!("ogw_wechat_credential_degraded{{appid=\"{APPID}\"}} 1")), "{m}");
    assert!(m.contains("result=\"40164\"} 1"), "{m}");

    // After the pause, WeChat is asked again; once allowed, everything heals.
    h.mock.set_allowed_ips(None);
    h.clock.advance(6);
    let (status, c) = config(&h, PUBLIC_HOST, "http://gw.test/", &[]).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(readyz().await["wechat"][0]["status"], "ok");
    assert!(metrics().await.contains(&format!("ogw_wechat_credential_degraded{{appid=\"{APPID}\"}} 0")));

    // Quota, secret and busy answers to a refresh are reported the same way.
    for code in [45009, 40125, 40013, -1] {
        h.mock.invalidate_tokens();
        let stale = admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await.1["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        h.clock.advance(400);
        h.mock.inject_credential_fault(code);
        let (status, body) = admin_refresh(&admin, &stale).await;
        assert_eq!(status, 503, "{code}: {body}");
        assert!(body["message"].as_str().unwrap().contains(&code.to_string()), "{body}");
        assert_eq!(readyz().await["wechat"][0]["errors"][0]["errcode"], code);
        h.clock.advance(400);
        let (status, body) = admin_refresh(&admin, &stale).await;
        assert_eq!(status, 200, "{code}: healed after the pause: {body}");
        assert_eq!(body["refreshed"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_healed_by_exactly_one_refresh() {
    // cgi-bin/token: every call replaces the token, so every extra call would show.
    let (h, admin) = start("token_api = \"token\"\n").await;
    let (_, c) = config(&h, PUBLIC_HOST, "http://gw.test/", &[]).await;
    assert_eq!(wechat_says(&h, &c, "http://gw.test/").await, "config:ok");
    let old = admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!((h.mock.stats().token_calls, h.mock.stats().tickets_issued), (1, 1));

    // Another server reset the account's tokens: backends see 40001 and report it, all at once.
    h.mock.invalidate_tokens();
    assert!(!h.mock.token_valid(&old));
    let reports = (0..6).map(|_| admin_refresh(&admin, &old));
    let answers = join_all(reports.collect()).await;
    let new = answers[0].1["access_token"].as_str().unwrap().to_string();
    for (status, body) in &answers {
        assert_eq!((*status, body["access_token"].as_str()), (200, Some(new.as_str())), "{body}");
    }
    assert_eq!(answers.iter().filter(|(_, b)| b["refreshed"] == true).count(), 1, "{answers:?}");
    assert!(h.mock.token_valid(&new) && new != old);
    assert_eq!(h.mock.stats().token_calls, 2, "exactly one refresh");
    // A report of the old token again changes nothing.
    let (_, again) = admin_refresh(&admin, &old).await;
    assert_eq!((again["access_token"].as_str(), again["refreshed"].as_bool()), (Some(new.as_str()), Some(false)));
    assert_eq!(h.mock.stats().token_calls, 2);

    // The ticket follows its token.
    let (_, c) = config(&h, PUBLIC_HOST, "http://gw.test/after", &[]).await;
    assert_eq!(wechat_says(&h, &c, "http://gw.test/after").await, "config:ok");
    assert_eq!(h.mock.stats().tickets_issued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_refused_for_its_token_heals_the_token_once() {
    let (h, admin) = start("").await;
    // A backend took the token before any page asked for a ticket.
    let (_, t) = admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await;
    let old = t["access_token"].as_str().unwrap().to_string();
    // The token dies at WeChat (another server forced a refresh): the ticket's fetch is refused
    // with 40001; the token is refreshed once and the ticket fetched with the new one.
    h.mock.invalidate_tokens();
    let before = h.mock.stats();
    let (status, c) = config(&h, PUBLIC_HOST, "http://gw.test/", &[]).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(wechat_says(&h, &c, "http://gw.test/").await, "config:ok");
    let after = h.mock.stats();
    assert_eq!(after.tokens_issued - before.tokens_issued, 1, "{before:?} {after:?}");
    assert_eq!(after.tickets_issued - before.tickets_issued, 1, "{before:?} {after:?}");
    let (_, t) = admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await;
    assert_ne!(t["access_token"].as_str().unwrap(), old);
    let m = reqwest::get(format!("{}/metrics", admin.url())).await.unwrap().text().await.unwrap();
    assert!(m.contains(&format!("ogw_wechat_token_heals_total{{appid=\"{APPID}\",result=\"refreshed\"}} 1")), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_token_needs_the_admin_token() {
    let (h, admin) = start("").await;
    assert_eq!(admin_get(&admin, "/wechat/access_token", None).await.0, 403);
    assert_eq!(admin_get(&admin, "/wechat/access_token", Some("wrong")).await.0, 403);
    let (status, body) = admin_get(&admin, &format!("/wechat/access_token?appid={APPID}"), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert!(h.mock.token_valid(body["access_token"].as_str().unwrap()));
    assert_eq!(admin_get(&admin, "/wechat/access_token?appid=wxother", Some(ADMIN_TOKEN)).await.0, 404);
    // A browser's request is never an operator's, whatever it carries.
    let res = reqwest::Client::new()
        .get(format!("{}/wechat/access_token", admin.url()))
        .bearer_auth(ADMIN_TOKEN)
        .header("origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Refresh is a POST with a JSON body naming the stale token.
    let bad = reqwest::Client::new()
        .post(format!("{}/wechat/access_token/refresh", admin.url()))
        .bearer_auth(ADMIN_TOKEN)
        .body("access_token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(admin_get(&admin, "/wechat/access_token/refresh", Some(ADMIN_TOKEN)).await.0, 405);

    // Without admin.token configured, nobody gets the token, not even loopback.
    let h2 = Harness::start().await;
    let admin2 = start_on(ListeningService::new("admin".into(), AdminApp::new(h2.live.clone())), listener()).unwrap();
    let (status, body) = admin_get(&admin2, "/wechat/access_token", None).await;
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("admin.token"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_replaced_by_force_only_when_wechat_refuses_it_and_within_the_limits() {
    let (h, admin) = start("").await;
    let token = |b: &Value| b["access_token"].as_str().unwrap().to_string();
    let first = token(&admin_get(&admin, "/wechat/access_token", Some(ADMIN_TOKEN)).await.1);

    // A backend reports a token WeChat still takes (its call failed for another reason):
    // checked with one cheap call, kept.
    let (status, b) = admin_refresh(&admin, &first).await;
    assert_eq!((status, token(&b), b["refreshed"].as_bool()), (200, first.clone(), Some(false)), "{b}");
    let s = h.mock.stats();
    assert_eq!((s.token_checks, s.forced_refreshes), (1, 0), "{s:?}");
    assert!(h.mock.token_valid(&first));

    // WeChat refuses it on use while stable_token still answers it: replaced by force.
    h.mock.inject_check_fault(40001);
    let (_, b) = admin_refresh(&admin, &first).await;
    let second = token(&b);
    assert_eq!(b["refreshed"], true, "{b}");
    assert!(second != first && h.mock.token_valid(&second) && !h.mock.token_valid(&first));
    assert_eq!(h.mock.stats().forced_refreshes, 1);

    // The same again within 30 s: not forced (WeChat would ignore it, and allows 20 a day).
    h.mock.inject_check_fault(40001);
    let (_, b) = admin_refresh(&admin, &second).await;
    assert_eq!((token(&b), b["refreshed"].as_bool()), (second.clone(), Some(false)), "{b}");
    assert_eq!(h.mock.stats().forced_refreshes, 1);
    let m = reqwest::get(format!("{}/metrics", admin.url())).await.unwrap().text().await.unwrap();
    assert!(m.contains(&format!("ogw_wechat_token_heals_total{{appid=\"{APPID}\",result=\"too_soon\"}} 1")), "{m}");

    // Past the 30 s: once more.
    h.clock.advance(31);
    h.mock.inject_check_fault(40001);
    let (_, b) = admin_refresh(&admin, &second).await;
    assert_eq!(b["refreshed"], true, "{b}");
    assert_eq!(h.mock.stats().forced_refreshes, 2);
}
