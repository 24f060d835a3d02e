//! The access log and request metrics: one event per request (target `access`), with the
//! user as a keyed hash of the openid unless the operator chose plain openids.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use pingora::proxy::Session;
use pingora::Error;
use sha2::Sha256;

use super::RequestCtx;
use crate::config::Config;

/// How the access log names users.
pub struct AccessLog {
    pub enabled: bool,
    plain: bool,
    /// Keyed with a key derived from the first session key (hashes stay stable while that key
    /// does), once: each user hash clones it instead of keying HMAC again.
    mac: Hmac<Sha256>,
}

impl AccessLog {
    pub fn new(config: &Config) -> Self {
        let mut key = [0u8; 32];
        if let Some(first) = config.session.keys.first() {
            // 32 bytes is a valid HKDF-SHA256 output length.
            let _ = Hkdf::<Sha256>::new(Some(b"openid-gateway access log"), first.expose()).expand(b"openid", &mut key);
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
        Self { enabled: config.log.access_log, plain: config.log.plain_openid, mac }
    }

    /// The user as the log shows them: 16 hex digits of HMAC-SHA256(key, openid), or the openid.
    pub fn user(&self, openid: &str) -> String {
        if self.plain {
            return openid.to_string();
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(openid.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(16);
        for b in &digest[..8] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }
}

/// Counts the request and writes its access-log event.
pub fn record(session: &Session, ctx: &RequestCtx, error: Option<&Error>) {
    let gw = &ctx.gw;
    let req = session.req_header();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let route = ctx.route.map_or("-", |r| gw.routes[r].label.as_str());
    match ctx.route {
        Some(r) => gw.routes[r].counters.count(&gw.metrics, route, &req.method, status),
        None => gw.own_counters.count(&gw.metrics, route, &req.method, status),
    }
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
    fn openids_are_hashed_with_a_key_unless_plain_is_chosen() {
        let config = crate::config::for_tests("https://a.test", "", "", "");
        let log = AccessLog::new(&config);
        let hashed = log.user("o-alice");
        assert_eq!(hashed.len(), 16);
        assert!(!hashed.contains("alice"));
        assert_eq!(hashed, log.user("o-alice"));
        assert_ne!(hashed, log.user("o-bob"));
        let plain = AccessLog { plain: true, ..AccessLog::new(&config) };
        assert_eq!(plain.user("o-alice"), "o-alice");
    }

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
