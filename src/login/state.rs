//! The login in progress: what the browser carries in its short-lived login cookie between
//! leaving for WeChat and coming back (the `state` nonce, where to return, and for a login
//! through the login host, the app host's request). It never travels in WeChat's `state`.
//!
//! Format 2 (sealed for `<name> v2`) keeps the expiry in milliseconds; a login cookie of the
//! first format (seconds) does not open, as if it were missing.

use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::http::cookies::{app_cookie_name, CookieAttrs};
use crate::login::handoff::HandoffRequest;
use crate::session::SealedCookie;
use crate::util::clock::{max_age_secs, millis, Entropy};

/// The version of the login cookie's format, in what its value is sealed for.
const FORMAT: &str = "v2";

/// A login in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The `state` sent to WeChat: base62, checked on the callback.
    #[serde(rename = "n")]
    pub nonce: String,
    /// Where the browser goes after logging in: a path, or an absolute URL on a routed host.
    #[serde(rename = "r")]
    pub return_to: String,
    /// Milliseconds since the Unix epoch: a login lives `login_lifetime` to the millisecond.
    #[serde(rename = "x")]
    pub expires_ms: u64,
    /// The app host this login is for, which gets a ticket when it is done.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffRequest>,
    /// Signed in by scanning a QR code on a desktop: its code is the website app's (WeChat).
    #[serde(rename = "q", default, skip_serializing_if = "std::ops::Not::not")]
    pub desktop: bool,
}

/// A login as it starts.
#[derive(Debug, Clone, Copy)]
pub struct Started<'a> {
    pub nonce: &'a str,
    pub return_to: &'a str,
    pub handoff: Option<&'a HandoffRequest>,
    pub desktop: bool,
}

/// The login cookie of one app: on its public host, path `<prefix>`.
pub struct LoginCookie {
    cookie: SealedCookie<LoginState>,
    lifetime: Duration,
}

impl LoginCookie {
    /// The login cookie of `config.apps[app]` (`_<app name>` with several apps).
    pub fn new(config: &Config, app: usize) -> Self {
        let name = app_cookie_name(&config.session.login_cookie_name, config, app);
        let attrs = CookieAttrs { path: config.prefix.clone(), secure: config.apps[app].secure(), domain: None };
        Self {
            cookie: SealedCookie::new(name.clone(), format!("{name} {FORMAT}"), attrs, &config.session.keys),
            lifetime: config.session.login_lifetime,
        }
    }

    pub fn name(&self) -> &str {
        self.cookie.name()
    }

    /// The login in progress, if its cookie opens and has not expired at `now_ms`.
    pub fn read(&self, headers: &HeaderMap, now_ms: u64) -> Option<LoginState> {
        self.cookie.read(headers).filter(|l| l.expires_ms > now_ms)
    }

    /// `Set-Cookie` for login `started` at `now_ms`: its state nonce, where it returns to (or
    /// the app host it hands over to), and whether it signs in on a desktop.
    pub fn write(&self, started: Started<'_>, now_ms: u64, entropy: &dyn Entropy) -> String {
        let lifetime = millis(self.lifetime);
        let l = LoginState {
            nonce: started.nonce.into(),
            return_to: started.return_to.into(),
            expires_ms: now_ms.saturating_add(lifetime),
            handoff: started.handoff.cloned(),
            desktop: started.desktop,
        };
        self.cookie.write(&l, max_age_secs(lifetime), entropy)
    }

    /// `Set-Cookie` that forgets the login in progress.
    pub fn clear(&self) -> String {
        self.cookie.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::seal::Sealer;
    use crate::util::clock::OsEntropy;

    fn config() -> Config {
        crate::config::for_tests("https://h5.example.com", "", "", "")
    }

    fn started<'a>(nonce: &'a str, return_to: &'a str) -> Started<'a> {
        Started { nonce, return_to, handoff: None, desktop: false }
    }

    fn sent(set_cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, set_cookie.split(';').next().unwrap().parse().unwrap());
        h
    }

    #[test]
    fn scoped_to_the_prefix_and_lives_to_the_millisecond() {
        let c = LoginCookie::new(&config(), 0);
        let t = 1_000_000; // milliseconds
        let set = c.write(started("N1", "/a?b"), t, &OsEntropy);
        assert!(set.starts_with("ogw_login=") && set.contains("Path=/.gateway") && set.contains("Max-Age=600"));
        let headers = sent(&set);
        let l = c.read(&headers, t + 1).unwrap();
        assert_eq!((l.nonce.as_str(), l.return_to.as_str()), ("N1", "/a?b"));
        assert!(c.read(&headers, t + 599_999).is_some());
        assert!(c.read(&headers, t + 600_000).is_none());
    }

    #[test]
    fn a_login_cookie_of_the_first_format_does_not_open() {
        let config = config();
        let c = LoginCookie::new(&config, 0);
        // Format 1: sealed for the bare name, expiry in seconds.
        let v1 =
            Sealer::new(&config.session.keys).seal("ogw_login", br#"{"n":"N1","r":"/a","e":4000000000}"#, &OsEntropy);
        assert!(c.read(&sent(&format!("ogw_login={v1}")), 1_000_000).is_none());
    }

    #[test]
    fn a_sub_second_login_lifetime_is_kept_and_its_cookie_outlives_it() {
        let mut config = config();
        config.session.login_lifetime = Duration::from_millis(1500);
        let c = LoginCookie::new(&config, 0);
        let set = c.write(started("N1", "/a"), 1_000_000, &OsEntropy);
        assert!(set.contains("Max-Age=2"), "{set}");
        let headers = sent(&set);
        assert!(c.read(&headers, 1_001_499).is_some() && c.read(&headers, 1_001_500).is_none());
    }
}
