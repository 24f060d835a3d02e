//! The loop breaker: a browser that keeps being sent to WeChat without keeping its session
//! (cookies blocked, a Secure cookie on http, a `public_url` that differs from the address
//! used) is stopped after `login_limit.max` login starts within `login_limit.window`, and
//! shown why, instead of looping forever.
//!
//! The count lives in a sealed cookie of its own on the app's public host, path `<prefix>`,
//! never `Secure`, so that it keeps counting even where a misconfigured Secure session cookie
//! is being dropped. A browser that drops every cookie is stopped at once by the callback
//! (no login cookie comes back), not here.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::config::{Config, LoginLimit};
use crate::http::cookies::{app_cookie_name, CookieAttrs};
use crate::http::error::GatewayError;
use crate::observe::metrics::AppMetrics;
use crate::session::SealedCookie;
use crate::util::clock::Entropy;

/// Login starts of one browser within the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Tries {
    #[serde(rename = "c")]
    count: u32,
    #[serde(rename = "w")]
    window_start: u64,
}

/// Counts login starts per browser for one app.
pub struct LoopBreaker {
    cookie: SealedCookie<Tries>,
    limit: LoginLimit,
}

impl LoopBreaker {
    /// The loop breaker of `config.apps[app]`; its cookie is `ogw_tries` (`_<app>` with several apps).
    pub fn new(config: &Config, app: usize) -> Self {
        let name = app_cookie_name("ogw_tries", config, app);
        let attrs = CookieAttrs { path: config.prefix.clone(), secure: false, domain: None };
        Self { cookie: SealedCookie::new(name.clone(), name, attrs, &config.session.keys), limit: config.login_limit }
    }

    /// Counts one more login start for the browser that sent `headers` at `now`.
    ///
    /// `Some(set_cookie)`: go ahead, and record the new count with this `Set-Cookie`.
    /// `None`: this browser already started `max` logins in the window; stop redirecting.
    /// `fresh` (the user pressed "log in again") forgets the count first.
    pub fn admit(&self, headers: &HeaderMap, fresh: bool, now: u64, entropy: &dyn Entropy) -> Option<String> {
        let window = self.window();
        let current = if fresh { None } else { self.cookie.read(headers) };
        let tries = match current {
            Some(t) if now < t.window_start + window => t,
            _ => Tries { count: 0, window_start: now },
        };
        if tries.count >= self.limit.max {
            return None;
        }
        let counted = Tries { count: tries.count + 1, ..tries };
        Some(self.cookie.write(&counted, window, entropy))
    }

    /// [`LoopBreaker::admit`] for a login of the app counted in `metrics`: refused as
    /// `LoginLoop`, offering `retry` (a fresh login).
    pub fn count(
        &self,
        headers: &HeaderMap,
        fresh: bool,
        now: u64,
        entropy: &dyn Entropy,
        metrics: &AppMetrics,
        retry: impl FnOnce() -> String,
    ) -> Result<String, GatewayError> {
        self.admit(headers, fresh, now, entropy).ok_or_else(|| {
            metrics.loop_breaker.inc();
            GatewayError::LoginLoop { retry: retry() }
        })
    }

    /// `Set-Cookie` that forgets the count (logout).
    pub fn clear(&self) -> String {
        self.cookie.clear()
    }

    /// The cookie's name, which upstreams never see.
    pub fn cookie_name(&self) -> &str {
        self.cookie.name()
    }

    fn window(&self) -> u64 {
        self.limit.window.as_secs().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::OsEntropy;

    fn breaker() -> LoopBreaker {
        let c = crate::config::for_tests("https://h5.example.com", "", "", "");
        LoopBreaker::new(&c, 0)
    }

    fn with_cookie(set_cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, set_cookie.split(';').next().unwrap().parse().unwrap());
        h
    }

    #[test]
    fn admits_max_starts_per_window_then_stops_until_the_window_ends() {
        let b = breaker();
        let mut headers = HeaderMap::new();
        for _ in 0..3 {
            let set = b.admit(&headers, false, 1_000, &OsEntropy).expect("within the limit");
            assert!(set.starts_with("ogw_tries=") && set.contains("Path=/.gateway") && !set.contains("Secure"));
            headers = with_cookie(&set);
        }
        assert_eq!(b.admit(&headers, false, 1_059, &OsEntropy), None, "fourth start within 60 s");
        assert!(b.admit(&headers, false, 1_060, &OsEntropy).is_some(), "a new window");
        assert!(b.admit(&headers, true, 1_001, &OsEntropy).is_some(), "log in again forgets the count");
    }

    #[test]
    fn a_forged_or_foreign_count_is_a_fresh_start() {
        let b = breaker();
        let forged = with_cookie("ogw_tries=AAAA");
        assert!(b.admit(&forged, false, 1_000, &OsEntropy).is_some());
        assert!(b.clear().contains("Max-Age=0"));
    }
}
