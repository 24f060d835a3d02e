//! `/readyz`: the config, every upstream, the shared state and the accounts' credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use pingora::upstreams::peer::Peer;
use serde_json::json;

use crate::runtime::live::LiveGateway;

/// How long `/readyz` waits for each upstream to accept a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Ready when the config is loaded and every upstream accepts a connection; the body says
/// which do not, and how the shared state and each account's credentials fare.
pub(super) async fn readiness(live: &LiveGateway) -> (bool, serde_json::Value) {
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
    // An account whose credentials WeChat refuses degrades the JS-SDK and the backends' token,
    // not the logins: said here, never unready.
    let wechat: Vec<_> = gw
        .accounts
        .all()
        .into_iter()
        .map(|a| {
            let mut status = a.memory().health.status();
            status["appid"] = json!(a.appid);
            status
        })
        .collect();
    (ready, json!({"ready": ready, "config": "loaded", "state": state, "upstreams": upstreams, "wechat": wechat}))
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
