//! A strict stand-in for WeChat's `open.weixin.qq.com` authorize page, `api.weixin.qq.com`
//! (code exchange, the account's access tokens and jsapi tickets) and the JS-SDK's
//! `wx.config` check, for local development and tests.
//!
//! It is at least as strict as WeChat: parameter order, state charset and length,
//! `response_type`, scope, appid, the registered domain (exact host, no port unless allowed),
//! WeChat's User-Agent, single-use codes that expire after five minutes, and errors as HTTP 200
//! JSON served as `text/plain`. Simulated users get stable openids. Faults can be queued and
//! exchanges are counted.
//!
//! WeChat's endpoints:
//! - `GET /connect/oauth2/authorize`, `GET /sns/oauth2/access_token`, `GET /sns/userinfo`
//! - `GET /cgi-bin/token`, `POST /cgi-bin/stable_token`, `GET /cgi-bin/ticket/getticket`: the
//!   account's global credentials with WeChat's rules ([`CredentialRules`]: lifetimes, the
//!   classic token's clobbering after a grace, the stable token's renewal and forced refresh,
//!   daily quotas in Beijing days, the IP allow-list checked against the TCP peer)
//! - `GET /open/js/jweixin-1.6.0.js`: a fake JS-SDK whose `wx.config` asks `/mock/jssdk/check`
//!
//! Endpoints besides WeChat's own:
//! - `GET /mock/stats`: the [`Stats`] as JSON (`{"authorizes":N,"exchanges":N,…}`)
//! - `POST /mock/fault?kind=busy|http500|malformed|slow|errcode[&ms=N][&errcode=N]`: the next
//!   exchange fails that way
//! - `GET /mock/openid?user=NAME`: the openid NAME gets
//! - `GET /mock/login-as?user=NAME`: later authorizations from this browser are NAME's
//! - `GET /cgi-bin/getcallbackip?access_token=`: WeChat's addresses, for a living token.
//! - `POST /mock/credential-fault?errcode=N[&call=getcallbackip]`: the next token, stable_token,
//!   getticket or getcallbackip call (with `call`: the next getcallbackip)
//!   answers errcode N
//! - `POST /mock/invalidate-tokens`: every access_token of the account dies now
//! - `POST /mock/allow-ips?ips=1.2.3.4,5.6.7.8`: the IP allow-list (empty or absent: any caller)
//! - `GET /mock/jssdk/check?appId=&timestamp=&nonceStr=&signature=&url=`: `{"errMsg":…}` as
//!   `wx.config` would get it (`config:ok`, `config:invalid signature`, `config:invalid url
//!   domain`, `config:invalid appId`), with `Access-Control-Allow-Origin: *`
//!
//! The user of an authorization is the `X-Mock-User` header, else the `mock_user` cookie, else
//! the configured default user. With `snsapi_userinfo`, `X-Mock-Consent: deny` refuses consent
//! (WeChat's older clients then come back with `state` and no `code`) and
//! `X-Mock-Snapshot: 1` plays WeChat's snapshot page (a virtual openid, `is_snapshotuser: 1`).
//! `GET /sns/userinfo` answers for `snsapi_userinfo` tokens (48001 for `snsapi_base` ones).
//!
//! WeCom (企业微信), when [`MockConfig::corp`] is set ([`MockCorp`]; members' userid is their
//! mock user name, everyone else gets an openid and an `external_userid`):
//! - `GET /connect/oauth2/authorize` with `appid=CORPID`: WeCom's rules (`agentid` after
//!   `state`, `snsapi_base`, the app's trusted domains, `wxwork` in the User-Agent, members
//!   outside the app's visible range refused)
//! - `GET /cgi-bin/gettoken?corpid=&corpsecret=`: the corp token, the same one while it lives
//! - `GET /cgi-bin/auth/getuserinfo?access_token=&code=`: `userid`, or `openid` and
//!   `external_userid`; queued [`Fault`]s apply as to the code exchange
//! - `GET /wwlogin/sso/login?login_type=CorpApp&appid=&agentid=&redirect_uri=&state=` (and the
//!   older `GET /wwopen/sso/qrConnect?appid=&agentid=&redirect_uri=&state=`): the desktop QR page
//! - `POST /mock/wecom/trusted-ips?ips=A,B`: the corp's trusted IPs (empty: any caller; else
//!   60020 for others); `POST /mock/wecom/invalidate-token`: the corp token dies now;
//!   `POST /mock/credential-fault?errcode=N&call=gettoken`: the next gettoken answers N
//!
//! The Open Platform website app, when [`MockConfig::website`] is set ([`MockWebsite`]):
//! - `GET /connect/qrconnect?appid=&redirect_uri=&response_type=code&scope=snsapi_login&state=`:
//!   the desktop QR page; its codes are exchanged at `GET /sns/oauth2/access_token` with the
//!   website app's appid and secret (`unionid` included) and `GET /sns/userinfo` answers for them
//!
//! Both QR pages carry `<div id="mock-qr" data-scan="SCANID">` and poll
//! `GET /mock/qr/status?scan=SCANID` (`{"scanned":false}`, `{"scanned":true,"location":…}`,
//! `{"refused":true,"message":…}` or `{"expired":true,"message":…}`) every 300 ms;
//! `POST /mock/qr/scan?scan=SCANID&user=NAME` scans one with NAME's phone (without `scan`: the
//! most recent pending one; without `user`: the default user).

