//! The app host's nonce cookie: the nonces of its logins through the login host still under
//! way (a few, for tabs that start one after another; two starting at the same instant may
//! lose one, whose ticket is then refused with a "try again"), sealed, host-only, path
//! `<prefix>`. A ticket is only taken from the browser that holds its nonce.
//!
//! Format 2 (the sealed value is bound to `<name> v2`): each nonce with its expiry in
//! milliseconds. A value of the first format (seconds) does not open: no login is under way.

use http::HeaderMap;

use crate::config::Config;
use crate::http::cookies::{app_cookie_name, CookieAttrs};
use crate::session::SealedCookie;
use crate::util::clock::{max_age_secs, millis, Entropy};

/// Logins under way kept at most; the oldest is forgotten first.
const KEPT: usize = 4;

/// The version of the sealed value's format, in what it is bound to.
const FORMAT: &str = "v2";

/// Reads and writes one app's nonce cookie.
pub struct NonceCookie {
    /// Each nonce with its expiry in milliseconds.
    cookie: SealedCookie<Vec<(String, u64)>>,
    /// Milliseconds a nonce is held (`login_lifetime`).
    lifetime: u64,
}

impl NonceCookie {
    /// The nonce cookie of `config.apps[app]`: `ogw_handoff` (`_<app>` with several apps).
    pub fn new(config: &Config, app: usize) -> Self {
        let name = app_cookie_name("ogw_handoff", config, app);
        let attrs = CookieAttrs { path: config.prefix.clone(), secure: config.apps[app].secure(), domain: None };
        Self {
            cookie: SealedCookie::new(name.clone(), format!("{name} {FORMAT}"), attrs, &config.session.keys),
            lifetime: millis(config.session.login_lifetime),
        }
    }

    pub fn name(&self) -> &str {
        self.cookie.name()
    }

    /// The (nonce, expiry in milliseconds) pairs the browser holds, unexpired at `now_ms`.
    fn read(&self, headers: &HeaderMap, now_ms: u64) -> Vec<(String, u64)> {
        let mut held = self.cookie.read(headers).unwrap_or_default();
        held.retain(|(_, until)| now_ms < *until);
        held
    }

    fn write(&self, held: &[(String, u64)], entropy: &dyn Entropy) -> String {
        if held.is_empty() {
            return self.cookie.clear();
        }
        self.cookie.write(&held.to_vec(), max_age_secs(self.lifetime), entropy)
    }

    /// `Set-Cookie` holding `nonce`, added at `now_ms`, as well as the browser's other logins
    /// under way.
    pub fn add(&self, headers: &HeaderMap, nonce: &str, now_ms: u64, entropy: &dyn Entropy) -> String {
        let mut held = self.read(headers, now_ms);
        if held.len() >= KEPT {
            held.remove(0);
        }
        held.push((nonce.to_string(), now_ms.saturating_add(self.lifetime)));
        self.write(&held, entropy)
    }

    /// Does the browser hold `nonce`, unexpired at `now_ms`?
    pub fn holds(&self, headers: &HeaderMap, nonce: &str, now_ms: u64) -> bool {
        self.read(headers, now_ms).iter().any(|(n, _)| n == nonce)
    }

    /// `Set-Cookie` without `nonce` (cleared when nothing is left).
    pub fn without(&self, headers: &HeaderMap, nonce: &str, now_ms: u64, entropy: &dyn Entropy) -> String {
        let mut held = self.read(headers, now_ms);
        held.retain(|(n, _)| n != nonce);
        self.write(&held, entropy)
    }

    /// `Set-Cookie` that forgets every login under way (logout).
    pub fn clear(&self) -> String {
        self.cookie.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::seal::Sealer;
    use crate::util::clock::OsEntropy;

    fn sent(set_cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, set_cookie.split(';').next().unwrap().parse().unwrap());
        h
    }

    #[test]
    fn holds_a_few_logins_and_forgets_the_used_one() {
        let c = NonceCookie::new(&crate::config::for_tests("https://login.example.com", "", "", ""), 0);
        let t = 1_000_000; // milliseconds
        let first = c.add(&HeaderMap::new(), "N1", t, &OsEntropy);
        assert!(first.contains("Path=/.gateway") && first.contains("HttpOnly") && !first.contains("Domain"));
        assert!(first.contains("Max-Age=600"), "{first}");
        let both = sent(&c.add(&sent(&first), "N2", t + 1000, &OsEntropy));
        assert!(c.holds(&both, "N1", t + 2000) && c.holds(&both, "N2", t + 2000));
        assert!(c.holds(&both, "N1", t + 599_999), "held to the millisecond");
        assert!(!c.holds(&both, "N1", t + 600_000), "expired with the login");
        let rest = sent(&c.without(&both, "N1", t + 3000, &OsEntropy));
        assert!(!c.holds(&rest, "N1", t + 4000) && c.holds(&rest, "N2", t + 4000));
        assert!(c.without(&rest, "N2", t + 5000, &OsEntropy).contains("Max-Age=0"));
        let mut many = HeaderMap::new();
        for i in 0..6 {
            many = sent(&c.add(&many, &format!("M{i}"), t, &OsEntropy));
        }
        assert!(!c.holds(&many, "M1", t + 1000) && c.holds(&many, "M5", t + 1000), "the oldest are forgotten");
    }

    #[test]
    fn a_value_of_the_first_format_holds_nothing() {
        let config = crate::config::for_tests("https://login.example.com", "", "", "");
        let c = NonceCookie::new(&config, 0);
        // Format 1: bound to the bare name, expiry in seconds.
        let v1 = Sealer::new(&config.session.keys).seal("ogw_handoff", br#"[["N1",4000000000]]"#, &OsEntropy);
        let headers = sent(&format!("ogw_handoff={v1}"));
        assert!(!c.holds(&headers, "N1", 1_000_000));
        // Positive control: the same nonce in the current format is held.
        assert!(c.holds(&sent(&c.add(&HeaderMap::new(), "N1", 1_000_000, &OsEntropy)), "N1", 1_000_001));
    }
}
