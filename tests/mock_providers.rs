//! The mock's other providers over HTTP: WeCom (企业微信) silent login and corp API, and the
//! desktop QR logins of WeCom and of an Open Platform website app
//! (../shared/wechat-oauth.md §6-§7).

mod common;

use common::*;
use openid_gateway::dev::mock_wechat::{
    external_userid, openid, unionid, CredentialRules, MockConfig, MockCorp, MockWebsite, MockWechat,
};
use openid_gateway::util::clock::ManualClock;
use openid_gateway::wechat::authorize::{authorize_url, encode_component};
use serde_json::Value;

const CORPID: &str = "ww0000000000demo0";
const AGENTID: &str = "1000002";
const CORP_SECRET: &str = "corp-secret-for-tests";
const WEB_APPID: &str = "wxweb000000000demo";
const WEB_SECRET: &str = "website-secret-for-tests";
const CALLBACK: &str = "http://gw.test/.gateway/callback";
const WEB_CALLBACK: &str = "http://www.test/login/callback";
const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh";
const DESKTOP_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15";

struct Mock {
    mock: MockWechat,
    clock: ManualClock,
    server: openid_gateway::serve::server::Running,
}

impl Mock {
    fn start() -> Self {
        let clock = ManualClock::new(1_702_087_200);
        let mock = MockWechat::with_clock(
            MockConfig {
                appid: APPID.into(),
                secret: WECHAT_SECRET.into(),
                domains: vec![PUBLIC_HOST.into()],
                allow_port: false,
                any_browser: false,
                default_user: "alice".into(),
                rules: CredentialRules::default(),
                corp: Some(MockCorp {
                    corpid: CORPID.into(),
                    agentid: AGENTID.into(),
                    secret: CORP_SECRET.into(),
                    domains: vec![PUBLIC_HOST.into()],
                    members: vec!["alice".into(), "hideme".into()],
                    hidden: vec!["hideme".into()],
                }),
                website: Some(MockWebsite {
                    appid: WEB_APPID.into(),
                    secret: WEB_SECRET.into(),
                    domains: vec!["www.test".into()],
                }),
            },
            std::sync::Arc::new(clock.clone()),
        );
        let server = serve_mock(&mock);
        Mock { mock, clock, server }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// GET with `ua` (and `user` as X-Mock-User): status, Location, body.
    async fn get(&self, path: &str, ua: &str, user: Option<&str>) -> (u16, String, String) {
        let mut req = client(ua).get(self.url(path));
        if let Some(u) = user {
            req = req.header("x-mock-user", u);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, location, r.text().await.unwrap())
    }

    /// An API call's JSON (errors included: they are HTTP 200).
    async fn api(&self, method: &str, path: &str) -> Value {
        let c = client("curl");
        let req = if method == "POST" { c.post(self.url(path)) } else { c.get(self.url(path)) };
        let r = req.send().await.unwrap();
        serde_json::from_str(&r.text().await.unwrap()).unwrap()
    }

    async fn gettoken(&self) -> Value {
        self.api("GET", &format!("/cgi-bin/gettoken?corpid={CORPID}&corpsecret={CORP_SECRET}")).await
    }

    async fn getuserinfo(&self, token: &str, code: &str) -> Value {
        self.api("GET", &format!("/cgi-bin/auth/getuserinfo?access_token={token}&code={code}")).await
    }

    async fn stats(&self) -> Value {
        self.api("GET", "/mock/stats").await
    }
}

fn client(ua: &str) -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(ua).build().unwrap()
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or_else(|| panic!("no errcode in {v}"))
}

fn code_of(location: &str) -> String {
    let u = url::Url::parse(location).unwrap_or_else(|_| panic!("not a URL: {location:?}"));
    u.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
}

fn corp_query(scope: &str, state: &str, tail: &str) -> String {
    let enc = encode_component(CALLBACK);
    format!("/connect/oauth2/authorize?appid={CORPID}&redirect_uri={enc}&response_type=code&scope={scope}&state={state}{tail}")
}