mod api;
mod authorize;
mod credentials;
mod hooks;
mod jssdk;
mod qr;
mod website;
mod wecom;
mod wecom_api;

pub use credentials::CredentialRules;
pub use jssdk::jssdk_signature;
pub use qr::SCAN_LIFETIME_SECS;
pub use website::{MockWebsite, WEBSITE_CODE_LIFETIME_SECS};
pub use wecom::{external_userid, MockCorp};
pub use wecom_api::CORP_TOKEN_LIFETIME_SECS;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use sha2::{Digest, Sha256};

use crate::http::client::query_param as param;
use crate::util::clock::{Clock, Entropy, OsEntropy, SystemClock};

/// What the mock accepts.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub appid: String,
    pub secret: String,
    /// The account's 网页授权域名 (WeChat allows two).
    pub domains: Vec<String>,
    /// Accept a port in `redirect_uri` (real WeChat refuses: error 10003).
    pub allow_port: bool,
    /// Accept browsers without `MicroMessenger` in their User-Agent.
    pub any_browser: bool,
    pub default_user: String,
    /// The account's global credentials: lifetimes, quotas, the IP allow-list.
    pub rules: CredentialRules,
    /// A WeCom (企业微信) corp and its self-built app, if the mock plays WeCom too.
    pub corp: Option<MockCorp>,
    /// An Open Platform website app (desktop QR login), if the mock plays one.
    pub website: Option<MockWebsite>,
}

#[cfg(test)]
impl MockConfig {
    /// An Official Account `appid` with `secret` on `h5.test`, WeChat's browsers only, default
    /// user alice, no corp, no website app; with `..` the rest of a test's own.
    pub(crate) fn for_tests(appid: &str, secret: &str) -> Self {
        Self {
            appid: appid.into(),
            secret: secret.into(),
            domains: vec!["h5.test".into()],
            allow_port: false,
            any_browser: false,
            default_user: "alice".into(),
            rules: CredentialRules::default(),
            corp: None,
            website: None,
        }
    }
}

/// A failure to inject into the next code exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200 with this `errcode` (such as -1, system busy).
    Errcode(i64),
    /// HTTP 500 with an HTML body.
    Http500,
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Answer normally, after this long.
    Slow(Duration),
}

