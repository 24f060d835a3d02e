//! What the upstream receives: the request without any client-sent identity, path override
//! or hop-by-hop header, with the gateway's token, forwarding headers and the right `Host`.

use http::HeaderName;
use pingora::http::RequestHeader;
use pingora::Result;

use std::sync::Arc;

use super::RequestCtx;
use crate::config::Route;
use crate::http::client::ClientView;
use crate::http::cookies;
use crate::runtime::{Gateway, RouteRuntime};
use crate::session::Session;
use crate::token::{InvalidKind, TokenError};

/// Turns the client's request into what route `index`'s upstream receives (its `Connection`
/// was already cleaned by [`strip_hop_by_hop`] in the request phase, before pingora removes
/// the hop-by-hop headers it names): the identity header, path overrides and the gateway's
/// cookies out, forwarding headers, `X-Request-Id` and the token in, and the canonical path
/// as the target.
pub fn prepare(gw: &Gateway, runtime: &RouteRuntime, upstream: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    let route = &runtime.config;
    let app = gw.app(runtime.app);
    let token_header = &gw.config.token.header;
    strip_identity(upstream, token_header);
    strip_path_overrides(upstream);
    let host_session = ctx.app_host.map_or(app.sessions.name(), |h| gw.host(h).sessions.name());
    let ours = [app.sessions.name(), app.logins.name(), host_session, app.loops.cookie_name(), app.nonces.name()];
    strip_gateway_cookies(upstream, &ours)?;
    forwarding_headers(upstream, &ctx.view, app.config.public_url.scheme(), route)?;
    upstream.insert_header("x-request-id", &ctx.request_id)?;
    let test = take_test_switch(upstream);
    let token = identity_token(gw, runtime, ctx.user.as_ref(), test)
        .map_err(|e| pingora::Error::because(pingora::ErrorType::InternalError, "signing the identity token", e))?;
    if let Some(token) = token {
        upstream.insert_header(token_header.clone(), &*token)?;
    }
    if ctx.target.rewritten {
        let uri = ctx.target.origin_form().parse::<http::Uri>().map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "the canonical target is not a URI", e)
        })?;
        upstream.set_uri(uri);
    }
    Ok(())
}

/// Removes every header that a backend could mistake for the identity header `name`: any
/// letter case, and `_` written for `-`.
pub fn strip_identity(req: &mut RequestHeader, name: &HeaderName) {
    let target = name.as_str();
    // Nothing is allocated unless a copy is there: the usual case.
    if !req.headers.keys().any(|k| same_header(k.as_str(), target)) {
        return;
    }
    let doomed: Vec<HeaderName> = req.headers.keys().filter(|k| same_header(k.as_str(), target)).cloned().collect();
    for h in doomed {
        req.remove_header(&h);
    }
}

/// Do two header names (both lower case, as `http` keeps them) name the same header once `_`
/// is read as `-`?
fn same_header(name: &str, target: &str) -> bool {
    let dash = |b: u8| if b == b'_' { b'-' } else { b };
    name.len() == target.len() && name.bytes().zip(target.bytes()).all(|(a, b)| dash(a) == dash(b))
}

/// Headers some backends take as the "real" path (IIS URL Rewrite, Symfony, Envoy, prefix
/// aware frameworks); the gateway decided on the canonical path, so no backend may be told
/// another. Removed from every request.
pub const PATH_OVERRIDES: [&str; 6] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-envoy-original-path",
];

/// Removes every path-override header. One pass over the names the request has: the usual
/// request has none of them, and looking each one up would cost six lookups.
pub fn strip_path_overrides(req: &mut RequestHeader) {
    let present: Vec<HeaderName> =
        req.headers.keys().filter(|k| PATH_OVERRIDES.contains(&k.as_str())).cloned().collect();
    for name in present {
        req.remove_header(&name);
    }
}

/// Connection options a client may keep: everything else in `Connection` names a hop-by-hop
/// header of the client's hop.
const CONNECTION_OPTIONS: [&str; 3] = ["close", "keep-alive", "upgrade"];

/// Headers the gateway sets or relies on: a `Connection` that names one is ignored for it.
const PROTECTED: [&str; 12] = [
    "host",
    "cookie",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "forwarded",
    "x-request-id",
    "te",
];

