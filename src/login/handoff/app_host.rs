//! The app host's side: sending a browser without a session to the login host
//! (`<prefix>/login` on an app host), taking the ticket it comes back with
//! (`<prefix>/ticket?ticket=`), and logging out here or everywhere.

use http::HeaderMap;
use pingora::http::RequestHeader;

use super::{HandoffRequest, Refusal, Ticket};
use crate::http::client::{query_param, ClientView};
use crate::http::endpoint::Endpoint;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::login::rate::Door;
use crate::login::returns::{on_host, on_origin, with_own_fragment};
use crate::login::LoginRequest;
use crate::runtime::{Gateway, HostRuntime};
use crate::util::clock::base62_nonce;

/// Length of the nonce bound to the app host's cookie: about 190 bits.
const NONCE_LEN: usize = 32;

/// A spent ticket id is remembered this long past the ticket's expiry, for clocks that differ.
const SPENT_KEPT_SECS: u64 = 60;

/// Sends the browser on app host `host` to the login host, to come back to the page of
/// `login` (validated: a path, or an absolute URL on this host) with a ticket for its scope.
///
/// `Ok`: `302` to `<login host><prefix>/login?handoff=<sealed request>`, with the nonce cookie
/// and the loop breaker's count set on this host. `Err(TooMany)`, `Err(LoginLoop)` as for a
/// login; `Err(BadReturn)` for a return URL on another host.
pub async fn start(gw: &Gateway, host: &HostRuntime, login: LoginRequest<'_>) -> Result<Reply, GatewayError> {
    gw.rate.knock(Door::LoginStart, login.view.ip).await?;
    let app = gw.app(host.app);
    let origin = login.view.origin(&app.config);
    let back = on_origin(&origin, login.landing.page()).map_err(|reason| GatewayError::BadReturn { reason })?;
    let prefix = &gw.config.prefix;
    let retry = || Endpoint::Login.url(&origin, prefix, &[("retry", "1"), ("return", &back)]);
    let counted = app.loops.count(login.headers, login.fresh, gw.now(), gw.entropy(), &app.metrics, retry)?;
    let nonce = base62_nonce(gw.entropy(), NONCE_LEN);
    let now_ms = gw.now_millis();
    let request = HandoffRequest {
        host: login.view.host.clone(),
        return_to: back,
        nonce: nonce.clone(),
        scope: login.scope,
        expires_ms: gw.handoff.request_expiry(now_ms),
    };
    let sealed = gw.handoff.seal(super::REQUEST, &request, gw.entropy());
    app.metrics.ticket("requested");
    let to_login_host = Endpoint::Login.url(&app.config.public_origin(), prefix, &[("handoff", &sealed)]);
    Ok(Reply::redirect(to_login_host)
        .with_header(Header::SetCookie, app.nonces.add(login.headers, &nonce, now_ms, gw.entropy()))
        .with_header(Header::SetCookie, counted)
        .with_header(Header::ReferrerPolicy, "no-referrer"))
}

/// `GET <prefix>/ticket?ticket=` on app host `host`: the ticket is checked (it opens, it is for
/// this host, unexpired, its nonce is in this browser's cookie, first use), then the browser
/// gets a session of this host and lands where it started, fragment included.
pub async fn redeem(
    gw: &Gateway,
    host: &HostRuntime,
    req: &RequestHeader,
    view: &ClientView,
) -> Result<Reply, GatewayError> {
    gw.rate.knock(Door::Callback, view.ip).await?;
    let app = gw.app(host.app);
    let refuse = |refusal: Refusal, retry: Option<&str>| {
        app.metrics.ticket(refusal.as_str());
        GatewayError::Handoff { refusal, retry: retry.map(str::to_string) }
    };
    let raw = query_param(req.uri.query().unwrap_or(""), "ticket").unwrap_or_default();
    let ticket: Ticket = gw.handoff.open(super::TICKET, &raw).ok_or_else(|| refuse(Refusal::Damaged, None))?;
    if ticket.host != view.host {
        return Err(refuse(Refusal::OtherHost, None));
    }
    if ticket.session.appid != app.config.wechat.appid || !on_host(&ticket.return_to, &view.host) {
        return Err(refuse(Refusal::Damaged, None));
    }
    let now = gw.now();
    let now_ms = gw.now_millis();
    let retry = Some(ticket.return_to.as_str());
    if ticket.expired_at(now_ms) {
        return Err(refuse(Refusal::Expired, retry));
    }
    // Spent before the nonce is checked: a ticket that reached another browser is dead.
    let kept = ticket.expires_ms.div_ceil(1000) + SPENT_KEPT_SECS;
    let first = gw.state().spend_once("ticket", &ticket.id, kept, now).await;
    if !app.nonces.holds(&req.headers, &ticket.nonce, now_ms) {
        return Err(refuse(Refusal::NoNonce, retry));
    }
    if !first {
        return Err(refuse(Refusal::Replayed, retry));
    }
    let entropy = gw.entropy();
    let family = Some(ticket.session.family_id().clone());
    let (_, session) = host.sessions.renew(&ticket.session, family, Some(&view.host), now, entropy);
    app.metrics.ticket("redeemed");
    Ok(Reply::redirect(with_own_fragment(&ticket.return_to))
        .with_header(Header::SetCookie, session)
        .with_header(Header::SetCookie, app.nonces.without(&req.headers, &ticket.nonce, now_ms, entropy))
        .with_header(Header::ReferrerPolicy, "no-referrer"))
}

/// `GET <prefix>/logout[?everywhere=1][&return=URL]` on app host `host`: ends this host's
/// session (its id revoked, its cookies cleared). `everywhere` also revokes the login host's
/// session it came from, which ends every app host's session handed from it, then passes
/// through the login host's own logout. `return_to` is validated (a path, or a URL on a served
/// host).
pub async fn logout(
    gw: &Gateway,
    host: &HostRuntime,
    headers: &HeaderMap,
    view: &ClientView,
    return_to: &str,
    everywhere: bool,
) -> Reply {
    let app = gw.app(host.app);
    if let Some(s) = host.sessions.read(headers, &view.host, gw.now()) {
        gw.end_session(&s, everywhere).await;
    }
    let back = if return_to.starts_with('/') {
        format!("{}{return_to}", view.origin(&app.config))
    } else {
        return_to.to_string()
    };
    let location = if everywhere {
        Endpoint::Logout.url(&app.config.public_origin(), &gw.config.prefix, &[("return", &back)])
    } else {
        back
    };
    Reply::redirect(location)
        .with_header(Header::SetCookie, host.sessions.clear())
        .with_header(Header::SetCookie, app.nonces.clear())
        .with_header(Header::SetCookie, app.loops.clear())
}
