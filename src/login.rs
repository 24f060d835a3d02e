//! The silent login: the redirect to WeChat (counted, so a looping browser is stopped) and
//! the callback that comes back from it.

use http::HeaderMap;
use pingora::http::RequestHeader;

use crate::clock::base62_nonce;
use crate::config::Scope;
use crate::error::GatewayError;
use crate::exchange::Redeemed;
use crate::gateway::Gateway;
use crate::reply::Reply;
use crate::session::Tries;
use crate::wechat::authorize::{authorize_url, encode_component};

/// Length of the `state` nonce: 32 base62 characters, about 190 bits.
const STATE_LEN: usize = 32;

/// Sends the browser to WeChat to log in to app `app` with `scope`, coming back to
/// `return_to`. Must run on the app's public host, where the login cookie is set.
///
/// `Ok`: `302` to the authorize URL with the login cookie and the attempt count.
/// `Err(LoginLoop)`: this browser started more logins than the limit allows in the window.
pub fn start(
    gw: &Gateway,
    app: usize,
    scope: Scope,
    return_to: &str,
    headers: &HeaderMap,
) -> Result<Reply, GatewayError> {
    let now = gw.now();
    let state = &gw.apps[app];
    let limit = gw.config.login_limit;
    let window = limit.window.as_secs().max(1);
    let tries = state.cookies.tries(headers, now, window);
    if tries.count >= limit.max {
        return Err(GatewayError::LoginLoop {
            retry: format!("{}/login?retry=1&return={}", login_base(gw, app), encode_component(return_to)),
        });
    }
    let counted = Tries { count: tries.count + 1, window_start: tries.window_start };
    let nonce = base62_nonce(gw.entropy.as_ref(), STATE_LEN);
    let a = gw.app(app);
    let url = authorize_url(
        a.wechat.authorize_url.as_str(),
        &a.wechat.appid,
        &a.callback_url(&gw.config.prefix),
        scope.as_str(),
        &nonce,
    );
    Ok(Reply::redirect(url)
        .with_header("set-cookie", state.cookies.new_login(&nonce, return_to, now, gw.entropy.as_ref()))
        .with_header("set-cookie", state.cookies.set_tries(counted, window, gw.entropy.as_ref())))
}

/// `<app public origin><prefix>` : where the app's login endpoints live.
pub fn login_base(gw: &Gateway, app: usize) -> String {
    format!("{}{}", gw.app(app).public_origin(), gw.config.prefix)
}

/// `<app public origin><prefix>/login?return=` (append the encoded return URL).
pub fn login_url_prefix(gw: &Gateway, app: usize) -> String {
    format!("{}/login?return=", login_base(gw, app))
}

/// Handles `GET <prefix>/callback?code=..&state=..` on app `app`'s public host.
///
/// `Ok` is a `302` to the page the login started from, clean of `code` and `state`, with the
/// session cookie set. Each code is exchanged at most once (see [`crate::exchange`]).
pub async fn callback(gw: &Gateway, app: usize, req: &RequestHeader) -> Result<Reply, GatewayError> {
    let now = gw.now();
    let state = &gw.apps[app];
    let appid = &gw.app(app).wechat.appid;
    let (code, given_state) = code_and_state(req.uri.query().unwrap_or(""));
    let login = state.cookies.login(&req.headers, now);
    let restart_scope = gw.app(app).wechat.scope;
    if let Some(code) = &code {
        if state.exchanges.claimed_elsewhere(code, login.as_ref().map(|l| l.nonce.as_str())) {
            log::info!("callback: a code another browser presented first; starting a new login");
            return start(gw, app, restart_scope, login.as_ref().map_or("/", |l| l.return_to.as_str()), &req.headers);
        }
    }
    let Some(login) = login else {
        if state.cookies.session(&req.headers, appid, now).is_some() {
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
    match state.exchanges.redeem(&code, &login.nonce).await {
        Redeemed::OtherBrowser => {
            log::info!("callback: a code another browser presented first; starting a new login");
            start(gw, app, restart_scope, &retry, &req.headers)
        }
        Redeemed::Done(Err(source)) => Err(GatewayError::Exchange { source, retry }),
        Redeemed::Done(Ok(identity)) if identity.snapshot_user => Err(GatewayError::SnapshotUser { retry }),
        Redeemed::Done(Ok(identity)) => {
            let cookie = state.cookies.new_session(&identity, appid, now, gw.entropy.as_ref());
            Ok(Reply::redirect(with_own_fragment(&retry)).with_header("set-cookie", cookie))
        }
    }
}

/// A redirect without a fragment inherits the fragment of the request it answers (RFC 9110
/// §10.2.2), and WeChat's authorize URL ends in `#wechat_redirect`, which a hash router would
/// take for a route. So the way back always names its own fragment, empty if need be.
fn with_own_fragment(target: &str) -> String {
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
