//! Deliberately invalid tokens, for backend teams to prove their verifier rejects them
//! (the verifier test mode of a non-production route, like Google IAP's test tokens).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{TokenError, TokenSigner};
use crate::session::Session;

/// How the token is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// Signed, then one bit of the signature flipped.
    BadSignature,
    /// Expired an hour ago.
    Expired,
    /// Meant for another audience.
    WrongAudience,
    /// `"alg": "none"`, no signature.
    AlgNone,
}

impl InvalidKind {
    pub const ALL: [InvalidKind; 4] =
        [InvalidKind::BadSignature, InvalidKind::Expired, InvalidKind::WrongAudience, InvalidKind::AlgNone];

    /// From the `X-Openid-Token-Test` header value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            InvalidKind::BadSignature => "bad_signature",
            InvalidKind::Expired => "expired",
            InvalidKind::WrongAudience => "wrong_audience",
            InvalidKind::AlgNone => "alg_none",
        }
    }
}

pub(super) fn make(
    signer: &TokenSigner,
    kind: InvalidKind,
    user: &Session,
    audience: &str,
    now: u64,
) -> Result<String, TokenError> {
    match kind {
        InvalidKind::BadSignature => {
            let token = signer.sign(&signer.claims(user, audience, now))?;
            let (signed, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
            let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
            if let Some(b) = bytes.first_mut() {
                *b ^= 0x01;
            }
            Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes)))
        }
        InvalidKind::Expired => {
            let past = now.saturating_sub(signer.lifetime + 3600);
            signer.sign(&signer.claims(user, audience, past))
        }
        InvalidKind::WrongAudience => signer.sign(&signer.claims(user, "verifier-test-wrong-audience", now)),
        InvalidKind::AlgNone => {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let claims =
                serde_json::to_vec(&signer.claims(user, audience, now)).map_err(|e| TokenError::Key(e.to_string()))?;
            Ok(format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims)))
        }
    }
}
