//! The Open Platform website app (网站应用, desktop QR login): `GET /connect/qrconnect`
//! checked as WeChat does, its codes exchanged at `GET /sns/oauth2/access_token` with the
//! website app's appid and secret (an openid of that app, and the `unionid`), and
//! `GET /sns/userinfo` for its `snsapi_login` tokens. Codes are bound to their app: the
//! Official Account's codes are unknown here and the website's unknown there (40029).

use std::collections::HashMap;

use http::Response;

use super::api::profile;
use super::authorize::{check_redirect, error_page, in_order, missing, raw_pairs, state_ok, OUT_OF_ORDER};
use super::qr::Provider;
use super::{param, text, MockWechat};
use crate::util::clock::base62_nonce;

/// An Open Platform website app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockWebsite {
    pub appid: String,
    pub secret: String,
    /// The app's 授权回调域 (exact hosts, the same port and IP rules as the Official Account's).
    pub domains: Vec<String>,
}

/// Website codes live this long, as at WeChat (the Official Account's: five minutes).
pub const WEBSITE_CODE_LIFETIME_SECS: u64 = 600;

struct WebCode {
    user: String,
    issued: u64,
    used: bool,
}

struct WebGrant {
    user: String,
    openid: String,
}

/// The website app's part of the mock's state.
#[derive(Default)]
pub(super) struct WebsiteState {
    codes: HashMap<String, WebCode>,
    tokens: HashMap<String, WebGrant>,
}

impl MockWechat {
    /// The openid `user` gets from the website app (`None` without one).
    pub fn website_openid_for(&self, user: &str) -> Option<String> {
        self.cfg.website.as_ref().map(|w| super::openid(&w.appid, user))
    }

    /// Whether the query's `appid` is the website app's (and not the Official Account's).
    pub(super) fn is_website_appid(&self, query: &str) -> bool {
        let appid = param(query, "appid");
        appid.as_deref() != Some(self.cfg.appid.as_str())
            && self.cfg.website.as_ref().is_some_and(|w| appid.as_deref() == Some(w.appid.as_str()))
    }

    /// `GET /connect/qrconnect?appid=&redirect_uri=&response_type=code&scope=snsapi_login&state=`.
    pub(super) fn qrconnect(&self, query: &str) -> Response<Vec<u8>> {
        let Some([appid, redirect_raw, response_type, scope, state]) = in_order(&raw_pairs(query)) else {
            return error_page(Some(10005), "Scope 参数错误或没有 Scope 权限", OUT_OF_ORDER);
        };
        if appid.is_empty() {
            return error_page(Some(10012), "appid 参数为空", "appid is empty");
        }
        let Some(website) = self.cfg.website.as_ref().filter(|w| w.appid == appid) else {
            return error_page(None, "appid 参数错误", "appid is not a website app's");
        };
        if let Some((code, zh, en)) = missing(redirect_raw, response_type, scope, state) {
            return error_page(Some(code), zh, en);
        }
        if scope != "snsapi_login" {
            return error_page(Some(10005), "Scope 参数错误或没有 Scope 权限", "scope must be snsapi_login");
        }
        if !state_ok(state) {
            return error_page(None, "state 参数错误", "state must be at most 128 characters of [A-Za-z0-9]");
        }
        match check_redirect(redirect_raw, &website.domains, self.cfg.allow_port) {
            Ok(redirect) => self.qr_page(Provider::Website, redirect, state),
            Err((code, zh, en)) => error_page(code, zh, en),
        }
    }

    /// A new single-use code of the website app for `user`.
    pub(super) fn issue_website_code(&self, user: &str) -> String {
        let code = base62_nonce(self.entropy.as_ref(), 32);
        let now = self.clock.now();
        let mut st = self.lock();
        st.website.codes.retain(|_, c| now < c.issued + WEBSITE_CODE_LIFETIME_SECS);
        st.website.codes.insert(code.clone(), WebCode { user: user.to_string(), issued: now, used: false });
        code
    }

    /// `GET /sns/oauth2/access_token` with the website app's appid; queued faults apply.
    pub(super) async fn website_access_token(&self, query: &str) -> Response<Vec<u8>> {
        self.lock().stats.website_exchanges += 1;
        if let Some(failed) = self.play_fault().await {
            return failed;
        }
        match self.website_exchange(query) {
            Ok(body) => text(200, "text/plain", body.to_string()),
            Err((errcode, msg)) => self.error(errcode, msg),
        }
    }

