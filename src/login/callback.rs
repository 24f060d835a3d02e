//! `GET <prefix>/callback?code=&state=`: WeChat sends the browser back here.

use pingora::http::RequestHeader;

use super::exchange::Redeemed;
use super::rate::Door;
use super::{start, Landing};
use crate::handoff::login_host::ticket_redirect;
use crate::http::client::ClientView;
use crate::http::error::GatewayError;
use crate::http::reply::Reply;
use crate::runtime::Gateway;
use crate::shared::Standing;

/// Handles `GET <prefix>/callback?code=..&state=..` on app `app`'s public host, from `view`.
///
/// `Ok` is a `302` to the page the login started from, clean of `code` and `state`, with the
/// session cookie set. Each code is exchanged at most once, and each login cookie buys at
/// most one exchange (see [`crate::login::exchange`]); callbacks are rate-limited per client
/// address (`Err(TooMany)`, 429).
pub async fn callback(gw: &Gateway, app: usize, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    gw.rate.admit(Door::Callback, view.ip).await.map_err(|wait| GatewayError::TooMany { wait })?;
    let now = gw.now();
    let runtime = &gw.apps[app];
    gw.metrics.callbacks.with_label_values(&[&runtime.config.name]).inc();
    let appid = &runtime.config.wechat.appid;
    let (code, given_state) = code_and_state(req.uri.query().unwrap_or(""));
    let login = runtime.cookies.login(&req.headers, gw.clock.now_millis());
    let scope = runtime.config.wechat.scope;
    let restart = |login: Option<crate::session::LoginState>| async move {
        log::info!("callback: a code another browser presented first; starting a new login");
        let landing = match login.as_ref() {
            Some(l) => l.handoff.as_ref().map_or(Landing::Page(&l.return_to), Landing::Handoff),
            None => Landing::Page("/"),
        };
        start(gw, app, scope, landing, &req.headers, view, false).await
    };
    if let Some(code) = &code {
        if runtime.exchanges.claimed_elsewhere(code, login.as_ref().map(|l| l.nonce.as_str())) {
            return restart(login).await;
        }
    }
    let Some(login) = login else {
        if runtime.cookies.session(&req.headers, appid, now).is_some() {
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
    match runtime.exchanges.redeem(&code, &login.nonce).await {
        Redeemed::OtherBrowser => restart(Some(login)).await,
        Redeemed::LoginSpent => Err(GatewayError::LoginSpent { retry }),
        Redeemed::Done(Err(source)) => Err(GatewayError::Exchange { source, retry }),
        Redeemed::Done(Ok(identity)) if identity.snapshot_user => Err(GatewayError::SnapshotUser { retry }),
        Redeemed::Done(Ok(identity)) => {
            // A login that replaces a standing session (a scope upgrade) stays in its family, so
            // a global logout also ends the app host sessions handed out before.
            let family = match runtime.cookies.session(&req.headers, appid, now) {
                Some(s) if s.openid == identity.openid => {
                    let standing = gw.state.standing(&s.appid, &s.openid, &s.sid, &s.family, s.issued, now).await;
                    if standing == Standing::Valid {
                        s.family_id().to_string()
                    } else {
                        String::new()
                    }
                }
                _ => String::new(),
            };
            let (session, cookie) = runtime.cookies.new_session(&identity, appid, &family, now, gw.entropy.as_ref());
            let onward = match &login.handoff {
                Some(request) => ticket_redirect(gw, app, request, &session),
                None => Reply::redirect(with_own_fragment(&retry)),
            };
            Ok(onward.with_header("set-cookie", cookie))
        }
    }
}

/// A redirect without a fragment inherits the fragment of the request it answers (RFC 9110
/// §10.2.2), and WeChat's authorize URL ends in `#wechat_redirect`, which a hash router would
/// take for a route. So the way back always names its own fragment, empty if need be.
pub fn with_own_fragment(target: &str) -> String {
    if target.contains('#') {
        target.to_string()
    } else {
        format!("{target}#")
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
    fn the_way_back_never_inherits_wechat_redirect() {
        assert_eq!(with_own_fragment("/app/?x=1"), "/app/?x=1#");
        assert_eq!(with_own_fragment("/app/#/order/42"), "/app/#/order/42");
    }

    #[test]
    fn first_code_and_state_win() {
        let (c, s) = code_and_state("code=A&state=S&uin=1&code=B");
        assert_eq!((c.as_deref(), s.as_deref()), (Some("A"), Some("S")));
        assert_eq!(code_and_state("state="), (None, Some(String::new())));
    }
}
