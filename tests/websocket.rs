//! WebSocket through the gateway, with a real echo upstream and a real client: the upgrade is
//! authenticated like any request on a required route and reaches the app with the identity
//! header; frames then flow both ways, large ones intact, for as long as the socket lives.
//!
//! Both ends speak tungstenite, the protocol engine of tokio-tungstenite (re-exported by it),
//! in its blocking form on threads of their own: the async `WebSocketStream` is only usable
//! through the `futures` `Sink`/`Stream` traits, and no `futures` crate is a dev-dependency.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use http::{HeaderMap, HeaderName, HeaderValue};
use openid_gateway::config::TokenConfig;
use openid_gateway::token::TokenVerifier;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::{client, server, HandshakeError};
use tokio_tungstenite::tungstenite::{self, Error as WsError, Message, WebSocket};

/// `/` needs a login (`/live` too, without the fragment-keeping page), `/capped` as well with
/// a 64 KiB body cap, `/quiet` and `/brief` with an upstream allowed 5 minutes and 1 second of
/// silence, and `/public` does not. Every route goes to the echo upstream.
const ROUTES: &str = "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\n\
                      [[routes]]\npath = \"/quiet\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\
                      read_timeout = \"5m\"\n\n\
                      [[routes]]\npath = \"/brief\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\
                      read_timeout = \"1s\"\n\n\
                      [[routes]]\npath = \"/live\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\
                      keep_fragment = false\n\n\
                      [[routes]]\npath = \"/capped\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\
                      max_body = \"64KiB\"\n\n\
                      [[routes]]\npath = \"/public\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n";

/// The first frame the upstream sends on every socket, before it has read anything.
const WELCOME: &str = "welcome";

/// No read in this file waits longer than this for the other side.
const STALL: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The echo upstream.

/// A WebSocket app: records each upgrade request it accepts, sends [`WELCOME`], then echoes
/// every text and binary frame until the socket closes.
#[derive(Clone, Default)]
struct Echo {
    /// TCP connections accepted, upgrades or not.
    connections: Arc<AtomicUsize>,
    /// The headers of every upgrade request accepted.
    upgrades: Arc<Mutex<Vec<HeaderMap>>>,
    /// Close frames received from a client (through the gateway).
    closes: Arc<AtomicUsize>,
}

