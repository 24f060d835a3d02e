//! Signing keys: reading them (PEM, PKCS#8 or the older SEC1/PKCS#1 forms), making new ones
//! (`openid-gateway keygen`), their public JWKs and their `kid`, the RFC 7638 thumbprint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The asymmetric algorithms the gateway signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    ES256,
    EdDSA,
    RS256,
}

impl KeyAlg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(KeyAlg::ES256),
            "EdDSA" => Some(KeyAlg::EdDSA),
            "RS256" => Some(KeyAlg::RS256),
            _ => None,
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlg::ES256 => Algorithm::ES256,
            KeyAlg::EdDSA => Algorithm::EdDSA,
            KeyAlg::RS256 => Algorithm::RS256,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::ES256 => "ES256",
            KeyAlg::EdDSA => "EdDSA",
            KeyAlg::RS256 => "RS256",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key of P-256 (ES256), Ed25519 (EdDSA) or RSA of 2048+ bits (RS256)")]
    Unrecognised,
    #[error("RSA keys must have at least 2048 bits (this one has {0})")]
    RsaTooSmall(usize),
    #[error("{0}")]
    Encoding(String),
}

/// A private key ready to sign, with what verifiers need to know about it.
#[derive(Clone)]
pub struct KeyPair {
    pub alg: KeyAlg,
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The key in ring's form, parsed once: a login signs without reading the key again.
    pub signer: Arc<Signer>,
    pub decoding: DecodingKey,
    /// The public JWK, with `kid`, `alg` and `use`.
    pub jwk: Value,
}

/// A private key parsed into ring's form. jsonwebtoken re-reads its key from PKCS#8 on every
/// signature, which cost ES256 about 213 of its 338 µs; ring with the key parsed once signs
/// ES256 in about 16 µs (BENCHMARKS.md).
pub enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
    /// An RSA key that ring refuses (ring takes only some sizes, and exponents of 65537 and
    /// up), signing as it did before ring: blinded, by the rsa crate.
    Rs256Other(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl Signer {
    fn from_pkcs8(alg: KeyAlg, der: &[u8]) -> Result<Self, KeyError> {
        let rejected = |e: ring::error::KeyRejected| KeyError::Encoding(e.to_string());
        Ok(match alg {
            KeyAlg::ES256 => Signer::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                    .map_err(rejected)?,
            ),
            KeyAlg::EdDSA => Signer::EdDsa(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?),
            KeyAlg::RS256 => match RsaKeyPair::from_pkcs8(der) {
                Ok(k) => Signer::Rs256(k),
                Err(_) => {
                    let k = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(enc_err)?;
                    Signer::Rs256Other(Box::new(rsa::pkcs1v15::SigningKey::new(k)))
                }
            },
        })
    }

    /// The JWS signature of `message` (ES256: the fixed 64-byte form JWS asks for).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let failed = || KeyError::Encoding("the signature could not be made".into());
        match self {
            Signer::Es256(k) => Ok(k.sign(&SystemRandom::new(), message).map_err(|_| failed())?.as_ref().to_vec()),
            Signer::EdDsa(k) => Ok(k.sign(message).as_ref().to_vec()),
            Signer::Rs256(k) => {
                let mut signature = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).map_err(|_| failed())?;
                Ok(signature)
            }
            Signer::Rs256Other(k) => {
                Ok(k.try_sign_with_rng(&mut rand::thread_rng(), message).map_err(|_| failed())?.to_vec())
            }
        }
    }
}

impl KeyPair {
    /// A compact JWS of `claims`, its header naming the algorithm, `typ` JWT and this `kid`.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.jwt());
        header.kid = Some(self.kid.clone());
        let mut token = b64(&serde_json::to_vec(&header).map_err(enc_err)?);
        token.push('.');
        token.push_str(&b64(&serde_json::to_vec(claims).map_err(enc_err)?));
        let signature = self.signer.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({} {})", self.alg.name(), self.kid)
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn enc_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Encoding(e.to_string())
}

