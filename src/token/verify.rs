//! `openid-gateway verify`: checks a token the way a backend should and says exactly why it is
//! rejected, for backend developers debugging their setup.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// What verifies the signature.
pub enum KeySource {
    /// A JWKS document, as served at `<prefix>/jwks.json`.
    Jwks(JwkSet),
    /// The HS256 shared secret.
    Secret(Vec<u8>),
}

/// What the token must say besides a good signature and time.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
}

/// Why a token is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Malformed(String),
    AlgNone,
    UnknownKid { kid: String, known: Vec<String> },
    NoKid,
    AlgMismatch { token: String, key: String },
    BadSignature,
    Expired { exp: u64, now: u64 },
    NotYetValid { nbf: u64, now: u64 },
    WrongAudience { got: String, expected: String },
    WrongIssuer { got: String, expected: String },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(m) => write!(f, "malformed token: {m}"),
            Rejection::AlgNone => write!(f, "alg none: an unsigned token is never accepted"),
            Rejection::UnknownKid { kid, known } => {
                write!(f, "unknown kid {kid:?}: the key set has {known:?} (rotated out, or another gateway's token)")
            }
            Rejection::NoKid => write!(f, "no kid in the token header and several keys to choose from"),
            Rejection::AlgMismatch { token, key } => {
                write!(f, "algorithm {token} in the token, but the key is for {key}")
            }
            Rejection::BadSignature => write!(f, "bad signature: the token was altered or signed with another key"),
            Rejection::Expired { exp, now } => write!(f, "expired: exp {exp} was {} s ago", now.saturating_sub(*exp)),
            Rejection::NotYetValid { nbf, now } => {
                write!(f, "not yet valid: nbf {nbf} is {} s ahead", nbf.saturating_sub(*now))
            }
            Rejection::WrongAudience { got, expected } => {
                write!(f, "wrong audience: the token is for {got}, expected {expected}")
            }
            Rejection::WrongIssuer { got, expected } => write!(f, "wrong issuer: {got}, expected {expected}"),
        }
    }
}

fn part(token: &str, index: usize) -> Result<Value, Rejection> {
    let raw =
        token.split('.').nth(index).ok_or_else(|| Rejection::Malformed("not three dot-separated parts".into()))?;
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|e| Rejection::Malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| Rejection::Malformed(e.to_string()))
}

/// Verifies `token` at time `now`; `Ok` holds its claims.
pub fn verify(token: &str, keys: &KeySource, expect: &Expect, now: u64) -> Result<Value, Rejection> {
    let token = token.trim();
    if token.split('.').count() != 3 {
        return Err(Rejection::Malformed("not three dot-separated parts".into()));
    }
    let header = part(token, 0)?;
    let claims = part(token, 1)?;
    let alg_name = header["alg"].as_str().unwrap_or_default().to_string();
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Rejection::AlgNone);
    }
    let alg: Algorithm = alg_name.parse().map_err(|_| Rejection::Malformed(format!("unknown alg {alg_name:?}")))?;
    let key = match keys {
        KeySource::Secret(secret) if alg == Algorithm::HS256 => DecodingKey::from_secret(secret),
        KeySource::Secret(_) => return Err(Rejection::AlgMismatch { token: alg_name, key: "HS256".into() }),
        KeySource::Jwks(set) => {
            let known: Vec<String> = set.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
            let jwk = match header["kid"].as_str() {
                Some(kid) => set.find(kid).ok_or_else(|| Rejection::UnknownKid { kid: kid.into(), known })?,
                None if set.keys.len() == 1 => &set.keys[0],
                None => return Err(Rejection::NoKid),
            };
            if let Some(key_alg) = jwk.common.key_algorithm {
                if KeyAlgorithm::from(alg) != key_alg {
                    return Err(Rejection::AlgMismatch { token: alg_name, key: key_alg.to_string() });
                }
            }
            DecodingKey::from_jwk(jwk).map_err(|e| Rejection::Malformed(e.to_string()))?
        }
    };
    let mut v = Validation::new(alg);
    v.leeway = expect.leeway;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp"]);
    match &expect.audience {
        Some(a) => v.set_audience(&[a]),
        None => v.validate_aud = false,
    }
    if let Some(i) = &expect.issuer {
        v.set_issuer(&[i]);
    }
    let num = |k: &str| claims[k].as_u64().unwrap_or(0);
    let text = |k: &str| claims[k].as_str().map_or_else(|| claims[k].to_string(), str::to_string);
    jsonwebtoken::decode::<Value>(token, &key, &v).map(|d| d.claims).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => Rejection::BadSignature,
        ErrorKind::ExpiredSignature => Rejection::Expired { exp: num("exp"), now },
        ErrorKind::ImmatureSignature => Rejection::NotYetValid { nbf: num("nbf"), now },
        ErrorKind::InvalidAudience => {
            Rejection::WrongAudience { got: text("aud"), expected: expect.audience.clone().unwrap_or_default() }
        }
        ErrorKind::InvalidIssuer => {
            Rejection::WrongIssuer { got: text("iss"), expected: expect.issuer.clone().unwrap_or_default() }
        }
        other => Rejection::Malformed(format!("{other:?}")),
    })
}