impl Echo {
    /// Starts the app on `127.0.0.1:0` and returns it with its `http://` URL.
    fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let echo = Echo::default();
        let app = echo.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                app.connections.fetch_add(1, Ordering::SeqCst);
                let app = app.clone();
                std::thread::spawn(move || app.serve(stream));
            }
        });
        (echo, url)
    }

    fn serve(&self, stream: TcpStream) {
        let upgrades = self.upgrades.clone();
        // The error type is tungstenite's callback contract, not ours to shrink.
        #[allow(clippy::result_large_err)]
        let record = move |req: &server::Request, resp: server::Response| {
            upgrades.lock().unwrap().push(req.headers().clone());
            Ok(resp)
        };
        let Ok(mut ws) = tungstenite::accept_hdr(stream, record) else { return };
        if ws.send(Message::text(WELCOME)).is_err() {
            return;
        }
        loop {
            match ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    if ws.send(m).is_err() {
                        return;
                    }
                }
                Ok(Message::Close(_)) => {
                    self.closes.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn last_upgrade(&self) -> HeaderMap {
        self.upgrades.lock().unwrap().last().cloned().expect("the upstream accepted no upgrade")
    }
}

async fn harness(tables: &str) -> (Harness, Echo) {
    let (echo, url) = Echo::start();
    let setup = Setup { routes: ROUTES.into(), tables: tables.into(), upstream_url: Some(url), ..Setup::default() };
    (Harness::with(setup).await, echo)
}

// ---------------------------------------------------------------------------------------------
// The client.

type Ws = WebSocket<TcpStream>;

/// Logs a WeChat browser in through `/chat` (stopping before the app's page, so the upstream
/// sees nothing) and returns the `Cookie` header it would send to `/chat`.
async fn log_in(h: &Harness) -> String {
    let b = h.browser();
    let app = h.url("/chat");
    let pages = b.walk_until(&app, |u| u.starts_with(&app)).await;
    let cookies = b.cookies("/chat");
    assert!(
        cookie_value(&cookies, "ogw_session").is_some(),
        "no session after the login: {:?}",
        pages.iter().map(|p| (p.status, &p.url)).collect::<Vec<_>>()
    );
    cookies
}

/// What `new WebSocket("ws://gw.test<path>")` in a WeChat page sends, plus `extra`.
fn upgrade(path: &str, extra: &[(&str, &str)]) -> client::Request {
    let origin = format!("http://{PUBLIC_HOST}");
    let browser = [("user-agent", WECHAT_UA), ("origin", &origin), ("sec-fetch-mode", "websocket")];
    upgrade_with(path, &browser.into_iter().chain(extra.iter().copied()).collect::<Vec<_>>())
}

/// The bare upgrade request for `ws://gw.test<path>` (Host, Connection, Upgrade, key and
/// version), plus `headers`.
fn upgrade_with(path: &str, headers: &[(&str, &str)]) -> client::Request {
    let mut req = format!("ws://{PUBLIC_HOST}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    req
}

/// Opens `req` on a new connection to the gateway: the socket, or the handshake's error
/// (`WsError::Http` carries the gateway's answer when it was not a 101).
fn open(gateway: SocketAddr, req: client::Request) -> Result<Ws, WsError> {
    let tcp = TcpStream::connect(gateway).unwrap();
    tcp.set_read_timeout(Some(STALL)).unwrap();
    match tungstenite::client(req, tcp) {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => panic!("the gateway did not answer the upgrade within {STALL:?}"),
    }
}

/// [`open`] that must succeed, and the upstream's [`WELCOME`] read off it.
fn open_ok(gateway: SocketAddr, req: client::Request) -> Ws {
    let mut ws = open(gateway, req).unwrap_or_else(|e| panic!("the upgrade was refused: {}", describe(&e)));
    assert_eq!(next_data(&mut ws, "the welcome"), Message::text(WELCOME), "the upstream pushes first");
    ws
}

fn describe(e: &WsError) -> String {
    match e {
        WsError::Http(resp) => format!(
            "HTTP {} {:?} {}",
            resp.status(),
            resp.headers(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).chars().take(120).collect::<String>()
        ),
        e => e.to_string(),
    }
}

/// The next text or binary message; `what` names it in the failure.
fn next_data(ws: &mut Ws, what: &str) -> Message {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => return m,
            Ok(Message::Close(c)) => panic!("{what}: the socket was closed instead: {c:?}"),
            Ok(_) => {}
            Err(e) => panic!("{what}: no message, the socket failed: {e}"),
        }
    }
}

/// Sends `msg` and checks that the same message comes back, byte for byte.
fn round_trip(ws: &mut Ws, msg: Message, what: &str) {
    ws.send(msg.clone()).unwrap_or_else(|e| panic!("{what}: sending failed: {e}"));
    let got = next_data(ws, what);
    assert!(got == msg, "{what}: {} bytes sent, {} different bytes back", msg.len(), got.len());
}

/// Closes from the client's side and checks the close handshake completes through the gateway.
fn close(mut ws: Ws) {
    ws.close(None).unwrap();
    let mut answered = false;
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => answered = true,
            Ok(_) => {}
            Err(WsError::ConnectionClosed) => break,
            Err(e) => panic!("the close handshake failed: {e}"),
        }
    }
    assert!(answered, "the close frame was not answered");
}

/// `n` bytes that are not all alike, so a shifted or truncated copy cannot pass.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8 ^ seed).collect()
}

