//! The request target, read once before anything else looks at it: origin form (an
//! absolute-form `GET http://host/p` becomes `/p`), the canonical path ([`super::canonical`]), and
//! the query exactly as sent. Routing, policy, the reserved prefix, verification files and
//! return URLs all use this path, and it is what the upstream receives.

use pingora::http::RequestHeader;

use super::canonical::{canonical_path, PathRules};
use crate::config::Limits;
use crate::http::error::GatewayError;

/// What the client asked for, decided once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The canonical path.
    pub path: String,
    /// The query as sent (without `?`), untouched.
    pub query: Option<String>,
    /// The upstream must be sent [`Target::origin_form`] instead of what the client wrote.
    pub rewritten: bool,
}

impl Target {
    /// `path[?query]`.
    pub fn origin_form(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// Reads the target of `req` under `rules` and `limits`.
///
/// `Err(UriTooLong)` past `limits.max_url_bytes` (414); `Err(BadRequest)` for an absolute-form
/// target naming another host than `Host`, a target that is not UTF-8 or not a path, and
/// every path the canonical form refuses (400).
pub fn read(req: &RequestHeader, rules: &PathRules, limits: &Limits) -> Result<Target, GatewayError> {
    let raw = req.raw_path();
    if raw.len() > limits.max_url_bytes {
        return Err(GatewayError::UriTooLong);
    }
    if !req.raw_path_is_utf8() {
        return Err(GatewayError::BadRequest { reason: "request target is not UTF-8" });
    }
    // pingora keeps only the path of an absolute-form target in `uri`, and the whole target
    // in `raw_path()`, which it would otherwise forward as is.
    let absolute = !raw.starts_with(b"/");
    if absolute {
        let named = std::str::from_utf8(raw).ok().and_then(|t| t.parse::<http::Uri>().ok());
        let in_target = named.as_ref().and_then(|u| u.host()).unwrap_or_default();
        let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(super::host::strip_port);
        if host.is_some_and(|h| !in_target.eq_ignore_ascii_case(h)) {
            return Err(GatewayError::BadRequest { reason: "absolute-form target names another host than Host" });
        }
    }
    let path = canonical_path(req.uri.path(), rules).map_err(|r| GatewayError::BadRequest { reason: r.as_str() })?;
    let rewritten = absolute || path != req.uri.path();
    Ok(Target { path: path.into_owned(), query: req.uri.query().map(str::to_string), rewritten })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(raw: &str, host: &str) -> Result<Target, GatewayError> {
        let mut req = RequestHeader::build("GET", raw.as_bytes(), None).unwrap();
        req.insert_header("host", host).unwrap();
        read(&req, &PathRules::default(), &Limits::default())
    }

    #[test]
    fn origin_form_canonical_path_untouched_query() {
        let t = target("/pub/%2e%2e/secret?a=%2e%2e&b=/../x", "h").unwrap();
        assert_eq!((t.path.as_str(), t.query.as_deref(), t.rewritten), ("/secret", Some("a=%2e%2e&b=/../x"), true));
        assert_eq!(t.origin_form(), "/secret?a=%2e%2e&b=/../x");
        let plain = target("/shop/cart?x=1", "h").unwrap();
        assert!(!plain.rewritten && plain.path == "/shop/cart");
    }

    #[test]
    fn absolute_form_becomes_origin_form_on_its_own_host_only() {
        let t = target("http://h5.test/pub/../secret?q", "h5.test:80").unwrap();
        assert_eq!((t.origin_form().as_str(), t.rewritten), ("/secret?q", true));
        assert!(matches!(target("http://other.test/x", "h5.test"), Err(GatewayError::BadRequest { .. })));
    }

    #[test]
    fn refusals_and_length() {
        assert!(matches!(target("/a/%2f", "h"), Err(GatewayError::BadRequest { reason: "encoded_slash" })));
        assert!(matches!(target("/..", "h"), Err(GatewayError::BadRequest { .. })));
        let long = format!("/{}", "a".repeat(9000));
        assert!(matches!(target(&long, "h"), Err(GatewayError::UriTooLong)));
    }
}
