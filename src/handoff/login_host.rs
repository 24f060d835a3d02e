//! The login host's side: a request from an app host (`<prefix>/login?handoff=`) is answered
//! with a ticket at once when the browser has a session here, or after the silent login.

use pingora::http::RequestHeader;

use super::{on_host, HandoffRequest, Refusal, Ticket};
use crate::config::Scope;
use crate::http::client::ClientView;
use crate::http::error::GatewayError;
use crate::http::reply::Reply;
use crate::login;
use crate::login::rate::Door;
use crate::runtime::Gateway;
use crate::session::Session;
use crate::shared::Standing;
use crate::util::clock::base62_nonce;

/// Length of a ticket's one-time id: about 130 bits.
const ID_LEN: usize = 22;

/// Serves `<prefix>/login?handoff=<raw>` on app `app`'s login host.
///
/// `Ok`: `302` to the app host with a ticket (the browser has a session here with the scope
/// asked for), or the silent login that ends with one. `Err(Handoff)`: the request does not
/// open (400), its host is not listed here (403), or it expired (400, offering to start over
/// from the page on the app host).
pub async fn issue(
    gw: &Gateway,
    app: usize,
    raw: &str,
    req: &RequestHeader,
    view: &ClientView,
) -> Result<Reply, GatewayError> {
    let runtime = &gw.apps[app];
    let refuse = |refusal: Refusal, retry: Option<&str>| {
        gw.metrics.tickets.with_label_values(&[&runtime.config.name, refusal.as_str()]).inc();
        GatewayError::Handoff { refusal, retry: retry.map(str::to_string) }
    };
    let request: HandoffRequest = gw.handoff.open(super::REQUEST, raw).ok_or_else(|| refuse(Refusal::Damaged, None))?;
    let listed = gw.app_host(&request.host).is_some_and(|h| gw.hosts[h].config.app == app);
    if !listed || !on_host(&request.return_to, &request.host) {
        return Err(refuse(Refusal::Unlisted, None));
    }
    let now = gw.now();
    if request.expired_at(gw.clock.now_millis()) {
        return Err(refuse(Refusal::Expired, Some(&request.return_to)));
    }
    let scope = if request.scope == Scope::Userinfo.as_str() { Scope::Userinfo } else { Scope::Base };
    let session = runtime.cookies.session(&req.headers, &runtime.config.wechat.appid, now);
    // A session without an id (made before ids existed) could not be revoked: log in afresh.
    if let Some(s) = session.filter(|s| !s.sid.is_empty() && s.has_scope(scope)) {
        if gw.state.standing(&s.appid, &s.openid, &s.sid, &s.family, s.issued, now).await == Standing::Valid {
            gw.rate.admit(Door::LoginStart, view.ip).await.map_err(|wait| GatewayError::TooMany { wait })?;
            return Ok(ticket_redirect(gw, app, &request, &s));
        }
    }
    login::start(gw, app, scope, login::Landing::Handoff(&request), &req.headers, view, false).await
}

/// `302` to `<app host><prefix>/ticket?ticket=..` with a ticket handing `session`'s identity
/// to the app host of `request`.
pub fn ticket_redirect(gw: &Gateway, app: usize, request: &HandoffRequest, session: &Session) -> Reply {
    let ticket = Ticket {
        host: request.host.clone(),
        nonce: request.nonce.clone(),
        return_to: request.return_to.clone(),
        expires_ms: gw.handoff.ticket_expiry(gw.clock.now_millis()),
        id: base62_nonce(gw.entropy.as_ref(), ID_LEN),
        session: session.clone(),
    };
    let sealed = gw.handoff.seal(super::TICKET, &ticket, gw.entropy.as_ref());
    let origin = url::Url::parse(&request.return_to).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    gw.metrics.tickets.with_label_values(&[&gw.apps[app].config.name, "issued"]).inc();
    // The way to the app host names its own (empty) fragment, so it never inherits WeChat's
    // `#wechat_redirect`; the ticket carries the page's.
    Reply::redirect(format!("{origin}{}/ticket?ticket={sealed}#", gw.config.prefix))
        .with_header("referrer-policy", "no-referrer")
}