/// Runs blocking socket work off the runtime that serves the gateway.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn shop_verifier() -> TokenVerifier {
    let cfg = TokenConfig { issuer: "https://issuer.test".into(), ..hs256_token_config() };
    TokenVerifier::new(&cfg, "shop").unwrap()
}

/// Header names a backend could take for the identity header (any case, `_` for `-`).
fn identity_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| k.as_str().replace('_', "-") == "x-openid-token")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. With a session: the identity on the upgrade, frames both ways, a clean close.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_socket_carries_the_identity_and_echoes_every_frame() {
    let (h, echo) = harness("").await;
    let cookies = log_in(&h).await;
    assert_eq!(echo.connections(), 0, "the login never reached the app");

    let cookie = format!("{cookies}; theme=dark");
    let forged = [("cookie", cookie.as_str()), ("x-openid-token", "forged.by.client"), ("x_openid_token", "forged")];
    let req = upgrade("/chat/room?id=7", &forged);
    let gw = h.gateway_addr;
    blocking(move || {
        let mut ws = open_ok(gw, req);
        round_trip(&mut ws, Message::text("hello"), "a short text");
        round_trip(&mut ws, Message::text("你好，微信用户 👋"), "a UTF-8 text");
        round_trip(&mut ws, Message::binary(vec![0u8, 1, 2, 0xff, 0]), "a short binary");
        round_trip(&mut ws, Message::binary(Vec::new()), "an empty binary");
        round_trip(&mut ws, Message::binary(pattern(1 << 20, 1)), "a 1 MiB binary");
        round_trip(&mut ws, Message::text("x".repeat(256 << 10)), "a 256 KiB text");
        // Several frames in flight at once come back in order.
        let burst: Vec<Message> = (0..20).map(|i| Message::binary(pattern(1000 + i * 37, i as u8))).collect();
        for m in &burst {
            ws.send(m.clone()).unwrap();
        }
        for (i, m) in burst.iter().enumerate() {
            assert!(next_data(&mut ws, "a burst frame") == *m, "burst frame {i} came back altered or out of order");
        }
        close(ws);
    })
    .await;

    // The upgrade request as the app received it.
    assert_eq!(echo.connections(), 1);
    let seen = echo.last_upgrade();
    let ids = identity_headers(&seen);
    assert_eq!(ids.len(), 1, "exactly one identity header, the gateway's: {ids:?}");
    assert_eq!(ids[0].0, "x-openid-token");
    let claims = shop_verifier()
        .verify(&ids[0].1)
        .unwrap_or_else(|e| panic!("the upgrade's token does not verify ({e:?}): {}", ids[0].1));
    assert_eq!(claims.sub, h.mock.openid_for("alice"));
    assert_eq!(claims.appid, APPID);
    let cookie = seen.get("cookie").map(|v| v.to_str().unwrap()).unwrap_or_default();
    assert_eq!(cookie, "theme=dark", "the app's own cookie stays, the gateway's go");
    assert_eq!(seen.get("upgrade").map(|v| v.to_str().unwrap().to_ascii_lowercase()).as_deref(), Some("websocket"));
    assert!(seen.get("sec-websocket-key").is_some());
    assert!(seen.get("x-request-id").is_some() && seen.get("x-forwarded-for").is_some());

    // The close frame the client got back was the app's answer to its own: end to end.
    assert_eq!(echo.closes.load(Ordering::SeqCst), 1, "the app never saw the client's close frame");
}

// ---------------------------------------------------------------------------------------------
// 2. Without a session, the upgrade never reaches the app; a client's token never does.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_the_upgrade_gets_401_and_never_reaches_the_app() {
    let (h, echo) = harness("").await;
    let gw = h.gateway_addr;
    let answers = blocking(move || {
        let tries = [
            upgrade("/chat", &[("x-openid-token", "forged.by.client")]),
            upgrade("/chat", &[("cookie", "ogw_session=made-up"), ("x-openid-token", "forged.by.client")]),
            upgrade("/live/feed", &[]),
        ];
        tries.into_iter().map(|req| open(gw, req).map(drop).map_err(|e| describe(&e))).collect::<Vec<_>>()
    })
    .await;
    for answer in &answers {
        let text = answer.as_ref().expect_err("an upgrade without a session was accepted");
        assert!(text.starts_with("HTTP 401"), "a script's answer (401 with the login link): {text}");
        assert!(text.contains("login_required") && text.contains("x-login-url"), "{text}");
        assert!(!text.contains("set-cookie"), "no login is started for a socket: {text}");
    }
    assert_eq!(echo.connections(), 0, "the upstream saw a connection");
}

