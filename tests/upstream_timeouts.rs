//! Upstream connect and write timeouts, each answered with the 504 page within its limit.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn route(upstream: &str, extra: &str) -> String {
    format!("[[routes]]\npath = \"/\"\nupstream = \"{upstream}\"\naudience = \"shop\"\npolicy = \"public\"\n{extra}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_completes_the_handshake_gets_504_within_the_connect_timeout() {
    // A listener that never accepts, its queue filled: further SYNs are dropped, so connecting hangs.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(1).unwrap();
    let addr = full.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            fillers.push(c);
        }
    }
    let hangs = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await.is_err();
    assert!(hangs, "the listener's queue is not full: this test cannot make a connect hang here");

    let h = Harness::with(Setup {
        routes: route(&format!("http://{addr}"), "connect_timeout = \"1s\""),
        ..Setup::default()
    })
    .await;
    let started = Instant::now();
    let page = h.browser().get(&h.url("/x")).await;
    assert_eq!(page.status, 504, "{}", page.body);
    assert!(page.body.contains("服务响应超时"));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    drop((full, fillers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_reads_the_body_gets_504_within_the_write_timeout() {
    // Accepts and holds the connection, reading nothing: the body fills the socket buffers.
    let deaf = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = deaf.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = deaf.accept().await {
            held.push(c);
        }
    });
    let h =
        Harness::with(Setup { routes: route(&format!("http://{addr}"), "write_timeout = \"1s\""), ..Setup::default() })
            .await;

    let mut conn = TcpStream::connect(h.gateway_addr).await.unwrap();
    let total: usize = 256 << 20;
    let head =
        format!("POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: {total}\r\nAccept: text/html\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = conn.into_split();
    let send = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0;
        while sent < total {
            match tokio::time::timeout(Duration::from_secs(5), writer.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                _ => break,
            }
        }
    });
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") && String::from_utf8_lossy(&out).contains("</html>") {
            break;
        }
    }
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 504"), "{took:?}: {answer:.200}");
    assert!(answer.contains("服务响应超时"));
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    send.abort();
    holder.abort();
}
