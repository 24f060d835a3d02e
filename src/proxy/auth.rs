//! Forward auth: the gateway beside a front proxy a shop already runs. The front proxy asks
//! about each request with a sub-request; the gateway judges the original request exactly as
//! it would in front (routes, policies, canonical path, session, the way into the login) and
//! answers without proxying anything:
//! - `<prefix>/auth` (Traefik `ForwardAuth`, Caddy `forward_auth`): 200 with the signed token
//!   in the token header (and plain `X-Openid`, `X-Openid-Appid`) for the front proxy to copy
//!   to the upstream; else what the browser would get in front (the fragment-keeping page,
//!   302 to WeChat, 401 JSON for a script, the QR page), never with a 2xx status, which would
//!   let the request through.
//! - `<prefix>/auth/nginx` (`auth_request`, ingress-nginx `auth-url`): 200 as above, 401 when a
//!   login is needed (nginx's `error_page 401` then asks `<prefix>/auth/signin`), 403 refused.
//! - `<prefix>/auth/signin`: the way into the login, for nginx's `error_page 401`.
//! - `<prefix>/auth/envoy/<original path>`: Envoy's HTTP `ext_authz` with `path_prefix`.
//!
//! The original request is read from the conventional headers: `X-Original-URL` (absolute,
//! ingress-nginx) or `X-Original-URI` and `X-Original-Method` (nginx); `X-Forwarded-Uri`,
//! `X-Forwarded-Method`, `X-Forwarded-Host` and `X-Forwarded-Proto` (Traefik, Caddy). They are
//! believed only from `trusted_proxies`: any other caller is refused.

use http::header::HOST;
use http::{HeaderName, Method};
use pingora::http::RequestHeader;

use super::decide::{self, Judged, Step};
use super::forward;
use crate::http::client::ClientView;
use crate::http::endpoint::Endpoint;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::http::target;
use crate::pages::errors;
use crate::runtime::{Gateway, RouteId};
use crate::session::Session;
use crate::token::InvalidKind;

const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Answers the front proxy's sub-request `req` at endpoint `asked`.
pub async fn serve(
    gw: &Gateway,
    req: &RequestHeader,
    view: &ClientView,
    asked: Endpoint,
    request_id: &str,
) -> Result<Reply, GatewayError> {
    if !view.via_trusted_proxy {
        return Err(GatewayError::Untrusted);
    }
    let original = original(req, &gw.config.prefix, asked)?;
    let oview = ClientView::of(&original, view.peer, &gw.config.trusted_proxies);
    if oview.bad_host {
        return Err(GatewayError::BadHost);
    }
    let otarget = target::read(&original, &gw.config.paths, &gw.config.limits)?;
    if gw.is_reserved(&otarget.path) {
        // The front proxy routes the gateway's own paths to it, never through forward auth:
        // granting one would let whatever the proxy makes of it through without a session.
        return Err(GatewayError::BadRequest { reason: "the gateway's own paths go to it, not through forward auth" });
    }
    let judged = Box::pin(decide::judge(gw, &original, &oview, &otarget, request_id)).await;
    let step = match (judged, asked) {
        (Judged::Login { .. }, Endpoint::AuthNginx) => {
            let body = serde_json::json!({"error": "login_required", "request_id": request_id});
            return Ok(Reply::json(401, body.to_string()));
        }
        (Judged::Login { route, host }, _) => {
            Box::pin(decide::decide_login(gw, &original, &oview, &otarget, route, host, request_id)).await
        }
        (Judged::Step(step), _) => step,
    };
    match step {
        // Logged in meanwhile (another tab): back to the page.
        Step::Forward { .. } if asked == Endpoint::AuthSignin => {
            // A path, never `//host/…`, which a browser would take for another site.
            let back = otarget.origin_form();
            Ok(Reply::redirect(format!("/{}", back.trim_start_matches('/'))))
        }
        Step::Forward { route, user, .. } => Ok(granted(gw, route, user.as_ref(), forward::test_switch(&original))
            .unwrap_or_else(|e| {
                // Never granted without the token it should carry.
                log::error!("{request_id} forward auth: signing the identity token: {e}");
                Reply::json(500, serde_json::json!({"error": "token_failed", "request_id": request_id}).to_string())
            })),
        // A page or file of the gateway's (the QR page, a verification file): nginx's
        // `error_page 401` asks `<prefix>/auth/signin`, which answers it.
        Step::Reply(_) if asked == Endpoint::AuthNginx => Ok(refused(401, request_id)),
        Step::Reply(reply) if asked == Endpoint::AuthSignin => Ok(reply),
        Step::Reply(reply) => Ok(never_granting(reply)),
        Step::Fail(e) => {
            e.log(request_id);
            Ok(match asked {
                Endpoint::AuthNginx => refused(e.status(), request_id),
                Endpoint::AuthSignin => errors::reply_for(&e, request_id, !oview.navigation),
                _ => never_granting(errors::reply_for(&e, request_id, !oview.navigation)),
            })
        }
    }
}