/// Older WebViews (iOS before 16.4) send no `Sec-Fetch-Mode`, and an upgrade carries no
/// `Accept`: the gateway must still not take it for a page navigation (a 200 script page, or
/// on a route without the fragment page a 302 into WeChat that starts a login, sets the login
/// cookie and counts against the loop breaker at every reconnect of the socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_without_fetch_metadata_is_not_taken_for_a_page_navigation() {
    let (h, echo) = harness("").await;
    let gw = h.gateway_addr;
    let answers = blocking(move || {
        ["/chat", "/live/feed"]
            .into_iter()
            .map(|path| {
                let req = upgrade_with(path, &[("user-agent", WECHAT_UA)]);
                (path, open(gw, req).map(drop).map_err(|e| describe(&e)))
            })
            .collect::<Vec<_>>()
    })
    .await;
    assert_eq!(echo.connections(), 0);
    let wrong: Vec<String> = answers
        .iter()
        .filter_map(|(path, answer)| {
            let text = answer.as_ref().expect_err("an upgrade without a session was accepted");
            (!text.starts_with("HTTP 401") || text.contains("set-cookie")).then(|| format!("{path}: {text}"))
        })
        .collect();
    assert!(wrong.is_empty(), "a socket is a script: 401, and no login started:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_public_route_a_client_token_never_reaches_the_app() {
    let (h, echo) = harness("").await;
    let gw = h.gateway_addr;
    let forged = [("x-openid-token", "forged.by.client"), ("X_OpenId_Token", "forged")];
    let req = upgrade("/public/ws", &forged);
    blocking(move || {
        let mut ws = open_ok(gw, req);
        round_trip(&mut ws, Message::text("anonymous"), "a text on a public route");
        close(ws);
    })
    .await;
    let seen = echo.last_upgrade();
    assert_eq!(identity_headers(&seen), Vec::<(String, String)>::new(), "no session: no identity at all");
}

// ---------------------------------------------------------------------------------------------
// 3. A long-lived socket outlives the client connection deadlines.

