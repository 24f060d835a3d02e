//! The account's token for backends that call other WeChat APIs (template messages, users):
//! - `GET /wechat/access_token?appid=APPID` answers `{appid, access_token, expires_in}`;
//! - `POST /wechat/access_token/refresh` with `{"appid": …, "access_token": <the token WeChat
//!   refused>}` replaces that token if it is still the current one (once, fleet-wide) and
//!   answers the current one with `refreshed`.
//!
//! Both need `Authorization: Bearer <admin.token>`. `appid` may be left out with one account.

use std::time::Duration;

use http::Response;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use super::json_reply;
use crate::account::{Account, CredentialError};
use crate::http::client::query_param;
use crate::runtime::live::LiveGateway;
use crate::runtime::Gateway;

/// The largest refresh request body read, and how long it may take to arrive.
const MAX_BODY: usize = 8 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /wechat/access_token?appid=`.
pub(super) async fn access_token(live: &LiveGateway, query: &str) -> Response<Vec<u8>> {
    let gw = live.current();
    let account = match account(&gw, query_param(query, "appid")) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match account.token().await {
        Ok(token) => answer(&gw, account, &token, None),
        Err(e) => unavailable(&e),
    }
}

/// `POST /wechat/access_token/refresh`.
pub(super) async fn refresh(live: &LiveGateway, session: &mut ServerSession, query: &str) -> Response<Vec<u8>> {
    let body = match tokio::time::timeout(BODY_TIMEOUT, read_body(session)).await {
        Ok(Ok(b)) => b,
        Ok(Err(why)) => return bad(why),
        Err(_) => return bad("the request body did not arrive in time"),
    };
    let fields: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return bad("the body must be JSON: {\"appid\": \"…\", \"access_token\": \"<the token WeChat refused>\"}")
        }
    };
    let field = |k: &str| fields.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let Some(stale) = field("access_token").filter(|t| !t.is_empty()) else {
        return bad("access_token is required: the token WeChat refused (40001, 42001 or 40014)");
    };
    let gw = live.current();
    let account = match account(&gw, field("appid").or_else(|| query_param(query, "appid"))) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match account.refresh_stale(&stale).await {
        Ok((token, refreshed)) => {
            log::info!(
                "admin: a backend reported account {}'s token bad; {}",
                account.appid,
                if refreshed { "refreshed" } else { "the current one is newer or was refreshed moments ago" }
            );
            answer(&gw, account, &token, Some(refreshed))
        }
        Err(e) => unavailable(&e),
    }
}

async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, &'static str> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await.map_err(|_| "the request body could not be read")? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err("the request body is larger than 8 KiB");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The account named by `appid`, or the only one.
fn account(gw: &Gateway, appid: Option<String>) -> Result<&Account, Box<Response<Vec<u8>>>> {
    let all = gw.accounts.all();
    match appid.filter(|a| !a.is_empty()) {
        Some(appid) => gw.accounts.get(&appid).map(|a| a.as_ref()).ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|a| a.appid.as_str()).collect();
            Box::new(json_reply(
                404,
                json!({"error": "unknown_appid", "message": "no account by that appid", "appids": known}),
            ))
        }),
        None if all.len() == 1 => Ok(all[0].as_ref()),
        None => Err(Box::new(bad("name the account: appid=APPID"))),
    }
}

fn answer(gw: &Gateway, account: &Account, token: &crate::account::Held, refreshed: Option<bool>) -> Response<Vec<u8>> {
    let mut body = json!({
        "appid": account.appid,
        "access_token": token.value,
        "expires_in": token.expires_in(gw.now_millis()),
    });
    if let Some(r) = refreshed {
        body["refreshed"] = json!(r);
    }
    json_reply(200, body)
}

fn unavailable(e: &CredentialError) -> Response<Vec<u8>> {
    json_reply(503, json!({"error": "credentials_unavailable", "message": e.to_string()}))
}

fn bad(message: &str) -> Response<Vec<u8>> {
    json_reply(400, json!({"error": "bad_request", "message": message}))
}