/// The original request as the front proxy describes it: method, target and host, with the
/// sub-request's other headers (cookies, User-Agent, Accept, forwarding headers).
fn original(req: &RequestHeader, prefix: &str, asked: Endpoint) -> Result<RequestHeader, GatewayError> {
    let header = |name: &HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let missing = |reason| GatewayError::BadRequest { reason };
    // The front proxy sets one way of describing the request; a client may send the others.
    // Two that disagree are refused: one of them is a client's.
    let described: Vec<&str> =
        [header(&X_ORIGINAL_URL).map(raw_target), header(&X_ORIGINAL_URI), header(&X_FORWARDED_URI)]
            .into_iter()
            .flatten()
            .collect();
    let methods: Vec<&str> = [header(&X_ORIGINAL_METHOD), header(&X_FORWARDED_METHOD)].into_iter().flatten().collect();
    if described.windows(2).any(|w| w[0] != w[1]) || methods.windows(2).any(|w| !w[0].eq_ignore_ascii_case(w[1])) {
        return Err(missing("the original request is described twice, differently"));
    }
    let mut scheme_host: Option<(String, String)> = None;
    let target: String = match asked {
        Endpoint::AuthEnvoy => {
            let raw = std::str::from_utf8(req.raw_path()).map_err(|_| missing("request target is not UTF-8"))?;
            let rest = raw.strip_prefix(prefix).and_then(|r| r.strip_prefix(Endpoint::AuthEnvoy.path()));
            rest.filter(|r| r.starts_with('/')).ok_or(missing("no original path after the envoy prefix"))?.to_string()
        }
        Endpoint::Auth => header(&X_FORWARDED_URI)
            .or_else(|| header(&X_ORIGINAL_URI))
            .ok_or(missing("X-Forwarded-Uri (or X-Original-URI) is required"))?
            .to_string(),
        // The URL names the host only where nothing else does (ingress-nginx); beside the
        // proxy's X-Original-URI it is a client's, and its host is not believed.
        _ => match header(&X_ORIGINAL_URL).filter(|_| header(&X_ORIGINAL_URI).is_none()) {
            Some(absolute) => {
                let url = url::Url::parse(absolute)
                    .ok()
                    .filter(|u| {
                        let authority = absolute.split_once("://").map(|(_, r)| r);
                        matches!(u.scheme(), "http" | "https") && authority.is_some_and(|r| !r.starts_with('/'))
                    })
                    .ok_or(missing("X-Original-URL is not an absolute http(s) URL"))?;
                let named = url.host_str().unwrap_or_default();
                if header(&X_FORWARDED_HOST)
                    .is_some_and(|h| !crate::http::host::strip_port(h).eq_ignore_ascii_case(named))
                {
                    return Err(missing("X-Original-URL names another host than X-Forwarded-Host"));
                }
                let host = match url.port() {
                    Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
                    None => url.host_str().unwrap_or_default().to_string(),
                };
                scheme_host = Some((url.scheme().to_string(), host));
                // As nginx had it, for the canonical path to judge, not as a URL parser rewrites it.
                raw_target(absolute).to_string()
            }
            None => header(&X_ORIGINAL_URI)
                .or_else(|| header(&X_FORWARDED_URI))
                .ok_or(missing("X-Original-URI (or X-Original-URL) is required"))?
                .to_string(),
        },
    };
    if !target.starts_with('/') {
        return Err(missing("the original URI must be a path"));
    }
    let method = match asked {
        Endpoint::AuthEnvoy => req.method.clone(),
        _ => header(&X_FORWARDED_METHOD)
            .or_else(|| header(&X_ORIGINAL_METHOD))
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| missing("the original method is not a method")))
            .transpose()?
            .unwrap_or_else(|| req.method.clone()),
    };
    let mut original = RequestHeader::build(method, target.as_bytes(), Some(req.headers.len()))
        .map_err(|_| missing("the original URI is not a request target"))?;
    for (name, value) in req.headers.iter() {
        original.append_header(name.clone(), value.clone()).map_err(|_| missing("a header could not be copied"))?;
    }
    if let Some((scheme, host)) = scheme_host {
        let set = |o: &mut RequestHeader, n: HeaderName, v: String| o.insert_header(n, v).map(|_| ());
        set(&mut original, X_FORWARDED_HOST, host).map_err(|_| missing("X-Original-URL has a bad host"))?;
        set(&mut original, X_FORWARDED_PROTO, scheme).map_err(|_| missing("X-Original-URL has a bad scheme"))?;
    }
    if original.headers.get(HOST).is_none() && original.headers.get(&X_FORWARDED_HOST).is_none() {
        return Err(missing("the original host is unknown: send Host or X-Forwarded-Host"));
    }
    Ok(original)
}

