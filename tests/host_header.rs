//! A `Host` that is not a valid `host[:port]` is answered 400 and never copied into a page or a
//! URL (the page that keeps a `#fragment` through login builds its login URL from the host).
//! Raw requests, since HTTP clients normalise `Host`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a navigation from WeChat for `/orders` with `host` and returns the whole answer.
async fn ask(addr: SocketAddr, host: &str) -> String {
    let req = format!(
        "GET /orders HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {WECHAT_UA}\r\nAccept: {NAV_ACCEPT}\r\nConnection: close\r\n\r\n"
    );
    raw(addr, req.as_bytes()).await
}

/// Writes `request` as is and returns the whole answer.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.unwrap().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_host_and_port_gets_400_and_is_echoed_nowhere() {
    let h = Harness::start().await;
    // Positive control: valid hosts, with a port and as an IP literal, go into the login.
    for good in [PUBLIC_HOST, "gw.test:8080", "127.0.0.1", "[::1]:8080"] {
        let answer = ask(h.gateway_addr, good).await;
        assert!(!answer.starts_with("HTTP/1.1 400"), "{good}: {answer}");
    }
    let fragment_page = ask(h.gateway_addr, "gw.test:8080").await;
    assert!(fragment_page.starts_with("HTTP/1.1 200") && fragment_page.contains("/.gateway/login?return="));

    for bad in [
        "gw.test:evil.test",
        "gw.test:1, evil.test",
        "gw.test, evil.test",
        "evil.test@gw.test",
        "gw.test:99999",
        "gw.test:",
        "gw.test evil.test",
        "gw.test/evil.test",
        "[::1]evil.test",
        "evil.test:",
    ] {
        let answer = ask(h.gateway_addr, bad).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{bad}: {answer}");
        assert!(!answer.to_ascii_lowercase().contains("evil.test"), "{bad} was copied into the answer: {answer}");
        // pingora itself refuses a Host with `@` (an empty 400) before the gateway sees it.
        if !bad.contains('@') {
            assert!(answer.contains("host[:port]"), "{bad}: the page says why: {answer}");
        }
    }
    assert!(h.upstream.seen().is_empty(), "no bad host reached the upstream");
}

/// What is not a valid `host[:port]` is refused however it is named: twice, as bytes that are
/// not text, in an absolute-form target; a script gets the JSON error. Valid hosts (a port, an
/// IPv6 literal, an absolute-form target on its own host) reach the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_naming_a_host_meets_the_same_rule() {
    let h = Harness::start().await;
    let get = |target: &str, host_lines: &str| {
        format!("GET {target} HTTP/1.1\r\n{host_lines}Accept: {NAV_ACCEPT}\r\nConnection: close\r\n\r\n").into_bytes()
    };
    // Positive control: public pages through valid hosts, as the upstream sees them.
    for (target, host) in [
        ("/public/a", "Host: gw.test:8080\r\n"),
        ("/public/b", "Host: [::1]:8080\r\n"),
        ("/public/c", "Host: 127.0.0.1\r\n"),
        ("http://gw.test/public/d", "Host: gw.test\r\n"),
    ] {
        let answer = raw(h.gateway_addr, &get(target, host)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{target} {host}: {answer}");
        let path = target.trim_start_matches("http://gw.test");
        assert!(answer.contains(&format!("upstream saw {path}")), "{answer}");
    }
    let seen = h.upstream.seen().len();

    // (what, request, answered by the gateway's page rather than by pingora's plain 400)
    let mut bad: Vec<(&str, Vec<u8>, bool)> = vec![
        ("Host twice", get("/public/x", "Host: gw.test\r\nHost: evil.test\r\n"), false),
        ("user information in the target", get("http://evil.test@gw.test/public/x", "Host: gw.test\r\n"), false),
        ("an absolute-form target alone", get("http://gw.test_evil.test..x/public/x", ""), true),
    ];
    let mut not_text = get("/public/x", "Host: gw.test\u{1}\r\n");
    let at = not_text.iter().position(|b| *b == 1).unwrap();
    not_text.splice(at..at + 1, *b"\xffevil.test");
    bad.push(("Host not text", not_text, true));
    for (what, request, page) in bad {
        let answer = raw(h.gateway_addr, &request).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert_eq!(answer.contains("host[:port]"), page, "{what}: who answered: {answer}");
        assert!(!answer.contains("evil.test"), "{what}: the host was copied into the answer: {answer}");
    }
    assert_eq!(h.upstream.seen().len(), seen, "no bad host reached the upstream");

    // A script gets the error as JSON.
    let api = b"GET /orders HTTP/1.1\r\nHost: gw.test:evil.test\r\nAccept: application/json\r\nX-Requested-With: XMLHttpRequest\r\nConnection: close\r\n\r\n";
    let answer = raw(h.gateway_addr, api).await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400") && head.to_ascii_lowercase().contains("application/json"), "{answer}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["error"], "bad_host", "{json}");
    assert!(!body.contains("evil.test"), "{body}");
}
