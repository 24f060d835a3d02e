//! WeCom's (企业微信) web login: a code, from the silent login in WeCom's browser or from the
//! corp's web login QR page, turned into a user with the corp's access_token at
//! `GET <api_base>/cgi-bin/auth/getuserinfo?access_token=&code=`.
//!
//! Members come back as `{"errcode":0,"userid":…,"user_ticket":…}`, other users as
//! `{"errcode":0,"openid":…,"external_userid":…}`; errors with HTTP 200, read `errcode` first.

use serde::Deserialize;
use url::Url;

use super::answer::{self, transport_error};
use super::{ExchangeError, Identity, Scope, Subject};
use crate::config::WechatConfig;

#[derive(Deserialize)]
struct Answer {
    /// `UserId` in the older `cgi-bin/user/getuserinfo`.
    #[serde(alias = "UserId")]
    userid: Option<String>,
    #[serde(alias = "OpenId")]
    openid: Option<String>,
    external_userid: Option<String>,
}

/// An HTTP client for one WeCom app's user lookup.
#[derive(Clone)]
pub struct WecomUsers {
    http: reqwest::Client,
    endpoint: Url,
}

impl WecomUsers {
    pub fn new(w: &WechatConfig) -> Self {
        let endpoint = w
            .api_base
            .join("/cgi-bin/auth/getuserinfo")
            .expect("joining an absolute path onto an http URL cannot fail");
        Self { http: answer::client(w.connect_timeout, w.timeout), endpoint }
    }

    /// The user `code` belongs to, asked with the corp's `token`. Never retried here: the
    /// code may be spent even when the answer was lost.
    pub async fn user(&self, token: &str, code: &str) -> Result<Identity, ExchangeError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut().append_pair("access_token", token).append_pair("code", code);
        let resp = self.http.get(url).send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport_error)?;
        parse_user(status, &body)
    }
}

/// A member (`userid`) or an outsider (`openid`, with `external_userid` when given).
pub fn parse_user(status: u16, body: &[u8]) -> Result<Identity, ExchangeError> {
    let a: Answer = answer::read(status, body)?;
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    let (openid, subject) = match (some(a.userid), some(a.openid)) {
        (Some(userid), _) => (userid, Subject::Member),
        (None, Some(openid)) => (openid, Subject::Outsider),
        _ if !(200..300).contains(&status) => return Err(ExchangeError::Http(status)),
        _ => return Err(ExchangeError::Malformed("no userid, no openid and no errcode".into())),
    };
    let external_userid = if subject == Subject::Outsider { some(a.external_userid) } else { None };
    Ok(Identity { openid, subject, external_userid, scope: Scope::Base, ..Identity::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_outsiders() {
        let m =
            parse_user(200, br#"{"errcode":0,"errmsg":"ok","userid":"ZhangSan","user_ticket":"T","expires_in":1800}"#)
                .unwrap();
        assert_eq!((m.openid.as_str(), m.subject, m.external_userid), ("ZhangSan", Subject::Member, None));
        let o = parse_user(200, br#"{"errcode":0,"errmsg":"ok","openid":"oX","external_userid":"wmE"}"#).unwrap();
        assert_eq!((o.openid.as_str(), o.subject), ("oX", Subject::Outsider));
        assert_eq!(o.external_userid.as_deref(), Some("wmE"));
        let old = parse_user(200, br#"{"errcode":0,"errmsg":"ok","UserId":"LiSi","DeviceId":""}"#).unwrap();
        assert_eq!(old.openid, "LiSi");
    }

    #[test]
    fn errors_first() {
        assert_eq!(
            parse_user(200, br#"{"errcode":60020,"errmsg":"not allow to access from your ip"}"#),
            Err(ExchangeError::Rejected { errcode: 60020, errmsg: "not allow to access from your ip".into() })
        );
        assert!(matches!(parse_user(200, br#"{"errcode":0,"errmsg":"ok"}"#), Err(ExchangeError::Malformed(_))));
        assert_eq!(parse_user(502, b"<html>"), Err(ExchangeError::Http(502)));
    }
}
