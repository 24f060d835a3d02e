//! Parsers for single config values; each error message names what was expected.

use http::HeaderName;
use url::Url;

use super::{HostPattern, IpNet, NonWechat, Policy, Scope, TokenAlgorithm};

pub(super) fn parse_public_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{s:?} must be an http or https URL with a host"));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(format!("{s:?} must be scheme and host only (no path, query or fragment)"));
    }
    Ok(u)
}

pub(super) fn parse_http_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{s:?} must be an http or https URL"));
    }
    Ok(u)
}

pub(super) fn parse_upstream(s: &str) -> Result<Url, String> {
    let u = parse_http_url(s)?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("{s:?}: upstreams are http:// or https://"));
    }
    if u.path() != "/" || u.query().is_some() {
        return Err(format!("{s:?} must be scheme, host and port only"));
    }
    Ok(u)
}

pub(super) fn parse_prefix(s: &str) -> Result<String, String> {
    let ok = s.len() > 1
        && s.starts_with('/')
        && !s.ends_with('/')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    ok.then(|| s.to_string()).ok_or_else(|| format!("{s:?} must be a path like \"/.gateway\" (no trailing slash)"))
}

pub(super) fn parse_route_path(s: &str) -> Result<String, String> {
    (s.starts_with('/') && !s.contains(['?', '#', ' ']))
        .then(|| s.to_string())
        .ok_or_else(|| format!("{s:?} must be a path starting with /"))
}

pub(super) fn parse_scope(s: &str) -> Result<Scope, String> {
    match s {
        "snsapi_base" => Ok(Scope::Base),
        "snsapi_userinfo" => Ok(Scope::Userinfo),
        "snsapi_login" => Err("snsapi_login is for Open Platform website QR login, not Official Account pages".into()),
        _ => Err(format!("{s:?} must be \"snsapi_base\" or \"snsapi_userinfo\"")),
    }
}

pub(super) fn parse_algorithm(s: &str) -> Result<TokenAlgorithm, String> {
    match s {
        "HS256" => Ok(TokenAlgorithm::HS256),
        "ES256" => Ok(TokenAlgorithm::ES256),
        "EdDSA" => Ok(TokenAlgorithm::EdDSA),
        "RS256" => Ok(TokenAlgorithm::RS256),
        _ => Err(format!("{s:?} must be \"ES256\", \"EdDSA\", \"RS256\" or \"HS256\"")),
    }
}

pub(super) fn parse_policy(s: &str) -> Result<Policy, String> {
    match s {
        "required" => Ok(Policy::Required),
        "optional" => Ok(Policy::Optional),
        "public" => Ok(Policy::Public),
        _ => Err(format!("{s:?} must be \"required\", \"optional\" or \"public\"")),
    }
}

pub(super) fn parse_cookie_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    ok.then(|| s.to_string()).ok_or_else(|| format!("{s:?} must be letters, digits, _ or -"))
}

pub(super) fn parse_header_name(s: &str) -> Result<HeaderName, String> {
    let h = HeaderName::from_bytes(s.as_bytes()).map_err(|_| format!("{s:?} is not a header name"))?;
    if matches!(h.as_str(), "host" | "cookie" | "connection" | "content-length" | "transfer-encoding") {
        return Err(format!("{s:?} is a header the proxy itself needs"));
    }
    Ok(h)
}

pub(super) fn parse_non_wechat(s: &str) -> Result<NonWechat, String> {
    match s {
        "qr_page" => Ok(NonWechat::QrPage),
        "pass" => Ok(NonWechat::Pass),
        "login" => Ok(NonWechat::Login),
        _ => Err(format!("{s:?} must be \"qr_page\", \"pass\" or \"login\"")),
    }
}

pub(super) fn parse_host_pattern(s: &str) -> Result<HostPattern, String> {
    let h = s.to_ascii_lowercase();
    let valid = |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
    if let Some(rest) = h.strip_prefix("*.") {
        if valid(rest) && rest.contains('.') {
            return Ok(HostPattern::Wildcard(format!(".{rest}")));
        }
    } else if valid(&h) {
        return Ok(HostPattern::Exact(h));
    }
    Err(format!("{s:?} must be a host name (h5.example.com) or a wildcard (*.example.com), without port"))
}

pub(super) fn parse_ipnet(s: &str) -> Result<IpNet, String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: std::net::IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or network"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => {
            p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: prefix must be 0 to {max}"))?
        }
        None => max,
    };
    Ok(IpNet { addr, prefix })
}

/// A size such as `"32KiB"`, `"10MB"` or `"8192"` (bytes).
pub(super) fn parse_size(s: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize =
        s.trim().parse().map_err(|_| format!("{s:?} is not a size (like \"32KiB\" or \"10MB\")"))?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{s:?} is too large"))
}

/// The PEM certificates in `base`/`path`, at least one; the error names the file.
pub(super) fn read_pem_certs(
    base: &std::path::Path,
    path: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let file = base.join(path);
    let read: Result<Vec<CertificateDer<'static>>, _> =
        CertificateDer::pem_file_iter(&file).and_then(|it| it.collect());
    match read {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(format!("{}: no PEM certificate in it", file.display())),
        Err(e) => Err(format!("{}: {e}", file.display())),
    }
}
