//! Against an independent strict WeChat mock (Python, standard library), an HS256 gateway
//! completes the silent login with exactly one code exchange, and PyJWT accepts the token the
//! upstream receives.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::python::{python, script};
use common::*;

/// Runs PyJWT on `token`; `Ok(claims)` or `Err(reason)`.
fn pyjwt_verify(alg: &str, key: &str, issuer: &str, audience: &str, token: &str) -> Result<serde_json::Value, String> {
    let mut child = Command::new(python())
        .arg(script("verify_pyjwt.py"))
        .args([alg, issuer, audience])
        .env("OGW_VERIFY_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(token.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(serde_json::from_str(&text).unwrap())
    } else {
        Err(text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_mock_one_exchange_and_pyjwt_accepts_the_token() {
    // Killed when the test ends, passed or failed.
    let mut mock = common::process::KillOnDrop(
        Command::new(python())
            .arg(script("strict_wechat.py"))
            .args([APPID, WECHAT_SECRET, PUBLIC_HOST])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(mock.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = serde_json::from_str::<serde_json::Value>(&line).unwrap()["port"].as_u64().unwrap();
    let base = format!("http://127.0.0.1:{port}");

    let h = Harness::with(Setup { wechat_base: Some(base.clone()), ..Setup::default() }).await;
    let b = h.browser();
    let pages = b.walk(&h.url("/campaign?from=share")).await;
    let last = pages.last().unwrap();
    assert_eq!(last.status, 200, "{:?}", pages.iter().map(|p| (p.status, &p.url)).collect::<Vec<_>>());
    assert_eq!(last.url, h.url("/campaign?from=share"));

    let stats: serde_json::Value = reqwest::get(format!("{base}/stats")).await.unwrap().json().await.unwrap();
    assert_eq!(stats["exchanges"], 1);
    assert_eq!(stats["successes"], 1);

    let token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let claims = pyjwt_verify("HS256", HS256_KEY, "https://issuer.test", "shop", &token).unwrap();
    assert!(claims["sub"].as_str().unwrap().starts_with('o'));
    assert_eq!(claims["appid"], APPID);

    // PyJWT is not a rubber stamp: wrong key, audience or issuer are rejected.
    assert!(
        pyjwt_verify("HS256", "another-key-0123456789abcdef0123456789", "https://issuer.test", "shop", &token).is_err()
    );
    assert!(pyjwt_verify("HS256", HS256_KEY, "https://issuer.test", "other-app", &token)
        .unwrap_err()
        .contains("Audience"));
    assert!(pyjwt_verify("HS256", HS256_KEY, "https://evil.test", "shop", &token).unwrap_err().contains("Issuer"));

    drop(mock.0.stdin.take());
    mock.0.wait().unwrap();
}
