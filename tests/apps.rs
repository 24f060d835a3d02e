//! Several Official Accounts behind one gateway, and the `snsapi_userinfo` opt-in.

mod common;

use common::*;
use openid_gateway::dev::mock_wechat::{openid, unionid};
use openid_gateway::token::Claims;

fn claims_of_last(h: &Harness) -> Claims {
    let token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Claims>(&token, &jsonwebtoken::DecodingKey::from_secret(HS256_KEY.as_bytes()), &v)
        .unwrap()
        .claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_one_gateway_sessions_bound_to_their_app() {
    const APPID2: &str = "wx2222222222222222";
    let clock = openid_gateway::util::clock::ManualClock::new(1);
    let mock2 = strict_mock(APPID2, WECHAT_SECRET, "two.test", false, &clock);
    let _mock2_srv = serve_mock(&mock2);
    let mock2_url = format!("http://{}", _mock2_srv.addr);
    let apps = format!(
        "[[apps]]\nname = \"one\"\npublic_url = \"http://gw.test\"\nmp_verify = [\"OneToken1\"]\n\
         [apps.wechat]\nappid = \"{APPID}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
         authorize_url = \"MOCK/connect/oauth2/authorize\"\napi_base = \"MOCK\"\n\n\
         [[apps]]\nname = \"two\"\npublic_url = \"http://two.test\"\nmp_verify = [\"TwoToken2\"]\n\
         [apps.wechat]\nappid = \"{APPID2}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
         authorize_url = \"{mock2_url}/connect/oauth2/authorize\"\napi_base = \"{mock2_url}\"\n"
    );
    let routes = "[[routes]]\nhost = \"gw.test\"\nupstream = \"UPSTREAM\"\naudience = \"one\"\napp = \"one\"\n\n\
                  [[routes]]\nhost = \"two.test\"\nupstream = \"UPSTREAM\"\naudience = \"two\"\napp = \"two\"\n";
    let h = Harness::with(Setup { apps: Some(apps), routes: routes.into(), ..Setup::default() }).await;
    let one = h.browser();
    let two = browser(WECHAT_UA, "two.test", h.gateway_addr);

    assert_eq!(one.walk(&h.url("/")).await.last().unwrap().status, 200);
    let c = claims_of_last(&h);
    assert_eq!((c.appid.as_str(), c.sub.clone()), (APPID, openid(APPID, "alice")));
    assert!(one.cookies("/").contains("ogw_session_one="), "cookie names carry the app");

    let pages = two.walk("http://two.test/").await;
    assert_eq!(pages.last().unwrap().status, 200);
    assert!(pages.iter().any(|p| p.location().contains(&format!("appid={APPID2}"))));
    let c = claims_of_last(&h);
    assert_eq!((c.appid.as_str(), c.sub.clone()), (APPID2, openid(APPID2, "alice")));
    assert_eq!(mock2.stats().exchanges, 1);

    // App one's session, presented to app two under app two's cookie name, is not accepted.
    let stolen = cookie_value(&one.cookies("/"), "ogw_session_one").unwrap();
    let fresh = browser(WECHAT_UA, "two.test", h.gateway_addr);
    fresh.jar.add_cookie_str(&format!("ogw_session_two={stolen}"), &"http://two.test/".parse().unwrap());
    assert!(fresh.get("http://two.test/x").await.body.contains("location.hash"), "sent to log in");

    // Each app's verification file on its own host only.
    assert_eq!(one.get(&h.url("/MP_verify_OneToken1.txt")).await.body, "OneToken1");
    assert_eq!(two.get("http://two.test/MP_verify_TwoToken2.txt").await.body, "TwoToken2");
    assert_ne!(two.get("http://two.test/MP_verify_OneToken1.txt").await.body, "OneToken1");
}

fn userinfo_setup() -> Setup {
    Setup {
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n\n\
                 [[routes]]\npath = \"/profile\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\nscope = \"snsapi_userinfo\"\n"
            .into(),
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_session_is_upgraded_on_a_userinfo_route() {
    let h = Harness::with(userinfo_setup()).await;
    let b = h.browser();
    let pages = b.walk(&h.url("/")).await;
    assert!(pages.iter().any(|p| p.location().contains("scope=snsapi_base")));
    let base = claims_of_last(&h);
    assert_eq!(base.nickname, None);

    let pages = b.walk(&h.url("/profile")).await;
    assert_eq!(pages.last().unwrap().status, 200);
    assert!(pages.iter().any(|p| p.location().contains("scope=snsapi_userinfo")), "asked for more");
    let full = claims_of_last(&h);
    assert_eq!(full.sub, base.sub, "the same user, upgraded");
    assert_eq!(full.scope.as_str(), "snsapi_userinfo");
    assert_eq!(full.nickname.as_deref(), Some("alice·微信"));
    assert_eq!(full.unionid.as_deref(), Some(unionid("alice").as_str()));
    assert!(full.avatar.as_deref().is_some_and(|a| a.starts_with("https://thirdwx.qlogo.cn/")));
    // The upgraded session serves base routes too, without another trip to WeChat.
    let authorizes = h.mock.stats().authorizes;
    b.get(&h.url("/")).await;
    assert_eq!(claims_of_last(&h).nickname.as_deref(), Some("alice·微信"));
    assert_eq!(h.mock.stats().authorizes, authorizes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_user_is_never_an_identity() {
    let h = Harness::with(userinfo_setup()).await;
    let b = h.browser();
    // The authorize step as WeChat's snapshot page plays it.
    let authorize = b.walk_until(&h.url("/profile"), |u| u.contains("/connect/oauth2/authorize")).await;
    let to_wechat = authorize.last().unwrap().next_url().unwrap();
    let snap = b.get_with(&to_wechat, &[("X-Mock-Snapshot", "1")]).await;
    let p = b.get(snap.location()).await;
    assert_eq!(p.status, 403);
    assert!(p.body.find("使用完整服务").is_some() && p.body.contains("snapshot"));
    assert!(p.set_cookies().iter().all(|c| !c.starts_with("ogw_session=")));
    assert!(b.get(&h.url("/profile")).await.body.contains("location.hash"), "still no session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_consent_keeps_the_base_session() {
    let h = Harness::with(userinfo_setup()).await;
    let b = h.browser();
    assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
    let authorize = b.walk_until(&h.url("/profile"), |u| u.contains("/connect/oauth2/authorize")).await;
    let to_wechat = authorize.last().unwrap().next_url().unwrap();
    let denied = b.get_with(&to_wechat, &[("X-Mock-Consent", "deny")]).await;
    assert!(!denied.location().contains("code="), "older clients come back with state only");
    let p = b.get(denied.location()).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("未获得授权"));
    assert_eq!(b.get(&h.url("/")).await.status, 200, "the base session still works");
}