/// Sends one raw request and reads its response (header and `Content-Length` body).
fn raw_exchange(tcp: &mut TcpStream, request: &str) -> String {
    tcp.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len =
                head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= end + 4 + len {
                return head;
            }
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "closed mid-response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

/// How long until the gateway closes `tcp` (reads nothing more but its end).
fn time_to_close(tcp: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut byte = [0u8; 1];
    match tcp.read(&mut byte) {
        Ok(0) | Err(_) if start.elapsed() < STALL => start.elapsed(),
        other => panic!("still open after {:?}: {other:?}", start.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_socket_outlives_the_keepalive_and_header_timeouts() {
    let (h, _echo) = harness("[limits]\nkeepalive_timeout = \"1s\"\nheader_timeout = \"1s\"\n").await;
    let cookies = log_in(&h).await;
    let gw = h.gateway_addr;
    let req = upgrade("/chat", &[("cookie", &cookies)]);
    blocking(move || {
        // Positive control: the deadlines are short and in force for plain HTTP.
        let mut silent = TcpStream::connect(gw).unwrap();
        silent.set_read_timeout(Some(STALL)).unwrap();
        let waited = time_to_close(&mut silent);
        assert!(waited < Duration::from_secs(3), "a silent new connection is closed after header_timeout");
        let mut kept = TcpStream::connect(gw).unwrap();
        kept.set_read_timeout(Some(STALL)).unwrap();
        let ask = format!(
            "GET /chat HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUser-Agent: {WECHAT_UA}\r\nAccept: application/json\r\n\r\n"
        );
        assert!(raw_exchange(&mut kept, &ask).starts_with("http/1.1 401"));
        let waited = time_to_close(&mut kept);
        assert!(waited < Duration::from_secs(3), "an idle kept-alive connection is closed after keepalive_timeout");

        // The socket stays up across idle periods longer than both.
        let mut ws = open_ok(gw, req);
        std::thread::sleep(Duration::from_millis(2500));
        round_trip(&mut ws, Message::text("still there?"), "a frame after 2.5 s idle right after the upgrade");
        std::thread::sleep(Duration::from_millis(2500));
        round_trip(&mut ws, Message::binary(pattern(70_000, 3)), "a frame after another 2.5 s idle");
        close(ws);
    })
    .await;
}

/// A socket with no frame either way (an app that sends no pings) lives as long as the
/// route's `read_timeout` lets its upstream be silent, and no longer: past a minute when that
/// is 5 minutes. This test takes 65 s because the limit it is about is pingora's fixed 60 s
/// client read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_lives_as_long_as_the_route_read_timeout_allows() {
    let (h, _echo) = harness("").await;
    let cookies = log_in(&h).await;
    let gw = h.gateway_addr;
    let brief = upgrade("/brief/ws", &[("cookie", &cookies)]);
    let quiet = upgrade("/quiet/ws", &[("cookie", &cookies)]);
    blocking(move || {
        // Positive control: a socket idle past its route's 1 s is closed.
        let mut ws = open_ok(gw, brief);
        std::thread::sleep(Duration::from_millis(2500));
        let _ = ws.send(Message::text("too late"));
        let start = Instant::now();
        let ended = loop {
            match ws.read() {
                Ok(Message::Text(t)) if t.as_str() == "too late" => break false,
                Ok(Message::Close(_)) => {}
                Ok(_) => {}
                Err(_) => break true,
            }
        };
        assert!(ended && start.elapsed() < STALL, "a socket silent past the route's read_timeout stayed open");

        let mut ws = open_ok(gw, quiet);
        std::thread::sleep(Duration::from_secs(65));
        round_trip(&mut ws, Message::text("still there?"), "a frame after 65 s without any frame either way");
        close(ws);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. The route's body cap is about HTTP request bodies, not about a socket's frames.

/// `max_body` caps what one HTTP request uploads. An upgraded connection has no request body:
/// its frames are a conversation, which over a chat's lifetime adds up to any size, and a
/// frame's size is the app's business (as nginx's `client_max_body_size` leaves WebSocket
/// frames alone). So frames of any size, and any total, pass a capped route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_cap_does_not_count_websocket_frames() {
    let (h, echo) = harness("").await;
    let cookies = log_in(&h).await;

    // Positive control: the cap is in force for an upload on the same route.
    let b = h.browser();
    b.set_cookie(&format!("ogw_session={}", cookie_value(&cookies, "ogw_session").unwrap()));
    let upload = b.client.post(h.url("/capped/upload")).body(vec![b'a'; 100 << 10]).send().await.unwrap();
    assert_eq!(upload.status(), 413, "a 100 KiB upload on the 64 KiB route");
    assert_eq!(echo.connections(), 0);

    let gw = h.gateway_addr;
    let req = upgrade("/capped/ws", &[("cookie", &cookies)]);
    blocking(move || {
        let mut ws = open_ok(gw, req);
        for i in 0..10u8 {
            let what = format!("16 KiB frame {} (about {} KiB sent in all)", i + 1, 16 * (i as usize + 1));
            round_trip(&mut ws, Message::binary(pattern(16 << 10, i)), &what);
        }
        round_trip(&mut ws, Message::binary(pattern(256 << 10, 99)), "one 256 KiB frame");
        close(ws);
    })
    .await;
}