/// Reads a private key of any supported kind from PEM text.
pub fn parse_private_pem(pem: &str) -> Result<KeyPair, KeyError> {
    if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem).or_else(|_| p256::SecretKey::from_sec1_pem(pem)) {
        let point = k.public_key().to_encoded_point(false);
        let (x, y) = (b64(point.x().ok_or(KeyError::Unrecognised)?), b64(point.y().ok_or(KeyError::Unrecognised)?));
        let pkcs8 = k.to_pkcs8_der().map_err(enc_err)?;
        let required = json!({ "crv": "P-256", "kty": "EC", "x": x, "y": y });
        return finish(KeyAlg::ES256, pkcs8.as_bytes(), DecodingKey::from_ec_components(&x, &y), required);
    }
    if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        let x = b64(k.verifying_key().as_bytes());
        let pkcs8 = k.to_pkcs8_der().map_err(enc_err)?;
        let required = json!({ "crv": "Ed25519", "kty": "OKP", "x": x });
        return finish(KeyAlg::EdDSA, pkcs8.as_bytes(), DecodingKey::from_ed_components(&x), required);
    }
    if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem)) {
        let bits = k.size() * 8;
        if bits < 2048 {
            return Err(KeyError::RsaTooSmall(bits));
        }
        let (n, e) = (b64(&k.n().to_bytes_be()), b64(&k.e().to_bytes_be()));
        let pkcs8 = k.to_pkcs8_der().map_err(enc_err)?;
        let required = json!({ "e": e, "kty": "RSA", "n": n });
        return finish(KeyAlg::RS256, pkcs8.as_bytes(), DecodingKey::from_rsa_components(&n, &e), required);
    }
    Err(KeyError::Unrecognised)
}

fn finish(
    alg: KeyAlg,
    pkcs8: &[u8],
    decoding: jsonwebtoken::errors::Result<DecodingKey>,
    required: Value,
) -> Result<KeyPair, KeyError> {
    let kid = thumbprint(&required);
    let mut jwk = required;
    jwk["kid"] = kid.clone().into();
    jwk["alg"] = alg.name().into();
    jwk["use"] = "sig".into();
    let signer = Arc::new(Signer::from_pkcs8(alg, pkcs8)?);
    Ok(KeyPair { alg, kid, signer, decoding: decoding.map_err(enc_err)?, jwk })
}

/// RFC 7638: SHA-256 over the required members, in lexicographic order, without white space.
/// `serde_json` keeps object keys sorted, so its compact form is the canonical one.
pub fn thumbprint(required: &Value) -> String {
    b64(&Sha256::digest(required.to_string().as_bytes()))
}

/// A new private key as PKCS#8 PEM (RSA keys have 2048 bits).
pub fn generate(alg: KeyAlg) -> Result<String, KeyError> {
    let mut rng = rand::rngs::OsRng;
    let pem = match alg {
        KeyAlg::ES256 => p256::SecretKey::random(&mut rng).to_pkcs8_pem(LineEnding::LF),
        KeyAlg::EdDSA => ed25519_dalek::SigningKey::generate(&mut rng).to_pkcs8_pem(LineEnding::LF),
        KeyAlg::RS256 => rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(enc_err)?.to_pkcs8_pem(LineEnding::LF),
    };
    Ok(pem.map_err(enc_err)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let required = json!({ "e": "AQAB", "kty": "RSA", "n": n });
        assert_eq!(thumbprint(&required), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn every_algorithm_generates_parses_signs_and_verifies() {
        for alg in [KeyAlg::ES256, KeyAlg::EdDSA, KeyAlg::RS256] {
            let pem = generate(alg).unwrap();
            let k = parse_private_pem(&pem).unwrap();
            assert_eq!(k.alg, alg);
            assert_eq!(k.jwk["kid"], k.kid.as_str());
            assert_eq!(parse_private_pem(&pem).unwrap().kid, k.kid, "{alg:?}: stable kid");
            let token = k.sign_jwt(&json!({"sub": "x", "exp": 4_000_000_000u64})).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(
                (header.alg, header.kid.as_deref(), header.typ.as_deref()),
                (alg.jwt(), Some(k.kid.as_str()), Some("JWT"))
            );
            let mut v = jsonwebtoken::Validation::new(alg.jwt());
            v.validate_aud = false;
            jsonwebtoken::decode::<Value>(&token, &k.decoding, &v).unwrap();
            let from_jwk = DecodingKey::from_jwk(&serde_json::from_value(k.jwk.clone()).unwrap()).unwrap();
            jsonwebtoken::decode::<Value>(&token, &from_jwk, &v).unwrap();
        }
    }

    #[test]
    fn rsa_keys_that_ring_refuses_still_sign() {
        let k = rsa::RsaPrivateKey::new_with_exp(&mut rand::rngs::OsRng, 2048, &rsa::BigUint::from(3u32)).unwrap();
        let pair = parse_private_pem(&k.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
        assert!(matches!(*pair.signer, Signer::Rs256Other(_)), "ring refuses e = 3");
        let token = pair.sign_jwt(&json!({"sub": "x", "exp": 4_000_000_000u64})).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(&token, &pair.decoding, &v).unwrap();
    }

    #[test]
    fn sec1_ec_keys_are_read_too() {
        let k = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let sec1 = k.to_sec1_pem(LineEnding::LF).unwrap();
        assert_eq!(parse_private_pem(&sec1).unwrap().alg, KeyAlg::ES256);
        assert!(matches!(parse_private_pem("junk"), Err(KeyError::Unrecognised)));
    }
}
