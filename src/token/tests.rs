use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::token::keys::{generate, KeyAlg};
use crate::util::clock::{Clock, OsEntropy, SystemClock};
use crate::util::secret::Secret;

fn cfg(algorithm: TokenAlgorithm, keys: Vec<Vec<u8>>) -> TokenConfig {
    TokenConfig {
        header: http::HeaderName::from_static("x-openid-token"),
        algorithm,
        keys: keys.into_iter().map(Secret::new).collect(),
        issuer: "https://gw.example".into(),
        lifetime: Duration::from_secs(300),
        reuse: 0.5,
        cache_size: 1000,
    }
}

fn pem(alg: KeyAlg) -> Vec<u8> {
    generate(alg).unwrap().into_bytes()
}

fn user(openid: &str) -> Session {
    Session { openid: openid.into(), appid: "wx1".into(), ..Session::default() }
}

fn signer(c: &TokenConfig) -> TokenSigner {
    TokenSigner::new(c, Arc::new(OsEntropy)).unwrap()
}

fn now() -> u64 {
    SystemClock.now()
}

#[test]
fn every_algorithm_round_trips_with_kid_nbf_and_jti() {
    for (alg, key) in [
        (TokenAlgorithm::HS256, b"0123456789abcdef0123456789abcdef".to_vec()),
        (TokenAlgorithm::ES256, pem(KeyAlg::ES256)),
        (TokenAlgorithm::EdDSA, pem(KeyAlg::EdDSA)),
        (TokenAlgorithm::RS256, pem(KeyAlg::RS256)),
    ] {
        let c = cfg(alg, vec![key]);
        let s = signer(&c);
        let t = s.sign(&s.claims(&user("oABC"), "shop", now())).unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid.as_deref(), s.keys().signing_kid(), "{alg:?}");
        let claims = TokenVerifier::new(&c, "shop").unwrap().verify(&t).unwrap();
        assert_eq!((claims.sub.as_str(), claims.nbf), ("oABC", claims.iat));
        assert_eq!(claims.jti.len(), 16);
        assert!(TokenVerifier::new(&c, "other").unwrap().verify(&t).is_err(), "{alg:?}: audience");
    }
}

#[test]
fn hs256_is_never_published_asymmetric_keys_all_are() {
    let hs = cfg(TokenAlgorithm::HS256, vec![b"0123456789abcdef0123456789abcdef".to_vec()]);
    assert_eq!(signer(&hs).keys().jwks(), serde_json::json!({ "keys": [] }));
    let two = cfg(TokenAlgorithm::ES256, vec![pem(KeyAlg::ES256), pem(KeyAlg::EdDSA)]);
    let jwks = signer(&two).keys().jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.get("d").is_none()), "never a private part");
    assert_eq!((keys[0]["alg"].as_str(), keys[1]["alg"].as_str()), (Some("ES256"), Some("EdDSA")));
}

#[test]
fn rotation_old_and_new_tokens_verify_during_the_overlap() {
    let (old, new) = (pem(KeyAlg::ES256), pem(KeyAlg::ES256));
    let before = cfg(TokenAlgorithm::ES256, vec![old.clone()]);
    let overlap = cfg(TokenAlgorithm::ES256, vec![new.clone(), old.clone()]);
    let after = cfg(TokenAlgorithm::ES256, vec![new]);
    let old_token = signer(&before).sign(&signer(&before).claims(&user("o1"), "shop", now())).unwrap();
    let s = signer(&overlap);
    let new_token = s.sign(&s.claims(&user("o1"), "shop", now())).unwrap();
    let v = TokenVerifier::new(&overlap, "shop").unwrap();
    assert!(v.verify(&old_token).is_ok() && v.verify(&new_token).is_ok());
    let v = TokenVerifier::new(&after, "shop").unwrap();
    assert!(v.verify(&old_token).is_err() && v.verify(&new_token).is_ok());
}

#[test]
fn cached_tokens_are_reused_within_the_window_per_audience() {
    let c = cfg(TokenAlgorithm::HS256, vec![b"0123456789abcdef0123456789abcdef".to_vec()]);
    let s = signer(&c);
    let t0 = now();
    let a = s.token_for(&user("o1"), "shop", t0).unwrap();
    assert_eq!(s.token_for(&user("o1"), "shop", t0 + 149).unwrap(), a);
    assert_ne!(s.token_for(&user("o1"), "blog", t0).unwrap(), a);
    assert_ne!(s.token_for(&user("o1"), "shop", t0 + 150).unwrap(), a, "renewed after half its life");
}

#[test]
fn every_invalid_kind_is_rejected_by_a_correct_verifier() {
    for alg in [KeyAlg::ES256, KeyAlg::EdDSA, KeyAlg::RS256] {
        let c = cfg(TokenAlgorithm::ES256, vec![pem(alg)]);
        let c = TokenConfig {
            algorithm: match alg {
                KeyAlg::ES256 => TokenAlgorithm::ES256,
                KeyAlg::EdDSA => TokenAlgorithm::EdDSA,
                KeyAlg::RS256 => TokenAlgorithm::RS256,
            },
            ..c
        };
        let s = signer(&c);
        let v = TokenVerifier::new(&c, "shop").unwrap();
        assert!(v.verify(&s.sign(&s.claims(&user("o"), "shop", now())).unwrap()).is_ok());
        for kind in InvalidKind::ALL {
            let bad = s.invalid_token(kind, &user("o"), "shop", now()).unwrap();
            assert!(v.verify(&bad).is_err(), "{alg:?} {kind:?} accepted");
        }
    }
}