/// The path and query of an absolute URL, as written: what follows its authority.
fn raw_target(absolute: &str) -> &str {
    let rest = absolute.split_once("://").map_or(absolute, |(_, r)| r);
    rest.find(['/', '?']).map_or("/", |i| &rest[i..])
}

/// 200: the front proxy lets the request through, with these headers for its upstream. The
/// token header is always there (empty without a session): a front proxy that copies it
/// replaces whatever the client sent.
fn granted(
    gw: &Gateway,
    route: RouteId,
    user: Option<&Session>,
    test: Option<InvalidKind>,
) -> Result<Reply, crate::token::TokenError> {
    let token = forward::identity_token(gw, gw.route(route), user, test)?;
    // All three always, empty without a user: a front proxy that copies them replaces what
    // the client sent.
    let user = user.filter(|_| token.is_some());
    Ok(Reply { status: 200, headers: Vec::with_capacity(4), body: bytes::Bytes::new() }
        .with_header(Header::Named(gw.config.token.header.clone()), token.as_deref().unwrap_or(""))
        .with_header(Header::Named(HeaderName::from_static("x-openid")), user.map_or("", |u| u.openid.as_str()))
        .with_header(Header::Named(HeaderName::from_static("x-openid-appid")), user.map_or("", |u| u.id_appid()))
        .with_header(Header::CacheControl, "no-store"))
}

/// nginx's `auth_request` understands 2xx, 401 and 403 only: a way into the login is 401,
/// anything else refused is 403 (a server error stays one).
fn refused(status: u16, request_id: &str) -> Reply {
    let (status, error) = match status {
        300..=399 | 401 => (401, "login_required"),
        500..=599 => (status, "unavailable"),
        _ => (403, "forbidden"),
    };
    Reply::json(status, serde_json::json!({"error": error, "request_id": request_id}).to_string())
}

/// What the browser gets, passed through by the front proxy: never a 2xx, which would let the
/// request through to the upstream (the fragment-keeping and QR pages are 200 in front).
fn never_granting(mut reply: Reply) -> Reply {
    if (200..300).contains(&reply.status) {
        reply.status = 401;
    }
    reply
}
