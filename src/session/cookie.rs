//! One sealed cookie of one type: the session, the login in progress, the loop breaker's
//! count and the app host's nonces are each a [`SealedCookie`] of their own type.
//!
//! The value is the type as JSON, sealed ([`Sealer`]) for what the cookie is bound to: its
//! name, and the version of its format, so that a value of another cookie or of an older
//! format never opens as this one. Values longer than a browser keeps ([`MAX_VALUE`]) are not
//! opened at all.

use std::marker::PhantomData;

use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::seal::Sealer;
use crate::http::cookies::{self, CookieAttrs};
use crate::util::clock::Entropy;
use crate::util::secret::Secret;

/// The longest cookie value opened: browsers keep 4,096 bytes per cookie, name included.
pub const MAX_VALUE: usize = 4096;

/// Reads and writes the cookie `name` holding a sealed `T`.
pub struct SealedCookie<T> {
    name: String,
    bound_to: String,
    attrs: CookieAttrs,
    sealer: Sealer,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> SealedCookie<T> {
    /// The cookie `name` with `attrs`, sealed with `keys` for `bound_to` (the name and the
    /// format's version, at least).
    pub fn new(name: impl Into<String>, bound_to: impl Into<String>, attrs: CookieAttrs, keys: &[Secret]) -> Self {
        Self { name: name.into(), bound_to: bound_to.into(), attrs, sealer: Sealer::new(keys), kind: PhantomData }
    }

    /// The cookie's name, which upstreams never see.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sealed value the request carries, trimmed; `None` when absent or too long.
    pub fn value<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        cookies::get(headers, &self.name).map(str::trim).filter(|v| v.len() <= MAX_VALUE)
    }

    /// `value` opened; `None` when it is damaged, of another cookie or format, or no `T`.
    pub fn open(&self, value: &str) -> Option<T> {
        self.sealer.open_json(&self.bound_to, value)
    }

    /// What the request's cookie holds, if it opens.
    pub fn read(&self, headers: &HeaderMap) -> Option<T> {
        self.open(self.value(headers)?)
    }

    /// `Set-Cookie` holding `value` sealed, kept by the browser for `max_age_secs`.
    pub fn write(&self, value: &T, max_age_secs: u64, entropy: &dyn Entropy) -> String {
        let sealed = self.sealer.seal_json(&self.bound_to, value, entropy);
        cookies::set(&self.name, &sealed, max_age_secs, &self.attrs)
    }

    /// `Set-Cookie` that deletes the cookie.
    pub fn clear(&self) -> String {
        cookies::clear(&self.name, &self.attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::OsEntropy;

    fn keys(k: &str) -> Vec<Secret> {
        vec![Secret::new(k.as_bytes().to_vec())]
    }

    fn sent(set_cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, set_cookie.split(';').next().unwrap().parse().unwrap());
        h
    }

    fn attrs() -> CookieAttrs {
        CookieAttrs { path: "/".into(), secure: true, domain: None }
    }

    #[test]
    fn a_value_opens_only_as_the_cookie_and_format_it_was_sealed_for() {
        let key = keys("k1-0123456789abcdef0123456789abcdef");
        let c: SealedCookie<(u32, String)> = SealedCookie::new("c", "c v2", attrs(), &key);
        let set = c.write(&(7, "x".into()), 60, &OsEntropy);
        assert!(set.starts_with("c=") && set.contains("Max-Age=60") && set.contains("; Secure"));
        assert_eq!(c.read(&sent(&set)), Some((7, "x".to_string())));
        let older: SealedCookie<(u32, String)> = SealedCookie::new("c", "c", attrs(), &key);
        assert_eq!(older.read(&sent(&set)), None, "another format");
        let other: SealedCookie<(u32, String)> =
            SealedCookie::new("c", "c v2", attrs(), &keys("k2-0123456789abcdef0123456789abcdef"));
        assert_eq!(other.read(&sent(&set)), None, "another key");
        let wrong_type: SealedCookie<Vec<bool>> = SealedCookie::new("c", "c v2", attrs(), &key);
        assert_eq!(wrong_type.read(&sent(&set)), None, "another type");
        assert!(c.clear().contains("Max-Age=0"));
    }

    #[test]
    fn an_overlong_value_is_not_opened() {
        let key = keys("k1-0123456789abcdef0123456789abcdef");
        let c: SealedCookie<String> = SealedCookie::new("c", "c", attrs(), &key);
        let fits = c.write(&"a".repeat(2000), 60, &OsEntropy);
        assert!(c.read(&sent(&fits)).is_some());
        let long = c.write(&"a".repeat(4000), 60, &OsEntropy);
        assert!(c.read(&sent(&long)).is_none());
    }
}
