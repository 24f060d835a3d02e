//! The per-request costs of identity: opening the sealed session cookie, a cached token, and
//! signing a token with each algorithm (what a cache miss costs).
//!
//! `cargo bench --bench tokens`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use openid_gateway::config::{TokenAlgorithm, TokenConfig};
use openid_gateway::session::seal::Sealer;
use openid_gateway::session::Session;
use openid_gateway::token::keys::{generate, KeyAlg};
use openid_gateway::token::TokenSigner;
use openid_gateway::util::clock::OsEntropy;
use openid_gateway::util::secret::Secret;

fn config(algorithm: TokenAlgorithm, key: Vec<u8>) -> TokenConfig {
    TokenConfig {
        header: http::HeaderName::from_static("x-openid-token"),
        algorithm,
        keys: vec![Secret::new(key)],
        issuer: "https://h5.example.com".into(),
        lifetime: Duration::from_secs(300),
        reuse: 0.5,
        cache_size: 100_000,
    }
}

fn user() -> Session {
    Session {
        openid: "oLVPpjqs9BhvzwPj5A-vTYAX3GLc".into(),
        appid: "wx1234567890abcdef".into(),
        issued: 1_800_000_000,
        expires: 1_800_604_800,
        scope: openid_gateway::wechat::Scope::Base,
        ..Session::default()
    }
}

fn benches(c: &mut Criterion) {
    let sealer = Sealer::new(&[Secret::new(b"session-key-0123456789abcdef0123456789".to_vec())]);
    let cookie = sealer.seal("ogw_session", serde_json::to_vec(&user()).unwrap().as_slice(), &OsEntropy);
    c.bench_function("session_cookie_open", |b| b.iter(|| sealer.open("ogw_session", black_box(&cookie)).unwrap()));

    let hs = TokenSigner::new(
        &config(TokenAlgorithm::HS256, b"0123456789abcdef0123456789abcdef".to_vec()),
        Arc::new(OsEntropy),
    )
    .unwrap();
    let es = TokenSigner::new(
        &config(TokenAlgorithm::ES256, generate(KeyAlg::ES256).unwrap().into_bytes()),
        Arc::new(OsEntropy),
    )
    .unwrap();
    let now = 1_800_000_100;
    es.token_for(&user(), "shop", now).unwrap();
    let u = user();
    c.bench_function("token_cached_hit", |b| b.iter(|| es.token_for(black_box(&u), "shop", now).unwrap()));

    let signers = [
        ("sign_HS256", hs),
        ("sign_ES256", es),
        (
            "sign_EdDSA",
            TokenSigner::new(
                &config(TokenAlgorithm::EdDSA, generate(KeyAlg::EdDSA).unwrap().into_bytes()),
                Arc::new(OsEntropy),
            )
            .unwrap(),
        ),
        (
            "sign_RS256",
            TokenSigner::new(
                &config(TokenAlgorithm::RS256, generate(KeyAlg::RS256).unwrap().into_bytes()),
                Arc::new(OsEntropy),
            )
            .unwrap(),
        ),
    ];
    for (name, signer) in &signers {
        let claims = signer.claims(&u, "shop", now);
        c.bench_function(name, |b| b.iter(|| signer.sign(black_box(&claims)).unwrap()));
    }
}

criterion_group! {
    name = tokens;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(tokens);
