//! The account's global credentials at WeChat: the access_token from `cgi-bin/stable_token`
//! (or `cgi-bin/token`) and the JS-SDK's `jsapi_ticket` from `cgi-bin/ticket/getticket`; for
//! a WeCom app, the corp's access_token from `cgi-bin/gettoken`.
//! Every answer is read `errcode` first, whatever its HTTP status; the secret, the token and
//! the ticket never reach an error message.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::answer::{self, transport_error};
use super::ExchangeError;
use crate::config::{Provider, TokenApi, WechatConfig};
use crate::util::secret::Secret;

/// A credential WeChat issued and how long it lives, in seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub value: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Issued(<{} chars>, {} s)", self.value.len(), self.expires_in)
    }
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    ticket: Option<String>,
    #[serde(default)]
    expires_in: u64,
}

/// An HTTP client for one account's credential endpoints.
pub struct CredentialApi {
    http: reqwest::Client,
    token_api: TokenApi,
    /// WeCom's `cgi-bin/gettoken`, for a WeCom app.
    wecom_token: Option<Url>,
    stable_token: Url,
    token: Url,
    ticket: Url,
    callback_ip: Url,
    appid: String,
    secret: Secret,
}

impl CredentialApi {
    pub fn new(w: &WechatConfig) -> Self {
        let http = answer::client(w.connect_timeout, w.timeout);
        let join = |path| w.api_base.join(path).expect("joining an absolute path onto an http URL cannot fail");
        Self {
            http,
            token_api: w.token_api,
            wecom_token: matches!(w.provider, Provider::Wecom { .. }).then(|| join("/cgi-bin/gettoken")),
            stable_token: join("/cgi-bin/stable_token"),
            token: join("/cgi-bin/token"),
            ticket: join("/cgi-bin/ticket/getticket"),
            callback_ip: join("/cgi-bin/getcallbackip"),
            appid: w.appid.clone(),
            secret: w.secret.clone().unwrap_or_else(|| Secret::new(Vec::new())),
        }
    }

    /// The longest one call may take.
    pub fn timeout(w: &WechatConfig) -> Duration {
        w.connect_timeout + w.timeout
    }

    /// A token. With the stable-token API, `force` asks for a new one (which ends the previous
    /// one at once); without, WeChat answers the token in force. `cgi-bin/token` always
    /// issues a new one.
    pub async fn token(&self, force: bool) -> Result<Issued, ExchangeError> {
        if let Some(gettoken) = &self.wecom_token {
            // WeCom answers the token in force until it ends; it has nothing to force.
            let mut url = gettoken.clone();
            url.query_pairs_mut()
                .append_pair("corpid", &self.appid)
                .append_pair("corpsecret", self.secret.expose_str());
            return self.call(self.http.get(url), |a| a.access_token.take()).await;
        }
        let request = match self.token_api {
            TokenApi::Stable => {
                let body = serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret.expose_str(),
                    "force_refresh": force,
                });
                self.http
                    .post(self.stable_token.clone())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
            }
            TokenApi::Classic => {
                let mut url = self.token.clone();
                url.query_pairs_mut()
                    .append_pair("grant_type", "client_credential")
                    .append_pair("appid", &self.appid)
                    .append_pair("secret", self.secret.expose_str());
                self.http.get(url)
            }
        };
        self.call(request, |a| a.access_token.take()).await
    }

    /// Can a token WeChat keeps answering be replaced by force (the stable-token API and
    /// `cgi-bin/token` can; WeCom cannot)?
    pub fn can_force(&self) -> bool {
        self.wecom_token.is_none()
    }

    /// Sends `request` and reads the credential `pick` takes from the answer.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        pick: impl FnOnce(&mut Answer) -> Option<String>,
    ) -> Result<Issued, ExchangeError> {
        let resp = request.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport_error)?;
        read(status, &body, pick)
    }

    /// The `jsapi_ticket` that `token` may fetch.
    pub async fn ticket(&self, token: &str) -> Result<Issued, ExchangeError> {
        let mut url = self.ticket.clone();
        url.query_pairs_mut().append_pair("access_token", token).append_pair("type", "jsapi");
        self.call(self.http.get(url), |a| a.ticket.take()).await
    }
}

impl CredentialApi {
    /// Does WeChat take `token`? `GET /cgi-bin/getcallbackip`, the cheapest call that needs one.
    pub async fn check(&self, token: &str) -> Result<(), ExchangeError> {
        let mut url = self.callback_ip.clone();
        url.query_pairs_mut().append_pair("access_token", token);
        let resp = self.http.get(url).send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport_error)?;
        answer::read::<serde::de::IgnoredAny>(status, &body)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(ExchangeError::Http(status))
        }
    }
}

/// The credential in an answer: `errcode` first, then the value `pick` takes.
fn read(status: u16, body: &[u8], pick: impl FnOnce(&mut Answer) -> Option<String>) -> Result<Issued, ExchangeError> {
    let mut answer: Answer = answer::read(status, body)?;
    match pick(&mut answer) {
        Some(value) if !value.is_empty() && answer.expires_in > 0 => {
            Ok(Issued { value, expires_in: answer.expires_in })
        }
        _ if !(200..300).contains(&status) => Err(ExchangeError::Http(status)),
        _ => Err(ExchangeError::Malformed("no credential, no expires_in and no errcode".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_errcode_first() {
        let token = |s, b: &[u8]| read(s, b, |a| a.access_token.take());
        assert_eq!(
            token(200, br#"{"access_token":"T","expires_in":7200}"#).unwrap(),
            Issued { value: "T".into(), expires_in: 7200 }
        );
        assert_eq!(
            token(200, br#"{"errcode":40164,"errmsg":"invalid ip"}"#),
            Err(ExchangeError::Rejected { errcode: 40164, errmsg: "invalid ip".into() })
        );
        assert!(matches!(token(200, b"<html>"), Err(ExchangeError::Malformed(_))));
        assert!(matches!(token(200, br#"{"access_token":"","expires_in":7200}"#), Err(ExchangeError::Malformed(_))));
        assert_eq!(token(502, b"bad gateway"), Err(ExchangeError::Http(502)));
        let ticket = read(200, br#"{"errcode":0,"errmsg":"ok","ticket":"K","expires_in":7200}"#, |a| a.ticket.take());
        assert_eq!(ticket.unwrap().value, "K");
    }

    #[test]
    fn an_issued_credential_never_prints() {
        let i = Issued { value: "secret-token-value".into(), expires_in: 7200 };
        assert!(!format!("{i:?}").contains("secret-token-value"));
    }
}
