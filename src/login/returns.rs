//! Where a browser may be sent after login or logout, or linked to from a page: a path on
//! this site, or an absolute http(s) URL on a host the gateway serves or was told to allow.
//! Paths are returned in their canonical form (the one requests are decided on), so a
//! return URL can never name a page other than the one a request for it would reach. The
//! rules are checked on that canonical form, whatever the `[paths]` settings: a path whose
//! canonical form starts with `//` or `/\` (a browser reads `//evil.test` as another host) is
//! refused like the raw one ([`stays_on_site`]). Everything else is refused with the reason,
//! which the caller logs.
//!
//! Every `Location` and link built from a return value goes through [`validate`]: the `return`
//! parameter of the login and logout endpoints, and the page a request asked for when it is
//! sent into the login ([`return_target`]), which the login cookie and the hand-off carry to
//! the callback, the ticket and the fragment-keeping page. On an app host, the way back is an
//! absolute URL on its own origin ([`on_origin`]) and a ticket lands only on its host
//! ([`on_host`]); every way back names its own fragment ([`with_own_fragment`]).

use url::Url;

use crate::config::{App, Config, HostPattern};
use crate::http::canonical::canonical_path;
use crate::http::client::ClientView;
use crate::http::target::Target;

/// Why a return URL was refused (logged, never shown with the URL itself).
pub type Refused = &'static str;

/// `raw` (already percent-decoded once) in canonical form, if it is a safe return target.
pub fn validate(config: &Config, raw: &str) -> Result<String, Refused> {
    if raw.is_empty() {
        return Err("empty");
    }
    if raw.bytes().any(|b| b.is_ascii_control() || b.is_ascii_whitespace() || b == b'\\') {
        return Err("control character, white space or backslash");
    }
    if raw.starts_with('/') {
        if !stays_on_site(raw) {
            return Err("scheme-relative URL (//host)");
        }
        let split = raw.find(['?', '#']).unwrap_or(raw.len());
        let path = canonical_path(&raw[..split], &config.paths).map_err(|r| r.as_str())?;
        // `/.//evil.test` with `merge_slashes = false`, `/%2F%2Fevil.test` with unescaped slashes.
        if !stays_on_site(&path) {
            return Err("scheme-relative URL (//host) once made canonical");
        }
        return Ok(format!("{path}{}", &raw[split..]));
    }
    let lowered = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    if !(lowered.starts_with("http://") || lowered.starts_with("https://")) {
        return Err("neither a path nor an http(s) URL");
    }
    let mut url = Url::parse(raw).map_err(|_| "not a URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URL with user information");
    }
    let host = url.host_str().ok_or("URL without a host")?.to_ascii_lowercase();
    if !allowed_host(config, &host) {
        return Err("host not served by the gateway nor in allowed_return_hosts");
    }
    let path = canonical_path(url.path(), &config.paths).map_err(|r| r.as_str())?.into_owned();
    url.set_path(&path);
    Ok(url.to_string())
}

/// Does the path `path` (starting with `/`) name a page of this site when a browser follows
/// it? Not when it starts with `//` or `/\\`: browsers read both as `//host`, another site.
pub fn stays_on_site(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\")
}

/// Hosts of the apps, app hosts and routes, and `allowed_return_hosts`.
pub fn allowed_host(config: &Config, host: &str) -> bool {
    config.apps.iter().any(|a| a.public_host() == host)
        || config.app_hosts.iter().any(|h| h.host.matches(host))
        || config.allowed_return_hosts.iter().any(|h| h == host)
        || config.routes.iter().any(|r| !matches!(r.host, HostPattern::Any) && r.host.matches(host))
}

/// Where to come back to after login: the canonical path and query on the app's public host
/// when [`validate`] takes it, else the absolute URL (on another host, or a path such as
/// `//evil.test`, canonical with `merge_slashes = false`, that a browser would read as another
/// host: `http://<host>//evil.test` stays here).
pub fn return_target(config: &Config, app: &App, view: &ClientView, target: &Target) -> String {
    if app.public_host() == view.host {
        if let Ok(page) = validate(config, &target.origin_form()) {
            return page;
        }
    }
    absolute_target(app, view, target)
}

/// The absolute URL the client asked for, in canonical form.
pub fn absolute_target(app: &App, view: &ClientView, target: &Target) -> String {
    format!("{}{}", view.origin(app), target.origin_form())
}

/// A validated `return_to` as an absolute URL on `origin`: a path is put on it, an absolute
/// URL must already be there.
pub fn on_origin(origin: &str, return_to: &str) -> Result<String, Refused> {
    if return_to.starts_with('/') {
        Ok(format!("{origin}{return_to}"))
    } else if Url::parse(return_to).is_ok_and(|u| u.origin().ascii_serialization() == origin) {
        Ok(return_to.to_string())
    } else {
        Err("not on this app host's origin")
    }
}

