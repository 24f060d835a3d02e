//! The app host's side: sending a browser without a session to the login host
//! (`<prefix>/login` on an app host), taking the ticket it comes back with
//! (`<prefix>/ticket?ticket=`), and logging out here or everywhere.

use http::HeaderMap;
use pingora::http::RequestHeader;

use super::{on_host, HandoffRequest, Refusal, Ticket};
use crate::config::Scope;
use crate::http::client::{query_param, ClientView};
use crate::http::error::GatewayError;
use crate::http::reply::Reply;
use crate::login::callback::with_own_fragment;
use crate::login::rate::Door;
use crate::proxy::decide::view_origin;
use crate::runtime::Gateway;
use crate::util::clock::base62_nonce;
use crate::wechat::authorize::encode_component;

/// Length of the nonce bound to the app host's cookie: about 190 bits.
const NONCE_LEN: usize = 32;

/// A spent ticket id is remembered this long past the ticket's expiry, for clocks that differ.
const SPENT_KEPT_SECS: u64 = 60;

/// Sends the browser on app host `host` (an index into [`Gateway::hosts`]) to the login host,
/// to come back to `return_to` (validated: a path, or an absolute URL on this host) with a
/// ticket for `scope`.
///
/// `Ok`: `302` to `<login host><prefix>/login?handoff=<sealed request>`, with the nonce cookie
/// and the loop breaker's count set on this host. `Err(TooMany)`, `Err(LoginLoop)` as for a
/// login; `Err(BadReturn)` for a return URL on another host.
pub async fn start(
    gw: &Gateway,
    host: usize,
    scope: Scope,
    return_to: &str,
    headers: &HeaderMap,
    view: &ClientView,
    fresh: bool,
) -> Result<Reply, GatewayError> {
    gw.rate.admit(Door::LoginStart, view.ip).await.map_err(|wait| GatewayError::TooMany { wait })?;
    let app = gw.hosts[host].config.app;
    let runtime = &gw.apps[app];
    let origin = view_origin(gw, app, view);
    let back = if return_to.starts_with('/') {
        format!("{origin}{return_to}")
    } else if url::Url::parse(return_to).is_ok_and(|u| u.origin().ascii_serialization() == origin) {
        return_to.to_string()
    } else {
        return Err(GatewayError::BadReturn { reason: "not on this app host's origin" });
    };
    let now = gw.now();
    let Some(counted) = runtime.loops.admit(headers, fresh, now, gw.entropy.as_ref()) else {
        gw.metrics.loop_breaker.with_label_values(&[&runtime.config.name]).inc();
        let prefix = &gw.config.prefix;
        return Err(GatewayError::LoginLoop {
            retry: format!("{origin}{prefix}/login?retry=1&return={}", encode_component(&back)),
        });
    };
    let nonce = base62_nonce(gw.entropy.as_ref(), NONCE_LEN);
    let now_ms = gw.clock.now_millis();
    let request = HandoffRequest {
        host: view.host.clone(),
        return_to: back,
        nonce: nonce.clone(),
        scope: scope.as_str().into(),
        expires_ms: gw.handoff.request_expiry(now_ms),
    };
    let sealed = gw.handoff.seal(super::REQUEST, &request, gw.entropy.as_ref());
    gw.metrics.tickets.with_label_values(&[&runtime.config.name, "requested"]).inc();
    let login = format!("{}{}/login?handoff={sealed}", runtime.config.public_origin(), gw.config.prefix);
    Ok(Reply::redirect(login)
        .with_header("set-cookie", runtime.nonces.add(headers, &nonce, now_ms, gw.entropy.as_ref()))
        .with_header("set-cookie", counted)
        .with_header("referrer-policy", "no-referrer"))
}

