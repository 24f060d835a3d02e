//! Hardening, as an attacker meets the gateway: path spellings that try to walk around a
//! required route, refused paths, slow and idle clients, stalled and missing upstreams, size
//! caps, made-up codes on one login, login rate limits and header hygiene. Requests whose
//! spelling matters go out on raw sockets: a client library would normalise them first.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError, TestRng, TestRunner};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `/` needs a login except under `/static`; `/pub` is public.
const ROUTES: &str = "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\
                      public_paths = [\"/static\"]\n\n\
                      [[routes]]\npath = \"/pub\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n";

/// No raw exchange in this file may take longer than this.
const LIMIT: Duration = Duration::from_secs(5);

fn setup(tables: &str) -> Setup {
    Setup { routes: ROUTES.into(), tables: tables.into(), ..Setup::default() }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 on a socket.

/// One response as read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads once more into `buf`; false at the end of the stream or on an error.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match r.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Reads until `buf` holds at least `n` bytes; false if the stream ends first.
async fn fill_to<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>, n: usize) -> bool {
    while buf.len() < n {
        if !fill(r, buf).await {
            return false;
        }
    }
    true
}

/// Reads until `buf` contains `pattern`; the index just past its first occurrence.
async fn fill_until<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>, pattern: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = find(buf, pattern) {
            return Some(i + pattern.len());
        }
        if !fill(r, buf).await {
            return None;
        }
    }
}

/// Reads the body framed by `head` off `r` (what `buf` already holds first): `Content-Length`,
/// chunked, or (`to_eof`, for a response) up to the end of the stream. Also says whether it
/// came whole.
async fn read_body<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>, head: &str, to_eof: bool) -> (Vec<u8>, bool) {
    let lower = head.to_ascii_lowercase();
    let field = |name: &str| {
        lower.lines().skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim()))
    };
    if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let Some(end) = fill_until(r, buf, b"\r\n").await else { return (body, false) };
            let line = String::from_utf8_lossy(&buf[..end - 2]).into_owned();
            buf.drain(..end);
            let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16) else {
                return (body, false);
            };
            if size == 0 {
                // Trailer fields up to the empty line.
                loop {
                    let Some(end) = fill_until(r, buf, b"\r\n").await else { return (body, false) };
                    buf.drain(..end);
                    if end == 2 {
                        return (body, true);
                    }
                }
            }
            if !fill_to(r, buf, size + 2).await {
                body.append(buf);
                return (body, false);
            }
            body.extend(buf.drain(..size));
            buf.drain(..2);
        }
    }
    if let Some(n) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let whole = fill_to(r, buf, n).await;
        let n = n.min(buf.len());
        return (buf.drain(..n).collect(), whole);
    }
    if to_eof {
        while fill(r, buf).await {}
        return (std::mem::take(buf), true);
    }
    (Vec::new(), true)
}

/// Reads one response; `None` when the connection ends (or breaks) before a whole one.
async fn read_response<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Option<Raw> {
    let end = fill_until(r, buf, b"\r\n\r\n").await?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let (body, whole) = read_body(r, buf, &head, true).await;
    whole.then_some(Raw { status, head, body })
}

/// A raw client connection, keeping whatever it read past the last response.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        Conn { stream: TcpStream::connect(addr).await.expect("connect to the gateway"), buf: Vec::new() }
    }

    /// Writes `bytes` as they are; a gateway that already answered and closed may refuse them.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    async fn response(&mut self) -> Option<Raw> {
        tokio::time::timeout(LIMIT, read_response(&mut self.stream, &mut self.buf)).await.expect("no answer within 5 s")
    }
}

/// Sends `request` on a connection of its own and reads the answer.
async fn send_raw(addr: SocketAddr, request: &str) -> Option<Raw> {
    let mut c = Conn::open(addr).await;
    c.send(request.as_bytes()).await;
    c.response().await
}