/// Is `url` an absolute http(s) URL on `host`?
pub fn on_host(url: &str, host: &str) -> bool {
    Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str() == Some(host))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_never_inherits_wechat_redirect() {
        assert_eq!(with_own_fragment("/app/?x=1"), "/app/?x=1#");
        assert_eq!(with_own_fragment("/app/#/order/42"), "/app/#/order/42");
    }

    #[test]
    fn an_app_hosts_way_back_stays_on_its_origin() {
        assert_eq!(on_origin("https://mall.test", "/a?b").as_deref(), Ok("https://mall.test/a?b"));
        assert_eq!(on_origin("https://mall.test", "https://mall.test/x").as_deref(), Ok("https://mall.test/x"));
        assert!(on_origin("https://mall.test", "https://evil.test/x").is_err());
        assert!(on_origin("https://mall.test", "http://mall.test/x").is_err(), "another scheme");
        assert!(on_host("http://mall.test/x", "mall.test") && !on_host("javascript://mall.test/x", "mall.test"));
    }
    use crate::http::canonical::{EscapedSlashes, PathRules};

    fn config() -> Config {
        crate::config::for_tests(
            "https://h5.example.com",
            "allowed_return_hosts = [\"partner.example.org\"]",
            "",
            "[[routes]]\nhost = \"h5.example.com\"\nupstream = \"http://127.0.0.1:1\"\n",
        )
    }

    #[test]
    fn site_paths_and_known_hosts_are_kept() {
        let c = config();
        for good in ["/", "/app/#/order/42", "/a?b=1&c=%2F%2Fx", "/x/%E4%B8%AD?q=../y"] {
            assert_eq!(validate(&c, good).as_deref(), Ok(good));
        }
        assert_eq!(validate(&c, "https://h5.example.com/x#y").as_deref(), Ok("https://h5.example.com/x#y"));
        assert!(validate(&c, "https://partner.example.org/").is_ok());
    }

    #[test]
    fn paths_come_back_canonical() {
        let c = config();
        assert_eq!(validate(&c, "/pub/%2e%2e/admin?x=1#/y").as_deref(), Ok("/admin?x=1#/y"));
        assert_eq!(validate(&c, "/a//b/./c").as_deref(), Ok("/a/b/c"));
        assert_eq!(validate(&c, "https://h5.example.com/pub/../admin").as_deref(), Ok("https://h5.example.com/admin"));
    }

    #[test]
    fn open_redirect_payloads_are_refused_with_a_reason() {
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
            "/%2F%2Fevil.example",
            "/..",
            "/a/%2e%2e/%2e%2e/x",
            "/a%00",
            "/pub/..;/admin",
        ] {
            let verdict = validate(&c, bad);
            assert!(verdict.is_err(), "{bad:?} was accepted as {verdict:?}");
        }
        assert_eq!(
            validate(&c, "http://evil.example/"),
            Err("host not served by the gateway nor in allowed_return_hosts")
        );
        assert_eq!(validate(&c, "/%2F%2Fevil.example"), Err("encoded_slash"));
    }

    fn with_paths(merge_slashes: bool, escaped_slashes: EscapedSlashes) -> Config {
        let mut c = config();
        c.paths = PathRules { merge_slashes, escaped_slashes };
        c
    }

    const ALL_PATH_RULES: [(bool, EscapedSlashes); 6] = [
        (true, EscapedSlashes::Reject),
        (true, EscapedSlashes::Keep),
        (true, EscapedSlashes::Unescape),
        (false, EscapedSlashes::Reject),
        (false, EscapedSlashes::Keep),
        (false, EscapedSlashes::Unescape),
    ];

    #[test]
    fn a_path_that_becomes_scheme_relative_is_refused_under_every_setting() {
        for (merge, escaped) in ALL_PATH_RULES {
            let c = with_paths(merge, escaped);
            // Positive control: a path with doubled slashes inside stays a path on this site.
            assert!(validate(&c, "/a//b").is_ok(), "{merge} {escaped:?}");
            for bad in ["/.//evil.test", "/./%2F/evil.test", "/x/..//evil.test", "/%2F%2Fevil.test", "/%2F/evil.test"] {
                let verdict = validate(&c, bad);
                assert!(
                    verdict.as_deref().is_err() || !verdict.as_deref().unwrap().starts_with("//"),
                    "{bad:?} with merge_slashes={merge} {escaped:?} became {verdict:?}"
                );
            }
        }
        let c = with_paths(false, EscapedSlashes::Reject);
        assert_eq!(validate(&c, "/.//evil.test"), Err("scheme-relative URL (//host) once made canonical"));
    }

    /// Where a browser goes with `Location: value` from a page of `https://h5.example.com`.
    fn browser_target(value: &str) -> Option<String> {
        let base = Url::parse("https://h5.example.com/.gateway/logout").unwrap();
        base.join(value).ok().and_then(|u| u.host_str().map(str::to_string))
    }

    const PIECES: &[&str] = &[
        "/",
        "//",
        "/\\",
        "\\",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2e%2e",
        "%2f",
        "%2F",
        "%5c",
        "%5C",
        "%252f",
        "@",
        ":",
        "evil.test",
        "h5.example.com",
        "partner.example.org",
        "\t",
        "\n",
        "http:",
        "https:",
        "HTTPS:",
        "javascript:",
        "?",
        "#",
        "a",
        ";",
        "%00",
        "%09",
        " ",
        "%20",
        "%40",
        "%3A",
        "https://",
        "HtTp://",
        "/./",
        "/../",
        "///",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Whatever the value and the `[paths]` settings, an accepted return value never sends the
        /// browser off the allowed hosts, and is never scheme-relative.
        #[test]
        fn no_accepted_return_value_leaves_the_allowed_hosts(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 1..9),
            rules in proptest::sample::select(&ALL_PATH_RULES[..]),
        ) {
            let raw: String = pieces.concat();
            let c = with_paths(rules.0, rules.1);
            if let Ok(value) = validate(&c, &raw) {
                proptest::prop_assert!(!value.starts_with("//") && !value.starts_with("/\\"), "{:?} -> {:?}", raw, value);
                let host = browser_target(&value);
                proptest::prop_assert!(
                    matches!(host.as_deref(), Some("h5.example.com" | "partner.example.org")),
                    "{:?} -> {:?} -> {:?}", raw, value, host
                );
            }
        }
    }
}
