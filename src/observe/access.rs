//! How the access log names users: a keyed hash of the openid unless the operator chose
//! plain openids.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;

/// How the access log names users.
pub struct AccessLog {
    pub enabled: bool,
    plain: bool,
    /// Keyed with a key derived from the first session key (hashes stay stable while that key
    /// does), once: each user hash clones it instead of keying HMAC again.
    mac: Hmac<Sha256>,
}

impl AccessLog {
    pub fn new(config: &Config) -> Self {
        let mut key = [0u8; 32];
        if let Some(first) = config.session.keys.first() {
            // 32 bytes is a valid HKDF-SHA256 output length.
            let _ = Hkdf::<Sha256>::new(Some(b"openid-gateway access log"), first.expose()).expand(b"openid", &mut key);
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
        Self { enabled: config.log.access_log, plain: config.log.plain_openid, mac }
    }

    /// The user as the log shows them: 16 hex digits of HMAC-SHA256(key, openid), or the openid.
    pub fn user(&self, openid: &str) -> String {
        if self.plain {
            return openid.to_string();
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(openid.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(16);
        for b in &digest[..8] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_are_hashed_with_a_key_unless_plain_is_chosen() {
        let config = crate::config::for_tests("https://a.test", "", "", "");
        let log = AccessLog::new(&config);
        let hashed = log.user("o-alice");
        assert_eq!(hashed.len(), 16);
        assert!(!hashed.contains("alice"));
        assert_eq!(hashed, log.user("o-alice"));
        assert_ne!(hashed, log.user("o-bob"));
        let plain = AccessLog { plain: true, ..AccessLog::new(&config) };
        assert_eq!(plain.user("o-alice"), "o-alice");
    }
}
