//! Node and headless Chromium for the real-browser suite: `npm ci` in tests/browser and
//! Debian's chromium with a CJK font, each prepared once under a lock ([`super::prepare`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::prepare;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The folder `dir` (relative to the crate) with its node_modules installed.
pub fn npm_ready(dir: &str) -> PathBuf {
    prepare::npm_ci(dir)
}

/// The folder of the browser suite, with its node_modules installed and Chromium present.
pub fn browser_suite() -> PathBuf {
    prepare::apt(
        "chromium",
        &["chromium", "fonts-wqy-zenhei"],
        &[CHROMIUM, "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"],
    );
    npm_ready("tests/browser")
}

/// What a browser script did: its exit status, its output, and the JSON object of results it
/// printed as its last line (`null` when it printed none).
pub struct ScriptRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub results: serde_json::Value,
}

impl ScriptRun {
    /// Panics, with the script's output, unless it succeeded and every one of `checks` is `ok`.
    pub fn assert_checks(&self, checks: &[&str]) {
        let (stdout, stderr) = (&self.stdout, &self.stderr);
        assert!(self.success, "browser script failed:\n{stdout}\n{stderr}");
        for check in checks {
            assert_eq!(self.results[check], "ok", "{check}: {stdout}\n{stderr}");
        }
    }
}

/// Runs `node script` in `suite` (the folder [`browser_suite`] prepared) with `envs` and
/// [`CHROMIUM`], blocking. The script gives up by itself after `DEADLINE_MS` (tests/browser/
/// common.mjs), here `timeout`; should it still run 30 s later, it is killed.
pub fn run_script(suite: &Path, script: &str, envs: &[(&str, String)], timeout: Duration) -> ScriptRun {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(suite)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("CHROMIUM", CHROMIUM)
        .env("DEADLINE_MS", timeout.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node {script}: {e}; is node installed?"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let grace = timeout + Duration::from_secs(30);
    let deadline = Instant::now() + grace;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, mut stderr) = (out.join().unwrap(), err.join().unwrap());
    if status.is_none() {
        stderr.push_str(&format!("\nnode {script}: killed after {grace:?}"));
    }
    let results = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
    ScriptRun { success: status.is_some_and(|s| s.success()), stdout, stderr, results }
}
