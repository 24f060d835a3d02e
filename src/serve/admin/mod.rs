//! The admin listener, on an address of its own (loopback unless configured), never on the
//! public listener:
//! - `GET /healthz`, `GET /readyz` ([`readiness`]), `GET /metrics`;
//! - `POST /revoke` ([`revoke`]);
//! - `GET /wechat/access_token?appid=` and `POST /wechat/access_token/refresh`: the account's
//!   token for backends ([`wechat`]).

mod readiness;
mod revoke;
mod wechat;

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::runtime::live::LiveGateway;

/// The admin endpoints.
pub struct AdminApp {
    live: Arc<LiveGateway>,
}

impl AdminApp {
    pub fn new(live: Arc<LiveGateway>) -> Self {
        Self { live }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_string());
        let query = req.uri.query().unwrap_or("").to_string();
        let get = method == http::Method::GET || method == http::Method::HEAD;
        match (path.as_str(), get, method == http::Method::POST) {
            ("/healthz", true, _) => reply(200, "text/plain; charset=utf-8", b"ok\n".to_vec()),
            ("/readyz", true, _) => {
                let (ready, body) = readiness::readiness(&self.live).await;
                reply(if ready { 200 } else { 503 }, "application/json", body.to_string().into_bytes())
            }
            ("/metrics", true, _) => {
                reply(200, "text/plain; version=0.0.4; charset=utf-8", self.live.deps().metrics.render())
            }
            ("/revoke", _, true) => match allowed(&self.live, session, true) {
                Ok(()) => revoke::revoke(&self.live, &query).await,
                Err(why) => forbidden(why),
            },
            ("/wechat/access_token", true, _) => match allowed(&self.live, session, false) {
                Ok(()) => wechat::access_token(&self.live, &query).await,
                Err(why) => forbidden(why),
            },
            ("/wechat/access_token/refresh", _, true) => match allowed(&self.live, session, false) {
                Ok(()) => wechat::refresh(&self.live, session, &query).await,
                Err(why) => forbidden(why),
            },
            ("/healthz" | "/readyz" | "/metrics" | "/wechat/access_token", _, _) => method_not_allowed("GET"),
            ("/revoke" | "/wechat/access_token/refresh", _, _) => method_not_allowed("POST"),
            _ => json_reply(
                404,
                json!({"error": "not_found", "endpoints": ["/healthz", "/readyz", "/metrics", "POST /revoke",
                    "/wechat/access_token?appid=", "POST /wechat/access_token/refresh"]}),
            ),
        }
    }
}

fn json_reply(status: u16, body: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", body.to_string().into_bytes())
}

fn forbidden(why: &str) -> Response<Vec<u8>> {
    json_reply(403, json!({"error": "forbidden", "message": why}))
}

fn method_not_allowed(allow: &str) -> Response<Vec<u8>> {
    json_reply(405, json!({"error": "method_not_allowed", "allow": allow}))
}

pub(super) fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_default()
}

/// An operator's request carries `Authorization: Bearer <admin.token>`; without a configured
/// token, a peer on loopback may `loopback_ok` (revoke), and nobody may ask for the account's
/// token.
fn allowed(live: &LiveGateway, session: &ServerSession, loopback_ok: bool) -> Result<(), &'static str> {
    if session.req_header().headers.contains_key(http::header::ORIGIN) {
        return Err("a browser's request (Origin) is never an operator's");
    }
    let gw = live.current();
    match &gw.config.admin.token {
        Some(token) => {
            let given = session.req_header().headers.get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
            let bearer = given.and_then(|v| v.strip_prefix(b"Bearer ")).unwrap_or_default();
            let expected = token.expose();
            if bool::from(subtle::ConstantTimeEq::ct_eq(bearer, expected)) {
                Ok(())
            } else {
                Err("Authorization: Bearer <admin.token> is required")
            }
        }
        None if !loopback_ok => Err("set admin.token: the account's token is handed only to callers that present it"),
        None => match session.client_addr().and_then(|a| a.as_inet()) {
            Some(peer) if peer.ip().is_loopback() => Ok(()),
            _ => Err("set admin.token to revoke from another host; without it only loopback may"),
        },
    }
}
