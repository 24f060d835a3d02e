//! What happens to a request before any upstream sees it, decided on its canonical
//! [`Target`]: the gateway's own endpoints, WeChat's domain verification files, routing, the
//! route's size cap, and for a required route without a session, the right way into the
//! login for this kind of client.

use crate::shared::Standing;
use pingora::http::RequestHeader;

use super::endpoints;
use super::limits;
use crate::config::{NonWechat, Policy};
use crate::handoff;
use crate::http::client::{is_navigation, is_wechat, ClientView};
use crate::http::error::GatewayError;
use crate::http::reply::Reply;
use crate::http::target::Target;
use crate::login::{self, Landing};
use crate::pages::h5;
use crate::runtime::Gateway;
use crate::session::Session;
use crate::wechat::authorize::encode_component;

/// The decision for one request.
#[derive(Debug)]
pub enum Step {
    /// Proxy to route `route`'s upstream, with a token when `user` is set.
    Forward { route: usize, user: Option<Session> },
    /// Answer with this; the upstream never sees the request.
    Reply(Reply),
    /// Answer with this error's page (or JSON for a script); the upstream never sees it.
    Fail(GatewayError),
}

impl From<Result<Reply, GatewayError>> for Step {
    fn from(r: Result<Reply, GatewayError>) -> Self {
        r.map_or_else(Step::Fail, Step::Reply)
    }
}

/// Decides what to do with `req`, whose canonical target is `target`, from `view`.
pub async fn decide(gw: &Gateway, req: &RequestHeader, view: &ClientView, target: &Target, request_id: &str) -> Step {
    let path = target.path.as_str();
    if gw.is_reserved(path) {
        return endpoints::serve(gw, req, view, target).await.into();
    }
    if let Some(reply) = mp_verify(gw, view, path) {
        return Step::Reply(reply);
    }
    let Some(index) = gw.route_for(&view.host, path) else {
        return Step::Fail(GatewayError::NoRoute);
    };
    let route = &gw.routes[index].config;
    if let Err(e) = limits::check_declared_body(req, route.max_body) {
        return Step::Fail(e);
    }
    let app = &gw.apps[route.app];
    let now = gw.now();
    let user =
        match gw.cookies_for(route.app, &view.host).session_on(&req.headers, &app.config.wechat.appid, &view.host, now)
        {
            // A revoked session is no session: the browser logs in again.
            Some(u) => match gw.state.standing(&u.appid, &u.openid, &u.sid, &u.family, u.issued, now).await {
                Standing::Valid => Some(u),
                Standing::Revoked => None,
                Standing::Unknown if route.policy_for(path) == Policy::Required => {
                    return Step::Fail(GatewayError::StateUnavailable)
                }
                Standing::Unknown => None,
            },
            None => None,
        };
    let enough = user.as_ref().is_some_and(|u| u.has_scope(route.scope));
    if route.policy_for(path) != Policy::Required || enough {
        return Step::Forward { route: index, user };
    }
    if !is_wechat(req) {
        match route.non_wechat {
            NonWechat::QrPage => {
                gw.metrics.qr_pages.with_label_values(&[&app.config.name]).inc();
                return Step::Reply(h5::open_in_wechat(&absolute_target(gw, route.app, view, target), request_id));
            }
            NonWechat::Pass => return Step::Forward { route: index, user: None },
            NonWechat::Login => {}
        }
    }
    let back = return_target(gw, route.app, view, target);
    let app_host = gw.app_host(&view.host).filter(|h| gw.hosts[*h].config.app == route.app);
    let login_url = match app_host {
        // An app host's logins start on itself: its nonce cookie is set there.
        Some(_) => format!("{}{}/login?return=", view_origin(gw, route.app, view), gw.config.prefix),
        None => login::login_url_prefix(gw, route.app),
    };
    if !is_navigation(req) {
        let page = req
            .headers
            .get(http::header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| login::returns::validate(&gw.config, r).ok())
            .unwrap_or(back);
        return Step::Reply(h5::login_required(&format!("{login_url}{}", encode_component(&page)), request_id));
    }
    if route.keep_fragment {
        return Step::Reply(h5::keep_fragment(&login_url, &back, request_id));
    }
    if let Some(host) = app_host {
        return handoff::app_host::start(gw, host, route.scope, &back, &req.headers, view, false).await.into();
    }
    if app.config.public_host() != view.host {
        return Step::Reply(Reply::redirect(format!("{login_url}{}", encode_component(&back))));
    }
    login::start(gw, route.app, route.scope, Landing::Page(&back), &req.headers, view, false).await.into()
}

/// `/MP_verify_<token>.txt` at the root of an app's hosts, for WeChat's domain check.
fn mp_verify(gw: &Gateway, view: &ClientView, path: &str) -> Option<Reply> {
    let token = path.strip_prefix("/MP_verify_")?.strip_suffix(".txt")?;
    let app = gw.app_of_host(&view.host)?;
    gw.apps[app].config.mp_verify.iter().any(|t| t == token).then(|| Reply {
        status: 200,
        headers: vec![("content-type", "text/plain; charset=utf-8".into())],
        body: bytes::Bytes::from(token.to_string()),
    })
}

/// Where to come back to after login: the canonical path and query on the app's public host
/// when the return-URL rule takes it ([`login::returns::validate`]), else the absolute URL
/// (on another host, or a path such as `//evil.test`, canonical with `merge_slashes = false`,
/// that a browser would read as another host: `http://<host>//evil.test` stays here).
pub fn return_target(gw: &Gateway, app: usize, view: &ClientView, target: &Target) -> String {
    if gw.apps[app].config.public_host() == view.host {
        if let Ok(page) = login::returns::validate(&gw.config, &target.origin_form()) {
            return page;
        }
    }
    absolute_target(gw, app, view, target)
}

/// The absolute URL the client asked for, in canonical form.
pub fn absolute_target(gw: &Gateway, app: usize, view: &ClientView, target: &Target) -> String {
    format!("{}{}", view_origin(gw, app, view), target.origin_form())
}

/// `scheme://authority` the client asked for: the scheme a trusted proxy named, else app
/// `app`'s; the authority asked for, else the app's public host.
pub fn view_origin(gw: &Gateway, app: usize, view: &ClientView) -> String {
    let config = &gw.apps[app].config;
    let scheme = view.proto.as_deref().unwrap_or(config.public_url.scheme());
    let authority = view.authority.as_deref().unwrap_or(config.public_host());
    format!("{scheme}://{authority}")
}
