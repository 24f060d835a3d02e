//! What the tests install for themselves (npm packages, a Python venv, Debian's Chromium) is
//! prepared once: under an exclusive file lock shared by every test thread and every test
//! process of the run, checked again once the lock is held, and marked ready only after the
//! install finished. A newcomer's first `cargo test` therefore never sees a half-installed
//! package, however many tests ask for it at the same moment.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/test-deps`, where the locks live.
fn lock_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-deps");
    std::fs::create_dir_all(&dir).expect("creating target/test-deps");
    dir
}

/// Runs `install` unless `ready()`, holding the lock called `name` throughout.
pub fn once(name: &str, ready: impl Fn() -> bool, install: impl FnOnce()) {
    if ready() {
        return;
    }
    let lock = File::create(lock_dir().join(format!("{name}.lock"))).expect("creating a lock file");
    lock.lock().expect("taking the install lock");
    if !ready() {
        install();
        assert!(ready(), "{name}: installed, but still not ready");
    }
    lock.unlock().expect("releasing the install lock");
}

/// Runs `cmd`, panicking with `hint` if it fails.
pub fn run(cmd: &mut Command, hint: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}; {hint}"));
    assert!(status.success(), "{cmd:?} failed; {hint}");
}

/// `npm ci` in `dir` (relative to the crate), once: the folder is ready when the marker
/// written after a successful install is newer than `package-lock.json`.
pub fn npm_ci(dir: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let marker = dir.join("node_modules/.openid-gateway-ready");
    let ready = || newer(&marker, &dir.join("package-lock.json"));
    let name = format!("npm-{}", dir.file_name().and_then(|n| n.to_str()).unwrap_or("x"));
    once(&name, ready, || {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir), "is npm installed?");
        std::fs::write(&marker, b"").expect("writing the ready marker");
    });
    dir
}

/// Debian packages, installed with apt-get (as root) unless every path in `present` exists.
pub fn apt(name: &str, packages: &[&str], present: &[&str]) {
    let ready = || present.iter().all(|p| Path::new(p).exists());
    // One lock for every apt-get, whoever asks: dpkg allows one install at a time.
    once("apt", ready, || {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        assert!(root, "{name}: missing {present:?}: apt-get install {}", packages.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update");
        run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install",
        );
    });
}

fn newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a >= b)
}
