//! The code exchange: `GET <api_base>/sns/oauth2/access_token`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::answer::{self, transport_error};
use super::errcode::{classify, ErrClass};
use super::{Identity, Scope, Subject};
use crate::util::secret::Secret;

/// Why an exchange gave no identity. Cloneable: callbacks that share one exchange share its
/// outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ExchangeError {
    #[error("WeChat error {errcode}: {errmsg}")]
    Rejected { errcode: i64, errmsg: String },
    #[error("WeChat answered HTTP {0} without an error code")]
    Http(u16),
    #[error("WeChat's answer could not be read: {0}")]
    Malformed(String),
    #[error("WeChat did not answer in time")]
    Timeout,
    #[error("WeChat could not be reached: {0}")]
    Network(String),
    /// The account's access_token, which this exchange needs (WeCom's user lookup), could not
    /// be had: its fetch was refused (`errcode`) or did not answer (`None`).
    #[error("the account's access_token could not be had: {errmsg}")]
    Credential { errcode: Option<i64>, errmsg: String },
}

impl ExchangeError {
    /// The outcome class; transport failures count as transient.
    pub fn class(&self) -> ErrClass {
        match self {
            ExchangeError::Rejected { errcode, .. } => classify(*errcode).0,
            // A refused fetch is the operator's to fix (the secret, the corp id, this server's
            // IP), but for WeChat's busy and its daily quota.
            ExchangeError::Credential { errcode: Some(errcode), .. } if !matches!(errcode, -1 | 45009) => {
                ErrClass::Misconfigured
            }
            _ => ErrClass::Transient,
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    openid: Option<String>,
    unionid: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    is_snapshotuser: i64,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct UserInfo {
    nickname: Option<String>,
    headimgurl: Option<String>,
    unionid: Option<String>,
}

/// An HTTP client for the exchange endpoint of one Official Account, or of one open platform
/// website app (desktop sign-in: every login there is consented to, and brings the profile).
#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    endpoint: Url,
    userinfo: Url,
    appid: String,
    secret: Secret,
    website: bool,
}

impl WechatClient {
    pub fn new(api_base: &Url, appid: &str, secret: Secret, connect: Duration, total: Duration) -> Self {
        let http = answer::client(connect, total);
        let endpoint =
            api_base.join("/sns/oauth2/access_token").expect("joining an absolute path onto an http URL cannot fail");
        let userinfo = api_base.join("/sns/userinfo").expect("joining an absolute path onto an http URL cannot fail");
        Self { http, endpoint, userinfo, appid: appid.to_string(), secret, website: false }
    }

    /// The client of an open platform website app (`snsapi_login`): its users' openids are
    /// the website app's, and the profile (with the `unionid`) is always fetched.
    pub fn website(mut self) -> Self {
        self.website = true;
        self
    }

    /// Exchanges `code` once. Never retried here: WeChat may have consumed the code even when
    /// the answer was lost.
    pub async fn exchange(&self, code: &str) -> Result<Identity, ExchangeError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose_str())
            .append_pair("code", code)
            .append_pair("grant_type", "authorization_code");
        let resp = self.http.get(url).send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport_error)?;
        let mut identity = parse_answer(status, &body)?;
        if self.website {
            identity.subject = Subject::WebsiteOpenid;
            identity.sub_appid = Some(self.appid.clone());
            identity.scope = Scope::Userinfo;
            identity.snapshot_user = false;
        }
        if identity.scope == Scope::Userinfo && !identity.snapshot_user {
            self.add_userinfo(&mut identity).await?;
        }
        Ok(identity)
    }

    /// `GET /sns/userinfo`: nickname, avatar and unionid for a `snsapi_userinfo` login.
    async fn add_userinfo(&self, identity: &mut Identity) -> Result<(), ExchangeError> {
        let Some(token) = identity.access_token.as_deref() else {
            return Err(ExchangeError::Malformed("userinfo scope without access_token".into()));
        };
        let mut url = self.userinfo.clone();
        url.query_pairs_mut()
            .append_pair("access_token", token)
            .append_pair("openid", &identity.openid)
            .append_pair("lang", "zh_CN");
        let resp = self.http.get(url).send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport_error)?;
        let info: UserInfo = answer::read(status, &body)?;
        identity.nickname = info.nickname.filter(|n| !n.is_empty());
        identity.avatar = info.headimgurl.filter(|h| !h.is_empty());
        identity.unionid = identity.unionid.take().or(info.unionid.filter(|u| !u.is_empty()));
        Ok(())
    }
}

/// Reads the body whatever the status and Content-Type: `errcode` first, then `openid`.
pub fn parse_answer(status: u16, body: &[u8]) -> Result<Identity, ExchangeError> {
    let answer: Answer = answer::read(status, body)?;
    match answer.openid {
        Some(openid) if !openid.is_empty() => Ok(Identity {
            openid,
            subject: Subject::Openid,
            sub_appid: None,
            external_userid: None,
            unionid: answer.unionid.filter(|u| !u.is_empty()),
            scope: Scope::granted(&answer.scope),
            snapshot_user: answer.is_snapshotuser == 1,
            nickname: None,
            avatar: None,
            access_token: answer.access_token,
        }),
        _ if !(200..300).contains(&status) => Err(ExchangeError::Http(status)),
        _ => Err(ExchangeError::Malformed("no openid and no errcode".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcode_wins_over_status_and_content() {
        let e = parse_answer(200, br#"{"errcode":40163,"errmsg":"code been used, rid: 1-2-3"}"#).unwrap_err();
        assert_eq!(e, ExchangeError::Rejected { errcode: 40163, errmsg: "code been used, rid: 1-2-3".into() });
        assert_eq!(e.class(), ErrClass::CodeRejected);
    }

    #[test]
    fn success_and_snapshot() {
        let ok = parse_answer(
            200,
            br#"{"access_token":"A","expires_in":7200,"refresh_token":"R","openid":"oX","scope":"snsapi_base"}"#,
        )
        .unwrap();
        assert_eq!(ok.openid, "oX");
        assert!(!ok.snapshot_user);
        let snap = parse_answer(200, br#"{"openid":"oV","scope":"snsapi_userinfo","is_snapshotuser":1}"#).unwrap();
        assert!(snap.snapshot_user);
    }

    #[test]
    fn garbage_and_server_errors() {
        assert!(matches!(parse_answer(200, b"<html>"), Err(ExchangeError::Malformed(_))));
        assert_eq!(parse_answer(500, b"oops"), Err(ExchangeError::Http(500)));
        assert_eq!(parse_answer(502, b"{}"), Err(ExchangeError::Http(502)));
    }
}
