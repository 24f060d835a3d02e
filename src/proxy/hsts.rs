//! Requests over TLS, and the plain listener beside the TLS one: a request that came over TLS
//! is `https` to the upstream and carries the configured HSTS on every answer; with
//! `[tls] redirect_http`, a plain request for a host the gateway serves is sent to https
//! (308, method and body kept), except WeChat's domain verification files.

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::RequestCtx;
use crate::http::client::Scheme;
use crate::http::reply::Reply;
use crate::runtime::Gateway;

/// Notes whether the request came over TLS, and what follows from it.
pub fn note(session: &Session, ctx: &mut RequestCtx) {
    ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    if ctx.tls {
        ctx.view.proto = Some(Scheme::Https);
        ctx.hsts = ctx.gw.config.tls.as_ref().and_then(|t| t.hsts).map(|h| h.header_value());
    }
}

/// The redirect to https for a plain request, when `[tls] redirect_http` asks for one.
pub fn redirect_plain(gw: &Gateway, req: &RequestHeader, ctx: &RequestCtx) -> Option<Reply> {
    let tls = gw.config.tls.as_ref().filter(|t| t.redirect_http)?;
    let behind_tls_proxy = ctx.view.via_trusted_proxy && ctx.view.proto == Some(Scheme::Https);
    if ctx.tls || behind_tls_proxy || req.uri.path().starts_with("/MP_verify_") {
        return None;
    }
    let host = ctx.view.authority.as_ref().map(|_| ctx.view.host.as_str()).filter(|h| !h.is_empty())?;
    if gw.app_of_host(host).is_none() && gw.route_for(host, "/").is_none() {
        return None;
    }
    let origin = match gw.app_at(host).map(|a| &a.config).filter(|a| a.secure()) {
        Some(app) => app.public_origin(),
        None if tls.listen.port() == 443 => format!("https://{host}"),
        None => format!("https://{host}:{}", tls.listen.port()),
    };
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut reply = Reply::redirect(format!("{origin}{target}"));
    reply.status = 308;
    Some(reply)
}
