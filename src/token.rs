//! The identity token forwarded to upstreams in `X-Openid-Token`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};

use crate::config::{TokenAlgorithm, TokenConfig};
use crate::session::Session;

/// The claims every token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The WeChat openid.
    pub sub: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    pub appid: String,
    /// `snsapi_base` or `snsapi_userinfo`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token key: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Signs identity tokens with the configured algorithm and key (parsed once).
pub struct TokenSigner {
    header: Header,
    key: EncodingKey,
    issuer: String,
    lifetime: u64,
}

impl TokenSigner {
    pub fn new(cfg: &TokenConfig) -> Result<Self, TokenError> {
        let (alg, key, _) = keys(cfg)?;
        Ok(Self { header: Header::new(alg), key, issuer: cfg.issuer.clone(), lifetime: cfg.lifetime.as_secs() })
    }

    /// The claims of a token for `user`, meant for `audience`, issued at `now`.
    pub fn claims(&self, user: &Session, audience: &str, now: u64) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            sub: user.openid.clone(),
            aud: audience.to_string(),
            iat: now,
            exp: now + self.lifetime,
            appid: user.appid.clone(),
            scope: user.scope.clone(),
            unionid: user.unionid.clone(),
            nickname: user.nickname.clone(),
            avatar: user.avatar.clone(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        Ok(jsonwebtoken::encode(&self.header, claims, &self.key)?)
    }
}

/// Verifies tokens the way a backend should: pinned algorithm, issuer, audience and expiry.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier for tokens made with `cfg`, for `audience`.
    pub fn new(cfg: &TokenConfig, audience: &str) -> Result<Self, TokenError> {
        let (alg, _, key) = keys(cfg)?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Ok(Self { key, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map(|d| d.claims)
    }
}

/// The algorithm and the signing and verifying keys of `cfg`.
fn keys(cfg: &TokenConfig) -> Result<(Algorithm, EncodingKey, DecodingKey), TokenError> {
    Ok(match cfg.algorithm {
        TokenAlgorithm::HS256 => {
            let k = cfg.key.expose();
            (Algorithm::HS256, EncodingKey::from_secret(k), DecodingKey::from_secret(k))
        }
        TokenAlgorithm::ES256 => {
            let (enc, dec) = es256_keys(cfg.key.expose())?;
            (Algorithm::ES256, enc, dec)
        }
    })
}

/// Reads a P-256 private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY` PEM) into a
/// signing key and the matching verifying key.
pub fn es256_keys(pem: &[u8]) -> Result<(EncodingKey, DecodingKey), TokenError> {
    let text = std::str::from_utf8(pem).map_err(|_| TokenError::Key("not PEM text".into()))?;
    let secret = p256::SecretKey::from_pkcs8_pem(text)
        .or_else(|_| p256::SecretKey::from_sec1_pem(text))
        .map_err(|_| TokenError::Key("not a PEM P-256 private key (PKCS#8 or SEC1)".into()))?;
    let der = secret.to_pkcs8_der().map_err(|e| TokenError::Key(e.to_string()))?;
    let public = secret.public_key().to_public_key_pem(LineEnding::LF).map_err(|e| TokenError::Key(e.to_string()))?;
    let decoding = DecodingKey::from_ec_pem(public.as_bytes()).map_err(|e| TokenError::Key(e.to_string()))?;
    Ok((EncodingKey::from_ec_der(der.as_bytes()), decoding))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::time::Duration;

    fn cfg(algorithm: TokenAlgorithm, key: Vec<u8>) -> TokenConfig {
        TokenConfig {
            header: http::HeaderName::from_static("x-openid-token"),
            algorithm,
            key: Secret::new(key),
            issuer: "https://gw.example".into(),
            lifetime: Duration::from_secs(300),
        }
    }

    fn user(openid: &str) -> Session {
        Session { openid: openid.into(), appid: "wx1".into(), ..Session::default() }
    }

    fn now() -> u64 {
        crate::clock::Clock::now(&crate::clock::SystemClock)
    }

    #[test]
    fn hs256_round_trip_and_audience() {
        let c = cfg(TokenAlgorithm::HS256, b"0123456789abcdef0123456789abcdef".to_vec());
        let s = TokenSigner::new(&c).unwrap();
        let t = s.sign(&s.claims(&user("oABC"), "shop", now())).unwrap();
        assert_eq!(TokenVerifier::new(&c, "shop").unwrap().verify(&t).unwrap().sub, "oABC");
        assert!(TokenVerifier::new(&c, "other").unwrap().verify(&t).is_err());
    }

    #[test]
    fn es256_round_trip_and_foreign_key() {
        let pem = |k: p256::SecretKey| k.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes().to_vec();
        let c = cfg(TokenAlgorithm::ES256, pem(p256::SecretKey::random(&mut rand::rngs::OsRng)));
        let other = cfg(TokenAlgorithm::ES256, pem(p256::SecretKey::random(&mut rand::rngs::OsRng)));
        let s = TokenSigner::new(&c).unwrap();
        let t = s.sign(&s.claims(&user("oES"), "shop", now())).unwrap();
        assert_eq!(TokenVerifier::new(&c, "shop").unwrap().verify(&t).unwrap().sub, "oES");
        assert!(TokenVerifier::new(&other, "shop").unwrap().verify(&t).is_err());
    }

    #[test]
    fn expired_is_refused() {
        let c = cfg(TokenAlgorithm::HS256, b"0123456789abcdef0123456789abcdef".to_vec());
        let s = TokenSigner::new(&c).unwrap();
        let t = s.sign(&s.claims(&user("o"), "shop", now() - 3600)).unwrap();
        assert!(TokenVerifier::new(&c, "shop").unwrap().verify(&t).is_err());
    }
}
