//! The admin listener: `/healthz`, `/readyz` and `/metrics`, on an address of its own
//! (loopback unless configured), never on the public listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::upstreams::peer::Peer;
use serde_json::json;

use crate::runtime::live::LiveGateway;

/// How long `/readyz` waits for each upstream to accept a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The admin endpoints.
pub struct AdminApp {
    live: Arc<LiveGateway>,
}

impl AdminApp {
    pub fn new(live: Arc<LiveGateway>) -> Self {
        Self { live }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.uri.path() == "/revoke" {
            return match req.method {
                http::Method::POST => match allowed(&self.live, session) {
                    Ok(()) => revoke(&self.live, req.uri.query().unwrap_or("")).await,
                    Err(why) => reply(
                        403,
                        "application/json",
                        json!({"error": "forbidden", "message": why}).to_string().into_bytes(),
                    ),
                },
                _ => reply(
                    405,
                    "application/json",
                    json!({"error": "method_not_allowed", "allow": "POST"}).to_string().into_bytes(),
                ),
            };
        }
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return reply(405, "application/json", json!({"error": "method_not_allowed"}).to_string().into_bytes());
        }
        match req.uri.path() {
            "/healthz" => reply(200, "text/plain; charset=utf-8", b"ok\n".to_vec()),
            "/readyz" => {
                let (ready, body) = readiness(&self.live).await;
                reply(if ready { 200 } else { 503 }, "application/json", body.to_string().into_bytes())
            }
            "/metrics" => reply(200, "text/plain; version=0.0.4; charset=utf-8", self.live.deps().metrics.render()),
            _ => reply(
                404,
                "application/json",
                json!({"error": "not_found", "endpoints": ["/healthz", "/readyz", "/metrics", "POST /revoke"]})
                    .to_string()
                    .into_bytes(),
            ),
        }
    }
}

/// Ready when the config is loaded and every upstream accepts a connection; the body says
/// which do not.
async fn readiness(live: &LiveGateway) -> (bool, serde_json::Value) {
    let gw = live.current();
    let mut by_address: BTreeMap<SocketAddr, Vec<String>> = BTreeMap::new();
    for route in gw.routes() {
        if let Some(addr) = route.peer.address().as_inet() {
            by_address.entry(*addr).or_default().push(route.label.clone());
        }
    }
    let probes = by_address.into_iter().map(|(addr, routes)| async move {
        let result = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await;
        let error = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
        };
        (addr, routes, error)
    });
    let results = futures_join_all(probes).await;
    let ready = results.iter().all(|(_, _, e)| e.is_none());
    let upstreams: Vec<_> = results
        .into_iter()
        .map(|(addr, routes, error)| json!({"address": addr.to_string(), "routes": routes, "reachable": error.is_none(), "error": error}))
        .collect();
    // Shared state that does not answer degrades the gateway (each replica on its own state);
    // it does not make it unready.
    let (backend, healthy) = gw.state().status();
    let mut state = json!({"backend": backend, "status": if healthy { "ok" } else { "degraded" }});
    // A Redis that may evict revocations warns; it does not make the gateway unready.
    if let Some(warning) = gw.state().revocation_warning() {
        state["warning"] = json!(warning);
    }
    // Revocations made here while Redis did not answer, which the others do not know yet.
    let unshared = gw.state().revocations_unshared();
    if unshared > 0 {
        state["revocations_unshared"] = json!(unshared);
    }
    // Unless sessions are refused without it: then a replica without Redis is not ready.
    let ready = ready && (healthy || !gw.state().fails_closed());
    (ready, json!({"ready": ready, "config": "loaded", "state": state, "upstreams": upstreams}))
}

/// Runs every future at once and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_default()
}

/// `POST /revoke?app=NAME&openid=OPENID` ends every session of that user; `POST
/// /revoke?app=NAME&all=true` every session of the app. `app` may be left out with one app.
async fn revoke(live: &LiveGateway, query: &str) -> Response<Vec<u8>> {
    let gw = live.current();
    let param =
        |k: &str| url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    let bad = |m: &str| {
        reply(400, "application/json", json!({"error": "bad_request", "message": m}).to_string().into_bytes())
    };
    let app = match param("app") {
        Some(name) => gw.apps().iter().find(|a| a.config.name == name),
        None if gw.apps().len() == 1 => gw.apps().first(),
        None => return bad("name the app: app=NAME"),
    };
    let Some(app) = app else { return bad("no app by that name") };
    let appid = &app.config.wechat.appid;
    let (now, lifetime) = (gw.now(), gw.config.session.lifetime.as_secs());
    let (everywhere, body) = match (param("openid").filter(|o| !o.is_empty()), param("all").as_deref()) {
        (Some(openid), _) => {
            let everywhere = gw.state().revoke_all(appid, Some(&openid), now, lifetime).await;
            log::warn!("admin: every session of one user of app {} revoked", app.config.name);
            (everywhere, json!({"revoked": "user", "app": app.config.name}))
        }
        (None, Some("true")) => {
            let everywhere = gw.state().revoke_all(appid, None, now, lifetime).await;
            log::warn!("admin: every session of app {} revoked", app.config.name);
            (everywhere, json!({"revoked": "app", "app": app.config.name}))
        }
        _ => return bad("give openid=OPENID, or all=true for every session of the app"),
    };
    if !everywhere {
        let body = json!({"error": "state_unavailable", "message": "Redis did not answer: revoked on this replica now, on the others once Redis answers again"});
        return reply(503, "application/json", body.to_string().into_bytes());
    }
    reply(200, "application/json", body.to_string().into_bytes())
}

/// `POST /revoke` needs `Authorization: Bearer <admin.token>`; without a configured token, a
/// peer on loopback.
fn allowed(live: &LiveGateway, session: &ServerSession) -> Result<(), &'static str> {
    if session.req_header().headers.contains_key(http::header::ORIGIN) {
        return Err("a browser's request (Origin) is never an operator's");
    }
    let gw = live.current();
    match &gw.config.admin.token {
        Some(token) => {
            let given = session.req_header().headers.get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
            let bearer = given.and_then(|v| v.strip_prefix(b"Bearer ")).unwrap_or_default();
            let expected = token.expose();
            if bool::from(subtle::ConstantTimeEq::ct_eq(bearer, expected)) {
                Ok(())
            } else {
                Err("Authorization: Bearer <admin.token> is required")
            }
        }
        None => match session.client_addr().and_then(|a| a.as_inet()) {
            Some(peer) if peer.ip().is_loopback() => Ok(()),
            _ => Err("set admin.token to revoke from another host; without it only loopback may"),
        },
    }
}
