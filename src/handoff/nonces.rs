//! The app host's nonce cookie: the nonces of its logins through the login host still under
//! way (a few, for tabs that start one after another; two starting at the same instant may
//! lose one, whose ticket is then refused with a "try again"), sealed, host-only, path
//! `<prefix>`. A ticket is only taken from the browser that holds its nonce.

use http::HeaderMap;

use crate::clock::Entropy;
use crate::config::Config;
use crate::cookies::{self, CookieAttrs};
use crate::seal::Sealer;

/// Logins under way kept at most; the oldest is forgotten first.
const KEPT: usize = 4;

/// Reads and writes one app's nonce cookie.
pub struct NonceCookie {
    name: String,
    attrs: CookieAttrs,
    sealer: Sealer,
    lifetime: u64,
}

impl NonceCookie {
    /// The nonce cookie of `config.apps[app]`: `ogw_handoff` (`_<app>` with several apps).
    pub fn new(config: &Config, app: usize) -> Self {
        Self {
            name: cookies::app_cookie_name("ogw_handoff", config, app),
            attrs: CookieAttrs { path: config.prefix.clone(), secure: config.apps[app].secure(), domain: None },
            sealer: Sealer::new(&config.session.keys),
            lifetime: config.session.login_lifetime.as_secs(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The unexpired (nonce, expiry) pairs the browser holds.
    fn read(&self, headers: &HeaderMap, now: u64) -> Vec<(String, u64)> {
        let opened = cookies::get(headers, &self.name).and_then(|v| self.sealer.open(&self.name, v));
        let mut held: Vec<(String, u64)> = opened.and_then(|p| serde_json::from_slice(&p).ok()).unwrap_or_default();
        held.retain(|(_, until)| now < *until);
        held
    }

    fn write(&self, held: &[(String, u64)], entropy: &dyn Entropy) -> String {
        if held.is_empty() {
            return cookies::clear(&self.name, &self.attrs);
        }
        let json = serde_json::to_vec(held).expect("pairs of a string and an integer always serialize");
        cookies::set(&self.name, &self.sealer.seal(&self.name, &json, entropy), self.lifetime, &self.attrs)
    }

    /// `Set-Cookie` holding `nonce` as well as the browser's other logins under way.
    pub fn add(&self, headers: &HeaderMap, nonce: &str, now: u64, entropy: &dyn Entropy) -> String {
        let mut held = self.read(headers, now);
        if held.len() >= KEPT {
            held.remove(0);
        }
        held.push((nonce.to_string(), now + self.lifetime));
        self.write(&held, entropy)
    }

    /// Does the browser hold `nonce`?
    pub fn holds(&self, headers: &HeaderMap, nonce: &str, now: u64) -> bool {
        self.read(headers, now).iter().any(|(n, _)| n == nonce)
    }

    /// `Set-Cookie` without `nonce` (cleared when nothing is left).
    pub fn without(&self, headers: &HeaderMap, nonce: &str, now: u64, entropy: &dyn Entropy) -> String {
        let mut held = self.read(headers, now);
        held.retain(|(n, _)| n != nonce);
        self.write(&held, entropy)
    }

    /// `Set-Cookie` that forgets every login under way (logout).
    pub fn clear(&self) -> String {
        cookies::clear(&self.name, &self.attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsEntropy;

    fn sent(set_cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, set_cookie.split(';').next().unwrap().parse().unwrap());
        h
    }

    #[test]
    fn holds_a_few_logins_and_forgets_the_used_one() {
        let c = NonceCookie::new(&crate::config::for_tests("https://login.example.com", "", "", ""), 0);
        let first = c.add(&HeaderMap::new(), "N1", 1000, &OsEntropy);
        assert!(first.contains("Path=/.gateway") && first.contains("HttpOnly") && !first.contains("Domain"));
        let both = sent(&c.add(&sent(&first), "N2", 1001, &OsEntropy));
        assert!(c.holds(&both, "N1", 1002) && c.holds(&both, "N2", 1002));
        assert!(!c.holds(&both, "N1", 1000 + 600), "expired with the login");
        let rest = sent(&c.without(&both, "N1", 1003, &OsEntropy));
        assert!(!c.holds(&rest, "N1", 1004) && c.holds(&rest, "N2", 1004));
        assert!(c.without(&rest, "N2", 1005, &OsEntropy).contains("Max-Age=0"));
        let mut many = HeaderMap::new();
        for i in 0..6 {
            many = sent(&c.add(&many, &format!("M{i}"), 1000, &OsEntropy));
        }
        assert!(!c.holds(&many, "M1", 1001) && c.holds(&many, "M5", 1001), "the oldest are forgotten");
    }
}
