//! A WeCom app behind the gateway, against the mock's corp: members and outsiders log in
//! silently in WeCom's browser and reach the app with a verified token that says who they
//! are; a members-only route refuses outsiders; plain WeChat is not WeCom's browser; the
//! corp token is fetched once, refreshed once when WeCom drops it, and a server outside the
//! corp's trusted IPs gets a page and an operator message that say so.

mod common;

use common::*;
use openid_gateway::wechat::Subject;

const STAFF_ROUTES: &str =
    "[[routes]]\npath = \"/staff\"\nupstream = \"UPSTREAM\"\naudience = \"staff\"\nmembers_only = true\n\n\
     [[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"tools\"\n";

async fn wecom(routes: Option<&str>) -> Harness {
    let mut setup = wecom_setup("");
    if let Some(r) = routes {
        setup.routes = r.into();
    }
    Harness::with(setup).await
}

/// A WeCom browser whose later logins at the mock are `user`'s.
async fn wecom_browser(h: &Harness, user: &str) -> Browser {
    let b = h.browser_with_ua(WECOM_UA);
    assert_eq!(b.get(&h.mock_url(&format!("/mock/login-as?user={user}"))).await.status, 200);
    b
}

#[tokio::test]
async fn a_member_and_an_outsider_log_in_and_the_token_says_which() {
    let h = wecom(None).await;
    let alice = wecom_browser(&h, "alice").await;
    let pages = alice.walk(&h.url("/orders?id=7")).await;
    let to_wecom = pages.iter().find(|p| p.location().contains("/connect/oauth2/authorize")).expect("sent to WeCom");
    let authorize = to_wecom.location();
    assert!(authorize.contains(&format!("appid={CORPID}&redirect_uri=")), "{authorize}");
    assert!(authorize.ends_with(&format!("&agentid={AGENTID}#wechat_redirect")), "{authorize}");
    let last = pages.last().unwrap();
    assert_eq!((last.status, h.upstream.last().path.as_str()), (200, "/orders?id=7"), "{pages:?}");
    let c = claims(&h.last_token());
    assert_eq!((c.sub.as_str(), c.provider.as_str(), c.sub_type), ("alice", "wecom", Subject::Member));
    assert_eq!((c.corpid.as_deref(), c.member, c.appid.as_str()), (Some(CORPID), Some(true), CORPID));
    assert_eq!(c.external_userid, None);

    let bob = wecom_browser(&h, "bob").await;
    assert_eq!(bob.walk(&h.url("/")).await.last().unwrap().status, 200);
    let c = claims(&h.last_token());
    let openid = h.mock.corp_openid_for("bob").unwrap();
    assert_eq!((c.sub.as_str(), c.sub_type, c.member), (openid.as_str(), Subject::Outsider, Some(false)));
    assert_eq!(c.external_userid, Some(openid_gateway::dev::mock_wechat::external_userid(CORPID, "bob")));

    // One corp token served both logins.
    let s = h.mock.stats();
    assert_eq!((s.corp_token_calls, s.corp_tokens_issued, s.corp_userinfo_calls), (1, 1, 2), "{s:?}");
}

#[tokio::test]
async fn a_members_only_route_refuses_the_outsider() {
    let h = wecom(Some(STAFF_ROUTES)).await;
    let alice = wecom_browser(&h, "alice").await;
    assert_eq!(alice.walk(&h.url("/staff/stock")).await.last().unwrap().status, 200);
    assert_eq!(claims(&h.last_token()).aud, "staff");

    let bob = wecom_browser(&h, "bob").await;
    let before = h.upstream.seen().len();
    let last = bob.walk(&h.url("/staff/stock")).await.pop().unwrap();
    assert_eq!(last.status, 403, "{}", last.body);
    assert!(last.body.contains("仅限企业成员") && last.body.contains("Members only"), "{}", last.body);
    let json = bob.get_with(&h.url("/staff/stock"), &[("accept", "application/json")]).await;
    assert_eq!(json.status, 403);
    assert!(json.body.contains("\"members_only\""), "{}", json.body);
    assert_eq!(h.upstream.seen().len(), before, "the upstream never saw the outsider");
    // The rest of the tool is open to them.
    assert_eq!(bob.get(&h.url("/wiki")).await.status, 200);
}

#[tokio::test]
async fn plain_wechat_is_not_wecoms_browser() {
    let h = wecom(None).await;
    let page = h.browser().get(&h.url("/")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("请在企业微信中打开") && page.body.contains("Open in WeCom"), "{}", page.body);
    assert_eq!(h.mock.stats().authorizes, 0);
}

#[tokio::test]
async fn a_corp_token_wecom_dropped_is_refreshed_once_and_the_login_goes_on() {
    let h = wecom(None).await;
    let alice = wecom_browser(&h, "alice").await;
    assert_eq!(alice.walk(&h.url("/")).await.last().unwrap().status, 200);
    h.mock.invalidate_corp_token();
    let bob = wecom_browser(&h, "bob").await;
    assert_eq!(bob.walk(&h.url("/")).await.last().unwrap().status, 200);
    let s = h.mock.stats();
    assert_eq!((s.corp_tokens_issued, s.corp_userinfo_calls), (2, 3), "{s:?}");
}

