//! The signals that end the real process: SIGTERM and SIGINT both stop accepting and let a
//! request in flight finish; the process exits as soon as nothing is in flight, never later
//! than `drain_timeout`, which keeps its sub-second precision.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::process::{config, route, ConfigDir, Process};
use common::*;
use http::Response;
use openid_gateway::serve::server::{start_on, Running};
use openid_gateway::util::clock::{Clock, ManualClock, SystemClock};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service as ListeningService;

/// An upstream that answers after a while, counting the requests it has begun.
struct Slow(Duration, Arc<AtomicUsize>);

#[async_trait]
impl ServeHttp for Slow {
    async fn response(&self, _session: &mut ServerSession) -> Response<Vec<u8>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.0).await;
        Response::builder().status(200).header("content-length", 4).body(b"slow".to_vec()).unwrap()
    }
}

struct Setup {
    gw: Process,
    begun: Arc<AtomicUsize>,
    _dir: ConfigDir,
    _upstream: Running,
    _mock: Running,
}

async fn start(delay: Duration, drain_timeout: &str) -> Setup {
    let begun = Arc::new(AtomicUsize::new(0));
    let upstream = start_on(ListeningService::new("slow".into(), Slow(delay, begun.clone())), listener()).unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let mock = serve_mock(&strict_mock(APPID, WECHAT_SECRET, PUBLIC_HOST, false, &clock));
    let top = format!("drain_timeout = \"{drain_timeout}\"");
    let dir = ConfigDir::new(&config(&mock.url(), &top, &route("/", &upstream.url())));
    let gw = Process::start(&dir, "gateway", &[]).await;
    Setup { gw, begun, _dir: dir, _upstream: upstream, _mock: mock }
}

impl Setup {
    /// Sends a request and waits until the upstream has begun answering it.
    async fn in_flight(&self) -> tokio::task::JoinHandle<Result<(u16, String), String>> {
        let url = self.gw.url("/report");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap();
        let request = tokio::spawn(async move {
            let r = client.get(&url).send().await.map_err(|e| format!("{e:?}"))?;
            let status = r.status().as_u16();
            Ok((status, r.text().await.map_err(|e| format!("{e:?}"))?))
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.begun.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the request never reached the upstream: {}", self.gw.log());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        request
    }
}

async fn a_request_in_flight_finishes_after(signal: &str) {
    let mut s = start(Duration::from_millis(1500), "10s").await;
    let request = s.in_flight().await;
    s.gw.signal(signal);
    // The listener closes at once: a new connection is refused while the drain goes on.
    let url = s.gw.url("/after");
    let deadline = Instant::now() + Duration::from_secs(5);
    while reqwest::get(&url).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after {signal}: {}", s.gw.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = request.await.unwrap();
    assert_eq!(answer, Ok((200, "slow".into())), "the request in flight was cut off by {signal}: {}", s.gw.log());
    let status = s.gw.exit(Duration::from_secs(8)).await;
    assert!(status.success(), "{signal} ended with {status}: {}", s.gw.log());
    assert!(s.gw.log().contains("drained: exiting"), "{}", s.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    a_request_in_flight_finishes_after("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_exactly_as_sigterm_does() {
    a_request_in_flight_finishes_after("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_in_flight_the_process_exits_long_before_drain_timeout() {
    let mut s = start(Duration::from_millis(10), "60s").await;
    // A kept-alive connection that sits idle is nothing in flight.
    let client = reqwest::Client::new();
    assert_eq!(client.get(s.gw.url("/warm")).send().await.unwrap().status(), 200);
    let signalled = Instant::now();
    s.gw.signal("TERM");
    let status = s.gw.exit(Duration::from_secs(20)).await;
    assert!(status.success());
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(3), "waited {took:?} with nothing in flight (drain_timeout 60s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_second_drain_timeout_is_honoured_and_what_is_left_is_cut() {
    let mut s = start(Duration::from_secs(30), "700ms").await;
    let request = s.in_flight().await;
    let signalled = Instant::now();
    s.gw.signal("TERM");
    s.gw.exit(Duration::from_secs(10)).await;
    let took = signalled.elapsed();
    // 700 ms, not rounded up to whole seconds of pingora's grace period (a 1 s drain, then
    // up to 5 s for its runtimes), nor the 30 s the upstream takes.
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2000),
        "the drain took {took:?} for drain_timeout = 700ms: {}",
        s.gw.log()
    );
    assert!(request.await.unwrap().is_err(), "the request outliving the drain is cut");
    assert!(s.gw.log().contains("exiting with 1 request(s) still in flight"), "{}", s.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once() {
    let mut s = start(Duration::from_secs(30), "60s").await;
    let _request = s.in_flight().await;
    s.gw.signal("INT");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.gw.log().contains("no longer accepting") {
        assert!(Instant::now() < deadline, "{}", s.gw.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(s.gw.child.try_wait().unwrap().is_none(), "the first SIGINT drains: {}", s.gw.log());
    s.gw.signal("INT");
    s.gw.exit(Duration::from_secs(5)).await;
    assert!(s.gw.log().contains("SIGINT again"), "{}", s.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_answered_after_the_signal_closes_its_kept_alive_connection() {
    let mut s = start(Duration::from_millis(1500), "10s").await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    // Positive control: before the signal, a response keeps its connection.
    let before = client.get(s.gw.url("/warm")).send().await.unwrap();
    assert_eq!(before.status(), 200);
    assert!(before.headers().get("connection").is_none_or(|v| v != "close"), "{:?}", before.headers());
    let url = s.gw.url("/straddles");
    let begun = s.begun.load(Ordering::SeqCst);
    let request = tokio::spawn({
        let client = client.clone();
        async move { client.get(&url).send().await.unwrap() }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.begun.load(Ordering::SeqCst) == begun {
        assert!(Instant::now() < deadline, "the request never reached the upstream");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.gw.signal("TERM");
    let answer = request.await.unwrap();
    assert_eq!(answer.status(), 200);
    // Begun before the signal, answered after it: the client is told not to reuse it, so its
    // next request never meets a connection the drain is about to close.
    assert_eq!(
        answer.headers().get("connection").map(|v| v.to_str().unwrap()),
        Some("close"),
        "{:?}",
        answer.headers()
    );
    s.gw.exit(Duration::from_secs(10)).await;
}