/// What the mock has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub authorizes: u64,
    pub exchanges: u64,
    pub successes: u64,
    /// `GET /cgi-bin/token` calls, answered or refused.
    pub token_calls: u64,
    /// `POST /cgi-bin/stable_token` calls, answered or refused.
    pub stable_calls: u64,
    /// Stable tokens refreshed by `force_refresh`.
    pub forced_refreshes: u64,
    /// New access_tokens of either kind.
    pub tokens_issued: u64,
    /// `GET /cgi-bin/ticket/getticket` calls, answered or refused.
    pub ticket_calls: u64,
    /// New jsapi tickets.
    pub tickets_issued: u64,
    /// `GET /cgi-bin/getcallbackip` calls (a token's check).
    pub token_checks: u64,
    /// `wx.config` signature checks.
    pub jssdk_checks: u64,
    /// Checks that passed.
    pub jssdk_ok: u64,
    /// `GET /cgi-bin/gettoken` calls (WeCom), answered or refused.
    pub corp_token_calls: u64,
    /// New WeCom corp tokens.
    pub corp_tokens_issued: u64,
    /// `GET /cgi-bin/auth/getuserinfo` calls (WeCom), answered or refused.
    pub corp_userinfo_calls: u64,
    /// Desktop QR pages served (WeCom web login and website login).
    pub qr_pages: u64,
    /// Scans of a pending QR page, refused ones included.
    pub qr_scans: u64,
    /// Code exchanges with the website app's appid, answered or refused.
    pub website_exchanges: u64,
}

struct Code {
    user: String,
    openid: String,
    scope: String,
    issued: u64,
    used: bool,
    /// Issued from WeChat's snapshot page: a virtual openid, `is_snapshotuser: 1`.
    snapshot: bool,
}

/// What an access token from an exchange allows.
struct Grant {
    user: String,
    openid: String,
    scope: String,
}

#[derive(Default)]
struct State {
    codes: HashMap<String, Code>,
    tokens: HashMap<String, Grant>,
    faults: VecDeque<Fault>,
    creds: credentials::Credentials,
    corp: wecom_api::CorpState,
    website: website::WebsiteState,
    scans: qr::Scans,
    stats: Stats,
}

/// The mock WeChat service. Clones share one state, so a test can keep a handle on the mock
/// it serves.
#[derive(Clone)]
pub struct MockWechat {
    cfg: Arc<MockConfig>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    state: Arc<Mutex<State>>,
}

/// Codes live this long, as at WeChat.
pub const CODE_LIFETIME_SECS: u64 = 300;

