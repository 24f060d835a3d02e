//! Sealed cookie values: authenticated encryption with XChaCha20-Poly1305.
//!
//! Wire format (version 1), base64url without padding:
//! `0x01 || nonce (24 bytes) || ciphertext || tag (16 bytes)`.
//! The associated data is `openid-gateway/v1/<cookie name>`, so a value sealed for one cookie
//! never opens as another. Keys are derived with HKDF-SHA256 from the configured secrets;
//! the first key seals, every key opens (rotation).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

use crate::util::clock::Entropy;
use crate::util::secret::Secret;

pub const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Secrets shorter than this are refused by the config check.
pub const MIN_SECRET_LEN: usize = 32;

/// Seals and opens cookie values with one or more keys.
pub struct Sealer {
    keys: Vec<XChaCha20Poly1305>,
}

impl Sealer {
    /// `secrets` must not be empty; the first one seals.
    pub fn new(secrets: &[Secret]) -> Self {
        let keys = secrets
            .iter()
            .map(|s| {
                let mut key = [0u8; 32];
                Hkdf::<Sha256>::new(Some(b"openid-gateway seal"), s.expose())
                    .expand(b"cookie-aead-v1", &mut key)
                    .expect("32 bytes is a valid HKDF-SHA256 output length");
                XChaCha20Poly1305::new(&key.into())
            })
            .collect();
        Self { keys }
    }

    /// Encrypts `plaintext` for the cookie called `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8], entropy: &dyn Entropy) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        entropy.fill(&mut nonce);
        let aad = associated_data(name);
        let sealed = self.keys[0]
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decrypts a value sealed for `name`; `None` when it is malformed, of another version,
    /// tampered with, sealed for another cookie, or sealed with a key no longer configured.
    pub fn open(&self, name: &str, value: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        if raw.len() < 1 + NONCE_LEN + TAG_LEN || raw[0] != VERSION {
            return None;
        }
        let (nonce, sealed) = raw[1..].split_at(NONCE_LEN);
        let aad = associated_data(name);
        self.keys.iter().find_map(|key| key.decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad }).ok())
    }
}

impl Sealer {
    /// `value` as JSON, sealed for `name`.
    pub fn seal_json<T: Serialize>(&self, name: &str, value: &T, entropy: &dyn Entropy) -> String {
        let json = serde_json::to_vec(value).expect("the gateway's sealed types always serialize");
        self.seal(name, &json, entropy)
    }

    /// A value sealed by [`Sealer::seal_json`] for `name`; `None` when it does not open or is
    /// not a `T`.
    pub fn open_json<T: DeserializeOwned>(&self, name: &str, value: &str) -> Option<T> {
        serde_json::from_slice(&self.open(name, value)?).ok()
    }
}

fn associated_data(name: &str) -> Vec<u8> {
    format!("openid-gateway/v{VERSION}/{name}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::OsEntropy;

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec())
    }

    #[test]
    fn round_trip() {
        let s = Sealer::new(&[secret("k1-0123456789abcdef0123456789abcdef")]);
        let v = s.seal("sess", b"hello", &OsEntropy);
        assert_eq!(s.open("sess", &v).unwrap(), b"hello");
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let s = Sealer::new(&[secret("k1-0123456789abcdef0123456789abcdef")]);
        let v = s.seal("sess", b"hello", &OsEntropy);
        let raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert!(s.open("sess", &URL_SAFE_NO_PAD.encode(bad)).is_none(), "byte {i}");
        }
    }

    #[test]
    fn bound_to_the_cookie_name() {
        let s = Sealer::new(&[secret("k1-0123456789abcdef0123456789abcdef")]);
        let v = s.seal("login", b"x", &OsEntropy);
        assert!(s.open("session", &v).is_none());
    }

    #[test]
    fn rotation_old_key_still_opens_new_key_seals() {
        let old = Sealer::new(&[secret("old-0123456789abcdef0123456789abcdef")]);
        let rotated = Sealer::new(&[
            secret("new-0123456789abcdef0123456789abcdef"),
            secret("old-0123456789abcdef0123456789abcdef"),
        ]);
        let new_only = Sealer::new(&[secret("new-0123456789abcdef0123456789abcdef")]);
        let v = old.seal("s", b"x", &OsEntropy);
        assert!(rotated.open("s", &v).is_some());
        assert!(new_only.open("s", &v).is_none());
        let w = rotated.seal("s", b"y", &OsEntropy);
        assert!(new_only.open("s", &w).is_some());
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        let s = Sealer::new(&[secret("k1-0123456789abcdef0123456789abcdef")]);
        assert!(s.open("s", "").is_none());
        assert!(s.open("s", "not base64 !").is_none());
        let mut raw = URL_SAFE_NO_PAD.decode(s.seal("s", b"x", &OsEntropy)).unwrap();
        raw[0] = 2;
        assert!(s.open("s", &URL_SAFE_NO_PAD.encode(raw)).is_none());
    }
}