/// A GET of `target`, written exactly so, from WeChat with no cookie, accepting `accept`;
/// `extra` are more header lines, each ending in CRLF.
fn get_as(target: &str, accept: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUser-Agent: {WECHAT_UA}\r\nAccept: {accept}\r\n\
         Connection: close\r\n{extra}\r\n"
    )
}

/// A page navigation to `target`, written exactly so, from WeChat with no cookie.
fn get(target: &str) -> String {
    get_as(target, NAV_ACCEPT, "")
}

/// Sends `target` raw and insists on an answer.
async fn fetch_raw(h: &Harness, target: &str) -> Raw {
    send_raw(h.gateway_addr, &get(target)).await.unwrap_or_else(|| panic!("{target}: no answer"))
}

/// `path` is `prefix` or below it, segment-wise.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// The way into the login for a page with no session: a redirect to WeChat, or (routes that
/// keep the fragment, the default) the small page that sends the browser to the login.
fn is_login_way(r: &Raw, authorize: &str) -> bool {
    match r.status {
        302 => r.header("location").unwrap_or("").starts_with(authorize),
        200 => r.text().contains("/.gateway/login?return=") && !r.text().starts_with("upstream saw"),
        _ => false,
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).map(|v| v.to_str().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Hand-written upstreams.

/// What the body-reading upstream received: the target, the body bytes, whether it came whole.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    body: usize,
    complete: bool,
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// An upstream that reads each request with its body (length or chunked) before answering
/// `200 ok`, and records it; a body cut short is recorded as incomplete.
async fn body_upstream() -> (String, Log<Got>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log<Got> = Arc::default();
    let record = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(end) = fill_until(&mut stream, &mut buf, b"\r\n\r\n").await {
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    let (body, complete) = read_body(&mut stream, &mut buf, &head, false).await;
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    record.lock().unwrap().push(Got { path, body: body.len(), complete });
                    if !complete || stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, log)
}

/// An upstream that accepts connections and reads the request head, then never answers; it
/// records each head it read.
async fn stalled_upstream() -> (String, Log<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log<String> = Arc::default();
    let record = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                if let Some(end) = fill_until(&mut stream, &mut buf, b"\r\n\r\n").await {
                    record.lock().unwrap().push(String::from_utf8_lossy(&buf[..end]).into_owned());
                }
                // Hold the connection, silent, until the gateway gives up on it.
                while fill(&mut stream, &mut buf).await {}
            });
        }
    });
    (url, log)
}

/// `http://127.0.0.1:<port>` where nothing listens (bound, then let go).
fn refused_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// 1. Walk-arounds.

