//! No body in any log line, nor any part of one, at the most verbose level: the real gateway
//! logs at `trace` (pingora's own lines included) while it carries pages and forms holding
//! personal data both ways (plain and chunked bodies), and while an upstream and a client send
//! heads that do not parse with personal data behind them. Every captured line is searched for
//! that data, in every spelling a log line could give it; the capture must hold pingora's
//! `trace` and `debug` lines about those very bodies, so the search is not over an empty log.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use openid_gateway::config::LogFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits until the log holds `needle` (lines of tasks still ending), at most 10 s.
    async fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text().contains(needle) {
            assert!(Instant::now() < deadline, "the log never held {needle:?}:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

const PAGE_PHONE: &str = "13800138000";
const FORM_PHONE: &str = "13900139000";
const CHUNKED_FORM_PHONE: &str = "13600136000";
const BROKEN_HEAD_PHONE: &str = "13700137000";
const BAD_REQUEST_PHONE: &str = "13500135000";
const ADDRESS: &str = "88 Jianguo Road";
const FORM_ADDRESS: &str = "66 Renmin Road";
const CHINESE_ADDRESS: &str = "北京市朝阳区建国路88号";
const CHINESE_NAME: &str = "张三丰";
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";

/// The page the upstream shows, in two chunks.
fn page_chunks() -> [String; 2] {
    [
        format!("<p>Phone: {PAGE_PHONE}</p><p>Address: {ADDRESS}, {CHINESE_ADDRESS}</p>"),
        format!("<p>openid: {OPENID}</p><p>姓名: {CHINESE_NAME}</p>"),
    ]
}

/// An upstream that answers with raw bytes: a chunked page (`/page`), the same page with a
/// length (`/plain`), a form's receipt (`/form`), a head that does not parse followed by a
/// body (`/broken-head`), and a chunk longer than it said (`/broken-chunk`). Each connection
/// takes one request. Stopped on drop.
struct RawUpstream {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream));
            }
        });
        RawUpstream { addr, task }
    }
}

/// Reads one request (head and body) from `s`; returns its path.
async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let path = head.split(' ').nth(1)?.to_string();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
    let chunked = head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    loop {
        let body = &buf[head_end..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None => !chunked || body.ends_with(b"0\r\n\r\n"),
        };
        if complete {
            return Some(path);
        }
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn answer(mut s: TcpStream) {
    let Some(path) = read_request(&mut s).await else { return };
    let [first, second] = page_chunks();
    let reply = match path.as_str() {
        "/page" => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
            first.len(),
            second.len()
        ),
        "/plain" => {
            let body = format!("{first}{second}");
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        }
        "/form" => "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nreceived".to_string(),
        "/broken-head" => format!(
            "HTTP/1.1 200 OK\r\nThis Is Not A Header\r\nContent-Length: 18\r\n\r\nPhone: {BROKEN_HEAD_PHONE}"
        ),
        // Says 5 bytes, sends more: `QZ` stands where the chunk's CRLF should.
        "/broken-chunk" => {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nabcdeQZ-more\r\n0\r\n\r\n".to_string()
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
    };
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Writes `request` to the gateway as is and returns the whole answer.
async fn send(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.unwrap().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Every way a log line could spell `s`: as it is, and escaped as pingora escapes bytes
/// (`\xe5\x8c\x97`, `\u{5317}`).
fn spellings(s: &str) -> Vec<String> {
    vec![s.to_string(), s.as_bytes().escape_ascii().to_string(), s.escape_default().to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_their_parts_never_reach_a_log_line_at_trace() {
    let capture = Capture::default();
    openid_gateway::observe::logging::init_with(LogFormat::Text, "trace", Some(Box::new(capture.clone())))
        .expect("the only logger of this test");
    let upstream = RawUpstream::start().await;
    let h = Harness::with(Setup {
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n".into(),
        upstream_url: Some(format!("http://{}", upstream.addr)),
        ..Setup::default()
    })
    .await;
    let gw = h.gateway_addr;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n");

    // Pages with personal data reach the browser, chunked and with a length.
    for path in ["/page", "/plain"] {
        let answer = send(gw, &get(path)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains(PAGE_PHONE) && answer.contains(CHINESE_NAME),
            "{answer}"
        );
    }
    // Forms with personal data reach the upstream, with a length and chunked.
    let form =
        format!("name=Li+Lei&phone={FORM_PHONE}&address={}&alias={CHINESE_NAME}", FORM_ADDRESS.replace(' ', "+"));
    let posted = send(
        gw,
        &format!(
            "POST /form HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    assert!(posted.starts_with("HTTP/1.1 200") && posted.ends_with("received"), "{posted}");
    let part = format!("{{\"phone\":\"{CHUNKED_FORM_PHONE}\",");
    let rest = format!("\"address\":\"{FORM_ADDRESS}\",\"openid\":\"{OPENID}\"}}");
    let chunked = send(
        gw,
        &format!(
            "POST /form HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{part}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
            part.len(),
            rest.len()
        ),
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 200") && chunked.ends_with("received"), "{chunked}");
    // An upstream head that does not parse, a body behind it: pingora's error quotes both.
    let broken = send(gw, &get("/broken-head")).await;
    assert!(broken.starts_with("HTTP/1.1 502"), "{broken}");
    // A chunk longer than it said: pingora's error quotes the bytes where CRLF should be.
    send(gw, &get("/broken-chunk")).await;
    // A client head that does not parse, a body behind it, sent in one write.
    let bad = format!("phone={BAD_REQUEST_PHONE}&address={}", ADDRESS.replace(' ', "+"));
    let refused = send(
        gw,
        &format!(
            "POST /form HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nThis Is Not A Header\r\nContent-Length: {}\r\n\r\n{bad}",
            bad.len()
        ),
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");

    // Positive control: pingora logged about these very bodies, at trace and debug, and the
    // errors that quote bytes were logged without them.
    capture.wait_for("Invalid chunked encoding: [bytes not logged] was not CRLF").await;
    capture.wait_for("InvalidHTTPHeader context: Peer: addr: ").await;
    capture.wait_for("context: buf: [bytes not logged]").await;
    let logged = capture.text();
    let lines: Vec<&str> = logged.lines().collect();
    let pingora_at =
        |level: &str| lines.iter().filter(|l| l.split(' ').nth(1) == Some(level) && l.contains(" pingora")).count();
    assert!(pingora_at("TRACE") > 10 && pingora_at("DEBUG") > 10, "too few of pingora's lines:\n{logged}");
    for sign in [
        "pingora_core::protocols::http::v1::client Response body: ", // its size, at debug
        "pingora_core::protocols::http::v1::body Writing Body, size: ",
        "pingora_proxy::proxy_h1 Read ",
        "pingora_proxy Request header: ",
    ] {
        assert!(logged.contains(sign), "no {sign:?} line: the bodies went by unlogged\n{logged}");
    }

    let data = [
        PAGE_PHONE,
        FORM_PHONE,
        CHUNKED_FORM_PHONE,
        BROKEN_HEAD_PHONE,
        BAD_REQUEST_PHONE,
        ADDRESS,
        FORM_ADDRESS,
        "Renmin+Road",
        "Jianguo+Road",
        CHINESE_ADDRESS,
        CHINESE_NAME,
        OPENID,
        "Li+Lei",
        "QZ was not",
    ];
    for item in data {
        for spelling in spellings(item) {
            let found: Vec<&&str> = lines.iter().filter(|l| l.contains(spelling.as_str())).collect();
            assert!(
                found.is_empty(),
                "{spelling:?} reached the log:\n{}",
                found.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n")
            );
        }
    }
}
