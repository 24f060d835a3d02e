//! No request or response body, nor any part of one, reaches a log line at any level: the
//! process's real logger at `trace` captures a flow through an upstream page that shows a
//! user's personal data (with a length and chunked), and a form posted with it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use openid_gateway::config::LogFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Personal data an app page might show, and a form might post.
const PERSONAL: [&str; 4] = ["13800138000", "北京市朝阳区建国路88号", "oPersonalOpenid0123", "张三丰"];

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An upstream answering every request with a page of personal data: chunked for paths
/// starting `/chunked`, else with a length. Reads the request's body (a length) first.
async fn personal_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    buf.drain(..end + 4 + length);
                    let page = format!(
                        "<p>手机 {} 地址 {} openid {} 姓名 {}</p>",
                        PERSONAL[0], PERSONAL[1], PERSONAL[2], PERSONAL[3]
                    );
                    let answer = if head.contains(" /chunked") {
                        let (a, b) = page.as_bytes().split_at(page.len() / 2);
                        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                        for part in [a, b] {
                            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                            out.extend_from_slice(part);
                            out.extend_from_slice(b"\r\n");
                        }
                        out.extend_from_slice(b"0\r\n\r\n");
                        out
                    } else {
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\r\n",
                            page.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(page.as_bytes());
                        out
                    };
                    if s.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_reaches_the_log_at_trace() {
    let capture = Capture::default();
    openid_gateway::logging::init_with(LogFormat::Text, "trace", Some(Box::new(capture.clone())))
        .expect("the only logger of this test");
    let upstream = personal_upstream().await;
    let h = Harness::with(Setup {
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n".into(),
        upstream_url: Some(upstream),
        ..Setup::default()
    })
    .await;
    let b = h.browser();
    for path in ["/account", "/chunked/account"] {
        let page = b.get(&h.url(path)).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(PERSONAL.iter().all(|p| page.body.contains(p)), "the page itself shows the data: {}", page.body);
    }
    let form = format!("phone={}&address={}&name={}", PERSONAL[0], PERSONAL[1], PERSONAL[3]);
    let client = reqwest::Client::builder().resolve(PUBLIC_HOST, h.gateway_addr).build().unwrap();
    let posted =
        client.post(h.url("/account/edit")).header("content-type", "text/plain").body(form).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    drop(h);
    openid_gateway::logging::flush();
    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();

    // Positive control: the gateway's own lines at every level were captured, the access log
    // among them, so the search below searched something.
    assert!(logged.lines().filter(|l| l.contains(" access ")).count() >= 3, "no access lines:\n{logged}");
    assert!(logged.lines().any(|l| l.contains("TRACE") || l.contains("DEBUG")), "no verbose lines:\n{logged}");
    for p in PERSONAL {
        // As text, and as the escaped bytes a `{:?}` of a buffer prints.
        let escaped = p.as_bytes().escape_ascii().to_string();
        let found: Vec<&str> = logged.lines().filter(|l| l.contains(p) || l.contains(&escaped)).collect();
        assert!(found.is_empty(), "{p} reached the log: {found:#?}");
    }
}