/// Every spelling that a backend might resolve to a required path, sent with no session, and
/// the path it means once canonical (where the gateway does not refuse it outright).
const WALK_AROUNDS: [(&str, &str); 11] = [
    ("/static/../admin", "/admin"),
    ("/static/%2e%2e/admin", "/admin"),
    ("/static/.%2e/admin", "/admin"),
    ("/pub/%2e%2e/secret", "/secret"),
    ("/pub/%2E%2E/secret", "/secret"),
    ("/pub/..%2fsecret", "/secret"),
    ("/pub/..%5csecret", "/secret"),
    ("/pub\\..\\secret", "/secret"),
    ("/pub/..;/secret", "/secret"),
    ("/pub//..//secret", "/secret"),
    ("http://gw.test/pub/../secret", "/secret"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_spelling_walks_around_a_required_route() {
    let h = Harness::with(setup("[rate_limit]\nlogin_per_minute = 0\n")).await;
    let authorize = h.mock_url("/connect/oauth2/authorize?");

    // Public paths reach the upstream, in canonical form, the query exactly as sent.
    for (sent, arrived) in [
        ("/static/app.js", "/static/app.js"),
        ("/pub/x", "/pub/x"),
        ("/static/./app.js", "/static/app.js"),
        ("/static/%61pp.js", "/static/app.js"),
        ("/pub/x?a=%2e%2e&b=..%2f", "/pub/x?a=%2e%2e&b=..%2f"),
    ] {
        let r = fetch_raw(&h, sent).await;
        assert_eq!(r.status, 200, "{sent}: {}", r.text());
        let seen = h.upstream.last();
        assert_eq!(seen.path, arrived, "{sent}");
        assert!(header(&seen, "x-openid-token").is_none(), "{sent}: no session, no token");
    }
    // A required path is not served without a session: the way into the login instead.
    let before = h.upstream.seen().len();
    let r = fetch_raw(&h, "/admin").await;
    assert!(is_login_way(&r, &authorize), "{} {:?} {}", r.status, r.header("location"), r.text());
    assert_eq!(h.upstream.seen().len(), before);

    for (attack, meant) in WALK_AROUNDS {
        let r = fetch_raw(&h, attack).await;
        if r.status == 400 {
            assert!(r.text().contains("请求无效"), "{attack}: {}", r.text());
        } else {
            assert!(is_login_way(&r, &authorize), "{attack}: {} {:?} {}", r.status, r.header("location"), r.text());
            if r.status == 200 {
                let back = format!("/.gateway/login?return={}", meant.replace('/', "%2F"));
                assert!(r.text().contains(&back), "{attack}: the login returns to {meant}: {}", r.text());
            }
        }
        let seen = h.upstream.seen();
        assert_eq!(seen.len(), before, "{attack} reached the upstream as {:?}", seen.last().map(|s| &s.path));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Refusals.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_paths_get_a_page_or_json_and_escaped_slashes_follow_the_setting() {
    let h = Harness::with(setup("")).await;
    assert_eq!(fetch_raw(&h, "/pub/ax").await.status, 200);

    let page = fetch_raw(&h, "/pub/%2fx").await;
    assert_eq!(page.status, 400, "{}", page.text());
    assert!(page.header("content-type").unwrap_or("").starts_with("text/html"), "{}", page.head);
    assert!(page.text().contains("请求无效"), "{}", page.text());
    let api = send_raw(h.gateway_addr, &get_as("/pub/%2fx", "application/json", "")).await.expect("an answer");
    assert_eq!(api.status, 400);
    assert_eq!(api.json()["error"], "bad_request", "{}", api.text());
    assert_eq!(h.upstream.seen().len(), 1, "only the control reached the upstream");

    let keep = Harness::with(setup("[paths]\nescaped_slashes = \"keep\"\n")).await;
    assert_eq!(fetch_raw(&keep, "/pub/a%2fb").await.status, 200);
    assert_eq!(keep.upstream.last().path, "/pub/a%2Fb");

    let unescape = Harness::with(setup("[paths]\nescaped_slashes = \"unescape\"\n")).await;
    assert_eq!(fetch_raw(&unescape, "/pub/a%2fb").await.status, 200);
    assert_eq!(unescape.upstream.last().path, "/pub/a/b");
    // Unescaped slashes take part in dot segments: no way around the required route either.
    let r = fetch_raw(&unescape, "/pub/..%2fsecret").await;
    assert!(is_login_way(&r, &unescape.mock_url("/connect/oauth2/authorize?")), "{} {}", r.status, r.text());
    assert_eq!(unescape.upstream.seen().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Header timeout.

/// Starts a request header and then trickles one byte every 300 ms, never finishing it.
/// Returns what the gateway sent, how long after the first bytes the connection ended, and
/// whether it did end within [`LIMIT`].
async fn trickle(addr: SocketAddr) -> (Vec<u8>, Duration, bool) {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    wr.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if wr.write_all(b"s").await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let ended = tokio::time::timeout(LIMIT, async { while fill(&mut rd, &mut got).await {} }).await.is_ok();
    let elapsed = started.elapsed();
    writer.abort();
    (got, elapsed, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_sent_a_byte_at_a_time_gets_408_and_others_are_served_meanwhile() {
    let h = Harness::with(setup("[limits]\nheader_timeout = \"1s\"\n")).await;
    assert_eq!(fetch_raw(&h, "/pub/x").await.status, 200);

    let slow = tokio::spawn(trickle(h.gateway_addr));
    let r = fetch_raw(&h, "/pub/x").await;
    assert_eq!(r.status, 200, "another connection is served while the slow one trickles");
    assert!(!slow.is_finished(), "the normal request was served while the slow one was pending");

    let (got, elapsed, ended) = slow.await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "after {elapsed:?}: {text:?}");
    assert!(text.contains("请求超时"), "{text}");
    assert!(ended, "the connection was not closed after the 408");
    assert!(elapsed >= Duration::from_millis(900), "408 before the header timeout: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "408 too late: {elapsed:?}");
    assert_eq!(h.upstream.seen().len(), 2, "the trickled request never reached the upstream");
}

// ---------------------------------------------------------------------------------------------
// 4. Keep-alive idle timeout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    let h = Harness::with(setup("[limits]\nkeepalive_timeout = \"1s\"\n")).await;
    let request = format!("GET /pub/x HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUser-Agent: {WECHAT_UA}\r\n\r\n");
    let mut c = Conn::open(h.gateway_addr).await;
    assert!(c.send(request.as_bytes()).await);
    assert_eq!(c.response().await.expect("first answer").status, 200);
    // Positive control: a request right after the first answer is answered on the same connection.
    assert!(c.send(request.as_bytes()).await);
    assert_eq!(c.response().await.expect("the connection is kept alive").status, 200);
    assert_eq!(h.upstream.seen().len(), 2);

    let idle = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(LIMIT, c.stream.read(&mut byte)).await;
    let elapsed = idle.elapsed();
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "still open after {elapsed:?}: {read:?}");
    assert!(elapsed >= Duration::from_millis(800), "closed before the keep-alive timeout: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "closed too late: {elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Stalled and missing upstreams.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upstream_gets_504_and_a_missing_one_502() {
    let (stalled, heads) = stalled_upstream().await;
    let routes = format!(
        "{ROUTES}\n[[routes]]\npath = \"/slow\"\nupstream = \"{stalled}\"\naudience = \"shop\"\npolicy = \"public\"\n\
         read_timeout = \"1s\"\n\n\
         [[routes]]\npath = \"/down\"\nupstream = \"{}\"\naudience = \"shop\"\npolicy = \"public\"\n\
         connect_timeout = \"1s\"\n",
        refused_url()
    );
    let h = Harness::with(Setup { routes, ..Setup::default() }).await;
    assert_eq!(fetch_raw(&h, "/pub/x").await.status, 200, "a working upstream answers");

    let started = Instant::now();
    let r = fetch_raw(&h, "/slow/page").await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("服务响应超时"), "{}", r.text());
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        heads.lock().unwrap().iter().any(|h| h.starts_with("GET /slow/page ")),
        "the stalled upstream got the request: {:?}",
        heads.lock().unwrap()
    );

    let started = Instant::now();
    let api = send_raw(h.gateway_addr, &get_as("/slow/api", "application/json", "")).await.expect("an answer");
    assert_eq!(api.status, 504);
    assert_eq!(api.json()["error"], "gateway_timeout", "{}", api.text());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    let started = Instant::now();
    let r = fetch_raw(&h, "/down/page").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("服务暂时不可用"), "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 6. Size caps.

fn post(target: &str, framing: &str) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUser-Agent: {WECHAT_UA}\r\nAccept: */*\r\n\
         Connection: close\r\n{framing}\r\n"
    )
}

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_url_and_body_caps() {
    let (bodies_url, bodies) = body_upstream().await;
    let routes = format!(
        "{ROUTES}\n[[routes]]\npath = \"/upload\"\nupstream = \"{bodies_url}\"\naudience = \"shop\"\n\
         policy = \"public\"\nmax_body = \"1KiB\"\n"
    );
    let tables = "[limits]\nmax_headers = 20\nmax_header_bytes = \"4KiB\"\nmax_url_bytes = \"1KiB\"\n";
    let h = Harness::with(Setup { routes, tables: tables.into(), ..Setup::default() }).await;
    let addr = h.gateway_addr;
    let fields = |n: usize| (0..n).map(|i| format!("X-Filler-{i}: v\r\n")).collect::<String>();

    // Header count (the request has 4 fields of its own).
    let ok = send_raw(addr, &get_as("/pub/x", NAV_ACCEPT, &fields(15))).await.expect("an answer");
    assert_eq!(ok.status, 200, "19 fields pass");
    let many = send_raw(addr, &get_as("/pub/x", NAV_ACCEPT, &fields(26))).await.expect("an answer");
    assert_eq!(many.status, 431, "30 fields: {}", many.text());

    // Header bytes.
    let cookie = |n: usize| format!("Cookie: a={}\r\n", "x".repeat(n));
    let ok = send_raw(addr, &get_as("/pub/x", NAV_ACCEPT, &cookie(3000))).await.expect("an answer");
    assert_eq!(ok.status, 200, "a 3000-byte cookie passes");
    let big = send_raw(addr, &get_as("/pub/x", NAV_ACCEPT, &cookie(5000))).await.expect("an answer");
    assert_eq!(big.status, 431, "{}", big.text());
    assert!(big.text().contains("请求头过大"), "{}", big.text());

    // Target length.
    let path = |n: usize| format!("/pub/{}", "a".repeat(n - 5));
    assert_eq!(fetch_raw(&h, &path(900)).await.status, 200, "a 900-byte path passes");
    assert_eq!(h.upstream.last().path.len(), 900);
    let long = fetch_raw(&h, &path(2000)).await;
    assert_eq!(long.status, 414, "{}", long.text());
    assert_eq!(h.upstream.seen().len(), 3, "only the three controls reached the upstream");

    // Bodies: 500 bytes pass whole.
    let mut c = Conn::open(addr).await;
    c.send(format!("{}{}", post("/upload", "Content-Length: 500\r\n"), "b".repeat(500)).as_bytes()).await;
    let r = c.response().await.expect("an answer");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let got = bodies.lock().unwrap().clone();
    assert!(matches!(got.as_slice(), [Got { body: 500, complete: true, .. }]), "{got:?}");

    // A declared 2000 bytes: refused before the body is even sent.
    let r = send_raw(addr, &post("/upload", "Content-Length: 2000\r\n")).await.expect("an answer");
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(bodies.lock().unwrap().len(), 1, "the upstream never saw it");

    // 4000 bytes chunked: the count stops it on the way.
    let mut c = Conn::open(addr).await;
    c.send(post("/upload", "Transfer-Encoding: chunked\r\n").as_bytes()).await;
    c.send(&chunked(&[b'c'; 4000], 1000)).await;
    if let Some(r) = c.response().await {
        assert_eq!(r.status, 413, "{}", r.text());
    }
    let got = bodies.lock().unwrap().clone();
    assert!(!got.iter().any(|g| g.complete && g.body > 1024), "a whole oversized body reached the upstream: {got:?}");
    assert!(got.iter().all(|g| g.path == "/upload"), "{got:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. One login cookie, one exchange.

/// Presents `n` made-up codes at once, each with `cookie` (one login cookie) and `state`.
async fn made_up_callbacks(h: &Harness, cookie: &str, state: &str, n: usize) -> Vec<(u16, String)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(WECHAT_UA)
        .resolve(PUBLIC_HOST, h.gateway_addr)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let request = client
                .get(h.url(&format!("/.gateway/callback?code=fake{i}&state={state}")))
                .header("cookie", cookie)
                .header("accept", NAV_ACCEPT);
            tokio::spawn(async move {
                let resp = request.send().await.expect("a callback answer");
                (resp.status().as_u16(), resp.text().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn state_of(callback: &str) -> String {
    let url = url::Url::parse(callback).unwrap();
    url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).expect("a state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_cookie_buys_one_exchange() {
    let h = Harness::with(Setup { tables: "[rate_limit]\ncallback_per_minute = 0\n".into(), ..Setup::default() }).await;

    // Positive control: the browser's real code logs it in, with one exchange.
    let a = h.browser();
    let cb = a.callback_url(&h.url("/orders")).await;
    let cookie = a.cookies("/.gateway/callback");
    assert!(cookie.contains("ogw_login="), "{cookie}");
    let p = a.get(&cb).await;
    assert_eq!((p.status, p.location()), (302, "/orders#"), "{}", p.body);
    assert!(p.set_cookies().iter().any(|c| c.starts_with("ogw_session=")));
    assert_eq!(h.mock.stats().exchanges, 1);

    // The same login cookie with 300 made-up codes: pages, and no further exchange.
    for (status, body) in made_up_callbacks(&h, &cookie, &state_of(&cb), 300).await {
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(h.mock.stats().exchanges, 1, "made-up codes were exchanged at WeChat");

    // Made-up codes first, on a fresh login: at most one of them costs an exchange.
    let b = h.browser();
    let cb = b.callback_url(&h.url("/orders")).await;
    let cookie = b.cookies("/.gateway/callback");
    for (status, body) in made_up_callbacks(&h, &cookie, &state_of(&cb), 300).await {
        assert_eq!(status, 400, "{body}");
    }
    assert!(h.mock.stats().exchanges <= 2, "{} exchanges", h.mock.stats().exchanges);
    let spent = h.mock.stats().exchanges;
    // That login has bought its exchange: its real code now gets a page, not WeChat's time.
    let p = b.get(&cb).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert_eq!(h.mock.stats().exchanges, spent);
    // A new login works.
    let pages = b.walk(&h.url("/orders")).await;
    assert_eq!(pages.last().unwrap().status, 200, "{:?}", pages.last());
    assert_eq!(h.mock.stats().exchanges, spent + 1);
}

// ---------------------------------------------------------------------------------------------
// 8. Login rate limit.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_starts_are_rate_limited_per_address() {
    let tables = "[rate_limit]\nlogin_per_minute = 5\nburst = 5\n";
    let h = Harness::with(Setup { tables: tables.into(), ..Setup::default() }).await;
    let login = h.url("/.gateway/login?return=/");
    let authorize = h.mock_url("/connect/oauth2/authorize?");
    for i in 0..5 {
        let p = h.browser().get(&login).await;
        assert_eq!(p.status, 302, "login {i}: {}", p.body);
        assert!(p.location().starts_with(&authorize), "login {i}: {}", p.location());
    }
    let p = h.browser().get(&login).await;
    assert_eq!(p.status, 429, "{}", p.body);
    let wait: u64 = p.headers.get("retry-after").expect("retry-after").to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(p.body.contains(&format!("{wait} 秒")), "{}", p.body);
    assert!(p.location().is_empty());

    let api = h.browser().get_with(&login, &[("accept", "application/json")]).await;
    assert_eq!(api.status, 429);
    assert!(api.headers.get("retry-after").is_some());
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["error"], "too_many_requests", "{}", api.body);
    assert_eq!(h.mock.stats().authorizes, 0, "nobody followed the redirects");
}

// ---------------------------------------------------------------------------------------------
// 9. Header hygiene.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_connection_and_forwarding_headers_do_not_reach_the_upstream() {
    let h = Harness::with(setup("")).await;
    assert_eq!(fetch_raw(&h, "/pub/x").await.status, 200);
    assert_eq!(header(&h.upstream.last(), "x-forwarded-for"), Some("127.0.0.1"));

    let crafted = format!(
        "GET /pub/x HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUser-Agent: {WECHAT_UA}\r\nAccept: {NAV_ACCEPT}\r\n\
         Connection: keep-alive, X-Forwarded-For, X-Openid-Token\r\n\
         X-Forwarded-For: 6.6.6.6\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n\
         Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Openid-Token: forged\r\n\r\n"
    );
    let r = send_raw(h.gateway_addr, &crafted).await.expect("answered, not dropped");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = h.upstream.last();
    assert_eq!(seen.path, "/pub/x");
    assert_eq!(header(&seen, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(header(&seen, "x-real-ip"), Some("127.0.0.1"));
    let forwarded = header(&seen, "forwarded").expect("a Forwarded header");
    assert!(!forwarded.contains("6.6.6.6") && forwarded.contains("for=127.0.0.1"), "{forwarded}");
    assert!(header(&seen, "x-original-url").is_none() && header(&seen, "x-rewrite-url").is_none(), "{seen:?}");
    assert!(header(&seen, "x-openid-token").is_none(), "no session, no token, no forgery");

    // Logged in, a Connection naming the identity header does not take the token away.
    let b = h.browser();
    let pages = b.walk(&h.url("/")).await;
    assert_eq!(pages.last().unwrap().status, 200);
    assert!(header(&h.upstream.last(), "x-openid-token").is_some());
    let p = b.get_with(&h.url("/pub/x"), &[("connection", "X-Openid-Token")]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let seen = h.upstream.last();
    assert_eq!(seen.path, "/pub/x");
    assert!(header(&seen, "x-openid-token").is_some_and(|t| t.starts_with("eyJ")), "{seen:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. Property: nothing under a required path reaches the upstream.

const PIECES: &[&str] = &[
    "/static", "/pub", "/admin", "/secret", "/", "..", ".", "%2e", "%2E%2e", ".%2e", "%2f", "%5c", ";", "..;", "//",
    "x",
];

/// Raw paths joined from [`PIECES`], starting with `/`.
fn raw_paths() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..8).prop_map(|pieces| {
        let joined = pieces.concat();
        if joined.starts_with('/') {
            joined
        } else {
            format!("/{joined}")
        }
    })
}

/// Sends `path` raw with no session; whatever reached the upstream is public and tokenless.
async fn only_public_paths_pass(h: &Harness, authorize: &str, path: &str) -> Result<(), TestCaseError> {
    let before = h.upstream.seen().len();
    let r = send_raw(h.gateway_addr, &get(path)).await;
    let seen = h.upstream.seen();
    for s in &seen[before..] {
        let p = s.path.split('?').next().unwrap_or("");
        prop_assert!(under(p, "/static") || under(p, "/pub"), "{:?} reached the upstream as {:?}", path, s.path);
        prop_assert!(header(s, "x-openid-token").is_none(), "{:?} carried a token", path);
    }
    let r = r.ok_or_else(|| TestCaseError::fail(format!("{path:?}: no answer")))?;
    let reached = seen.len() > before;
    let served = r.status == 200 && r.text().starts_with("upstream saw");
    prop_assert_eq!(served, reached, "{:?}: {} {}", path, r.status, r.text());
    prop_assert!(
        served || r.status == 400 || is_login_way(&r, authorize),
        "{:?}: neither served, refused nor sent to login: {} {}",
        path,
        r.status,
        r.text()
    );
    Ok(())
}

#[test]
fn property_no_raw_path_reaches_a_required_route_without_a_session() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let h = rt.block_on(Harness::with(setup("[rate_limit]\nlogin_per_minute = 0\n")));
    let authorize = h.mock_url("/connect/oauth2/authorize?");
    // Controls: public paths pass, a required one does not.
    rt.block_on(async {
        assert_eq!(fetch_raw(&h, "/static/x").await.status, 200);
        assert_eq!(fetch_raw(&h, "/pub/x").await.status, 200);
        assert!(is_login_way(&fetch_raw(&h, "/admin").await, &authorize));
        assert_eq!(h.upstream.seen().len(), 2);
    });
    let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(64) };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&raw_paths(), |path| rt.block_on(only_public_paths_pass(&h, &authorize, &path)));
    if let Err(e) = result {
        panic!("{e}");
    }
    drop(h);
}
