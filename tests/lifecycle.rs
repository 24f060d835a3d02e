//! The real process and its signals: SIGHUP swaps a route under steady load with no failed
//! request, a config with mistakes changes nothing (and says why in the log), SIGTERM lets
//! requests in flight finish before the process exits.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use http::Response;
use openid_gateway::server::{start_on, Running};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service as ListeningService;

/// A free port on 127.0.0.1 (bound, then let go).
fn free_port() -> u16 {
    listener().local_addr().unwrap().port()
}

/// An upstream that answers after `delay`.
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

struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    admin: u16,
    _mock: Running,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, admin: u16, mock: &str, top: &str, routes: &str) -> String {
    format!(
        "{top}\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://gw.test\"\ndrain_timeout = \"3s\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [wechat]\nappid = \"{APPID}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
         authorize_url = \"{mock}/connect/oauth2/authorize\"\napi_base = \"{mock}\"\n\
         [session]\nkeys = [{{ file = \"session.key\" }}]\n\
         [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"hs256.key\" }}\n{routes}"
    )
}

fn route(path: &str, upstream: &str) -> String {
    format!("[[routes]]\npath = \"{path}\"\nupstream = \"{upstream}\"\naudience = \"shop\"\npolicy = \"public\"\n")
}

impl Gateway {
    async fn start(routes: &str) -> Self {
        Self::start_with("", routes).await
    }

    /// With `top`-level keys besides the test's own.
    async fn start_with(top: &str, routes: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in [("wechat.secret", WECHAT_SECRET), ("session.key", SESSION_KEY), ("hs256.key", HS256_KEY)]
        {
            std::fs::write(dir.path().join(name), value).unwrap();
        }
        use openid_gateway::clock::{Clock, ManualClock, SystemClock};
        let clock = ManualClock::new(SystemClock.now());
        let mock = serve_mock(&strict_mock(APPID, WECHAT_SECRET, PUBLIC_HOST, false, &clock));
        let (port, admin) = (free_port(), free_port());
        std::fs::write(dir.path().join("gateway.toml"), config(port, admin, &mock.url(), top, routes)).unwrap();
        let child = spawn(dir.path());
        let g = Gateway { child, dir, port, admin, _mock: mock };
        g.ready().await;
        g
    }

    fn write(&self, routes: &str) {
        let mock = self._mock.url();
        std::fs::write(self.dir.path().join("gateway.toml"), config(self.port, self.admin, &mock, "", routes)).unwrap();
    }

    async fn ready(&self) {
        let url = format!("http://127.0.0.1:{}/healthz", self.admin);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not come up: {}", self.log());
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

fn spawn(dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_openid-gateway"))
        .args(["run", "-c"])
        .arg(dir.join("gateway.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
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
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!a.seen().is_empty() && b.seen().is_empty());

    gw.write(&route("/", &up_b.url()));
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.seen().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!b.seen().is_empty(), "the reload did not swap the route: {}", gw.log());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a_after = a.seen().len();

    // A config with a mistake: refused, logged with its key path, the last good one serves on.
    gw.write(&format!("{}bogus = 1\n", route("/", &up_a.url())));
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests during the reloads; {}", gw.log());
    assert!(done.load(Ordering::Relaxed) > 50, "too little load: {}", done.load(Ordering::Relaxed));
    assert_eq!(a.seen().len(), a_after, "after the swap, route / went to the old upstream");
    let log = gw.log();
    assert!(log.contains("reload refused") && log.contains("routes[0].bogus: unknown key"), "{log}");
    // The refused file changed nothing.
    let res = client.get(gw.url("/check")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(b.last().path, "/check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    let begun = Arc::new(AtomicUsize::new(0));
    let slow = Slow(Duration::from_millis(1500), begun.clone());
    let slow = start_on(ListeningService::new("slow".into(), slow), listener()).unwrap();
    let mut gw = Gateway::start(&route("/", &slow.url())).await;

    let url = gw.url("/report");
    let in_flight = tokio::spawn(async move { reqwest::get(&url).await.map(|r| r.status().as_u16()) });
    // In flight: the upstream has it (a connection whose request pingora has not read yet is
    // dropped at shutdown; see "Operating it").
    let deadline = Instant::now() + Duration::from_secs(10);
    while begun.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(begun.load(Ordering::SeqCst), 1, "the request never reached the upstream: {}", gw.log());
    gw.signal("TERM");
    let status = in_flight.await.unwrap();
    assert_eq!(status.ok(), Some(200), "the request in flight was cut off: {}", gw.log());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = gw.child.try_wait().unwrap() {
            assert!(exit.success() || exit.code().is_some(), "{exit:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit after SIGTERM: {}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New connections are refused once it is gone.
    assert!(reqwest::get(gw.url("/after")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_upgrade_hands_the_listeners_over_without_refusing_a_connection() {
    let up = Recorder::default();
    let up_srv = start_on(ListeningService::new("up".into(), up.clone()), listener()).unwrap();
    let sock = tempfile::tempdir().unwrap();
    let sock = sock.path().join("upgrade.sock");
    let top = format!("upgrade_sock = \"{}\"", sock.display());
    let mut old = Gateway::start_with(&top, &route("/", &up_srv.url())).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failed: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, done, failed, url) = (stop.clone(), done.clone(), failed.clone(), old.url(&format!("/u{worker}")));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // A new connection each time: a refused connection would show here.
                let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failed.lock().unwrap().push(format!("status {}", r.status())),
                    Err(e) => failed.lock().unwrap().push(format!("{e:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stderr = std::fs::File::create(old.dir.path().join("stderr.new")).unwrap();
    let mut new = Command::new(env!("CARGO_BIN_EXE_openid-gateway"))
        .args(["run", "--upgrade", "-c"])
        .arg(old.dir.path().join("gateway.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal("QUIT");
    let deadline = Instant::now() + Duration::from_secs(15);
    while old.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the old process did not hand over and exit: {}", old.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let new_log = std::fs::read_to_string(old.dir.path().join("stderr.new")).unwrap_or_default();
    assert!(new.try_wait().unwrap().is_none(), "the new process is not serving: {new_log}");
    // pingora's old process keeps accepting for 5 s after handing the sockets over, then drops
    // any connection whose first request it has not read yet (pingora-proxy: read_request loses
    // to the shutdown notice). A connection opened in that instant is reset: at most one or two
    // per worker, never a refusal, never an error answer.
    let failed = failed.lock().unwrap().clone();
    let resets = failed.iter().filter(|f| f.contains("ConnectionReset")).count();
    assert!(
        resets == failed.len() && resets <= 4,
        "refused or failed during the upgrade: {failed:?}\nold: {}\nnew: {new_log}",
        old.log()
    );
    assert!(done.load(Ordering::Relaxed) > 20);
    let after = reqwest::get(old.url("/after")).await.unwrap();
    assert_eq!(after.status(), 200, "the new process serves the same address");
    let _ = new.kill();
    let _ = new.wait();
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
        reqwest::get(format!("http://127.0.0.1:{}/readyz", gw.admin)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["state"], serde_json::json!({"backend": "redis", "status": "ok"}), "{}", gw.log());
    let mut conn = redis.connect();
    let bucket = conn.command(&["EXISTS", "ogw:rate:login:127.0.0.1"]).unwrap();
    assert_eq!(bucket, common::redis_server::Reply::Int(1), "the login bucket is in Redis");
}
