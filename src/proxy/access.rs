//! The access log and request metrics: one event per request (target `access`), with the
//! user named as [`crate::observe::access::AccessLog`] says.

use pingora::proxy::Session;
use pingora::Error;

use super::RequestCtx;

/// Counts the request and writes its access-log event.
pub fn record(session: &Session, ctx: &RequestCtx, error: Option<&Error>) {
    let gw = &ctx.gw;
    let req = session.req_header();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let route = ctx.route.map(|r| gw.route(r));
    match route {
        Some(r) => r.counters.count(gw.metrics(), &r.label, &req.method, status),
        None => gw.own_counters.count(gw.metrics(), "-", &req.method, status),
    }
    let route = route.map_or("-", |r| r.label.as_str());
    if !gw.access.enabled {
        return;
    }
    let user = ctx.user.as_ref().map_or_else(|| "-".to_string(), |u| gw.access.user(&u.openid));
    let upstream_ms = ctx.upstream_ms().map_or(-1, |ms| ms as i64);
    let error = error.map(|e| e.etype().as_str());
    tracing::info!(
        target: "access",
        request_id = ctx.request_id.as_str(),
        method = req.method.as_str(),
        path = ctx.target.path.as_str(),
        route,
        status,
        duration_ms = ctx.started.elapsed().as_millis() as u64,
        upstream_ms,
        bytes_in = session.body_bytes_read() as u64,
        bytes_out = session.body_bytes_sent() as u64,
        client = ctx.view.ip_text.as_str(),
        ua = ctx.view.agent.as_str(),
        user = user.as_str(),
        error = error.unwrap_or("-"),
    );
}
