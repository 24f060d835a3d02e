//! The providers beside the Official Account, as the tests meet them: the WeCom corp and the
//! website app the mock plays, the setups that log in with them, and the phone that scans a
//! QR sign-in page.

use openid_gateway::dev::mock_wechat::{MockCorp, MockWebsite};

use super::{Page, Setup, PUBLIC_HOST};

pub const CORPID: &str = "ww1234567890abcdef";
pub const AGENTID: &str = "1000002";
pub const CORP_SECRET: &str = "wecom-app-secret-for-tests";
pub const WEBSITE_APPID: &str = "wxweb4567890abcdef";
pub const WEBSITE_SECRET: &str = "website-app-secret-for-tests";
/// WeCom's in-app browser: `wxwork` beside `MicroMessenger`.
pub const WECOM_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/7.0.1 wxwork/4.1.6 ColorScheme/Light Language/zh";

/// The corp the mock plays: alice and carol are members (carol outside the app's visible
/// range); anyone else is an outsider.
pub fn mock_corp() -> MockCorp {
    MockCorp {
        corpid: CORPID.into(),
        agentid: AGENTID.into(),
        secret: CORP_SECRET.into(),
        domains: vec![PUBLIC_HOST.into()],
        members: vec!["alice".into(), "carol".into()],
        hidden: vec!["carol".into()],
    }
}

/// The standard setup as one WeCom app (`[wecom]` against the mock, `extra` more of its
/// keys), with the mock's corp; the routes are the standard ones unless replaced.
pub fn wecom_setup(extra: &str) -> Setup {
    Setup {
        apps: Some(format!(
            "[[apps]]\nname = \"tools\"\npublic_url = \"http://{PUBLIC_HOST}\"\nprovider = \"wecom\"\n\
             [apps.wecom]\ncorpid = \"{CORPID}\"\nagentid = {AGENTID}\nsecret = {{ file = \"corp.secret\" }}\n\
             authorize_url = \"MOCK/connect/oauth2/authorize\"\napi_base = \"MOCK\"\nqr_login_url = \"MOCK/wwlogin/sso/login\"\n{extra}\n"
        )),
        corp: Some(mock_corp()),
        ..Setup::default()
    }
}

/// The standard account with a website app for desktop sign-in (the mock plays it); `keys`
/// are more keys of `[wechat]`.
pub fn website_setup(keys: &str) -> Setup {
    Setup {
        wechat: format!(
            "{keys}\ndesktop_login = true\n[wechat.website]\nappid = \"{WEBSITE_APPID}\"\n\
             secret = {{ file = \"website.secret\" }}\nqr_login_url = \"MOCK/connect/qrconnect\"\n"
        ),
        website: Some(MockWebsite {
            appid: WEBSITE_APPID.into(),
            secret: WEBSITE_SECRET.into(),
            domains: vec![PUBLIC_HOST.into()],
        }),
        ..Setup::default()
    }
}

/// Scans the mock's QR sign-in page `qr` with the phone of `user`, at the mock whose base URL
/// is `mock`: where the page goes next (the gateway's callback with a code).
pub async fn scan_qr(mock: &str, qr: &Page, user: &str) -> String {
    let start = qr.body.find("data-scan=\"").unwrap_or_else(|| panic!("not a QR page: {}", qr.body)) + 11;
    let scan = &qr.body[start..start + qr.body[start..].find('"').unwrap()];
    let client = reqwest::Client::new();
    let scanned = client.post(format!("{mock}/mock/qr/scan?scan={scan}&user={user}")).send().await.unwrap();
    assert_eq!(scanned.status(), 200);
    let status: serde_json::Value =
        client.get(format!("{mock}/mock/qr/status?scan={scan}")).send().await.unwrap().json().await.unwrap();
    status["location"].as_str().unwrap_or_else(|| panic!("not scanned: {status}")).to_string()
}
