//! Tokens backends can trust: JWKS, kids, rotation, `verify`, `keygen`, the verifier test mode
//! and cached signing, through the running gateway.

mod common;

use std::process::Stdio;

use common::process::bin;
use common::*;
use openid_gateway::token::keys::{generate, parse_private_pem, KeyAlg};

/// `openid-gateway verify` on `token`: (exit code, output).
fn verify(token: &str, args: &[&str]) -> (i32, String) {
    let out = bin().arg("verify").arg(token).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn keyed(files: &[(&str, String)], keys: &str, alg: &str, extra_routes: &str) -> (Setup, Vec<(String, String)>) {
    let setup = Setup {
        token: format!("algorithm = \"{alg}\"\nkeys = [{keys}]\n"),
        routes: format!("[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n\n{extra_routes}"),
        ..Setup::default()
    };
    (setup, files.iter().map(|(n, c)| (n.to_string(), c.clone())).collect())
}

async fn start(setup: Setup, files: &[(String, String)]) -> Harness {
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    Harness::with_files(setup, &refs).await
}

async fn token_after_login(h: &Harness, b: &Browser, path: &str) -> String {
    let pages = b.walk(&h.url(path)).await;
    assert_eq!(pages.last().unwrap().status, 200, "{}", pages.last().unwrap().body);
    h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_is_published_and_verifies_through_the_jwks_url() {
    for alg in [KeyAlg::ES256, KeyAlg::EdDSA, KeyAlg::RS256] {
        let pem = generate(alg).unwrap();
        let kid = parse_private_pem(&pem).unwrap().kid;
        let (setup, files) = keyed(&[("k.pem", pem)], "{ file = \"k.pem\" }", alg.name(), "");
        let h = start(setup, &files).await;
        let b = h.browser();
        let jwks = b.get(&h.url("/.gateway/jwks.json")).await;
        assert_eq!(jwks.status, 200);
        assert_eq!(jwks.headers["cache-control"], "public, max-age=300");
        let set: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
        assert_eq!(set["keys"][0]["kid"], kid.as_str());
        assert_eq!(set["keys"][0]["alg"], alg.name());
        let token = token_after_login(&h, &b, "/").await;
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(), Some(kid.as_str()));
        // The JWKS on any host, here straight to the listener's address.
        let url = format!("http://{}/.gateway/jwks.json", h.gateway_addr);
        let (code, out) = verify(&token, &["--jwks", &url, "--aud", "shop", "--iss", "https://issuer.test"]);
        assert_eq!(code, 0, "{}: {out}", alg.name());
        assert!(out.contains(&h.mock.openid_for("alice")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_step_by_step() {
    let (old, new) = (generate(KeyAlg::ES256).unwrap(), generate(KeyAlg::ES256).unwrap());
    let files = [("old.pem", old.clone()), ("new.pem", new.clone())];
    // 0. Only the old key.
    let (s, f) = keyed(&files, "{ file = \"old.pem\" }", "ES256", "");
    let h = start(s, &f).await;
    let old_token = token_after_login(&h, &h.browser(), "/").await;
    drop(h);
    // 1. Add the new key second: old still signs, both are published.
    let (s, f) = keyed(&files, "{ file = \"old.pem\" }, { file = \"new.pem\" }", "ES256", "");
    let h = start(s, &f).await;
    let t1 = token_after_login(&h, &h.browser(), "/").await;
    assert_eq!(jsonwebtoken::decode_header(&t1).unwrap().kid, jsonwebtoken::decode_header(&old_token).unwrap().kid);
    drop(h);
    // 2. Move it first: the new key signs; tokens of both verify during the overlap.
    let (s, f) = keyed(&files, "{ file = \"new.pem\" }, { file = \"old.pem\" }", "ES256", "");
    let h = start(s, &f).await;
    let new_token = token_after_login(&h, &h.browser(), "/").await;
    let both = jwks_file(&h).await;
    for t in [&old_token, &new_token] {
        assert_eq!(verify(t, &["--jwks", &both, "--aud", "shop"]).0, 0);
    }
    drop(h);
    // 3. Remove the old key: its tokens are now refused by kid.
    let (s, f) = keyed(&files, "{ file = \"new.pem\" }", "ES256", "");
    let h = start(s, &f).await;
    let only_new = jwks_file(&h).await;
    assert_eq!(verify(&new_token, &["--jwks", &only_new, "--aud", "shop"]).0, 0);
    let (code, out) = verify(&old_token, &["--jwks", &only_new, "--aud", "shop"]);
    assert_eq!(code, 1);
    assert!(out.contains("rejected: unknown kid"), "{out}");
}

/// Saves the gateway's JWKS to a file and returns its path.
async fn jwks_file(h: &Harness) -> String {
    let body = h.browser().get(&h.url("/.gateway/jwks.json")).await.body;
    let path = h.dir.path().join("jwks.json");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_test_mode_sends_each_invalid_token_and_verify_explains_it() {
    let pem = generate(KeyAlg::ES256).unwrap();
    let (setup, files) = keyed(
        &[("k.pem", pem)],
        "{ file = \"k.pem\" }",
        "ES256",
        "[[routes]]\npath = \"/staging\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\nproduction = false\nverifier_test = true\n",
    );
    let h = start(setup, &files).await;
    let b = h.browser();
    token_after_login(&h, &b, "/").await;
    let url = format!("http://{}/.gateway/jwks.json", h.gateway_addr);
    for (kind, reason) in [
        ("bad_signature", "rejected: bad signature"),
        ("expired", "rejected: expired"),
        ("wrong_audience", "rejected: wrong audience: the token is for verifier-test-wrong-audience, expected shop"),
        ("alg_none", "rejected: alg none"),
    ] {
        b.get_with(&h.url("/staging/x"), &[("X-Openid-Token-Test", kind)]).await;
        let seen = h.upstream.last();
        assert!(seen.headers.get("x-openid-token-test").is_none(), "the switch is not forwarded");
        let token = seen.headers["x-openid-token"].to_str().unwrap().to_string();
        let (code, out) = verify(&token, &["--jwks", &url, "--aud", "shop"]);
        assert_eq!(code, 1, "{kind}: {out}");
        assert!(out.contains(reason), "{kind}: {out}");
    }
    // A production route ignores the switch: the token stays valid.
    b.get_with(&h.url("/x"), &[("X-Openid-Token-Test", "expired")]).await;
    let token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    assert_eq!(verify(&token, &["--jwks", &url, "--aud", "shop"]).0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_signed_once_per_session_and_audience_then_renewed() {
    let h = Harness::start().await;
    let b = h.browser();
    let first = token_after_login(&h, &b, "/a").await;
    b.get(&h.url("/b")).await;
    let second = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    assert_eq!(first, second, "reused within the window");
    h.clock.advance(151);
    b.get(&h.url("/c")).await;
    let third = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    assert_ne!(first, third, "renewed once half its lifetime has passed");
}

#[test]
fn keygen_writes_private_keys_check_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let path = dir.path().join(format!("{alg}.pem"));
        let out = bin().args(["keygen", "--alg", alg, "--out"]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pem = std::fs::read_to_string(&path).unwrap();
        let kid = parse_private_pem(&pem).unwrap().kid;
        assert!(String::from_utf8_lossy(&out.stderr).contains(&kid));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let cfg = format!(
            "public_url = \"https://h5.example.com\"\n[wechat]\nappid = \"wx1\"\nsecret = {{ file = \"{alg}.pem\" }}\n\
             [session]\nkeys = [{{ file = \"{alg}.pem\" }}]\n[token]\nalgorithm = \"{alg}\"\nkey = {{ file = \"{alg}.pem\" }}\n\
             [[routes]]\nupstream = \"http://127.0.0.1:3000\"\n"
        );
        std::fs::write(dir.path().join("g.toml"), cfg).unwrap();
        let check = bin().args(["check", "-c"]).arg(dir.path().join("g.toml")).output().unwrap();
        assert!(check.status.success(), "{alg}: {}", String::from_utf8_lossy(&check.stderr));
    }
    // A key of another algorithm than configured is named as the mistake.
    let cfg = std::fs::read_to_string(dir.path().join("g.toml"))
        .unwrap()
        .replace("algorithm = \"RS256\"", "algorithm = \"ES256\"");
    std::fs::write(dir.path().join("g.toml"), cfg).unwrap();
    let check = bin().args(["check", "-c"]).arg(dir.path().join("g.toml")).output().unwrap();
    assert!(String::from_utf8_lossy(&check.stderr).contains("token.key: is a RS256 key but algorithm is ES256"));
}

#[test]
fn verify_with_a_shared_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("s");
    std::fs::write(&secret_file, HS256_KEY).unwrap();
    let cfg = hs256_token_config();
    let signer =
        openid_gateway::token::TokenSigner::new(&cfg, std::sync::Arc::new(openid_gateway::util::clock::OsEntropy))
            .unwrap();
    let now = openid_gateway::util::clock::Clock::now(&openid_gateway::util::clock::SystemClock);
    let user = openid_gateway::session::Session { openid: "oS".into(), appid: "wx1".into(), ..Default::default() };
    let token = signer.sign(&signer.claims(&user, "shop", now)).unwrap();
    let file = secret_file.to_str().unwrap();
    assert_eq!(verify(&token, &["--secret-file", file, "--aud", "shop"]).0, 0);
    let (code, out) = verify(&token, &["--secret-file", file, "--aud", "blog"]);
    assert!(code == 1 && out.contains("wrong audience"), "{out}");
    let (code, out) = verify(&token, &["--secret-file", file, "--iss", "https://other"]);
    assert!(code == 1 && out.contains("wrong issuer"), "{out}");
}
