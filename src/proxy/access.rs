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
    let client = ctx.view.ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    let ua = agent_class(req.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""));
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
        client = client.as_str(),
        ua,
        user = user.as_str(),
        error = error.unwrap_or("-"),
    );
}

/// What kind of browser: WeChat (and which), another mobile or desktop browser, or a robot.
pub fn agent_class(ua: &str) -> &'static str {
    let has = |s: &str| ua.contains(s);
    if has("wxwork") {
        "wecom"
    } else if has("miniProgram") || has("MiniProgramEnv") {
        "wechat-miniprogram"
    } else if has("MicroMessenger") {
        "wechat"
    } else if ua.is_empty() {
        "none"
    } else if has("bot") || has("Bot") || has("spider") || has("Spider") || has("curl/") || has("python") {
        "robot"
    } else if has("Mobile") || has("Android") || has("iPhone") {
        "mobile"
    } else {
        "desktop"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_classed() {
        assert_eq!(agent_class("Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"), "wechat");
        assert_eq!(agent_class("Mozilla/5.0 MicroMessenger/8.0 miniProgram"), "wechat-miniprogram");
        assert_eq!(agent_class("Mozilla/5.0 wxwork/4.1 MicroMessenger/7.0"), "wecom");
        assert_eq!(agent_class("curl/8.5.0"), "robot");
        assert_eq!(agent_class("Mozilla/5.0 (X11; Linux x86_64) Chrome/120"), "desktop");
        assert_eq!(agent_class(""), "none");
    }
}
