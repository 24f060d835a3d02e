//! Desktop sign-in by QR code, walked by a browser without script (Chromium walks it in
//! tests/browser.rs): a desktop browser on a required route goes to the QR page of WeCom's web
//! login or of WeChat's website app instead of the "open in WeChat" page; once the phone
//! scans, the callback lands on the page asked for with a token that names who signed in.
//! Phones, WeChat's own browser and apps without desktop sign-in keep the old ways.

mod common;

use common::*;
use openid_gateway::dev::mock_wechat::unionid;
use openid_gateway::wechat::{Scope, Subject};

/// Walks `path` on a desktop browser to the mock's QR page, scans it as `user`, and follows
/// where the page goes: the pages after the scan.
async fn scan_in(h: &Harness, b: &Browser, path: &str, user: &str) -> Vec<Page> {
    let qr = b.walk(&h.url(path)).await.pop().unwrap();
    b.walk(&scan_qr(&h.mock_url(""), &qr, user).await).await
}

#[tokio::test]
async fn a_desktop_signs_in_to_a_wecom_app_by_scanning() {
    let h = Harness::with(wecom_setup("desktop_login = true")).await;
    let b = h.browser_with_ua(DESKTOP_UA);
    let to_qr = b.walk(&h.url("/desk?x=1")).await;
    let sent = to_qr.iter().find(|p| p.location().contains("/wwlogin/sso/login?")).expect("sent to the QR page");
    assert!(
        sent.location().contains(&format!("?login_type=CorpApp&appid={CORPID}&agentid={AGENTID}&redirect_uri=")),
        "{}",
        sent.location()
    );
    let after = scan_in(&h, &b, "/desk?x=1", "alice").await;
    assert_eq!(after.last().unwrap().status, 200, "{after:?}");
    assert_eq!(h.upstream.last().path, "/desk?x=1");
    let c = claims(&h.last_token());
    assert_eq!((c.sub.as_str(), c.sub_type, c.member), ("alice", Subject::Member, Some(true)));
    let s = h.mock.stats();
    assert_eq!((s.qr_scans, s.corp_userinfo_calls, s.authorizes), (1, 1, 0), "{s:?}");
    // Signed in now: no QR page again.
    assert_eq!(b.get(&h.url("/desk/other")).await.status, 200);
}

#[tokio::test]
async fn a_desktop_signs_in_with_the_website_app_and_the_unionid_links_it() {
    let h = Harness::with(website_setup("scope = \"snsapi_userinfo\"")).await;
    let b = h.browser_with_ua(DESKTOP_UA);
    let after = scan_in(&h, &b, "/desk?x=1", "alice").await;
    assert_eq!(after.last().unwrap().status, 200, "{after:?}");
    let c = claims(&h.last_token());
    let website_openid = h.mock.website_openid_for("alice").unwrap();
    assert_eq!(
        (c.sub.as_str(), c.sub_type, c.appid.as_str()),
        (website_openid.as_str(), Subject::WebsiteOpenid, WEBSITE_APPID)
    );
    assert_eq!((c.provider.as_str(), c.scope), ("wechat", Scope::Userinfo));
    assert_eq!(c.unionid, Some(unionid("alice")));
    assert_ne!(c.sub, h.mock.openid_for("alice"), "the website app's openid is not the account's");
    assert_eq!(h.mock.stats().website_exchanges, 1);

    // The same person on the phone: the account's openid, and with the profile, the same
    // unionid.
    let phone = h.browser();
    assert_eq!(phone.walk(&h.url("/")).await.last().unwrap().status, 200);
    let p = claims(&h.last_token());
    assert_eq!((p.sub, p.sub_type, p.appid.as_str()), (h.mock.openid_for("alice"), Subject::Openid, APPID));
    assert_eq!(p.unionid, c.unionid);
}

#[tokio::test]
async fn phones_and_apps_without_desktop_sign_in_keep_the_old_ways() {
    // Without desktop sign-in, a desktop gets the "open in WeChat" page.
    let plain = Harness::start().await;
    let page = plain.browser_with_ua(DESKTOP_UA).get(&plain.url("/")).await;
    assert!(page.body.contains("请在微信中打开"), "{}", page.body);
    // With it, a phone's other browser still does, and WeChat's browser logs in silently.
    let h = Harness::with(website_setup("")).await;
    let safari =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1";
    let page = h.browser_with_ua(safari).get(&h.url("/")).await;
    assert!(page.body.contains("请在微信中打开"), "{}", page.body);
    assert_eq!(h.browser().walk(&h.url("/")).await.last().unwrap().status, 200);
    assert_eq!(claims(&h.last_token()).sub_type, Subject::Openid);
    assert_eq!(h.mock.stats().qr_pages, 0);
}

#[tokio::test]
async fn a_code_of_the_website_app_is_not_the_accounts() {
    let h = Harness::with(website_setup("")).await;
    let phone = h.browser();
    // A phone login whose callback is handed a code minted for the website app's page.
    let callback = phone.callback_url(&h.url("/")).await;
    let desktop = h.browser_with_ua(DESKTOP_UA);
    let qr = desktop.walk(&h.url("/")).await.pop().unwrap();
    let location = scan_qr(&h.mock_url(""), &qr, "alice").await;
    let website_code =
        url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let mut swapped = url::Url::parse(&callback).unwrap();
    let state: String = swapped.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    swapped.query_pairs_mut().clear().append_pair("code", &website_code).append_pair("state", &state);
    let page = phone.get(swapped.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(h.upstream.seen().len(), 0, "no session from another app's code");
}
