//! Node and headless Chromium for the real-browser suite: `npm ci` in tests/browser on first
//! use, Debian's chromium (installed by `.ci/run`; installed here when missing and root).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// `npm ci` in `dir` (relative to the crate) unless `module` is installed there already.
pub fn npm_ready(dir: &str, module: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    if !dir.join("node_modules").join(module).exists() {
        let ok = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status();
        assert!(ok.is_ok_and(|s| s.success()), "npm ci failed in {}", dir.display());
    }
    dir
}

/// The folder of the browser suite, with its node_modules installed.
pub fn browser_suite() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = npm_ready("tests/browser", "playwright-core");
        if !std::path::Path::new(CHROMIUM).exists() {
            let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
            assert!(root, "{CHROMIUM} is missing: apt-get install chromium (or run `bash .ci/run` once)");
            for args in [&["update", "-qq"][..], &["install", "-y", "-qq", "chromium"][..]] {
                let ok = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status();
                assert!(ok.is_ok_and(|s| s.success()), "apt-get {args:?} failed");
            }
        }
        dir
    })
    .clone()
}
