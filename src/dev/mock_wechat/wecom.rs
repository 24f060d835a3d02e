//! WeCom (企业微信): the corp and its self-built app, the identities its users get, and the
//! browser side of its logins: `GET /connect/oauth2/authorize` with `appid=CORPID` (WeCom's
//! rules, not the Official Account's) and the desktop web login `GET /wwlogin/sso/login`
//! (and the older `GET /wwopen/sso/qrConnect`), checked before the QR page is shown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Response;
use pingora::http::RequestHeader;
use sha2::{Digest, Sha256};
use url::Url;

use super::authorize::{
    callback_location, check_redirect, in_order, raw_pairs, refusal_page, state_ok, RedirectRefusal, ORDER,
    OUT_OF_ORDER,
};
use super::qr::Provider;
use super::{param, text, MockWechat};

/// A WeCom corp and the self-built app the gateway signs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockCorp {
    /// The corp's id (`ww…`), used as `appid` on the authorize page.
    pub corpid: String,
    /// The app's id (`1000002`).
    pub agentid: String,
    /// The app's `corpsecret`.
    pub secret: String,
    /// The app's trusted domains (可信域名): exact hosts, no IP address, a port only when
    /// [`super::MockConfig::allow_port`] says so.
    pub domains: Vec<String>,
    /// The mock users who are corp members; a member's userid is their name.
    pub members: Vec<String>,
    /// Members outside the app's visible range: refused on authorize and on QR scan.
    pub hidden: Vec<String>,
}

/// What a mock user is to the corp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Membership {
    /// A member in the app's visible range: signs in with their userid.
    Member,
    /// A member outside the app's visible range: refused.
    Hidden,
    /// Not a member: an openid and an external_userid.
    Outsider,
}

impl MockWechat {
    /// The phone of `user` scans the corp's web login: a code for a member in the app's visible
    /// range, else WeCom's refusal.
    pub(super) fn corp_scan(&self, user: &str) -> Result<String, &'static str> {
        match self.cfg.corp.as_ref().map(|c| c.membership(user)) {
            Some(Membership::Member) => Ok(self.issue_corp_code(user)),
            Some(Membership::Hidden) => {
                Err("你不在该应用的可见范围内，无法登录 · You are outside this app's visible range and cannot sign in")
            }
            Some(Membership::Outsider) | None => {
                Err("你不是该企业的成员，无法登录 · You are not a member of this corp and cannot sign in")
            }
        }
    }
}

impl MockCorp {
    pub(super) fn membership(&self, user: &str) -> Membership {
        if self.hidden.iter().any(|h| h == user) {
            Membership::Hidden
        } else if self.members.iter().any(|m| m == user) {
            Membership::Member
        } else {
            Membership::Outsider
        }
    }
}

/// The external_userid a non-member `user` gets from the corp `corpid`: `wm` + 30 characters of
/// base64url(SHA-256(`external:CORPID:USER`)).
pub fn external_userid(corpid: &str, user: &str) -> String {
    let digest = Sha256::digest(format!("external:{corpid}:{user}").as_bytes());
    let mut s = String::from("wm");
    s.push_str(&URL_SAFE_NO_PAD.encode(digest)[..30]);
    s
}

type Page = Response<Vec<u8>>;

impl MockWechat {
    /// The openid a non-member `user` gets from the corp (`None` without a corp).
    pub fn corp_openid_for(&self, user: &str) -> Option<String> {
        self.cfg.corp.as_ref().map(|c| super::openid(&c.corpid, user))
    }

    /// Whether the query's `appid` is the corp's id.
    pub(super) fn is_corp_appid(&self, query: &str) -> bool {
        let appid = param(query, "appid");
        self.cfg.corp.as_ref().is_some_and(|c| appid.as_deref() == Some(c.corpid.as_str()))
    }

