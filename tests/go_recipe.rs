//! The Go recipe of deploy/backends/go (golang-jwt v4, go-jose's JWK parser), built with
//! Debian's Go and packaged libraries in GOPATH mode, against a live gateway: it accepts the
//! gateway's real tokens for every asymmetric algorithm, and rejects, for the right reason,
//! every invalid token of the verifier test mode, a foreign issuer and an unpinned algorithm.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::go::verify_openid_token;
use common::*;
use openid_gateway::token::keys::{generate, KeyAlg};
use openid_gateway::token::InvalidKind;

const ISSUER: &str = "https://issuer.test";
const ALGS: [KeyAlg; 3] = [KeyAlg::ES256, KeyAlg::EdDSA, KeyAlg::RS256];

/// One run of the command: the token and the settings it is checked with.
struct Check {
    name: &'static str,
    token: String,
    issuer: &'static str,
    algs: String,
    /// In the output: the openid if valid, else a piece of the reason.
    expect: String,
}

/// Runs the Go command on the check's token; whether it exited 0, and what it printed.
fn run(jwks: &str, check: &Check) -> (bool, String) {
    let mut child = Command::new(verify_openid_token())
        .env("OPENID_GATEWAY_JWKS", jwks)
        .env("OPENID_GATEWAY_ISSUER", check.issuer)
        .env("OPENID_GATEWAY_AUDIENCE", "shop")
        .env("OPENID_GATEWAY_ALGS", &check.algs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(check.token.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Runs every check off the runtime (the command fetches the key set from the gateway running
/// on it), each result beside its check.
async fn run_all(jwks: String, checks: Vec<Check>) -> Vec<(Check, (bool, String))> {
    let run_each = move || {
        checks
            .into_iter()
            .map(|c| {
                let result = run(&jwks, &c);
                (c, result)
            })
            .collect()
    };
    tokio::task::spawn_blocking(run_each).await.unwrap()
}

/// The Go message naming why a token of the verifier test mode is refused.
fn reason(kind: InvalidKind) -> &'static str {
    match kind.name() {
        "bad_signature" => "verification error",
        "expired" => "token is expired",
        "wrong_audience" => "invalid audience",
        "alg_none" => "signing method none is invalid",
        _ => "",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_recipe_accepts_real_tokens_and_rejects_invalid_ones() {
    tokio::task::spawn_blocking(verify_openid_token).await.unwrap();
    for alg in ALGS {
        let (h, valid, invalid) = signed_tokens(alg).await;
        let check = |name, token: &str, issuer, algs: String, expect: &str| Check {
            name,
            token: token.to_string(),
            issuer,
            algs,
            expect: expect.to_string(),
        };
        let others = ALGS.iter().filter(|a| **a != alg).map(|a| a.name()).collect::<Vec<_>>().join(",");
        let mut checks = vec![
            check("valid", &valid, ISSUER, alg.name().into(), &h.mock.openid_for("alice")),
            check("foreign issuer", &valid, "https://other-issuer.test", alg.name().into(), "invalid issuer"),
            check("algorithm not pinned", &valid, ISSUER, others, &format!("signing method {} is invalid", alg.name())),
        ];
        for (kind, token) in &invalid {
            checks.push(check(kind.name(), token, ISSUER, alg.name().into(), reason(*kind)));
        }
        let jwks = format!("http://{}/.gateway/jwks.json", h.gateway_addr);
        let results = run_all(jwks, checks).await;
        let (valid, invalid) = results.split_at(1);
        let (c, (ok, output)) = &valid[0];
        assert!(*ok && output.trim() == c.expect, "go {}: refused a real token: {output}", alg.name());
        for (c, (ok, output)) in invalid {
            assert!(
                !ok && output.starts_with("rejected:") && output.contains(&c.expect),
                "go {} on {}: expected a rejection for {:?}, got: {output}",
                alg.name(),
                c.name,
                c.expect
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_go_accepts_old_and_new_tokens() {
    tokio::task::spawn_blocking(verify_openid_token).await.unwrap();
    let (old, new) = (generate(KeyAlg::ES256).unwrap(), generate(KeyAlg::ES256).unwrap());
    let files = [("old.pem", old.as_str()), ("new.pem", new.as_str())];
    let setup = |keys: &str| Setup {
        token: format!("algorithm = \"ES256\"\nkeys = [{keys}]\n"),
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n".into(),
        ..Setup::default()
    };
    let before = Harness::with_files(setup("{ file = \"old.pem\" }"), &files).await;
    assert_eq!(before.browser().walk(&before.url("/")).await.last().unwrap().status, 200);
    let old_token = before.last_token();
    drop(before);
    let overlap = Harness::with_files(setup("{ file = \"new.pem\" }, { file = \"old.pem\" }"), &files).await;
    assert_eq!(overlap.browser().walk(&overlap.url("/")).await.last().unwrap().status, 200);
    let new_token = overlap.last_token();
    assert_ne!(old_token, new_token);
    let openid = overlap.mock.openid_for("alice");
    let check =
        |name, token: String| Check { name, token, issuer: ISSUER, algs: "ES256".into(), expect: openid.clone() };
    let checks = vec![check("old key", old_token), check("new key", new_token)];
    let jwks = format!("http://{}/.gateway/jwks.json", overlap.gateway_addr);
    for (c, (ok, output)) in run_all(jwks, checks).await {
        assert!(ok && output.trim() == c.expect, "go refused the {} token during the overlap: {output}", c.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_recipe_accepts_a_wecom_members_token() {
    tokio::task::spawn_blocking(verify_openid_token).await.unwrap();
    let pem = generate(KeyAlg::ES256).unwrap();
    let setup = Setup {
        token: "algorithm = \"ES256\"\nkey = { file = \"k.pem\" }\n".into(),
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n".into(),
        ..wecom_setup("")
    };
    let h = Harness::with_files(setup, &[("k.pem", &pem)]).await;
    assert_eq!(h.browser_with_ua(WECOM_UA).walk(&h.url("/")).await.last().unwrap().status, 200);
    let check =
        Check { name: "wecom", token: h.last_token(), issuer: ISSUER, algs: "ES256".into(), expect: "alice".into() };
    let results = run_all(format!("http://{}/.gateway/jwks.json", h.gateway_addr), vec![check]).await;
    let (_, (ok, output)) = &results[0];
    assert!(*ok && output.trim() == "alice", "go refused a WeCom member's token: {output}");
}
