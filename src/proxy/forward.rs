//! What the upstream receives: the request without any client-sent identity, with the
//! gateway's token, forwarding headers and the right `Host`.

use http::HeaderName;
use pingora::http::RequestHeader;
use pingora::Result;

use crate::client::ClientView;
use crate::config::Route;
use crate::cookies;

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
