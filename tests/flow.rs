//! The silent login end to end: gateway, mock WeChat and a recording upstream on loopback.

mod common;

use common::*;
use openid_gateway::config::TokenConfig;
use openid_gateway::token::TokenVerifier;

fn hs256_verifier(issuer: &str, audience: &str) -> TokenVerifier {
    let cfg = TokenConfig { issuer: issuer.into(), ..hs256_token_config() };
    TokenVerifier::new(&cfg, audience).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_lands_on_the_original_url_with_a_verified_token() {
    let h = Harness::start().await;
    let b = h.browser();
    let pages = b.walk(&h.url("/shop/cart?item=42&x=%E4%B8%AD")).await;
    let steps: Vec<(u16, String)> = pages.iter().map(|p| (p.status, p.url.clone())).collect();
    assert_eq!(pages.len(), 5, "script page -> login -> wechat -> callback -> app: {steps:?}");

    // 0. The page that keeps the #fragment (followed here as a browser without script does).
    assert_eq!(pages[0].status, 200);
    assert!(pages[0].body.contains("location.hash"));
    let pages = &pages[1..];

    // 1. To WeChat, with a login cookie scoped to the reserved prefix.
    let to_wechat = pages[0].location();
    assert!(to_wechat.starts_with(&h.mock_url("/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri=")));
    assert!(to_wechat.ends_with("#wechat_redirect"));
    let login_cookie = &pages[0].set_cookies()[0];
    assert!(login_cookie.starts_with("ogw_login=") && login_cookie.contains("Path=/.gateway"));
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Lax"));

    // 2. WeChat sends the browser to the callback with code and state.
    assert!(pages[1].location().starts_with(&h.url("/.gateway/callback?code=")));

    // 3. The callback sets the session and returns to the original URL, clean of code/state.
    assert_eq!(pages[2].status, 302);
    assert_eq!(
        pages[2].location(),
        "/shop/cart?item=42&x=%E4%B8%AD#",
        "its own (empty) fragment, so #wechat_redirect is not inherited"
    );
    let session_cookie = pages[2].set_cookies().into_iter().find(|c| c.starts_with("ogw_session=")).unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(session_cookie.contains(&format!("Max-Age={}", 7 * 86_400)));
    assert!(!session_cookie.contains("Secure"), "public URL is http");

    // 4. The app sees the request with a token naming the mock's openid for alice.
    assert_eq!(pages[3].status, 200);
    let seen = h.upstream.last();
    assert_eq!(seen.path, "/shop/cart?item=42&x=%E4%B8%AD");
    let token = seen.headers.get("x-openid-token").expect("token forwarded").to_str().unwrap();
    let claims = hs256_verifier("https://issuer.test", "shop").verify(token).unwrap();
    assert_eq!(claims.sub, h.mock.openid_for("alice"));
    assert_eq!(claims.appid, APPID);
    assert_eq!(claims.exp - claims.iat, 300);
    assert!(hs256_verifier("https://issuer.test", "another-app").verify(token).is_err());

    // The upstream never sees the gateway's cookies.
    assert!(seen.headers.get("cookie").is_none());
    assert_eq!(h.mock.stats().exchanges, 1);

    // Later requests go straight through with a fresh token, no WeChat involved.
    let again = b.get(&h.url("/shop/other")).await;
    assert_eq!(again.status, 200);
    assert_eq!(h.mock.stats().authorizes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_verify_with_the_public_key() {
    let pem = {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        p256::SecretKey::random(&mut rand::rngs::OsRng).to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    };
    let h = Harness::with_files(
        Setup { token: "algorithm = \"ES256\"\nkey = { file = \"es256.pem\" }\n".into(), ..Setup::default() },
        &[("es256.pem", pem.as_str())],
    )
    .await;
    let b = h.browser();
    let pages = b.walk(&h.url("/")).await;
    assert_eq!(pages.last().unwrap().status, 200);
    let token = h.upstream.last().headers.get("x-openid-token").unwrap().to_str().unwrap().to_string();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let verifier = TokenVerifier::new(&h.config.token, "shop").unwrap();
    assert_eq!(verifier.verify(&token).unwrap().sub, h.mock.openid_for("alice"));
}