    fn website_exchange(&self, query: &str) -> Result<serde_json::Value, (i64, &'static str)> {
        let get = |k: &str| param(query, k).filter(|v| !v.is_empty());
        let website = self.cfg.website.as_ref().ok_or((40013, "invalid appid"))?;
        let secret = get("secret").ok_or((41004, "appsecret missing"))?;
        if secret != website.secret {
            return Err((40125, "invalid appsecret"));
        }
        let code = get("code").ok_or((41008, "missing code"))?;
        if get("grant_type").as_deref() != Some("authorization_code") {
            return Err((40002, "invalid grant_type"));
        }
        let now = self.clock.now();
        let mut st = self.lock();
        let user = match st.website.codes.get_mut(&code) {
            None => return Err((40029, "invalid code")),
            Some(c) if c.used => return Err((40163, "code been used")),
            Some(c) if now >= c.issued + WEBSITE_CODE_LIFETIME_SECS => return Err((40029, "invalid code")),
            Some(c) => {
                c.used = true;
                c.user.clone()
            }
        };
        let openid = super::openid(&website.appid, &user);
        let token = base62_nonce(self.entropy.as_ref(), 86);
        st.website.tokens.insert(token.clone(), WebGrant { user: user.clone(), openid: openid.clone() });
        Ok(serde_json::json!({
            "access_token": token,
            "expires_in": 7200,
            "refresh_token": base62_nonce(self.entropy.as_ref(), 86),
            "openid": openid,
            "scope": "snsapi_login",
            "unionid": super::unionid(&user),
        }))
    }

    /// `GET /sns/userinfo` for a website token; `None` when the token is not one.
    pub(super) fn website_userinfo(&self, query: &str) -> Option<Response<Vec<u8>>> {
        let token = param(query, "access_token")?;
        let grant = {
            let st = self.lock();
            st.website.tokens.get(&token).map(|g| (g.user.clone(), g.openid.clone()))
        };
        let (user, openid) = grant?;
        if param(query, "openid").as_deref() != Some(openid.as_str()) {
            return Some(self.error(40003, "invalid openid"));
        }
        Some(text(200, "text/plain", profile(&user, &openid).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::dev::mock_wechat::MockConfig;
    use crate::util::clock::ManualClock;

    fn mock() -> (MockWechat, ManualClock) {
        let clock = ManualClock::new(1_702_087_200);
        let cfg = MockConfig {
            website: Some(MockWebsite {
                appid: "wxweb".into(),
                secret: "web-secret".into(),
                domains: vec!["www.test".into()],
            }),
            ..MockConfig::for_tests("wxoa", "oa-secret")
        };
        (MockWechat::with_clock(cfg, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn website_codes_are_single_use_expire_and_need_the_secret() {
        let (m, clock) = mock();
        assert!(m.is_website_appid("appid=wxweb&secret=x") && !m.is_website_appid("appid=wxoa"));
        let q =
            |code: &str, secret: &str| format!("appid=wxweb&secret={secret}&code={code}&grant_type=authorization_code");
        let code = m.issue_website_code("bob");
        assert_eq!(m.website_exchange(&q(&code, "nope")).unwrap_err().0, 40125);
        assert_eq!(m.website_exchange(&q("made-up", "web-secret")).unwrap_err().0, 40029);
        let ok = m.website_exchange(&q(&code, "web-secret")).unwrap();
        assert_eq!(ok["openid"], super::super::openid("wxweb", "bob"));
        assert_eq!(ok["unionid"], super::super::unionid("bob"));
        assert_eq!(ok["scope"], "snsapi_login");
        assert_eq!(m.website_exchange(&q(&code, "web-secret")).unwrap_err().0, 40163);
        let late = m.issue_website_code("bob");
        clock.advance(WEBSITE_CODE_LIFETIME_SECS);
        assert_eq!(m.website_exchange(&q(&late, "web-secret")).unwrap_err().0, 40029);

        let token = ok["access_token"].as_str().unwrap();
        let openid = ok["openid"].as_str().unwrap();
        let r = m.website_userinfo(&format!("access_token={token}&openid={openid}")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["unionid"], super::super::unionid("bob"));
        assert!(body["nickname"].as_str().unwrap().starts_with("bob"));
        assert!(m.website_userinfo("access_token=unknown&openid=x").is_none());
    }
}