#[tokio::test]
async fn a_server_outside_the_trusted_ips_is_told_so() {
    let h = wecom(None).await;
    h.mock.set_corp_trusted_ips(Some(vec!["10.9.9.9".parse().unwrap()]));
    let alice = wecom_browser(&h, "alice").await;
    let last = alice.walk(&h.url("/")).await.pop().unwrap();
    assert_eq!(last.status, 500, "{}", last.body);
    let json = alice.get_with(&h.url("/.gateway/callback?code=x&state=y"), &[("accept", "application/json")]).await;
    assert!(json.status >= 400);
    // The operator sees the advice; the corp token is not asked for again at once.
    let health = h.live.current().accounts.all()[0].memory().health.status();
    let said = health.to_string();
    assert!(said.contains("60020") && said.contains("企业可信IP"), "{said}");
    let calls = h.mock.stats().corp_token_calls;
    let again = wecom_browser(&h, "alice").await.walk(&h.url("/")).await.pop().unwrap();
    assert_eq!(again.status, 500);
    assert_eq!(h.mock.stats().corp_token_calls, calls, "paused, not asked again");
}

#[tokio::test]
async fn a_lookup_from_outside_the_trusted_ips_is_reported_and_clears_once_fixed() {
    let h = wecom(None).await;
    let alice = wecom_browser(&h, "alice").await;
    assert_eq!(alice.walk(&h.url("/")).await.pop().unwrap().status, 200);
    // The token is held; WeCom now refuses this server's lookups.
    h.mock.set_corp_trusted_ips(Some(vec!["10.9.9.9".parse().unwrap()]));
    let bob = wecom_browser(&h, "bob").await;
    let last = bob.walk(&h.url("/")).await.pop().unwrap();
    assert_eq!(last.status, 500, "{}", last.body);
    assert!(last.body.contains("Login is misconfigured"), "{}", last.body);
    let said = h.live.current().accounts.all()[0].memory().health.status().to_string();
    assert!(said.contains("degraded") && said.contains("60020") && said.contains("企业可信IP"), "{said}");
    // The operator adds the address: the next login goes through and the report clears.
    h.mock.set_corp_trusted_ips(None);
    let carol_free = wecom_browser(&h, "bob").await;
    assert_eq!(carol_free.walk(&h.url("/")).await.pop().unwrap().status, 200);
    let said = h.live.current().accounts.all()[0].memory().health.status().to_string();
    assert!(said.contains("\"ok\""), "{said}");
}

#[tokio::test]
async fn a_wrong_secret_is_named_as_the_operators_mistake() {
    let mut setup = wecom_setup("");
    setup.corp.as_mut().unwrap().secret = "another-secret".into();
    let h = Harness::with(setup).await;
    let last = wecom_browser(&h, "alice").await.walk(&h.url("/")).await.pop().unwrap();
    assert_eq!(last.status, 500, "{}", last.body);
    assert!(last.body.contains("Login is misconfigured"), "{}", last.body);
    let said = h.live.current().accounts.all()[0].memory().health.status().to_string();
    assert!(said.contains("40001") && said.contains("wecom.secret"), "{said}");
}

#[tokio::test]
async fn the_js_sdk_is_refused_clearly_for_a_wecom_app() {
    let h = wecom(None).await;
    let page = format!("http://{PUBLIC_HOST}/a");
    let url = format!(
        "/.gateway/jssdk/config?url={}",
        url::form_urlencoded::byte_serialize(page.as_bytes()).collect::<String>()
    );
    let res = h
        .browser_with_ua(WECOM_UA)
        .get_with(&h.url(&url), &[("accept", "application/json"), ("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("WeCom"), "{}", res.body);
}

#[tokio::test]
async fn a_code_wecom_refuses_sends_the_user_to_start_again() {
    let h = wecom(None).await;
    let fault = reqwest::Client::new().post(h.mock_url("/mock/fault?kind=errcode&errcode=40029")).send().await.unwrap();
    assert_eq!(fault.status(), 200);
    let alice = wecom_browser(&h, "alice").await;
    let last = alice.walk(&h.url("/orders")).await.pop().unwrap();
    assert_eq!(last.status, 400, "{}", last.body);
    assert!(last.body.contains("/orders"), "the page offers to start again: {}", last.body);
    // Starting again signs in.
    assert_eq!(alice.walk(&h.url("/orders")).await.pop().unwrap().status, 200);
}

#[tokio::test]
async fn backends_take_the_corp_token_from_the_admin_listener() {
    const ADMIN: &str = "admin-token-for-tests-0123456789";
    let mut setup = wecom_setup("");
    setup.tables = "[admin]\ntoken = { file = \"admin.token\" }\n".into();
    let h = Harness::with_files(setup, &[("admin.token", ADMIN)]).await;
    let admin = openid_gateway::serve::server::start_on(
        pingora::services::listening::Service::new(
            "admin".into(),
            openid_gateway::serve::admin::AdminApp::new(h.live.clone()),
        ),
        listener(),
    )
    .unwrap();
    let url = format!("{}/wechat/access_token?appid={CORPID}%2F{AGENTID}", admin.url());
    let res = reqwest::Client::new().get(url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["appid"], format!("{CORPID}/{AGENTID}"));
    assert!(h.mock.corp_token_valid(body["access_token"].as_str().unwrap()), "{body}");
    // The same token serves the logins: no second gettoken.
    assert_eq!(wecom_browser(&h, "alice").await.walk(&h.url("/")).await.pop().unwrap().status, 200);
    assert_eq!(h.mock.stats().corp_token_calls, 1);
}
