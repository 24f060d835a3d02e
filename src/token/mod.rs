//! The identity token forwarded to upstreams in `X-Openid-Token`: claims, the configured keys
//! (the first signs, every asymmetric one is published as a JWK), a cache so that a token is
//! signed once per session and audience, and the invalid tokens of the verifier test mode.

mod cache;
mod invalid;
pub mod keys;
pub mod verify;

use crate::observe::metrics::Metrics;
use prometheus::IntCounter;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use cache::TokenCache;
pub use invalid::InvalidKind;

use crate::config::{TokenAlgorithm, TokenConfig};
use crate::session::Session;
use crate::token::keys::{parse_private_pem, KeyError, KeyPair};
use crate::util::clock::{base62_nonce, Entropy};
use crate::wechat::Subject;

/// The claims every token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user: an openid, or a WeCom member's userid; `sub_type` says which.
    pub sub: String,
    pub aud: String,
    pub iat: u64,
    #[serde(default)]
    pub nbf: u64,
    pub exp: u64,
    /// Unique per signed token.
    #[serde(default)]
    pub jti: String,
    /// The appid `sub` belongs to: the Official Account's, the website app's (desktop
    /// sign-in), or the WeCom corp id.
    pub appid: String,
    /// `wechat` or `wecom`.
    #[serde(default)]
    pub provider: String,
    /// `openid` (the Official Account's), `website_openid` (the open platform website app's;
    /// `unionid` links it to the Official Account's), `userid` (a WeCom member) or
    /// `corp_openid` (a WeCom user outside the corp).
    #[serde(default)]
    pub sub_type: Subject,
    /// WeCom: the corp's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpid: Option<String>,
    /// WeCom: is the user a member of the corp?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<bool>,
    /// WeCom: an outsider's external contact id, when WeCom gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_userid: Option<String>,
    /// `snsapi_base` or `snsapi_userinfo`.
    #[serde(default)]
    pub scope: crate::wechat::Scope,
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

impl From<KeyError> for TokenError {
    fn from(e: KeyError) -> Self {
        TokenError::Key(e.to_string())
    }
}

/// One configured key: what it signs with and what verifies it.
#[derive(Clone)]
enum Key {
    Hmac { encoding: EncodingKey, decoding: DecodingKey },
    Pair(KeyPair),
}

/// The configured keys, parsed once.
#[derive(Clone)]
pub struct TokenKeys {
    keys: Vec<Key>,
}

impl TokenKeys {
    pub fn new(cfg: &TokenConfig) -> Result<Self, TokenError> {
        let keys = cfg
            .keys
            .iter()
            .map(|secret| match cfg.algorithm {
                TokenAlgorithm::HS256 => Ok(Key::Hmac {
                    encoding: EncodingKey::from_secret(secret.expose()),
                    decoding: DecodingKey::from_secret(secret.expose()),
                }),
                _ => {
                    let text =
                        std::str::from_utf8(secret.expose()).map_err(|_| TokenError::Key("not PEM text".into()))?;
                    Ok(Key::Pair(parse_private_pem(text)?))
                }
            })
            .collect::<Result<Vec<_>, TokenError>>()?;
        if keys.is_empty() {
            return Err(TokenError::Key("no key configured".into()));
        }
        Ok(Self { keys })
    }

