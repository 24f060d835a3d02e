//! Where a browser may be sent after login or logout: a path on this site, or an absolute
//! http(s) URL on a host the gateway serves or was told to allow. Everything else, such as
//! `//evil.example`, `/\evil.example`, `https:evil`, `javascript:`, and anything with control
//! characters, white space or backslashes, is refused.

use url::Url;

use crate::config::{Config, HostPattern};

/// `raw` (already percent-decoded once) if it is a safe return target.
pub fn validate(config: &Config, raw: &str) -> Option<String> {
    let suspicious =
        raw.is_empty() || raw.bytes().any(|b| b.is_ascii_control() || b.is_ascii_whitespace() || b == b'\\');
    if suspicious {
        return None;
    }
    if raw.starts_with('/') {
        return (!raw.starts_with("//")).then(|| raw.to_string());
    }
    let url = Url::parse(raw).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let lowered = raw.to_ascii_lowercase();
    let written_as_url = lowered.starts_with("http://") || lowered.starts_with("https://");
    if !written_as_url || !url.username().is_empty() || url.password().is_some() || !allowed_host(config, &host) {
        return None;
    }
    Some(url.to_string())
}

/// Hosts of the apps and routes, and `allowed_return_hosts`.
pub fn allowed_host(config: &Config, host: &str) -> bool {
    config.apps.iter().any(|a| a.public_host() == host)
        || config.allowed_return_hosts.iter().any(|h| h == host)
        || config.routes.iter().any(|r| !matches!(r.host, HostPattern::Any) && r.host.matches(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::for_tests(
            "https://h5.example.com",
            "allowed_return_hosts = [\"partner.example.org\"]",
            "",
            "[[routes]]\nhost = \"h5.example.com\"\nupstream = \"http://127.0.0.1:1\"\n",
        )
    }

    #[test]
    fn open_redirect_payloads_are_refused() {
        let c = config();
        for bad in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https:evil.example",
            "https:/evil.example",
            "http://evil.example/",
            "https://h5.example.com.evil.example/",
            "https://h5.example.com@evil.example/",
            "https://evil.example\\@h5.example.com/",
            "javascript:alert(1)",
            "data:text/html,x",
            "/ok\r\nSet-Cookie: x=1",
            "/ok\nLocation: //evil",
            " //evil.example",
            "\t/evil",
            "%2F%2Fevil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(validate(&c, bad), None, "{bad:?} was accepted");
        }
    }

    #[test]
    fn site_paths_and_known_hosts_are_kept() {
        let c = config();
        for good in ["/", "/app/#/order/42", "/a?b=1&c=%2F%2Fx", "/%2F%2Fevil.example"] {
            assert_eq!(validate(&c, good).as_deref(), Some(good));
        }
        assert_eq!(validate(&c, "https://h5.example.com/x#y").as_deref(), Some("https://h5.example.com/x#y"));
        assert!(validate(&c, "https://partner.example.org/").is_some());
    }
}
