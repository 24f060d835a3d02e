//! The graceful upgrade of the real process, several times in a row under a steady load of
//! new connections and kept-alive ones: every request gets the upstream's answer (no reset, no
//! empty reply, no refusal), each old process exits on its own, and every process the test
//! started is killed when it ends, passed or failed.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{config, route, ConfigDir, Process};
use common::*;
use openid_gateway::serve::server::start_on;
use openid_gateway::util::clock::{Clock, ManualClock, SystemClock};
use pingora::services::listening::Service as ListeningService;

const UPGRADES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_in_a_row_under_load_lose_no_request() {
    let up = Recorder::default();
    let up_srv = start_on(ListeningService::new("up".into(), up.clone()), listener()).unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let mock = serve_mock(&strict_mock(APPID, WECHAT_SECRET, PUBLIC_HOST, false, &clock));
    let dir = ConfigDir::new("");
    let sock = dir.path().join("upgrade.sock");
    let top = format!("upgrade_sock = \"{}\"\ndrain_timeout = \"5s\"", sock.display());
    dir.write(&config(&mock.url(), &top, &route("/", &up_srv.url())));
    // Every process stays here until the test ends, so each is killed then whatever happens.
    let mut processes = vec![Process::start(&dir, "gateway-0", &[]).await];
    let url = processes[0].url("/");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..6 {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        let url = format!("{url}w{worker}");
        // Half open a new connection for each request, half keep theirs alive.
        let fresh = worker % 2 == 0;
        load.push(tokio::spawn(async move {
            let kept = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let client = if fresh {
                    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
                } else {
                    kept.clone()
                };
                let outcome = match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(body) if body.starts_with("upstream saw") => Ok(()),
                        Ok(body) => Err(format!("not the upstream's answer: {body}")),
                        Err(e) => Err(format!("body: {e:?}")),
                    },
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("{e:?}")),
                };
                match outcome {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        failed.lock().unwrap().push(format!(
                            "worker {worker} ({}): {e}",
                            if fresh { "new connections" } else { "kept alive" }
                        ));
                        0
                    }
                };
            }
        }));
    }
    wait_for("load before the first upgrade", || done.load(Ordering::Relaxed) >= 100, &processes).await;

    for round in 1..=UPGRADES {
        let _ = std::fs::remove_file(&sock);
        let mut next = Process::spawn(&dir, &format!("gateway-{round}"), &["--upgrade"]);
        // The new process waits for the sockets on upgrade_sock once it is ready.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sock.exists() {
            assert!(next.child.try_wait().unwrap().is_none(), "the new process exited: {}", next.log());
            assert!(Instant::now() < deadline, "the new process never waited on upgrade_sock: {}", next.log());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = done.load(Ordering::Relaxed);
        let old = processes.last_mut().unwrap();
        old.signal("QUIT");
        next.wait_listening(Duration::from_secs(30)).await;
        assert_eq!(next.addr("listen"), old.addr("listen"), "the new process took the same socket over");
        let status = old.exit(Duration::from_secs(15)).await;
        assert!(status.success(), "the old process ended with {status}: {}", old.log());
        assert!(old.log().contains("the sockets are handed over"), "{}", old.log());
        processes.push(next);
        wait_for("load after the upgrade", || done.load(Ordering::Relaxed) >= before + 100, &processes).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    let logs: Vec<String> = processes.iter().map(Process::log).collect();
    assert!(failed.is_empty(), "{} request(s) lost over {UPGRADES} upgrades: {failed:#?}\n{logs:#?}", failed.len());
    let last = processes.last().unwrap();
    assert_eq!(reqwest::get(last.url("/after")).await.unwrap().status(), 200);
}

/// Polls `done` until it holds (20 s at most).
async fn wait_for(what: &str, done: impl Fn() -> bool, processes: &[Process]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() >= deadline {
            let logs: Vec<String> = processes.iter().map(Process::log).collect();
            panic!("{what}: never happened: {logs:#?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
