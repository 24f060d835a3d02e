//! What happens to a request for anything but the gateway's own paths (served by
//! [`super::endpoints`]) before any upstream sees it, decided on its canonical [`Target`]:
//! WeChat's domain verification files, routing, the route's size cap, the session (and a
//! members-only route's refusal of outsiders), and for a required route without a session,
//! the right way into the login for this kind of client: the QR page, or a desktop's QR
//! sign-in.

use pingora::http::RequestHeader;

use super::limits;
use crate::config::{NonWechat, Policy};
use crate::http::client::ClientView;
use crate::http::endpoint::Endpoint;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::http::target::Target;
use crate::login::handoff;
use crate::login::returns::{self, absolute_target, return_target};
use crate::login::{self, Landing, LoginRequest};
use crate::pages::h5;
use crate::runtime::{Gateway, HostId, RouteId};
use crate::session::Session;
use crate::wechat::authorize::encode_component;
use crate::wechat::Subject;

/// The decision for one request.
// Moved once per request: boxing the session would cost every forwarded request an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// Proxy to `route`'s upstream, with a token when `user` is set; `host` is the app host
    /// the request is for, if any.
    Forward { route: RouteId, host: Option<HostId>, user: Option<Session> },
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

/// What is known of a request before any login is started.
// Moved once per request, from `judge` to its caller: boxing the step would cost every
// forwarded request an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Judged {
    /// Decided.
    Step(Step),
    /// A required route without a session (or without the scope it needs), for a client that
    /// may log in.
    Login { route: RouteId, host: Option<HostId> },
}

/// Decides what to do with `req`, whose canonical target is `target`, from `view`.
pub async fn decide(gw: &Gateway, req: &RequestHeader, view: &ClientView, target: &Target, request_id: &str) -> Step {
    match judge(gw, req, view, target, request_id).await {
        Judged::Step(step) => step,
        Judged::Login { route, host } => decide_login(gw, req, view, target, route, host, request_id).await,
    }
}

/// Everything short of starting a login: verification files, routing, the size cap, the
/// session and its scope, and what a browser that is not the app's in-app browser gets.
pub async fn judge(gw: &Gateway, req: &RequestHeader, view: &ClientView, target: &Target, request_id: &str) -> Judged {
    let path = target.path.as_str();
    if gw.is_reserved(path) {
        // The gateway's own paths are served before (`proxy/mod.rs`); never routed.
        return Judged::Step(Step::Fail(GatewayError::NoEndpoint));
    }
    if let Some(reply) = mp_verify(gw, view, path) {
        return Judged::Step(Step::Reply(reply));
    }
    let Some(runtime) = gw.route_for(&view.host, path) else {
        return Judged::Step(Step::Fail(GatewayError::NoRoute));
    };
    let route = &runtime.config;
    if let Err(e) = limits::check_declared_body(req, route.max_body) {
        return Judged::Step(Step::Fail(e));
    }
    let app = gw.app(runtime.app);
    let app_host = gw.app_host_of(app.id, &view.host);
    let sessions = app_host.map_or(&app.sessions, |h| &h.sessions);
    let required = route.policy_for(path) == Policy::Required;
    let user = match sessions.current(&req.headers, &view.host, gw.now(), gw.state()).await {
        Ok(user) => user,
        Err(_) if required => return Judged::Step(Step::Fail(GatewayError::StateUnavailable)),
        Err(_) => None,
    };
    let host = app_host.map(|h| h.id);
    if required && route.members_only && user.as_ref().is_some_and(|u| u.subject != Subject::Member) {
        return Judged::Step(Step::Fail(GatewayError::MembersOnly));
    }
    if !required || user.as_ref().is_some_and(|u| u.has_scope(route.scope)) {
        return Judged::Step(Step::Forward { route: runtime.id, host, user });
    }
    if !view.in_app(&app.config) {
        match route.non_wechat {
            // A desktop browser signs in by scanning, where the app offers it.
            NonWechat::QrPage if view.signs_in_by_qr(&app.config) => {}
            NonWechat::QrPage => {
                app.metrics.qr_pages.inc();
                let url = absolute_target(&app.config, view, target);
                let page = h5::open_in_app(&url, &app.config.wechat.provider, request_id);
                return Judged::Step(Step::Reply(page));
            }
            // A members-only route never forwards without a member (config refuses the pair).
            NonWechat::Pass if !route.members_only => {
                return Judged::Step(Step::Forward { route: runtime.id, host, user: None })
            }
            NonWechat::Pass => {}
            NonWechat::Login => {}
        }
    }
    Judged::Login { route: runtime.id, host }
}

/// The way into the login for this kind of client: a page for a script, the
/// fragment-keeping page, or the redirect to WeChat (through the login host for an app host).
pub async fn decide_login(
    gw: &Gateway,
    req: &RequestHeader,
    view: &ClientView,
    target: &Target,
    route: RouteId,
    host: Option<HostId>,
    request_id: &str,
) -> Step {
    let runtime = gw.route(route);
    let (route, app) = (&runtime.config, gw.app(runtime.app));
    let app_host = host.map(|h| gw.host(h));
    let back = return_target(&gw.config, &app.config, view, target);
    let login_url = match app_host {
        // An app host's logins start on itself: its nonce cookie is set there.
        Some(_) => Endpoint::Login.url(&view.origin(&app.config), &gw.config.prefix, &[("return", "")]),
        None => login::login_url_prefix(gw, app),
    };
    if !view.navigation {
        let page = req
            .headers
            .get(http::header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| returns::validate(&gw.config, r).ok())
            .unwrap_or(back);
        return Step::Reply(h5::login_required(&format!("{login_url}{}", encode_component(&page)), request_id));
    }
    if route.keep_fragment {
        return Step::Reply(h5::keep_fragment(&login_url, &back, request_id));
    }
    let login =
        LoginRequest { scope: route.scope, landing: Landing::Page(&back), headers: &req.headers, view, fresh: false };
    if let Some(host) = app_host {
        return handoff::app_host::start(gw, host, login).await.into();
    }
    if app.config.public_host() != view.host {
        return Step::Reply(Reply::redirect(format!("{login_url}{}", encode_component(&back))));
    }
    login::start(gw, app, login).await.into()
}

/// `/MP_verify_<token>.txt` at the root of an app's hosts, for WeChat's domain check.
fn mp_verify(gw: &Gateway, view: &ClientView, path: &str) -> Option<Reply> {
    let token = path.strip_prefix("/MP_verify_")?.strip_suffix(".txt")?;
    let app = gw.app_of_host(&view.host)?;
    app.config.mp_verify.iter().any(|t| t == token).then(|| Reply {
        status: 200,
        headers: vec![(Header::ContentType, "text/plain; charset=utf-8".into())],
        body: bytes::Bytes::from(token.to_string()),
    })
}
