//! The gateway's own endpoints under its reserved prefix:
//! - `GET <prefix>/callback?code=&state=`: WeChat comes back here ([`login::callback`]).
//! - `GET <prefix>/login?return=URL[&retry=1]`: starts a login that returns to URL;
//!   `retry=1` forgets the loop breaker's count.
//! - `GET <prefix>/logout[?return=URL]`: ends the session, then goes to URL (default `/`).
//! - `GET <prefix>/jwks.json`: the public keys of the token (every host).
//!
//! Return URLs are validated by [`crate::returns`]; a refused one gets a 400 page.

use pingora::http::RequestHeader;

use crate::client::{query_param, ClientView};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::login;
use crate::reply::Reply;
use crate::returns;

/// Serves a request under the prefix; every outcome is a reply.
pub async fn serve(gw: &Gateway, req: &RequestHeader, view: &ClientView, request_id: &str) -> Reply {
    let sub = &req.uri.path()[gw.config.prefix.len()..];
    let result = match sub {
        "/callback" => match gw.app_at(&view.host) {
            Some(app) => login::callback(gw, app, req).await,
            None => Err(GatewayError::NoApp),
        },
        "/login" => login_endpoint(gw, req, view),
        "/logout" => logout(gw, req, view),
        "/jwks.json" => Ok(jwks(gw)),
        _ => Err(GatewayError::NoEndpoint),
    };
    result.unwrap_or_else(|e| {
        e.log(request_id);
        e.reply(request_id)
    })
}

/// The public keys that verify the gateway's tokens; cacheable for five minutes, so a key
/// added for rotation reaches verifiers well within the recommended waiting time.
fn jwks(gw: &Gateway) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            ("content-type", "application/jwk-set+json".into()),
            ("cache-control", "public, max-age=300".into()),
            ("access-control-allow-origin", "*".into()),
        ],
        body: bytes::Bytes::from(gw.signer.keys().jwks().to_string()),
    }
}

fn param(req: &RequestHeader, key: &str) -> Option<String> {
    query_param(req.uri.query().unwrap_or(""), key)
}

fn login_endpoint(gw: &Gateway, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    let app = gw.app_at(&view.host).ok_or(GatewayError::NoApp)?;
    let target = match param(req, "return") {
        Some(raw) => returns::validate(&gw.config, &raw).ok_or(GatewayError::BadReturn)?,
        None => "/".to_string(),
    };
    let (host, path) = match url::Url::parse(&target) {
        Ok(u) => (u.host_str().unwrap_or_default().to_string(), u.path().to_string()),
        Err(_) => (view.host.clone(), target.split(['?', '#']).next().unwrap_or("/").to_string()),
    };
    let scope = gw.route_for(&host, &path).map_or(gw.app(app).wechat.scope, |r| gw.route(r).scope);
    if param(req, "retry").as_deref() == Some("1") {
        let fresh = http::HeaderMap::new();
        return login::start(gw, app, scope, &target, &fresh);
    }
    login::start(gw, app, scope, &target, &req.headers)
}

fn logout(gw: &Gateway, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    let app = gw.app_of_host(&view.host).ok_or(GatewayError::NoApp)?;
    let target = match param(req, "return") {
        Some(raw) => returns::validate(&gw.config, &raw).ok_or(GatewayError::BadReturn)?,
        None => "/".to_string(),
    };
    let mut reply = Reply::redirect(target);
    for cookie in gw.apps[app].cookies.clear_all() {
        reply = reply.with_header("set-cookie", cookie);
    }
    Ok(reply)
}