/// RFC 9110 §7.6.1: the headers a client's `Connection` names belong to its hop and go; the
/// gateway's own and the framing headers are never removed this way (the name is just dropped
/// from `Connection`), so a crafted `Connection: X-Forwarded-For` neither strips what the
/// gateway adds nor breaks the request. `Connection` keeps only `close`, `keep-alive`, `upgrade`.
pub fn strip_hop_by_hop(req: &mut RequestHeader, identity: &HeaderName) -> Result<()> {
    let tokens: Vec<String> = req
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Ok(());
    }
    req.remove_header(&http::header::CONNECTION);
    let mut kept = Vec::new();
    for t in tokens {
        if CONNECTION_OPTIONS.contains(&t.as_str()) {
            kept.push(t);
        } else if !PROTECTED.contains(&t.as_str()) && t != identity.as_str() {
            req.remove_header(t.as_str());
        }
    }
    if !kept.is_empty() {
        req.insert_header(http::header::CONNECTION, kept.join(", "))?;
    }
    Ok(())
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
/// trusted proxy), `X-Forwarded-Proto` and `X-Forwarded-Host` (as the client asked),
/// `X-Real-IP` (the client), `Forwarded` (RFC 7239: the gateway's own element, after a trusted
/// proxy's; a value from anyone else is replaced), and the `Host` the route asks for.
pub fn forwarding_headers(req: &mut RequestHeader, view: &ClientView, scheme: &str, route: &Route) -> Result<()> {
    match view.ip {
        Some(_) => req.insert_header("x-real-ip", &view.ip_text)?,
        None => {
            req.remove_header("x-real-ip");
        }
    }
    let earlier = view
        .via_trusted_proxy
        .then(|| req.headers.get("forwarded").and_then(|v| v.to_str().ok()).map(str::to_string))
        .flatten();
    let ours = forwarded_element(view, scheme);
    req.insert_header("forwarded", earlier.map_or_else(|| ours.clone(), |e| format!("{e}, {ours}")))?;
    match &view.forwarded_for {
        Some(chain) => req.insert_header("x-forwarded-for", chain)?,
        None => {
            req.remove_header("x-forwarded-for");
        }
    }
    req.insert_header("x-forwarded-proto", view.proto.map_or(scheme, |s| s.as_str()))?;
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

/// `for=<peer>;proto=<scheme>[;host=<authority>]`, quoted where RFC 7239 needs it.
fn forwarded_element(view: &ClientView, scheme: &str) -> String {
    let proto = view.proto.map_or(scheme, |s| s.as_str());
    let peer = match view.peer {
        Some(std::net::IpAddr::V6(ip)) => format!("\"[{ip}]\""),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    };
    match &view.authority {
        Some(host) => format!("for={peer};proto={proto};host=\"{host}\""),
        None => format!("for={peer};proto={proto}"),
    }
}

/// On a route in verifier test mode, asks for a deliberately invalid token of this kind.
pub const TEST_HEADER: &str = "x-openid-token-test";

/// What the verifier test switch of `req` asks for, if anything.
pub fn test_switch(req: &RequestHeader) -> Option<InvalidKind> {
    req.headers.get(TEST_HEADER)?.to_str().ok().and_then(InvalidKind::parse)
}

/// Removes the verifier test switch (it is never forwarded) and returns what it asked for.
pub fn take_test_switch(req: &mut RequestHeader) -> Option<InvalidKind> {
    req.headers.get(TEST_HEADER)?;
    let kind = test_switch(req);
    req.remove_header(TEST_HEADER);
    kind
}

/// The token the upstream receives on `route`: the (cached) token of `user`; on a route in
/// verifier test mode that was asked for one, an invalid token of that kind (for a stand-in
/// user when there is no session); otherwise none.
pub fn identity_token(
    gw: &Gateway,
    runtime: &RouteRuntime,
    user: Option<&Session>,
    test: Option<InvalidKind>,
) -> Result<Option<Arc<str>>, TokenError> {
    let (route, now) = (&runtime.config, gw.now());
    match (test.filter(|_| route.verifier_test), user) {
        (Some(kind), user) => {
            let stand_in = Session {
                openid: "o-verifier-test".into(),
                appid: gw.app(runtime.app).config.wechat.appid.clone(),
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
    fn connection_never_removes_what_the_gateway_relies_on() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("connection", "keep-alive, X-Forwarded-For, x-openid-token, Host, X-Hop").unwrap();
        req.append_header("connection", "Upgrade").unwrap();
        req.append_header("x-hop", "1").unwrap();
        req.append_header("host", "h").unwrap();
        req.append_header("x-forwarded-for", "6.6.6.6").unwrap();
        strip_hop_by_hop(&mut req, &HeaderName::from_static("x-openid-token")).unwrap();
        assert_eq!(req.headers.get("connection").unwrap(), "keep-alive, upgrade");
        assert!(req.headers.get("x-hop").is_none(), "a real hop-by-hop header goes");
        assert!(req.headers.get("host").is_some() && req.headers.get("x-forwarded-for").is_some());
    }

    #[test]
    fn path_overrides_go() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Original-URL", "/admin").unwrap();
        req.append_header("x-rewrite-url", "/admin").unwrap();
        strip_path_overrides(&mut req);
        assert!(req.headers.is_empty());
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
