//! The mock's own hooks beside WeChat's endpoints: queued faults, IP lists, the user a browser
//! plays, and the answer of a credential call.

use std::net::IpAddr;
use std::time::Duration;

use http::Response;

use super::{credentials, json, param, text, Fault, MockWechat};

impl MockWechat {
    pub(super) fn fault_from_query(&self, query: &str) -> Response<Vec<u8>> {
        let num = |k: &str| param(query, k).and_then(|v| v.parse::<i64>().ok());
        let fault = match param(query, "kind").as_deref() {
            Some("busy") => Fault::Errcode(-1),
            Some("http500") => Fault::Http500,
            Some("malformed") => Fault::Malformed,
            Some("slow") => Fault::Slow(Duration::from_millis(num("ms").unwrap_or(3000).max(0) as u64)),
            Some("errcode") => match num("errcode") {
                Some(c) => Fault::Errcode(c),
                None => return json(400, r#"{"error":"errcode is required"}"#),
            },
            _ => return json(400, r#"{"error":"kind must be busy, http500, malformed, slow or errcode"}"#),
        };
        self.inject(fault);
        json(200, r#"{"queued":true}"#)
    }

    /// Answers a token or ticket call: `{"access_token":…,"expires_in":N}`, or the ticket's
    /// `{"errcode":0,"errmsg":"ok","ticket":…,"expires_in":N}`, or WeChat's error.
    pub(super) fn answer(
        &self,
        result: Result<(String, u64), credentials::Refusal>,
        ticket: bool,
    ) -> Response<Vec<u8>> {
        let body = match result {
            Err((errcode, msg)) => return self.error(errcode, &msg),
            Ok((t, expires_in)) if ticket => {
                serde_json::json!({ "errcode": 0, "errmsg": "ok", "ticket": t, "expires_in": expires_in })
            }
            Ok((t, expires_in)) => serde_json::json!({ "access_token": t, "expires_in": expires_in }),
        };
        text(200, "text/plain", body.to_string())
    }

    /// `POST /mock/allow-ips?ips=A,B` (the IP allow-list) or `/mock/wecom/trusted-ips` (the
    /// corp's trusted IPs): the list `set` keeps becomes A and B (any caller when empty).
    pub(super) fn ips_from_query(&self, query: &str, set: fn(&Self, Option<Vec<IpAddr>>)) -> Response<Vec<u8>> {
        match parse_ips(query) {
            Some(ips) => set(self, ips),
            None => return json(400, r#"{"error":"ips must be IP addresses separated by commas"}"#),
        }
        json(200, r#"{"set":true}"#)
    }
}

/// The `ips` parameter: `Some(None)` when empty or absent (any caller), `None` when malformed.
fn parse_ips(query: &str) -> Option<Option<Vec<IpAddr>>> {
    let raw = param(query, "ips").unwrap_or_default();
    let parsed: Result<Vec<IpAddr>, _> =
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect();
    parsed.ok().map(|ips| (!ips.is_empty()).then_some(ips))
}

/// `GET /mock/login-as?user=NAME`: later authorizations from this browser are NAME's.
pub(super) fn login_as(query: &str) -> Response<Vec<u8>> {
    let Some(user) =
        param(query, "user").filter(|u| u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    else {
        return json(400, r#"{"error":"user must be letters, digits, - or _"}"#);
    };
    let mut r =
        text(200, "text/plain; charset=utf-8", format!("mock WeChat: later logins from this browser are {user}\n"));
    if let Ok(v) = format!("mock_user={user}; Path=/; SameSite=Lax").parse() {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    r
}
