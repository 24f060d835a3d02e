//! The host a request names, and the one rule it must meet before the gateway believes it,
//! routes on it or writes it into a page or a URL (the login URL of the fragment-keeping page,
//! the way back to an app host): a valid `host[:port]`. A request naming anything else is
//! answered 400 ([`crate::http::error::GatewayError::BadHost`]).
//!
//! The check is a scan of the bytes, without allocating: it runs on every request.

use pingora::http::RequestHeader;

const X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

/// A request named a host that is not a valid `host[:port]`, or named it ambiguously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadHost;

/// The host `req` names, as sent: from a trusted proxy (`via_proxy`), the first value of
/// `X-Forwarded-Host`; else the `Host` header; else the authority of the request target (an
/// absolute-form target, or HTTP/2's `:authority`). `Ok(None)` when none is named.
///
/// `Err(BadHost)` when the one chosen is not a valid `host[:port]` ([`valid_authority`]), when
/// `Host` is sent twice or is not text, when the request target names an authority that is not
/// valid (`http://user@host/`), or when a trusted proxy's `X-Forwarded-Host` is not text.
pub fn named(req: &RequestHeader, via_proxy: bool) -> Result<Option<&str>, BadHost> {
    // HTTP/2 carries `:authority` in the URI; pingora keeps an HTTP/1 absolute-form target
    // whole in `raw_path` only.
    let in_target = match req.uri.authority() {
        Some(a) => Some(a.as_str()),
        None if req.raw_path().starts_with(b"/") => None,
        None => std::str::from_utf8(req.raw_path()).ok().and_then(authority_of),
    };
    if in_target.is_some_and(|a| !valid_authority(a)) {
        return Err(BadHost);
    }
    let forwarded = match via_proxy.then(|| req.headers.get(X_FORWARDED_HOST)).flatten() {
        Some(v) => first_value(v.to_str().map_err(|_| BadHost)?),
        None => None,
    };
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadHost);
    }
    let host = match host {
        Some(v) => Some(v.to_str().map_err(|_| BadHost)?.trim()).filter(|h| !h.is_empty()),
        None => None,
    };
    match forwarded.or(host).or(in_target) {
        Some(named) if valid_authority(named) => Ok(Some(named)),
        Some(_) => Err(BadHost),
        None => Ok(None),
    }
}

/// The authority of an absolute-form target (`http://shop.test:8080/x` -> `shop.test:8080`),
/// as written; `None` for an origin-form target (`/x`) or `*`.
fn authority_of(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return None;
    }
    let (_, rest) = target.split_once("://")?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// The first of a comma-separated list, trimmed; `None` when empty.
fn first_value(list: &str) -> Option<&str> {
    list.split(',').next().map(str::trim).filter(|v| !v.is_empty())
}

/// `host[:port]`: a DNS name or IPv4 address (labels of letters, digits, `-` and `_`, an
/// optional final dot), or a bracketed IPv6 address; the port, if any, 1 to 65535 in digits.
/// `shop.test:evil.test`, `a.test:1, b.test`, `a b`, `user@host`, `host:` are not.
pub fn valid_authority(h: &str) -> bool {
    if h.is_empty() || h.len() > 261 {
        return false;
    }
    let (name, port) = match h.strip_prefix('[') {
        Some(rest) => {
            let Some((inside, after)) = rest.split_once(']') else { return false };
            if inside.parse::<std::net::Ipv6Addr>().is_err() {
                return false;
            }
            match after {
                "" => return true,
                _ => (None, Some(after.strip_prefix(':').unwrap_or("-"))),
            }
        }
        None => match h.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(h), None),
        },
    };
    name.is_none_or(valid_name) && port.is_none_or(valid_port)
}

fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn valid_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::ClientView;

    /// A header's name and value (bytes: a value need not be text).
    type Header<'a> = (&'a str, &'a [u8]);

    fn req(target: &str, headers: &[Header]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), http::HeaderValue::from_bytes(v).unwrap()).unwrap();
        }
        r
    }

    #[test]
    fn only_a_valid_host_and_port_is_a_host() {
        for good in
            ["shop.test", "Shop.Test:8443", "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:80", "a_b.test", "h5.test."]
        {
            assert!(valid_authority(good), "{good}");
        }
        for bad in [
            "shop.test:evil.test",
            "a.test:1, b.test",
            "a.test, b.test",
            "a test",
            "user@shop.test",
            "shop.test/x",
            "shop.test:",
            "shop.test:0",
            "shop.test:65536",
            "shop.test:123456",
            "shop.test:80:80",
            "[::1",
            "[not-v6]:80",
            "[::1]80",
            "[::1]:",
            ":80",
            ".shop.test",
            "shop..test",
            "<script>",
            "shop.test\\evil",
            "",
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
    }

    #[test]
    fn the_named_host_comes_from_one_place_and_meets_the_rule() {
        // Positive controls: Host; the target's authority when Host is absent (HTTP/2's
        // `:authority`, an absolute-form target), port kept; none at all.
        assert_eq!(named(&req("/", &[("host", b"Shop.Test:8443")]), false), Ok(Some("Shop.Test:8443")));
        assert_eq!(named(&req("http://shop.test:8443/x", &[]), false), Ok(Some("shop.test:8443")));
        assert_eq!(named(&req("http://[::1]:8080/x", &[]), false), Ok(Some("[::1]:8080")));
        assert_eq!(named(&req("/", &[]), false), Ok(None));
        assert_eq!(named(&req("/", &[("host", b"")]), false), Ok(None));

        let bad: [(&str, &[Header]); 6] = [
            ("/", &[("host", b"shop.test:evil.test")]),
            ("/", &[("host", b"shop.test"), ("host", b"evil.test")]),
            ("/", &[("host", b"shop.test\xff")]),
            ("http://evil.test@shop.test/x", &[]),
            ("http://evil.test@shop.test/x", &[("host", b"shop.test")]),
            ("/", &[("host", b"shop.test:1, evil.test")]),
        ];
        for (target, headers) in bad {
            assert_eq!(named(&req(target, headers), false), Err(BadHost), "{target} {headers:?}");
        }
    }

    #[test]
    fn a_trusted_proxys_forwarded_host_is_held_to_the_same_rule() {
        let r = req("/", &[("host", b"internal"), ("x-forwarded-host", b"shop.test, proxy.test")]);
        assert_eq!(named(&r, true), Ok(Some("shop.test")));
        assert_eq!(named(&r, false), Ok(Some("internal")), "believed only from a trusted proxy");
        let r = req("/", &[("host", b"internal"), ("x-forwarded-host", b"shop.test:evil.test")]);
        assert_eq!(named(&r, true), Err(BadHost));
        let r = req("/", &[("host", b"internal"), ("x-forwarded-host", b"\xffshop.test")]);
        assert_eq!(named(&r, true), Err(BadHost));
    }

    #[test]
    fn a_bad_host_leaves_no_trace_in_the_client_view() {
        let view = ClientView::of(&req("/", &[("host", b"shop.test:evil.test")]), None, &[]);
        assert!(view.bad_host && view.host.is_empty() && view.authority.is_none());
        let view = ClientView::of(&req("/", &[("host", b"Shop.Test:8443")]), None, &[]);
        assert!(!view.bad_host);
        assert_eq!((view.host.as_str(), view.authority.as_deref()), ("shop.test", Some("shop.test:8443")));
        let view = ClientView::of(&req("http://[::1]:8080/x", &[]), None, &[]);
        assert_eq!((view.host.as_str(), view.authority.as_deref()), ("[::1]", Some("[::1]:8080")));
        // As pingora reads an HTTP/2 request: `:authority` in the URI, no Host.
        let mut h2 = req("/x", &[]);
        h2.set_uri(http::Uri::from_static("https://shop.test:8443/x"));
        let view = ClientView::of(&h2, None, &[]);
        assert_eq!((view.host.as_str(), view.authority.as_deref()), ("shop.test", Some("shop.test:8443")));
        h2.set_uri(http::Uri::from_static("https://evil.test@shop.test/x"));
        assert!(ClientView::of(&h2, None, &[]).bad_host);
    }

    #[test]
    fn ports_go() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
