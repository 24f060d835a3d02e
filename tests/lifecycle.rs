//! The real process and SIGHUP: a reload swaps a route under steady load with no failed
//! request, a config with mistakes changes nothing (and says why in the log), a reload that
//! moves a listener says it needs a restart; the process on Redis state. Signals that end the
//! process are in `tests/signals.rs`, the graceful upgrade in `tests/upgrade.rs`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{config, route, ConfigDir, Process};
use common::*;
use openid_gateway::serve::server::{start_on, Running};
use openid_gateway::util::clock::{Clock, ManualClock, SystemClock};
use pingora::services::listening::Service as ListeningService;

/// A gateway process in front of a strict mock WeChat.
struct Gateway {
    process: Process,
    dir: ConfigDir,
    mock: Running,
}

impl Gateway {
    async fn start(tables: &str) -> Self {
        let clock = ManualClock::new(SystemClock.now());
        let mock = serve_mock(&strict_mock(APPID, WECHAT_SECRET, PUBLIC_HOST, false, &clock));
        let dir = ConfigDir::new(&config(&mock.url(), "", tables));
        let process = Process::start(&dir, "gateway", &[]).await;
        Gateway { process, dir, mock }
    }

    /// Rewrites the config (listeners on port 0, as at the start).
    fn write(&self, tables: &str) {
        self.dir.write(&config(&self.mock.url(), "", tables));
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until the log has `needle` (a reload's outcome) or panics.
    async fn logged(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.process.log().contains(needle) {
            assert!(Instant::now() < deadline, "never logged {needle:?}: {}", self.process.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_a_route_under_load_without_a_failed_request_and_a_bad_config_changes_nothing() {
    let (a, b) = (Recorder::default(), Recorder::default());
    let up_a = start_on(ListeningService::new("a".into(), a.clone()), listener()).unwrap();
    let up_b = start_on(ListeningService::new("b".into(), b.clone()), listener()).unwrap();
    let gw = Gateway::start(&route("/", &up_a.url())).await;

    let client = reqwest::Client::builder().pool_max_idle_per_host(8).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (client, stop, done, failed, url) =
            (client.clone(), stop.clone(), done.clone(), failed.clone(), gw.url(&format!("/w{worker}")));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = match client.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.text().await.is_ok_and(|t| t.starts_with("upstream saw")),
                    Err(_) => false,
                };
                let counter = if ok { &done } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    until("the first upstream has requests", || a.seen().len() >= 20, &gw).await;
    assert!(b.seen().is_empty());

    gw.write(&route("/", &up_b.url()));
    gw.signal("HUP");
    gw.logged("is now serving").await;
    until("the reload swaps the route", || b.seen().len() >= 20, &gw).await;
    // Requests begun before the swap finish on the old route; after these, none goes there.
    let a_after = a.seen().len();
    until("more requests after the swap", || b.seen().len() >= 60, &gw).await;
    assert_eq!(a.seen().len(), a_after, "after the swap, route / went to the old upstream");

    // A config with a mistake: refused, logged with its key path, the last good one serves on.
    gw.write(&format!("{}bogus = 1\n", route("/", &up_a.url())));
    gw.signal("HUP");
    gw.logged("reload refused").await;
    let b_then = b.seen().len();
    until("requests after the refused reload", || b.seen().len() >= b_then + 20, &gw).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests during the reloads; {}", gw.log());
    assert_eq!(a.seen().len(), a_after, "the refused config sent nothing to its upstream");
    let log = gw.log();
    assert!(log.contains("routes[0].bogus: unknown key"), "{log}");
    let res = client.get(gw.url("/check")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(b.last().path, "/check");

    // A reload that moves a listener applies the rest and says the move needs a restart.
    let moved = config(&gw.mock.url(), "", &route("/", &up_b.url())).replacen("127.0.0.1:0", "127.0.0.1:1", 1);
    gw.dir.write(&moved);
    gw.signal("HUP");
    gw.logged("listen changed: it applies at the next restart or graceful upgrade").await;
    assert_eq!(client.get(gw.url("/still")).send().await.unwrap().status(), 200, "still on its socket");
}

/// Polls `done` until it holds (10 s at most).
async fn until(what: &str, done: impl Fn() -> bool, gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: never happened: {}", gw.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_runs_on_redis_state() {
    let redis = common::redis_server::RedisServer::start();
    let up = Recorder::default();
    let up_srv = start_on(ListeningService::new("up".into(), up.clone()), listener()).unwrap();
    let tables = format!("[state]\nbackend = \"redis\"\nurl = \"{}\"\n{}", redis.url(), route("/", &up_srv.url()));
    let gw = Gateway::start(&tables).await;
    // A login start goes through the shared rate bucket in Redis.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.get(gw.url("/.gateway/login?return=/")).header("host", "gw.test").send().await.unwrap();
    assert_eq!(login.status(), 302, "{}", gw.log());
    let ready: serde_json::Value =
        reqwest::get(format!("http://{}/readyz", gw.process.addr("admin.listen"))).await.unwrap().json().await.unwrap();
    assert_eq!(ready["state"], serde_json::json!({"backend": "redis", "status": "ok"}), "{}", gw.log());
    let mut conn = redis.connect();
    let bucket = conn.command(&["EXISTS", "ogw:rate:login:127.0.0.1"]).unwrap();
    assert_eq!(bucket, common::redis_server::Reply::Int(1), "the login bucket is in Redis");
}
