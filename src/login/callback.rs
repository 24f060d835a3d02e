//! `GET <prefix>/callback?code=&state=`: WeChat sends the browser back here.

use pingora::http::RequestHeader;

use super::exchange::Redeemed;
use super::rate::Door;
use super::returns::with_own_fragment;
use super::state::LoginState;
use super::{start, Landing, LoginRequest};
use crate::http::client::ClientView;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::login::handoff::login_host::ticket_redirect;
use crate::runtime::{AppRuntime, Gateway};

/// Handles `GET <prefix>/callback?code=..&state=..` on `app`'s public host, from `view`.
///
/// `Ok` is a `302` to the page the login started from, clean of `code` and `state`, with the
/// session cookie set. Each code is exchanged at most once, and each login cookie buys at
/// most one exchange (see [`crate::login::exchange`]); callbacks are rate-limited per client
/// address (`Err(TooMany)`, 429).
pub async fn callback(
    gw: &Gateway,
    app: &AppRuntime,
    req: &RequestHeader,
    view: &ClientView,
) -> Result<Reply, GatewayError> {
    gw.rate.knock(Door::Callback, view.ip).await?;
    let now = gw.now();
    app.metrics.callbacks.inc();
    let (code, given_state) = code_and_state(req.uri.query().unwrap_or(""));
    let login = app.logins.read(&req.headers, gw.now_millis());
    let restart = |login: Option<LoginState>| async move {
        log::info!("callback: a code another browser presented first; starting a new login");
        let landing = match login.as_ref() {
            Some(l) => l.handoff.as_ref().map_or(Landing::Page(&l.return_to), Landing::Handoff),
            None => Landing::Page("/"),
        };
        let scope = app.config.wechat.scope;
        start(gw, app, LoginRequest { scope, landing, headers: &req.headers, view, fresh: false }).await
    };
    let exchanges = app.exchanges_for(login.as_ref().is_some_and(|l| l.desktop));
    if let Some(code) = &code {
        if exchanges.claimed_elsewhere(code, login.as_ref().map(|l| l.nonce.as_str())) {
            return restart(login).await;
        }
    }
    let Some(login) = login else {
        if app.sessions.read(&req.headers, &view.host, now).is_some() {
            return Ok(Reply::redirect("/"));
        }
        return Err(GatewayError::LoginCookieMissing);
    };
    let retry = login.return_to.clone();
    if given_state.as_deref() != Some(login.nonce.as_str()) {
        return Err(GatewayError::StateMismatch { retry });
    }
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return Err(GatewayError::NoCode { retry });
    };
    match exchanges.redeem(&code, &login.nonce).await {
        Redeemed::OtherBrowser => restart(Some(login)).await,
        Redeemed::LoginSpent => Err(GatewayError::LoginSpent { retry }),
        Redeemed::Done(Err(source)) => Err(GatewayError::Exchange { source, retry }),
        Redeemed::Done(Ok(identity)) if identity.snapshot_user => Err(GatewayError::SnapshotUser { retry }),
        Redeemed::Done(Ok(identity)) => {
            // A login that replaces a standing session (a scope upgrade) stays in its family, so
            // a global logout also ends the app host sessions handed out before.
            let standing = app.sessions.current(&req.headers, &view.host, now, gw.state()).await;
            let family = standing.ok().flatten().filter(|s| s.openid == identity.openid).map(|s| s.family_id().clone());
            let (session, cookie) = app.sessions.issue(&identity, family, now, gw.entropy());
            let onward = match &login.handoff {
                Some(request) => ticket_redirect(gw, app, request, &session),
                None => Reply::redirect(with_own_fragment(&retry)),
            };
            Ok(onward.with_header(Header::SetCookie, cookie))
        }
    }
}

/// The first `code` and `state` of a query string, percent-decoded.
fn code_and_state(query: &str) -> (Option<String>, Option<String>) {
    let mut code = None;
    let mut state = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" if code.is_none() => code = Some(v.into_owned()),
            "state" if state.is_none() => state = Some(v.into_owned()),
            _ => {}
        }
    }
    (code, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_code_and_state_win() {
        let (c, s) = code_and_state("code=A&state=S&uin=1&code=B");
        assert_eq!((c.as_deref(), s.as_deref()), (Some("A"), Some("S")));
        assert_eq!(code_and_state("state="), (None, Some(String::new())));
    }
}