    /// Signs `claims` with the first key.
    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        match &self.keys[0] {
            Key::Hmac { encoding, .. } => Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, encoding)?),
            Key::Pair(p) => Ok(p.sign_jwt(claims)?),
        }
    }

    /// `{"keys": [...]}`: every asymmetric key's public JWK; HS256 secrets are never published.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&serde_json::Value> = self
            .keys
            .iter()
            .filter_map(|k| match k {
                Key::Pair(p) => Some(&p.jwk),
                Key::Hmac { .. } => None,
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The `kid` of the signing key (`None` for HS256).
    pub fn signing_kid(&self) -> Option<&str> {
        match &self.keys[0] {
            Key::Pair(p) => Some(&p.kid),
            Key::Hmac { .. } => None,
        }
    }

    /// Candidate verifying keys for a token whose header names `kid` and `alg`.
    fn verifying(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&DecodingKey> {
        self.keys
            .iter()
            .filter_map(|k| match k {
                Key::Hmac { decoding, .. } if alg == Algorithm::HS256 => Some(decoding),
                Key::Pair(p) if p.alg.jwt() == alg && kid.is_none_or(|kid| kid == p.kid) => Some(&p.decoding),
                _ => None,
            })
            .collect()
    }
}

/// Signs identity tokens, reusing each one while it is fresh enough.
pub struct TokenSigner {
    keys: TokenKeys,
    issuer: String,
    lifetime: u64,
    cache: TokenCache,
    entropy: Arc<dyn Entropy>,
    counted: Counted,
}

/// The signer's series, resolved once.
struct Counted {
    hits: IntCounter,
    misses: IntCounter,
    signatures: IntCounter,
}

impl Counted {
    fn in_metrics(metrics: &Metrics) -> Self {
        Self {
            hits: metrics.token_cache.with_label_values(&["hit"]),
            misses: metrics.token_cache.with_label_values(&["miss"]),
            signatures: metrics.signatures.clone(),
        }
    }
}

impl TokenSigner {
    pub fn new(cfg: &TokenConfig, entropy: Arc<dyn Entropy>) -> Result<Self, TokenError> {
        let lifetime = cfg.lifetime.as_secs();
        let reuse_for = (lifetime as f64 * cfg.reuse) as u64;
        Ok(Self {
            keys: TokenKeys::new(cfg)?,
            issuer: cfg.issuer.clone(),
            lifetime,
            cache: TokenCache::new(cfg.cache_size, reuse_for),
            entropy,
            counted: Counted::in_metrics(&Metrics::new()),
        })
    }

    /// Counts cache hits, misses and signatures in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.counted = Counted::in_metrics(metrics);
        self
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The claims of a new token for `user`, meant for `audience`, issued at `now`.
    pub fn claims(&self, user: &Session, audience: &str, now: u64) -> Claims {
        let wecom = user.subject.is_wecom();
        Claims {
            iss: self.issuer.clone(),
            sub: user.openid.clone(),
            aud: audience.to_string(),
            iat: now,
            nbf: now,
            exp: now + self.lifetime,
            jti: base62_nonce(self.entropy.as_ref(), 16),
            appid: user.id_appid().to_string(),
            provider: user.subject.provider().into(),
            sub_type: user.subject,
            corpid: wecom.then(|| user.appid.clone()),
            member: wecom.then_some(user.subject == Subject::Member),
            external_userid: user.external_userid.clone(),
            scope: user.scope,
            unionid: user.unionid.clone(),
            nickname: user.nickname.clone(),
            avatar: user.avatar.clone(),
        }
    }

    /// Signs `claims` with the first key.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        self.keys.sign(claims)
    }

    /// The token for `user` and `audience`: the remembered one while fresh, else a new one.
    pub fn token_for(&self, user: &Session, audience: &str, now: u64) -> Result<Arc<str>, TokenError> {
        let key = cache::CacheKey::new(user, audience);
        if let Some(token) = self.cache.get(&key, now) {
            self.counted.hits.inc();
            return Ok(token);
        }
        self.counted.misses.inc();
        let token: Arc<str> = self.sign(&self.claims(user, audience, now))?.into();
        self.counted.signatures.inc();
        self.cache.put(key, token.clone(), now);
        Ok(token)
    }

    /// A deliberately invalid token for `user` (verifier test mode).
    pub fn invalid_token(
        &self,
        kind: InvalidKind,
        user: &Session,
        audience: &str,
        now: u64,
    ) -> Result<String, TokenError> {
        invalid::make(self, kind, user, audience, now)
    }
}

/// Verifies tokens the way a backend should: pinned algorithm, issuer, audience and expiry,
/// with a key chosen by `kid`.
pub struct TokenVerifier {
    keys: TokenKeys,
    algorithm: Algorithm,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier for tokens made with `cfg`, for `audience`.
    pub fn new(cfg: &TokenConfig, audience: &str) -> Result<Self, TokenError> {
        let algorithm = match cfg.algorithm {
            TokenAlgorithm::HS256 => Algorithm::HS256,
            TokenAlgorithm::ES256 => Algorithm::ES256,
            TokenAlgorithm::EdDSA => Algorithm::EdDSA,
            TokenAlgorithm::RS256 => Algorithm::RS256,
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self { keys: TokenKeys::new(cfg)?, algorithm, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != self.algorithm {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into());
        }
        let mut last = jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidSignature);
        for key in self.keys.verifying(header.kid.as_deref(), header.alg) {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(d) => return Ok(d.claims),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests;
