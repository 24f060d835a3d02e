//! What happens to a request before any upstream sees it: the gateway's own endpoints,
//! WeChat's domain verification files, routing, and for a required route without a
//! session, the right way into the login for this kind of client.

use pingora::http::RequestHeader;

use crate::client::{is_navigation, is_wechat, ClientView};
use crate::config::{NonWechat, Policy};
use crate::endpoints;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::login;
use crate::pages::h5;
use crate::reply::Reply;
use crate::session::Session;
use crate::wechat::authorize::encode_component;

/// The decision for one request.
#[derive(Debug)]
pub enum Step {
    /// Proxy to route `route`'s upstream, with a token when `user` is set.
    Forward { route: usize, user: Option<Session> },
    /// Answer with this, the upstream never sees the request.
    Reply(Reply),
}

/// Decides what to do with `req` from `view`.
pub async fn decide(gw: &Gateway, req: &RequestHeader, view: &ClientView, request_id: &str) -> Step {
    let path = req.uri.path();
    if gw.is_reserved(path) {
        return Step::Reply(endpoints::serve(gw, req, view, request_id).await);
    }
    if let Some(reply) = mp_verify(gw, view, path) {
        return Step::Reply(reply);
    }
    let Some(index) = gw.route_for(&view.host, path) else {
        return Step::Reply(GatewayError::NoRoute.reply(request_id));
    };
    let route = gw.route(index);
    let app = route.app;
    let user = gw.apps[app].cookies.session(&req.headers, &gw.app(app).wechat.appid, gw.now());
    let enough = user.as_ref().is_some_and(|u| u.has_scope(route.scope));
    if route.policy_for(path) != Policy::Required || enough {
        return Step::Forward { route: index, user };
    }
    if !is_wechat(req) {
        match route.non_wechat {
            NonWechat::QrPage => {
                return Step::Reply(h5::open_in_wechat(&absolute_target(gw, app, view, req), request_id))
            }
            NonWechat::Pass => return Step::Forward { route: index, user: None },
            NonWechat::Login => {}
        }
    }
    let target = return_target(gw, app, view, req);
    let login_url = login::login_url_prefix(gw, app);
    if !is_navigation(req) {
        let page = req
            .headers
            .get(http::header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| crate::returns::validate(&gw.config, r))
            .unwrap_or(target);
        return Step::Reply(h5::login_required(&format!("{login_url}{}", encode_component(&page)), request_id));
    }
    if route.keep_fragment {
        return Step::Reply(h5::keep_fragment(&login_url, &target, request_id));
    }
    if gw.app(app).public_host() != view.host {
        return Step::Reply(Reply::redirect(format!("{login_url}{}", encode_component(&target))));
    }
    Step::Reply(login::start(gw, app, route.scope, &target, &req.headers).unwrap_or_else(|e| {
        e.log(request_id);
        e.reply(request_id)
    }))
}

/// `/MP_verify_<token>.txt` at the root of an app's hosts, for WeChat's domain check.
fn mp_verify(gw: &Gateway, view: &ClientView, path: &str) -> Option<Reply> {
    let token = path.strip_prefix("/MP_verify_")?.strip_suffix(".txt")?;
    let app = gw.app_of_host(&view.host)?;
    gw.app(app).mp_verify.iter().any(|t| t == token).then(|| Reply {
        status: 200,
        headers: vec![("content-type", "text/plain; charset=utf-8".into())],
        body: bytes::Bytes::from(token.to_string()),
    })
}

/// Where to come back to after login: the path and query on the app's public host, or the
/// absolute URL on another host.
pub fn return_target(gw: &Gateway, app: usize, view: &ClientView, req: &RequestHeader) -> String {
    if gw.app(app).public_host() == view.host {
        safe_path(req.uri.path_and_query().map_or("/", |p| p.as_str()))
    } else {
        absolute_target(gw, app, view, req)
    }
}

/// The absolute URL the client asked for.
pub fn absolute_target(gw: &Gateway, app: usize, view: &ClientView, req: &RequestHeader) -> String {
    let scheme = view.proto.as_deref().unwrap_or(gw.app(app).public_url.scheme());
    let authority = view.authority.clone().unwrap_or_else(|| gw.app(app).public_host().to_string());
    format!("{scheme}://{authority}{}", safe_path(req.uri.path_and_query().map_or("/", |p| p.as_str())))
}

/// A path that cannot leave the site: `//host` and `/\host` become `/`.
pub fn safe_path(p: &str) -> String {
    let ok =
        p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && !p.bytes().any(|b| b.is_ascii_control());
    if ok {
        p.to_string()
    } else {
        "/".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(safe_path("/app/x?y=1"), "/app/x?y=1");
        assert_eq!(safe_path("//evil.example/"), "/");
        assert_eq!(safe_path("/\\evil.example"), "/");
        assert_eq!(safe_path("https://evil"), "/");
    }
}