    /// `GET /connect/oauth2/authorize?appid=CORPID&…`: WeCom's silent login.
    pub(super) fn corp_authorize(&self, req: &RequestHeader, query: &str) -> Page {
        self.lock().stats.authorizes += 1;
        let Some(corp) = self.cfg.corp.as_ref() else {
            return corp_page(None, "参数错误", "no WeCom corp is configured");
        };
        let ua = req.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.cfg.any_browser && !ua.contains("wxwork") {
            return corp_page(
                None,
                "请在企业微信客户端打开链接",
                "Open this link in the WeCom (企业微信) client; WeChat or another browser cannot open it",
            );
        }
        // WeChat's order, then `agentid`.
        let pairs = raw_pairs(query);
        let Some([_, redirect_raw, response_type, scope, state]) = in_order(&pairs) else {
            return corp_page(None, "参数错误", OUT_OF_ORDER);
        };
        let agentid = pairs.get(ORDER.len()).filter(|(k, _)| *k == "agentid").map(|(_, v)| *v);
        if agentid.is_none() && pairs.iter().any(|(k, _)| *k == "agentid") {
            return corp_page(None, "参数错误", "agentid must come right after state");
        }
        if let Some(a) = agentid.filter(|a| *a != corp.agentid) {
            let en = if a.is_empty() { "agentid is empty" } else { "agentid is not this corp's app" };
            return corp_page(Some(40056), "应用不存在或 agentid 错误", en);
        }
        if redirect_raw.is_empty() {
            return corp_page(None, "redirect_uri 参数为空", "redirect_uri is empty");
        }
        if response_type != "code" {
            return corp_page(None, "response_type 参数错误", "response_type must be code");
        }
        let scope_ok = scope == "snsapi_base" || (scope == "snsapi_privateinfo" && agentid.is_some());
        if !scope_ok {
            return corp_page(
                None,
                "scope 参数错误",
                "scope must be snsapi_base (snsapi_privateinfo only with agentid)",
            );
        }
        if !state_ok(state) {
            return corp_page(None, "state 参数错误", "state must be 1 to 128 characters of [A-Za-z0-9]");
        }
        let redirect = match self.corp_redirect(corp, redirect_raw) {
            Ok(u) => u,
            Err((errcode, zh, en)) => return corp_page(errcode, zh, en),
        };
        let user = self.mock_user(req);
        if corp.membership(&user) == Membership::Hidden {
            return corp_page(None, "你不在该应用的可见范围内", "you are outside this app's visible range");
        }
        let code = self.issue_corp_code(&user);
        let mut r = text(302, "text/html; charset=utf-8", String::new());
        if let Ok(v) = callback_location(&redirect, Some(&code), state).parse() {
            r.headers_mut().insert(http::header::LOCATION, v);
        }
        r
    }

    /// `GET /wwlogin/sso/login?login_type=CorpApp&appid=&agentid=&redirect_uri=&state=` (and,
    /// `legacy`, `GET /wwopen/sso/qrConnect?appid=&agentid=&redirect_uri=&state=`): the desktop
    /// QR page, or WeCom's error page.
    pub(super) fn wwlogin(&self, query: &str, legacy: bool) -> Page {
        let Some(corp) = self.cfg.corp.as_ref() else {
            return corp_page(None, "参数错误", "no WeCom corp is configured");
        };
        let pairs = raw_pairs(query);
        let raw = |k: &str| pairs.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| *v);
        if !legacy && raw("login_type") != "CorpApp" {
            return corp_page(None, "login_type 参数错误", "login_type must be CorpApp");
        }
        if raw("appid") != corp.corpid {
            return corp_page(Some(40013), "appid 参数错误", "appid is not the corp's id");
        }
        if raw("agentid") != corp.agentid {
            return corp_page(Some(40056), "应用不存在或 agentid 错误", "agentid is missing or not this corp's app");
        }
        if raw("redirect_uri").is_empty() {
            return corp_page(None, "redirect_uri 参数为空", "redirect_uri is empty");
        }
        let state = raw("state");
        if !state_ok(state) {
            return corp_page(None, "state 参数错误", "state must be 1 to 128 characters of [A-Za-z0-9]");
        }
        match self.corp_redirect(corp, raw("redirect_uri")) {
            Ok(redirect) => self.qr_page(Provider::Corp, redirect, state),
            Err((errcode, zh, en)) => corp_page(errcode, zh, en),
        }
    }

    /// The redirect, checked against the app's trusted domains (50001 when not one of them).
    fn corp_redirect(&self, corp: &MockCorp, raw: &str) -> Result<Url, RedirectRefusal> {
        check_redirect(raw, &corp.domains, self.cfg.allow_port).map_err(|(code, zh, en)| match code {
            Some(_) => {
                (Some(50001), "redirect_uri 与应用的可信域名不一致", "redirect_uri is not on the app's trusted domains")
            }
            None => (None, zh, en),
        })
    }
}

/// WeCom's error page: HTML with status 200, no redirect.
pub(super) fn corp_page(errcode: Option<i64>, zh: &str, en: &str) -> Page {
    refusal_page("企业微信 WeCom (mock)", errcode, zh, en)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_userids_are_stable_and_per_corp() {
        let a = external_userid("ww1", "bob");
        assert_eq!(a, external_userid("ww1", "bob"));
        assert_eq!(a.len(), 32);
        assert!(a.starts_with("wm"));
        assert_ne!(a, external_userid("ww2", "bob"));
        assert_ne!(a, external_userid("ww1", "carol"));
    }

    #[test]
    fn membership_and_state() {
        let corp = MockCorp {
            corpid: "ww1".into(),
            agentid: "1000002".into(),
            secret: "s".into(),
            domains: vec![],
            members: vec!["alice".into(), "hid".into()],
            hidden: vec!["hid".into()],
        };
        assert_eq!(corp.membership("alice"), Membership::Member);
        assert_eq!(corp.membership("hid"), Membership::Hidden);
        assert_eq!(corp.membership("bob"), Membership::Outsider);
        assert!(state_ok("abc123") && state_ok(&"a".repeat(128)));
        assert!(!state_ok("") && !state_ok(&"a".repeat(129)) && !state_ok("a+b"));
    }
}
