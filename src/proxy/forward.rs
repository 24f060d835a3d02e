//! What the upstream receives: the request without any client-sent identity, with the
//! gateway's token, forwarding headers and the right `Host`.

use http::HeaderName;
use pingora::http::RequestHeader;
use pingora::Result;

use std::sync::Arc;

use crate::client::ClientView;
use crate::config::Route;
use crate::cookies;
use crate::gateway::Gateway;
use crate::session::Session;
use crate::token::{InvalidKind, TokenError};

/// Removes every header that a backend could mistake for the identity header `name`: any
/// letter case, and `_` written for `-`.
pub fn strip_identity(req: &mut RequestHeader, name: &HeaderName) {
    let target = normalize(name.as_str());
    let doomed: Vec<HeaderName> = req.headers.keys().filter(|k| normalize(k.as_str()) == target).cloned().collect();
    for h in doomed {
        req.remove_header(&h);
    }
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Drops the gateway's own cookies from the `Cookie` header: the upstream has no use for them.
pub fn strip_gateway_cookies(req: &mut RequestHeader, names: &[&str]) -> Result<()> {
    let joined: Vec<String> =
        req.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    if joined.is_empty() {
        return Ok(());
    }
    req.remove_header(&http::header::COOKIE);
    if let Some(rest) = cookies::without(&joined.join("; "), names) {
        req.insert_header(http::header::COOKIE, rest)?;
    }
    Ok(())
}

/// Sets `X-Forwarded-For` (the client's address, appended to the chain only behind a
/// trusted proxy), `X-Forwarded-Proto` and `X-Forwarded-Host` (as the client asked), and the
/// `Host` the route asks for.
pub fn forwarding_headers(req: &mut RequestHeader, view: &ClientView, scheme: &str, route: &Route) -> Result<()> {
    match &view.forwarded_for {
        Some(chain) => req.insert_header("x-forwarded-for", chain)?,
        None => {
            req.remove_header("x-forwarded-for");
        }
    }
    req.insert_header("x-forwarded-proto", view.proto.as_deref().unwrap_or(scheme))?;
    match &view.authority {
        Some(h) => req.insert_header("x-forwarded-host", h)?,
        None => {
            req.remove_header("x-forwarded-host");
        }
    }
    if !route.preserve_host {
        req.insert_header(http::header::HOST, &route.upstream.host_header)?;
    }
    Ok(())
}

/// On a route in verifier test mode, asks for a deliberately invalid token of this kind.
pub const TEST_HEADER: &str = "x-openid-token-test";

/// Removes the verifier test switch (it is never forwarded) and returns what it asked for.
pub fn take_test_switch(req: &mut RequestHeader) -> Option<InvalidKind> {
    let kind = req.headers.get(TEST_HEADER).and_then(|v| v.to_str().ok()).and_then(InvalidKind::parse);
    req.remove_header(TEST_HEADER);
    kind
}

/// The token the upstream receives on `route`: the (cached) token of `user`; on a route in
/// verifier test mode that was asked for one, an invalid token of that kind (for a stand-in
/// user when there is no session); otherwise none.
pub fn identity_token(
    gw: &Gateway,
    route: &Route,
    user: Option<&Session>,
    test: Option<InvalidKind>,
) -> Result<Option<Arc<str>>, TokenError> {
    let now = gw.now();
    match (test.filter(|_| route.verifier_test), user) {
        (Some(kind), user) => {
            let stand_in = Session {
                openid: "o-verifier-test".into(),
                appid: gw.app(route.app).wechat.appid.clone(),
                ..Session::default()
            };
            let token = gw.signer.invalid_token(kind, user.unwrap_or(&stand_in), &route.audience, now)?;
            Ok(Some(token.into()))
        }
        (None, Some(user)) => gw.signer.token_for(user, &route.audience, now).map(Some),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_identity_header_goes() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("X-Openid-Token", "a"),
            ("x-openid-token", "b"),
            ("X_OPENID_TOKEN", "c"),
            ("x_openid-token", "d"),
            ("X-Other", "keep"),
        ] {
            req.append_header(k.to_string(), v).unwrap();
        }
        strip_identity(&mut req, &HeaderName::from_static("x-openid-token"));
        let left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-other"]);
    }

    #[test]
    fn gateway_cookies_are_removed() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("cookie", "a=1; ogw_session=S").unwrap();
        req.append_header("cookie", "ogw_login=L; b=2").unwrap();
        strip_gateway_cookies(&mut req, &["ogw_session", "ogw_login"]).unwrap();
        assert_eq!(req.headers.get("cookie").unwrap(), "a=1; b=2");
    }
}
