//! The login host's side: a request from an app host (`<prefix>/login?handoff=`) is answered
//! with a ticket at once when the browser has a session here, or after the silent login.

use pingora::http::RequestHeader;

use super::{HandoffRequest, Refusal, Ticket};
use crate::http::client::ClientView;
use crate::http::endpoint::Endpoint;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::login::rate::Door;
use crate::login::returns::on_host;
use crate::login::{self, Landing, LoginRequest};
use crate::runtime::{AppRuntime, Gateway};
use crate::session::Session;
use crate::util::clock::base62_nonce;

/// Length of a ticket's one-time id: about 130 bits.
const ID_LEN: usize = 22;

/// Serves `<prefix>/login?handoff=<raw>` on `app`'s login host.
///
/// `Ok`: `302` to the app host with a ticket (the browser has a session here with the scope
/// asked for), or the silent login that ends with one. `Err(Handoff)`: the request does not
/// open (400), its host is not listed here (403), or it expired (400, offering to start over
/// from the page on the app host).
pub async fn issue(
    gw: &Gateway,
    app: &AppRuntime,
    raw: &str,
    req: &RequestHeader,
    view: &ClientView,
) -> Result<Reply, GatewayError> {
    let refuse = |refusal: Refusal, retry: Option<&str>| {
        app.metrics.ticket(refusal.as_str());
        GatewayError::Handoff { refusal, retry: retry.map(str::to_string) }
    };
    let request: HandoffRequest = gw.handoff.open(super::REQUEST, raw).ok_or_else(|| refuse(Refusal::Damaged, None))?;
    let listed = gw.app_host_of(app.id, &request.host).is_some();
    if !listed || !on_host(&request.return_to, &request.host) {
        return Err(refuse(Refusal::Unlisted, None));
    }
    if request.expired_at(gw.now_millis()) {
        return Err(refuse(Refusal::Expired, Some(&request.return_to)));
    }
    let standing = app.sessions.current(&req.headers, &view.host, gw.now(), gw.state()).await;
    if let Some(s) = standing.ok().flatten().filter(|s| s.has_scope(request.scope)) {
        gw.rate.knock(Door::LoginStart, view.ip).await?;
        return Ok(ticket_redirect(gw, app, &request, &s));
    }
    let login = LoginRequest {
        scope: request.scope,
        landing: Landing::Handoff(&request),
        headers: &req.headers,
        view,
        fresh: false,
    };
    login::start(gw, app, login).await
}

/// `302` to `<app host><prefix>/ticket?ticket=..` with a ticket handing `session`'s identity
/// to the app host of `request`.
pub fn ticket_redirect(gw: &Gateway, app: &AppRuntime, request: &HandoffRequest, session: &Session) -> Reply {
    let ticket = Ticket {
        host: request.host.clone(),
        nonce: request.nonce.clone(),
        return_to: request.return_to.clone(),
        expires_ms: gw.handoff.ticket_expiry(gw.now_millis()),
        id: base62_nonce(gw.entropy(), ID_LEN),
        session: session.clone(),
    };
    let sealed = gw.handoff.seal(super::TICKET, &ticket, gw.entropy());
    let origin = url::Url::parse(&request.return_to).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    app.metrics.ticket("issued");
    // The way to the app host names its own (empty) fragment, so it never inherits WeChat's
    // `#wechat_redirect`; the ticket carries the page's.
    let to_app_host = Endpoint::Ticket.url(&origin, &gw.config.prefix, &[("ticket", &sealed)]);
    Reply::redirect(format!("{to_app_host}#")).with_header(Header::ReferrerPolicy, "no-referrer")
}