/// A WeCom code for `user`, from the authorize page.
async fn corp_code(m: &Mock, user: &str) -> String {
    let (status, location, body) =
        m.get(&corp_query("snsapi_base", "st8", &format!("&agentid={AGENTID}")), WXWORK_UA, Some(user)).await;
    assert_eq!(status, 302, "{body}");
    assert!(location.starts_with(&format!("{CALLBACK}?code=")) && location.ends_with("&state=st8"), "{location}");
    code_of(&location)
}

/// An Official Account code for `user`.
async fn oa_code(m: &Mock, user: &str, scope: &str) -> String {
    let url = authorize_url("", APPID, CALLBACK, scope, "s");
    let path = format!("/connect/oauth2/authorize?{}", url.split_once('?').unwrap().1.split_once('#').unwrap().0);
    let (status, location, _) = m.get(&path, WECHAT_UA, Some(user)).await;
    assert_eq!(status, 302);
    code_of(&location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_silent_login_for_members_and_others() {
    let m = Mock::start();
    let member_code = corp_code(&m, "alice").await;
    // Without agentid too.
    let (status, location, _) = m.get(&corp_query("snsapi_base", "a", ""), WXWORK_UA, Some("bob")).await;
    assert_eq!(status, 302);
    let outsider_code = code_of(&location);

    let token = m.gettoken().await;
    assert_eq!((errcode(&token), &token["errmsg"], &token["expires_in"]), (0, &"ok".into(), &7200.into()));
    let token = token["access_token"].as_str().unwrap().to_string();
    m.clock.advance(100);
    let again = m.gettoken().await;
    assert_eq!(again["access_token"], token.as_str(), "the same token while it lives");
    assert_eq!(again["expires_in"], 7100);

    let alice = m.getuserinfo(&token, &member_code).await;
    assert_eq!((errcode(&alice), &alice["userid"], &alice["expires_in"]), (0, &"alice".into(), &1800.into()));
    assert!(!alice["user_ticket"].as_str().unwrap().is_empty());
    assert!(alice.get("openid").is_none());
    // Single use.
    assert_eq!(errcode(&m.getuserinfo(&token, &member_code).await), 40029);

    let bob = m.getuserinfo(&token, &outsider_code).await;
    assert_eq!(errcode(&bob), 0);
    assert_eq!(bob["openid"], m.mock.corp_openid_for("bob").unwrap());
    assert_eq!(bob["openid"], openid(CORPID, "bob"));
    assert_eq!(bob["external_userid"], external_userid(CORPID, "bob"));
    assert!(bob.get("userid").is_none());

    // Codes belong to their provider.
    let oa = oa_code(&m, "alice", "snsapi_base").await;
    assert_eq!(errcode(&m.getuserinfo(&token, &oa).await), 40029);
    let corp = corp_code(&m, "alice").await;
    let q = format!(
        "/sns/oauth2/access_token?appid={APPID}&secret={WECHAT_SECRET}&code={corp}&grant_type=authorization_code"
    );
    assert_eq!(errcode(&m.api("GET", &q).await), 40029);
    assert_eq!(errcode(&m.api("GET", &format!("/cgi-bin/auth/getuserinfo?access_token={token}")).await), 41008);
    assert_eq!(errcode(&m.getuserinfo("not-a-token", &corp).await), 40014);
    // None of those spent it.
    assert_eq!(m.getuserinfo(&token, &corp).await["userid"], "alice");

    // Faults queued for the exchange apply to getuserinfo.
    let corp = corp_code(&m, "alice").await;
    assert_eq!(m.api("POST", "/mock/fault?kind=busy").await["queued"], true);
    assert_eq!(errcode(&m.getuserinfo(&token, &corp).await), -1);
    assert_eq!(m.getuserinfo(&token, &corp).await["userid"], "alice");

    // Codes live five minutes.
    let late = corp_code(&m, "alice").await;
    m.clock.advance(300);
    assert_eq!(errcode(&m.getuserinfo(&token, &late).await), 40029);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_authorize_is_strict() {
    let m = Mock::start();
    let refused = |status: u16, location: &str, body: &str, expect: &str| {
        assert_eq!((status, location), (200, ""), "accepted");
        assert!(body.contains(expect), "expected {expect:?} in {body}");
    };
    let ok = corp_query("snsapi_base", "a", &format!("&agentid={AGENTID}"));
    // WeChat alone is not WeCom; a desktop browser neither.
    for ua in [WECHAT_UA, DESKTOP_UA] {
        let (s, l, b) = m.get(&ok, ua, None).await;
        refused(s, &l, &b, "请在企业微信客户端打开链接");
    }
    let enc = encode_component(CALLBACK);
    let cases = [
        (format!("/connect/oauth2/authorize?appid={CORPID}&response_type=code&redirect_uri={enc}&scope=snsapi_base&state=a"), "order"),
        (corp_query("snsapi_base", "a", "&agentid=999"), "40056"),
        (corp_query("snsapi_base", "a", &format!("&x=1&agentid={AGENTID}")), "agentid"),
        (corp_query("snsapi_userinfo", "a", &format!("&agentid={AGENTID}")), "scope"),
        (corp_query("snsapi_privateinfo", "a", ""), "scope"),
        (corp_query("snsapi_base", "a%2Bb", ""), "state"),
        (corp_query("snsapi_base", &"a".repeat(129), ""), "state"),
        (
            format!("/connect/oauth2/authorize?appid={CORPID}&redirect_uri={}&response_type=code&scope=snsapi_base&state=a", encode_component("http://other.test/cb")),
            "50001",
        ),
        (
            format!("/connect/oauth2/authorize?appid={CORPID}&redirect_uri={}&response_type=code&scope=snsapi_base&state=a", encode_component("http://gw.test:8080/cb")),
            "50001",
        ),
        (format!("/connect/oauth2/authorize?appid={CORPID}&redirect_uri=http://gw.test/cb&response_type=code&scope=snsapi_base&state=a"), "encoded"),
    ];
    for (path, expect) in cases {
        let (s, l, b) = m.get(&path, WXWORK_UA, None).await;
        refused(s, &l, &b, expect);
    }
    // A member outside the app's visible range gets an error page.
    let (s, l, b) = m.get(&ok, WXWORK_UA, Some("hideme")).await;
    refused(s, &l, &b, "可见范围");
    // privateinfo with agentid is accepted like base.
    let (s, ..) = m.get(&corp_query("snsapi_privateinfo", "a", &format!("&agentid={AGENTID}")), WXWORK_UA, None).await;
    assert_eq!(s, 302);
    // The Official Account's page is unchanged.
    let (s, ..) = m.get(&authorize_path(), WECHAT_UA, None).await;
    assert_eq!(s, 302);
}

fn authorize_path() -> String {
    let url = authorize_url("", APPID, CALLBACK, "snsapi_base", "s");
    format!("/connect/oauth2/authorize?{}", url.split_once('?').unwrap().1.split_once('#').unwrap().0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corp_token_and_its_errors() {
    let m = Mock::start();
    let cases = [
        (format!("corpsecret={CORP_SECRET}"), 41002),
        (format!("corpid=wwother&corpsecret={CORP_SECRET}"), 40013),
        (format!("corpid={CORPID}"), 41004),
        (format!("corpid={CORPID}&corpsecret=wrong"), 40001),
    ];
    for (q, expected) in cases {
        let v = m.api("GET", &format!("/cgi-bin/gettoken?{q}")).await;
        assert_eq!(errcode(&v), expected, "{q}");
        assert!(v["errmsg"].as_str().unwrap().contains(", rid: "));
    }
    let r = client("curl").get(m.url(&format!("/cgi-bin/gettoken?corpid={CORPID}"))).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "text/plain"));

    assert_eq!(m.api("POST", "/mock/wecom/trusted-ips?ips=10.9.9.9").await["set"], true);
    let v = m.gettoken().await;
    assert_eq!(errcode(&v), 60020);
    assert!(v["errmsg"].as_str().unwrap().contains("not allow to access from your ip"));
    m.api("POST", "/mock/wecom/trusted-ips?ips=").await;
    let a = m.gettoken().await["access_token"].as_str().unwrap().to_string();

    assert_eq!(m.api("POST", "/mock/credential-fault?errcode=-1&call=gettoken").await["queued"], true);
    assert_eq!(errcode(&m.gettoken().await), -1);
    assert_eq!(m.gettoken().await["access_token"], a.as_str());

    let code = corp_code(&m, "alice").await;
    assert_eq!(m.api("POST", "/mock/wecom/invalidate-token").await["invalidated"], true);
    assert_eq!(errcode(&m.getuserinfo(&a, &code).await), 40014);
    let b = m.gettoken().await["access_token"].as_str().unwrap().to_string();
    assert_ne!(a, b);
    m.clock.advance(7200);
    assert_eq!(errcode(&m.getuserinfo(&b, &code).await), 42001);
    let c = m.gettoken().await;
    assert_ne!(c["access_token"], b.as_str());
    assert_eq!(c["expires_in"], 7200);

    let s = m.stats().await;
    assert_eq!((&s["corp_tokens_issued"], &s["corp_userinfo_calls"]), (&3.into(), &2.into()));
    assert_eq!(s["corp_token_calls"], 11);
}

/// The QR page's scan id.
fn scan_id(body: &str) -> String {
    let at = body.find(r#"<div id="mock-qr" data-scan=""#).unwrap_or_else(|| panic!("no QR in {body}"));
    let rest = &body[at + r#"<div id="mock-qr" data-scan=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_qr_login() {
    let m = Mock::start();
    let enc = encode_component(CALLBACK);
    let login =
        format!("/wwlogin/sso/login?login_type=CorpApp&appid={CORPID}&agentid={AGENTID}&redirect_uri={enc}&state=qr1");
    let (status, _, page) = m.get(&login, DESKTOP_UA, None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/mock/qr/status?scan=") && page.contains("300"));
    let scan = scan_id(&page);
    assert_eq!(m.api("GET", &format!("/mock/qr/status?scan={scan}")).await["scanned"], false);
    assert_eq!(m.api("POST", &format!("/mock/qr/scan?scan={scan}&user=alice")).await["scanned"], true);
    let status = m.api("GET", &format!("/mock/qr/status?scan={scan}")).await;
    let location = status["location"].as_str().unwrap();
    assert!(location.starts_with(&format!("{CALLBACK}?code=")) && location.ends_with("&state=qr1"), "{location}");
    let token = m.gettoken().await["access_token"].as_str().unwrap().to_string();
    assert_eq!(m.getuserinfo(&token, &code_of(location)).await["userid"], "alice");
    // Scanned once; unknown ids are 404.
    let again = client("curl").post(m.url(&format!("/mock/qr/scan?scan={scan}"))).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let unknown = client("curl").post(m.url("/mock/qr/scan?scan=nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    // A member outside the visible range is refused, and the page says so.
    let (_, _, page) = m.get(&login, DESKTOP_UA, None).await;
    let scan = scan_id(&page);
    let r = m.api("POST", &format!("/mock/qr/scan?scan={scan}&user=hideme")).await;
    assert_eq!(r["refused"], true);
    let status = m.api("GET", &format!("/mock/qr/status?scan={scan}")).await;
    assert_eq!(status["refused"], true);
    assert!(status["message"].as_str().unwrap().contains("可见范围"));

    // The older qrConnect; a scan without an id takes the newest pending page.
    let legacy = format!("/wwopen/sso/qrConnect?appid={CORPID}&agentid={AGENTID}&redirect_uri={enc}&state=old");
    let (status, _, page) = m.get(&legacy, DESKTOP_UA, None).await;
    assert_eq!(status, 200);
    let scan = scan_id(&page);
    assert_eq!(m.api("POST", "/mock/qr/scan").await["scanned"], true);
    let location =
        m.api("GET", &format!("/mock/qr/status?scan={scan}")).await["location"].as_str().unwrap().to_string();
    assert!(location.ends_with("&state=old"));

    // Scan ids expire after five minutes.
    let (_, _, page) = m.get(&login, DESKTOP_UA, None).await;
    let scan = scan_id(&page);
    m.clock.advance(300);
    assert_eq!(m.api("GET", &format!("/mock/qr/status?scan={scan}")).await["expired"], true);
    let late = client("curl").post(m.url(&format!("/mock/qr/scan?scan={scan}"))).send().await.unwrap();
    assert_eq!(late.status(), 404);

    // The login URL is checked.
    let bad = [
        login.replace("CorpApp", "ServiceApp"),
        login.replace(AGENTID, "999"),
        login.replace(CORPID, "wwother"),
        login.replace("state=qr1", "state=a%2Bb"),
        login.replace(&enc, &encode_component("http://other.test/cb")),
    ];
    for path in bad {
        let (status, _, page) = m.get(&path, DESKTOP_UA, None).await;
        assert_eq!(status, 200);
        assert!(!page.contains("mock-qr"), "{path} was accepted");
    }
    let s = m.stats().await;
    assert_eq!((&s["qr_pages"], &s["qr_scans"]), (&4.into(), &3.into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_qr_login() {
    let m = Mock::start();
    let enc = encode_component(WEB_CALLBACK);
    let qr = format!(
        "/connect/qrconnect?appid={WEB_APPID}&redirect_uri={enc}&response_type=code&scope=snsapi_login&state=web1"
    );
    let (status, _, page) = m.get(&qr, DESKTOP_UA, None).await;
    assert_eq!(status, 200);
    let scan = scan_id(&page);
    assert_eq!(m.api("POST", &format!("/mock/qr/scan?scan={scan}&user=bob")).await["scanned"], true);
    let location =
        m.api("GET", &format!("/mock/qr/status?scan={scan}")).await["location"].as_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{WEB_CALLBACK}?code=")) && location.ends_with("&state=web1"), "{location}");
    let code = code_of(&location);

    // Bound to its app: not the Official Account's, and the secret must be the website's.
    let exchange = |appid: &str, secret: &str, code: &str| {
        format!("/sns/oauth2/access_token?appid={appid}&secret={secret}&code={code}&grant_type=authorization_code")
    };
    assert_eq!(errcode(&m.api("GET", &exchange(APPID, WECHAT_SECRET, &code)).await), 40029);
    assert_eq!(errcode(&m.api("GET", &exchange(WEB_APPID, WECHAT_SECRET, &code)).await), 40125);
    let web = m.api("GET", &exchange(WEB_APPID, WEB_SECRET, &code)).await;
    assert_eq!(web["openid"], m.mock.website_openid_for("bob").unwrap());
    assert_eq!((&web["scope"], &web["expires_in"]), (&"snsapi_login".into(), &7200.into()));
    assert!(web["refresh_token"].as_str().is_some());
    assert_eq!(errcode(&m.api("GET", &exchange(WEB_APPID, WEB_SECRET, &code)).await), 40163);

    // The Official Account's openid differs, the unionid does not.
    let oa = oa_code(&m, "bob", "snsapi_userinfo").await;
    assert_eq!(errcode(&m.api("GET", &exchange(WEB_APPID, WEB_SECRET, &oa)).await), 40029);
    let oa = m.api("GET", &exchange(APPID, WECHAT_SECRET, &oa)).await;
    assert_eq!(oa["openid"], m.mock.openid_for("bob"));
    assert_ne!(oa["openid"], web["openid"]);
    let info = |t: &Value| {
        format!(
            "/sns/userinfo?access_token={}&openid={}&lang=zh_CN",
            t["access_token"].as_str().unwrap(),
            t["openid"].as_str().unwrap()
        )
    };
    let oa_info = m.api("GET", &info(&oa)).await;
    let web_info = m.api("GET", &info(&web)).await;
    assert_eq!(web_info["unionid"], unionid("bob"));
    assert_eq!(web_info["unionid"], oa_info["unionid"]);
    assert_eq!(web["unionid"], oa_info["unionid"]);
    assert_eq!(web_info["openid"], web["openid"]);
    assert!(web_info["nickname"].as_str().is_some() && web_info["headimgurl"].as_str().is_some());

    // The URL is checked.
    let bad = [
        qr.replace("snsapi_login", "snsapi_base"),
        qr.replace(WEB_APPID, APPID),
        qr.replace(&enc, &encode_component("http://gw.test/cb")),
        format!(
            "/connect/qrconnect?redirect_uri={enc}&appid={WEB_APPID}&response_type=code&scope=snsapi_login&state=a"
        ),
    ];
    for path in bad {
        let (status, _, page) = m.get(&path, DESKTOP_UA, None).await;
        assert_eq!(status, 200);
        assert!(!page.contains("mock-qr"), "{path} was accepted");
    }
    let s = m.stats().await;
    assert_eq!((&s["qr_pages"], &s["qr_scans"], &s["website_exchanges"]), (&1.into(), &1.into(), &4.into()));
}
