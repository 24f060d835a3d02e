//! What the Redis backend adds to a request and to a login, against the memory backend, on a
//! real `redis-server` this bench starts on a free port (Debian's package; `cargo test`
//! installs it, or `apt-get install redis-server`):
//! - `session_check`: the revocation check every request with a session makes; with Redis a
//!   round trip when the in-process answer (`revocation_cache`) is stale, else none;
//!   `memory_many_revoked` looks it up in a copy holding 200,000 revoked sessions and 20,000
//!   revoked users (every request pays this lookup first, whatever the backend);
//! - `login_shared_ops`: what a login adds: the login-start and callback rate buckets, the
//!   claim on the code, the login nonce and publishing the exchange's outcome.
//!
//! `cargo bench --bench state`

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use openid_gateway::config::{RedisConfig, StateConfig};
use openid_gateway::observe::metrics::Metrics;
use openid_gateway::session::{Session, SessionId};
use openid_gateway::shared::SharedState;

/// The server, and the folder it runs in (removed with it).
struct Redis(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<(Redis, u16)> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let dir = tempfile::tempdir().ok()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some((Redis(child, dir), port))
}

fn redis_state(port: u16, cache: Duration) -> SharedState {
    let cfg = RedisConfig {
        urls: vec![format!("redis://127.0.0.1:{port}")],
        cluster: false,
        username: None,
        password: None,
        ca: None,
        key_prefix: "bench:".into(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        revocation_cache: cache,
        revocation_fail_open: true,
    };
    SharedState::new(&StateConfig::Redis(cfg), Arc::new(Metrics::new())).expect("a redis state")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some((_server, port)) = redis() else {
        eprintln!("state bench: no redis-server here (apt-get install redis-server); skipped");
        return;
    };
    let now = 1_800_000_000;
    let memory = SharedState::memory();
    let many_revoked = SharedState::memory();
    rt.block_on(async {
        for i in 0..200_000 {
            many_revoked.revoke_session("wx1", &format!("sid{i}"), now + 3600, now).await;
        }
        for i in 0..20_000 {
            many_revoked.revoke_all("wx1", Some(&format!("oOther{i}")), now, 3600).await;
        }
    });
    let uncached = redis_state(port, Duration::ZERO);
    let cached = redis_state(port, Duration::from_secs(3600));
    let session = Session {
        openid: "oUser".into(),
        appid: "wx1".into(),
        sid: SessionId("sid123".into()),
        issued: now - 10,
        ..Session::default()
    };
    let check = |s: &SharedState| rt.block_on(s.standing(&session, now));
    check(&cached);

    let mut g = c.benchmark_group("session_check");
    g.bench_function("memory", |b| b.iter(|| check(&memory)));
    g.bench_function("memory_many_revoked", |b| b.iter(|| check(&many_revoked)));
    g.bench_function("redis_cached", |b| b.iter(|| check(&cached)));
    g.bench_function("redis_round_trip", |b| b.iter(|| check(&uncached)));
    g.finish();

    let mut n = 0u64;
    let mut login = |s: &SharedState| {
        n += 1;
        let code = format!("code{n}");
        rt.block_on(async {
            let ttl = Duration::from_secs(300);
            s.admit("login:127.0.0.1", n, 1_000_000, 1_000_000).await;
            s.admit("callback:127.0.0.1", n, 1_000_000, 1_000_000).await;
            s.claim_code("wx1", &code, "nonce", ttl).await;
            s.spend_nonce(&format!("nonce{n}"), &code, ttl).await;
            s.publish_result("wx1", &code, "sealed-outcome", ttl).await;
        })
    };
    let mut g = c.benchmark_group("login_shared_ops");
    g.bench_function("memory", |b| b.iter(|| login(&memory)));
    g.bench_function("redis", |b| b.iter(|| login(&uncached)));
    g.finish();
    assert_eq!(uncached.status(), ("redis", true), "Redis failed during the bench: the figures are not Redis's");
}

criterion_group!(state, benches);
criterion_main!(state);
