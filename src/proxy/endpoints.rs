//! The gateway's own endpoints under its reserved prefix:
//! - `GET <prefix>/callback?code=&state=`: WeChat comes back here ([`login::callback()`]).
//! - `GET <prefix>/login?return=URL[&retry=1]`: starts a login that returns to URL;
//!   `retry=1` forgets the loop breaker's count.
//! - `GET <prefix>/logout[?return=URL]`: ends the session, then goes to URL (default `/`).
//! - `GET <prefix>/jwks.json`: the public keys of the token (every host).
//! - `GET <prefix>/jssdk/config?url=` and `<prefix>/jssdk.js`: `wx.config` for the page
//!   ([`crate::account::jssdk`]).
//! - `GET <prefix>/login?handoff=` on a login host, `GET <prefix>/ticket?ticket=` and
//!   `<prefix>/logout?everywhere=1` on an app host: logins through the login host
//!   ([`crate::login::handoff`]).
//!
//! - `<prefix>/auth`, `/auth/nginx`, `/auth/signin`, `/auth/envoy/…`: a front proxy's
//!   sub-requests ([`super::auth`]).
//!
//! Return URLs are validated by [`crate::login::returns`]; a refused one gets a 400 page.

use pingora::http::RequestHeader;

use super::auth;
use crate::account::jssdk;
use crate::http::client::{query_param, ClientView};
use crate::http::endpoint::Endpoint;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::http::target::Target;
use crate::login::handoff;
use crate::login::{self, returns, Landing, LoginRequest};
use crate::runtime::{AppRuntime, Gateway};
use crate::wechat::Scope;

/// Serves a request whose canonical path is under the prefix.
pub async fn serve(
    gw: &Gateway,
    req: &RequestHeader,
    view: &ClientView,
    target: &Target,
    request_id: &str,
) -> Result<Reply, GatewayError> {
    match Endpoint::of(&gw.config.prefix, &target.path) {
        Some(Endpoint::Callback) => match gw.app_at(&view.host) {
            Some(app) => login::callback(gw, app, req, view).await,
            None => Err(GatewayError::NoApp),
        },
        Some(Endpoint::Login) => login_endpoint(gw, req, view).await,
        Some(Endpoint::Ticket) => match gw.app_host(&view.host) {
            Some(host) => handoff::app_host::redeem(gw, host, req, view).await,
            None => Err(GatewayError::NoApp),
        },
        Some(Endpoint::Logout) => logout(gw, req, view).await,
        Some(Endpoint::Jwks) => Ok(jwks(gw)),
        Some(Endpoint::JssdkConfig) => jssdk::config(gw, req, view).await,
        Some(Endpoint::JssdkScript) => jssdk::script(gw, view),
        Some(e @ (Endpoint::Auth | Endpoint::AuthNginx | Endpoint::AuthSignin | Endpoint::AuthEnvoy)) => {
            auth::serve(gw, req, view, e, request_id).await
        }
        None => Err(GatewayError::NoEndpoint),
    }
}

/// The public keys that verify the gateway's tokens; cacheable for five minutes, so a key
/// added for rotation reaches verifiers well within the recommended waiting time.
fn jwks(gw: &Gateway) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            (Header::ContentType, "application/jwk-set+json".into()),
            (Header::CacheControl, "public, max-age=300".into()),
            (Header::AllowOrigin, "*".into()),
        ],
        body: bytes::Bytes::from(gw.signer.keys().jwks().to_string()),
    }
}

fn param(req: &RequestHeader, key: &str) -> Option<String> {
    query_param(req.uri.query().unwrap_or(""), key)
}

/// The `return` parameter, validated; `/` when absent.
fn return_param(gw: &Gateway, req: &RequestHeader) -> Result<String, GatewayError> {
    match param(req, "return") {
        Some(raw) => returns::validate(&gw.config, &raw).map_err(|reason| GatewayError::BadReturn { reason }),
        None => Ok("/".to_string()),
    }
}

async fn login_endpoint(gw: &Gateway, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    let fresh = param(req, "retry").as_deref() == Some("1");
    let login = |scope, landing| LoginRequest { scope, landing, headers: &req.headers, view, fresh };
    if let Some(host) = gw.app_host(&view.host) {
        let target = return_param(gw, req)?;
        let scope = scope_of(gw, gw.app(host.app), &target, view);
        return handoff::app_host::start(gw, host, login(scope, Landing::Page(&target))).await;
    }
    let app = gw.app_at(&view.host).ok_or(GatewayError::NoApp)?;
    if let Some(raw) = param(req, "handoff") {
        return handoff::login_host::issue(gw, app, &raw, req, view).await;
    }
    let target = return_param(gw, req)?;
    let scope = scope_of(gw, app, &target, view);
    login::start(gw, app, login(scope, Landing::Page(&target))).await
}

/// The scope the route of (validated) `target` needs; the app's when no route serves it.
fn scope_of(gw: &Gateway, app: &AppRuntime, target: &str, view: &ClientView) -> Scope {
    let (host, path) = match url::Url::parse(target) {
        Ok(u) => (u.host_str().unwrap_or_default().to_string(), u.path().to_string()),
        Err(_) => (view.host.clone(), target.split(['?', '#']).next().unwrap_or("/").to_string()),
    };
    gw.route_for(&host, &path).map_or(app.config.wechat.scope, |r| r.config.scope)
}

/// Ends the session: its cookie is cleared, and its id revoked until it would have expired,
/// so a copy of the cookie made before is refused too (on every replica, with shared state).
///
/// On an app host, `everywhere=1` ends the sessions of every app host too ([`handoff::app_host::logout`]).
async fn logout(gw: &Gateway, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    if let Some(host) = gw.app_host(&view.host) {
        let everywhere = param(req, "everywhere").as_deref() == Some("1");
        let back = return_param(gw, req)?;
        return Ok(handoff::app_host::logout(gw, host, &req.headers, view, &back, everywhere).await);
    }
    let app = gw.app_of_host(&view.host).ok_or(GatewayError::NoApp)?;
    if let Some(s) = app.sessions.read(&req.headers, &view.host, gw.now()) {
        // The family too: the app host sessions handed from it, or from the session this one
        // replaced, end with it.
        gw.end_session(&s, true).await;
    }
    Ok(Reply::redirect(return_param(gw, req)?)
        .with_header(Header::SetCookie, app.loops.clear())
        .with_header(Header::SetCookie, app.sessions.clear())
        .with_header(Header::SetCookie, app.logins.clear()))
}