/// `GET <prefix>/ticket?ticket=` on an app host: the ticket is checked (it opens, it is for this
/// host, unexpired, its nonce is in this browser's cookie, first use), then the browser gets a
/// session of this host and lands where it started, fragment included.
pub async fn redeem(gw: &Gateway, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    gw.rate.admit(Door::Callback, view.ip).await.map_err(|wait| GatewayError::TooMany { wait })?;
    let host = gw.app_host(&view.host).ok_or(GatewayError::NoApp)?;
    let entry = &gw.hosts[host];
    let runtime = &gw.apps[entry.config.app];
    let refuse = |refusal: Refusal, retry: Option<&str>| {
        gw.metrics.tickets.with_label_values(&[&runtime.config.name, refusal.as_str()]).inc();
        GatewayError::Handoff { refusal, retry: retry.map(str::to_string) }
    };
    let raw = query_param(req.uri.query().unwrap_or(""), "ticket").unwrap_or_default();
    let ticket: Ticket = gw.handoff.open(super::TICKET, &raw).ok_or_else(|| refuse(Refusal::Damaged, None))?;
    if ticket.host != view.host {
        return Err(refuse(Refusal::OtherHost, None));
    }
    if ticket.session.appid != runtime.config.wechat.appid || !on_host(&ticket.return_to, &view.host) {
        return Err(refuse(Refusal::Damaged, None));
    }
    let now = gw.now();
    let now_ms = gw.clock.now_millis();
    let retry = Some(ticket.return_to.as_str());
    if ticket.expired_at(now_ms) {
        return Err(refuse(Refusal::Expired, retry));
    }
    // Spent before the nonce is checked: a ticket that reached another browser is dead.
    let kept = ticket.expires_ms.div_ceil(1000) + SPENT_KEPT_SECS;
    let first = gw.state.spend_once("ticket", &ticket.id, kept, now).await;
    if !runtime.nonces.holds(&req.headers, &ticket.nonce, now_ms) {
        return Err(refuse(Refusal::NoNonce, retry));
    }
    if !first {
        return Err(refuse(Refusal::Replayed, retry));
    }
    let entropy = gw.entropy.as_ref();
    let (_, session) = entry.cookies.renew(&ticket.session, ticket.session.family_id(), &view.host, now, entropy);
    gw.metrics.tickets.with_label_values(&[&runtime.config.name, "redeemed"]).inc();
    Ok(Reply::redirect(with_own_fragment(&ticket.return_to))
        .with_header("set-cookie", session)
        .with_header("set-cookie", runtime.nonces.without(&req.headers, &ticket.nonce, now_ms, entropy))
        .with_header("referrer-policy", "no-referrer"))
}

/// `GET <prefix>/logout[?everywhere=1][&return=URL]` on an app host: ends this host's session
/// (its id revoked, its cookies cleared). `everywhere` also revokes the login host's session it
/// came from, which ends every app host's session handed from it, then passes through the login
/// host's own logout. `return_to` is validated (a path, or a URL on a served host).
pub async fn logout(
    gw: &Gateway,
    host: usize,
    headers: &HeaderMap,
    view: &ClientView,
    return_to: &str,
    everywhere: bool,
) -> Reply {
    let entry = &gw.hosts[host];
    let runtime = &gw.apps[entry.config.app];
    let now = gw.now();
    if let Some(s) = entry.cookies.session_on(headers, &runtime.config.wechat.appid, &view.host, now) {
        gw.end_session(&s, everywhere).await;
    }
    let back = if return_to.starts_with('/') {
        format!("{}{return_to}", view_origin(gw, entry.config.app, view))
    } else {
        return_to.to_string()
    };
    let location = if everywhere {
        format!("{}{}/logout?return={}", runtime.config.public_origin(), gw.config.prefix, encode_component(&back))
    } else {
        back
    };
    Reply::redirect(location)
        .with_header("set-cookie", entry.cookies.clear_all()[0].clone())
        .with_header("set-cookie", runtime.nonces.clear())
        .with_header("set-cookie", runtime.loops.clear())
}
