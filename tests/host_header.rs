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
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /orders HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {WECHAT_UA}\r\nAccept: {NAV_ACCEPT}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
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
