//! The backend recipes of deploy/backends run against a live gateway: the Python (PyJWT with
//! PyJWKClient) and Node (jose with createRemoteJWKSet) ones accept the gateway's real tokens
//! for every asymmetric algorithm and reject every invalid token of the verifier test mode.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::node::npm_ready;
use common::python::python;
use common::*;
use openid_gateway::token::keys::{generate, KeyAlg};

fn recipe(alg: KeyAlg, jwks: &str, token: &str, lang: &str) -> (bool, String) {
    let backends = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/backends");
    let mut cmd = match lang {
        "python" => {
            let mut c = Command::new(python());
            c.arg(backends.join("python/verify_token.py"));
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.arg("verify.mjs").current_dir(npm_ready("deploy/backends/node"));
            c
        }
    };
    let mut child = cmd
        .env("OPENID_GATEWAY_JWKS", jwks)
        .env("OPENID_GATEWAY_ISSUER", "https://issuer.test")
        .env("OPENID_GATEWAY_AUDIENCE", "shop")
        .env("OPENID_GATEWAY_ALGS", alg.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(token.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_node_recipes_accept_real_tokens_and_reject_invalid_ones() {
    for alg in [KeyAlg::ES256, KeyAlg::EdDSA, KeyAlg::RS256] {
        let (h, valid, invalid) = signed_tokens(alg).await;
        let mut tokens = vec![("valid", valid)];
        tokens.extend(invalid.into_iter().map(|(kind, token)| (kind.name(), token)));
        let jwks = format!("http://{}/.gateway/jwks.json", h.gateway_addr);
        let openid = h.mock.openid_for("alice");
        let results = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for lang in ["python", "node"] {
                for (name, token) in &tokens {
                    out.push((lang, *name, recipe(alg, &jwks, token, lang)));
                }
            }
            out
        })
        .await
        .unwrap();
        for (lang, name, (ok, output)) in results {
            if name == "valid" {
                assert!(ok && output.trim() == openid, "{lang} {}: refused a real token: {output}", alg.name());
            } else {
                assert!(!ok && output.starts_with("rejected:"), "{lang} {} accepted {name}: {output}", alg.name());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_python_and_node_accept_old_and_new_tokens() {
    let (old, new) = (generate(KeyAlg::ES256).unwrap(), generate(KeyAlg::ES256).unwrap());
    let files = [("old.pem", old.as_str()), ("new.pem", new.as_str())];
    let setup = |keys: &str| Setup {
        token: format!("algorithm = \"ES256\"\nkeys = [{keys}]\n"),
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n".into(),
        ..Setup::default()
    };
    let login = |h: &Harness| {
        let b = h.browser();
        let url = h.url("/");
        async move {
            assert_eq!(b.walk(&url).await.last().unwrap().status, 200);
        }
    };
    let before = Harness::with_files(setup("{ file = \"old.pem\" }"), &files).await;
    login(&before).await;
    let old_token = before.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    drop(before);
    let overlap = Harness::with_files(setup("{ file = \"new.pem\" }, { file = \"old.pem\" }"), &files).await;
    login(&overlap).await;
    let new_token = overlap.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let jwks = format!("http://{}/.gateway/jwks.json", overlap.gateway_addr);
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for lang in ["python", "node"] {
            for token in [&old_token, &new_token] {
                out.push((lang, recipe(KeyAlg::ES256, &jwks, token, lang)));
            }
        }
        out
    })
    .await
    .unwrap();
    for (lang, (ok, output)) in results {
        assert!(ok, "{lang} refused a token during the overlap: {output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_accept_wecom_and_desktop_tokens() {
    let alg = KeyAlg::ES256;
    let pem = generate(alg).unwrap();
    let token = "algorithm = \"ES256\"\nkey = { file = \"k.pem\" }\n".to_string();
    let routes = "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n";
    // A WeCom member and an outsider, in WeCom's browser.
    let setup = Setup { token: token.clone(), routes: routes.into(), ..wecom_setup("desktop_login = true") };
    let h = Harness::with_files(setup, &[("k.pem", &pem)]).await;
    let mut cases = Vec::new();
    for user in ["alice", "bob"] {
        let b = h.browser_with_ua(WECOM_UA);
        b.get(&h.mock_url(&format!("/mock/login-as?user={user}"))).await;
        assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
        let sub = if user == "alice" { "alice".to_string() } else { h.mock.corp_openid_for(user).unwrap() };
        cases.push((format!("http://{}/.gateway/jwks.json", h.gateway_addr), h.last_token(), sub));
    }
    // A desktop signed in with the website app.
    let setup = Setup { token, routes: routes.into(), ..website_setup("") };
    let w = Harness::with_files(setup, &[("k.pem", &pem)]).await;
    let b = w.browser_with_ua(DESKTOP_UA);
    let qr = b.walk(&w.url("/")).await.pop().unwrap();
    assert_eq!(b.walk(&scan_qr(&w.mock_url(""), &qr, "alice").await).await.last().unwrap().status, 200);
    cases.push((
        format!("http://{}/.gateway/jwks.json", w.gateway_addr),
        w.last_token(),
        w.mock.website_openid_for("alice").unwrap(),
    ));

    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for lang in ["python", "node"] {
            for (jwks, token, sub) in &cases {
                out.push((lang, sub.clone(), recipe(alg, jwks, token, lang)));
            }
        }
        out
    })
    .await
    .unwrap();
    for (lang, sub, (ok, output)) in results {
        assert!(ok && output.trim() == sub, "{lang} refused a real token of {sub}: {output}");
    }
}