impl MockWechat {
    /// A mock on the system clock.
    pub fn new(cfg: MockConfig) -> Self {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    /// A mock on `clock` (tests use a `ManualClock`).
    pub fn with_clock(cfg: MockConfig, clock: Arc<dyn Clock>) -> Self {
        Self { cfg: Arc::new(cfg), clock, entropy: Arc::new(OsEntropy), state: Arc::default() }
    }

    /// The openid that `user` gets for this mock's appid: 28 characters starting with `o`,
    /// like WeChat's.
    pub fn openid_for(&self, user: &str) -> String {
        openid(&self.cfg.appid, user)
    }

    /// The next exchange fails with `fault` (faults queue up).
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// What the mock has seen so far.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The unionid `user` gets: the same for every appid, unlike the openid.
pub fn unionid(user: &str) -> String {
    openid("union", user)
}

/// `o` + 27 characters of base64url(SHA-256(appid:user)).
pub fn openid(appid: &str, user: &str) -> String {
    let digest = Sha256::digest(format!("{appid}:{user}").as_bytes());
    let mut s = String::from("o");
    s.push_str(&URL_SAFE_NO_PAD.encode(digest)[..27]);
    s
}

#[async_trait]
impl ServeHttp for MockWechat {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_string();
        let query = req.uri.query().unwrap_or("").to_string();
        let method = req.method.clone();
        match (method.as_str(), path.as_str()) {
            ("GET", "/connect/oauth2/authorize") if self.is_corp_appid(&query) => self.corp_authorize(req, &query),
            ("GET", "/connect/oauth2/authorize") => self.authorize(req, &query),
            ("GET", "/sns/oauth2/access_token") if self.is_website_appid(&query) => {
                self.website_access_token(&query).await
            }
            ("GET", "/sns/oauth2/access_token") => self.access_token(&query).await,
            ("GET", "/sns/userinfo") => self.website_userinfo(&query).unwrap_or_else(|| self.userinfo(&query)),
            ("GET", "/cgi-bin/gettoken") => self.corp_gettoken(&query, peer_ip(session)),
            ("GET", "/cgi-bin/auth/getuserinfo") => self.corp_userinfo(&query, peer_ip(session)).await,
            ("GET", "/wwlogin/sso/login") => self.wwlogin(&query, false),
            ("GET", "/wwopen/sso/qrConnect") => self.wwlogin(&query, true),
            ("GET", "/connect/qrconnect") => self.qrconnect(&query),
            ("GET", "/mock/qr/status") => self.qr_status(&query),
            ("POST", "/mock/qr/scan") => self.qr_scan(&query),
            ("POST", "/mock/wecom/trusted-ips") => self.ips_from_query(&query, Self::set_corp_trusted_ips),
            ("POST", "/mock/wecom/invalidate-token") => {
                self.invalidate_corp_token();
                json(200, r#"{"invalidated":true}"#)
            }
            ("GET", "/mock/stats") => json(200, &serde_json::to_string(&self.stats()).unwrap_or_default()),
            ("POST", "/mock/fault") => self.fault_from_query(&query),
            ("GET", "/mock/openid") => match param(&query, "user") {
                Some(u) => json(200, &serde_json::json!({ "openid": self.openid_for(&u) }).to_string()),
                None => json(400, r#"{"error":"user is required"}"#),
            },
            ("GET", "/mock/login-as") => hooks::login_as(&query),
            ("GET", "/cgi-bin/token") => self.answer(self.classic_token(&query, peer_ip(session)), false),
            ("POST", "/cgi-bin/stable_token") => {
                let body = read_body(session).await;
                self.answer(self.stable_token(&body, peer_ip(session)), false)
            }
            ("GET", "/cgi-bin/ticket/getticket") => self.answer(self.ticket(&query), true),
            ("GET", "/cgi-bin/getcallbackip") => match self.callback_ip(&query) {
                Ok(()) => text(200, "text/plain", r#"{"ip_list":["101.226.103.0/25","101.226.62.0/26"]}"#.into()),
                Err((errcode, msg)) => self.error(errcode, &msg),
            },
            ("GET", "/mock/jssdk/check") => self.jssdk_check_http(&query),
            ("GET", "/open/js/jweixin-1.6.0.js") => {
                jssdk::script(session.req_header().headers.get(http::header::HOST).and_then(|v| v.to_str().ok()))
            }
            ("POST", "/mock/credential-fault") => match param(&query, "errcode").and_then(|c| c.parse().ok()) {
                Some(c) => {
                    match param(&query, "call").as_deref() {
                        Some("getcallbackip") => self.inject_check_fault(c),
                        Some("gettoken") => self.inject_corp_token_fault(c),
                        _ => self.inject_credential_fault(c),
                    }
                    json(200, r#"{"queued":true}"#)
                }
                None => json(400, r#"{"error":"errcode is required"}"#),
            },
            ("POST", "/mock/invalidate-tokens") => {
                self.invalidate_tokens();
                json(200, r#"{"invalidated":true}"#)
            }
            ("POST", "/mock/allow-ips") => self.ips_from_query(&query, Self::set_allowed_ips),
            _ => text(404, "text/plain; charset=utf-8", "not a WeChat endpoint".into()),
        }
    }
}

/// The request body, at most 64 KiB; empty (so not JSON) when longer or broken.
async fn read_body(session: &mut ServerSession) -> Vec<u8> {
    const MAX_BODY: usize = 64 * 1024;
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => body.extend_from_slice(&chunk),
            Ok(None) => return body,
            Ok(Some(_)) | Err(_) => return Vec::new(),
        }
    }
}

/// The TCP peer's address (what WeChat's IP allow-list is checked against).
fn peer_ip(session: &ServerSession) -> Option<std::net::IpAddr> {
    session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip())
}

fn text(status: u16, content_type: &str, body: String) -> Response<Vec<u8>> {
    let mut r = Response::new(body.into_bytes());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut().insert(http::header::CONTENT_LENGTH, len.into());
    r
}

fn json(status: u16, body: &str) -> Response<Vec<u8>> {
    text(status, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_are_stable_and_distinct() {
        let a = openid("wx1", "alice");
        assert_eq!(a, openid("wx1", "alice"));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with('o'));
        assert_ne!(a, openid("wx1", "bob"));
        assert_ne!(a, openid("wx2", "alice"));
    }
}
