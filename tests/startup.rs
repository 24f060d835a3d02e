//! Start or fail, never half: a listener (public, TLS, admin) whose address is taken makes
//! `run` exit non-zero at once with one line naming the key and the address — no panic, no
//! backtrace hint, no process left serving without it.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::process::{config, route, ConfigDir, Process};

/// A certificate for `gw.test`, made here, with its key.
fn certificate(dir: &ConfigDir) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["gw.test".to_string()]).unwrap().self_signed(&key).unwrap();
    std::fs::write(dir.path().join("gw.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("gw.key"), key.serialize_pem()).unwrap();
}

/// Runs the gateway with `key` (at `addr`) already taken and returns its log.
async fn taken(key: &str, tables: impl Fn(&str) -> String) {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let dir = ConfigDir::new("");
    certificate(&dir);
    dir.write(&tables(&addr));
    let mut gw = Process::spawn(&dir, "gateway", &[]);
    let status = gw.exit(Duration::from_secs(10)).await;
    let log = gw.log();
    assert!(!status.success(), "{key} taken, yet it started: {log}");
    let line = format!("{key} {addr}: address in use");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&line)).collect();
    assert_eq!(lines.len(), 1, "one line naming {key} and {addr}: {log}");
    assert!(!log.contains("panicked") && !log.contains("RUST_BACKTRACE"), "{log}");
    assert!(!log.contains("listening: "), "nothing listened: {log}");
}

const UPSTREAM: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn a_taken_public_port_stops_the_start() {
    taken("listen", |addr| config("http://127.0.0.1:9", "", &route("/", UPSTREAM)).replacen("127.0.0.1:0", addr, 1))
        .await;
}

#[tokio::test]
async fn a_taken_admin_port_stops_the_start() {
    taken("admin.listen", |addr| {
        let c = config("http://127.0.0.1:9", "", &route("/", UPSTREAM));
        // The second listener in the file is the admin one.
        let at = c.match_indices("127.0.0.1:0").nth(1).unwrap().0;
        format!("{}{addr}{}", &c[..at], &c[at + "127.0.0.1:0".len()..])
    })
    .await;
}

#[tokio::test]
async fn a_taken_tls_port_stops_the_start() {
    taken("tls.listen", |addr| {
        let tls = format!(
            "[tls]\nlisten = \"{addr}\"\ncertificates = [{{ cert = \"gw.pem\", key = {{ file = \"gw.key\" }} }}]\n"
        );
        config("http://127.0.0.1:9", "", &format!("{tls}{}", route("/", UPSTREAM)))
    })
    .await;
}

#[tokio::test]
async fn a_free_config_starts_and_names_its_listeners() {
    let dir = ConfigDir::new(&config("http://127.0.0.1:9", "", &route("/", UPSTREAM)));
    let gw = Process::start(&dir, "gateway", &[]).await;
    assert!(gw.addr("listen").port() != 0 && gw.addr("admin.listen").port() != 0);
}

/// `run --upgrade` with `upgrade_sock` at `sock`: it must fail, and its log is returned.
async fn refused_upgrade(dir: &ConfigDir, sock: &std::path::Path) -> String {
    let top = format!("upgrade_sock = \"{}\"", sock.display());
    dir.write(&config("http://127.0.0.1:9", &top, &route("/", UPSTREAM)));
    let mut gw = Process::spawn(dir, "gateway", &["--upgrade"]);
    let status = gw.exit(Duration::from_secs(30)).await;
    let log = gw.log();
    assert!(!status.success(), "{log}");
    assert!(!log.contains("panicked") && !log.contains("listening: "), "{log}");
    log
}

#[tokio::test]
async fn an_upgrade_with_no_running_gateway_stops_with_one_line() {
    let dir = ConfigDir::new("");
    let sock = dir.path().join("upgrade.sock");
    let log = refused_upgrade(&dir, &sock).await;
    let line = format!("openid-gateway: upgrade_sock {}: no running gateway handed its sockets over", sock.display());
    assert_eq!(log.lines().filter(|l| l.starts_with(&line)).count(), 1, "{log}");
}

#[tokio::test]
async fn an_upgrade_sock_in_a_missing_folder_stops_with_one_line() {
    let dir = ConfigDir::new("");
    let sock = dir.path().join("missing").join("upgrade.sock");
    let log = refused_upgrade(&dir, &sock).await;
    let line = format!("openid-gateway: upgrade_sock {}: ", sock.display());
    assert_eq!(log.lines().filter(|l| l.starts_with(&line) && l.contains("is not a directory")).count(), 1, "{log}");
}

#[tokio::test]
async fn a_waiting_upgrade_stopped_by_a_signal_exits_without_the_sockets() {
    let dir = ConfigDir::new("");
    let sock = dir.path().join("upgrade.sock");
    let top = format!("upgrade_sock = \"{}\"", sock.display());
    dir.write(&config("http://127.0.0.1:9", &top, &route("/", UPSTREAM)));
    let mut gw = Process::spawn(&dir, "gateway", &["--upgrade"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "never waited on upgrade_sock: {}", gw.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal("TERM");
    let status = gw.exit(Duration::from_secs(5)).await;
    let log = gw.log();
    assert!(!status.success() && log.contains("stopped by a signal while waiting"), "{status}: {log}");
    assert!(!log.contains("listening: ") && !log.contains("panicked"), "{log}");
}
