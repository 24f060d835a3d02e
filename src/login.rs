//! The silent login: the redirect to WeChat and the callback that comes back from it.

use pingora::http::RequestHeader;

use crate::clock::base62_nonce;
use crate::error::GatewayError;
use crate::exchange::Redeemed;
use crate::gateway::{request_authority, request_host, Gateway};
use crate::reply::Reply;
use crate::wechat::authorize::authorize_url;

/// Length of the `state` nonce: 32 base62 characters, about 190 bits.
const STATE_LEN: usize = 32;

/// Answers a request that needs a login: `302` to WeChat's authorize URL, with a new login
/// cookie holding the state nonce and `return_to`.
pub fn start(gw: &Gateway, return_to: &str) -> Reply {
    let now = gw.now();
    let nonce = base62_nonce(gw.entropy.as_ref(), STATE_LEN);
    let w = &gw.config.wechat;
    let url = authorize_url(
        w.authorize_url.as_str(),
        &w.appid,
        &gw.config.callback_url(),
        w.scope.as_str(),
        &nonce,
    );
    let cookie = gw
        .cookies
        .new_login(&nonce, return_to, now, gw.entropy.as_ref());
    Reply::redirect(url).with_header("set-cookie", cookie)
}

/// Where the browser should come back to after logging in for request `req` on route
/// `route`: the path and query, made absolute when the route's host is not the public host.
pub fn return_target(gw: &Gateway, req: &RequestHeader) -> String {
    let path = safe_path(req.uri.path_and_query().map_or("/", |p| p.as_str()));
    let host = request_host(req);
    if gw.is_public_host(&host) {
        return path;
    }
    match request_authority(req) {
        Some(authority) => format!("{}://{authority}{path}", gw.config.public_url.scheme()),
        None => path,
    }
}

/// A path that cannot leave the site: `//host` and `/\host` become `/`.
pub fn safe_path(p: &str) -> String {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && !p.bytes().any(|b| b.is_ascii_control());
    if ok {
        p.to_string()
    } else {
        "/".to_string()
    }
}

/// Handles `GET <prefix>/callback?code=..&state=..`.
///
/// `Ok` is a `302` to the page the login started from, clean of `code` and `state`, with the
/// session cookie set. Each code is exchanged at most once (see [`crate::exchange`]).
pub async fn callback(gw: &Gateway, req: &RequestHeader) -> Result<Reply, GatewayError> {
    let now = gw.now();
    let appid = &gw.config.wechat.appid;
    let (code, state) = code_and_state(req.uri.query().unwrap_or(""));
    let login = gw.cookies.login(&req.headers, now);
    if let Some(code) = &code {
        if gw
            .exchanges
            .claimed_elsewhere(code, login.as_ref().map(|l| l.nonce.as_str()))
        {
            log::info!("callback: a code another browser presented first; starting a new login");
            return Ok(start(
                gw,
                login.as_ref().map_or("/", |l| l.return_to.as_str()),
            ));
        }
    }
    let Some(login) = login else {
        if gw.cookies.session(&req.headers, appid, now).is_some() {
            return Ok(Reply::redirect("/"));
        }
        return Err(GatewayError::LoginCookieMissing);
    };
    let retry = login.return_to.clone();
    if state.as_deref() != Some(login.nonce.as_str()) {
        return Err(GatewayError::StateMismatch { retry });
    }
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return Err(GatewayError::NoCode { retry });
    };
    match gw.exchanges.redeem(&code, &login.nonce).await {
        Redeemed::OtherBrowser => {
            log::info!("callback: a code another browser presented first; starting a new login");
            Ok(start(gw, &retry))
        }
        Redeemed::Done(Err(source)) => Err(GatewayError::Exchange { source, retry }),
        Redeemed::Done(Ok(identity)) if identity.snapshot_user => {
            Err(GatewayError::SnapshotUser { retry })
        }
        Redeemed::Done(Ok(identity)) => {
            let cookie = gw
                .cookies
                .new_session(&identity.openid, appid, now, gw.entropy.as_ref());
            Ok(Reply::redirect(retry).with_header("set-cookie", cookie))
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
    fn return_paths_stay_on_site() {
        assert_eq!(safe_path("/app/x?y=1"), "/app/x?y=1");
        assert_eq!(safe_path("//evil.example/"), "/");
        assert_eq!(safe_path("/\\evil.example"), "/");
        assert_eq!(safe_path("https://evil"), "/");
    }

    #[test]
    fn first_code_and_state_win() {
        let (c, s) = code_and_state("code=A&state=S&uin=1&code=B");
        assert_eq!((c.as_deref(), s.as_deref()), (Some("A"), Some("S")));
        assert_eq!(code_and_state("state="), (None, Some(String::new())));
    }
}
