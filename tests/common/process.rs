//! The real `openid-gateway run` process: a config in a temporary folder, every listener on
//! port 0 (the process says which ports it bound, so no test races another for a port), its
//! log in a file, and the process killed when the test ends, passed or failed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{CORP_SECRET, HS256_KEY, SESSION_KEY, WECHAT_SECRET};

/// The gateway binary built for these tests.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openid-gateway"));
    cmd.env_remove("RUST_LOG").env_remove("OPENID_GATEWAY_LOG");
    cmd
}

/// A folder with the secrets the standard config names and a `gateway.toml`.
pub struct ConfigDir(pub tempfile::TempDir);

impl ConfigDir {
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secrets = [
            ("wechat.secret", WECHAT_SECRET),
            ("corp.secret", CORP_SECRET),
            ("session.key", SESSION_KEY),
            ("hs256.key", HS256_KEY),
        ];
        for (name, value) in secrets {
            std::fs::write(dir.path().join(name), value).unwrap();
        }
        let me = Self(dir);
        me.write(toml);
        me
    }

    pub fn write(&self, toml: &str) {
        std::fs::write(self.config(), toml).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.0.path().join("gateway.toml")
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A running gateway process, killed on drop.
pub struct Process {
    pub child: Child,
    log: PathBuf,
    /// What it listens on, by config key (`listen`, `admin.listen`, …).
    pub addrs: HashMap<String, SocketAddr>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `run` (with `extra` arguments) on `dir`'s config, logging to `<dir>/<name>.log`,
    /// without waiting for it to listen.
    pub fn spawn(dir: &ConfigDir, name: &str, extra: &[&str]) -> Self {
        let log = dir.path().join(format!("{name}.log"));
        let child = bin()
            .arg("run")
            .args(extra)
            .arg("-c")
            .arg(dir.config())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log, addrs: HashMap::new() }
    }

    /// Starts `run` and waits until it says what it listens on and answers `/healthz`.
    pub async fn start(dir: &ConfigDir, name: &str, extra: &[&str]) -> Self {
        let mut p = Self::spawn(dir, name, extra);
        p.wait_listening(Duration::from_secs(30)).await;
        p
    }

    /// Waits for the log line naming the listeners, then for `/healthz` on the admin one.
    pub async fn wait_listening(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains("listening: ")) {
                let list = line.split("listening: ").nth(1).unwrap_or_default();
                self.addrs = list
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .filter_map(|(k, v)| Some((k.to_string(), v.trim_matches('"').parse().ok()?)))
                    .collect();
                break;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the gateway exited ({status}) before listening: {}", self.log());
            }
            assert!(Instant::now() < deadline, "the gateway did not say where it listens: {}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(admin) = self.addrs.get("admin.listen") {
            let url = format!("http://{admin}/healthz");
            while !reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                assert!(Instant::now() < deadline, "/healthz never answered: {}", self.log());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    pub fn addr(&self, key: &str) -> SocketAddr {
        *self.addrs.get(key).unwrap_or_else(|| panic!("no {key} in {:?}: {}", self.addrs, self.log()))
    }

    /// `http://<listen><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("listen"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the gateway did not exit within {within:?}: {}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A whole config: the test's `top`-level keys, listeners on port 0, the standard secrets, a
/// WeChat at `mock`, and `tables` (routes and more).
pub fn config(mock: &str, top: &str, tables: &str) -> String {
    format!(
        "{top}\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://gw.test\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [wechat]\nappid = \"{}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
         authorize_url = \"{mock}/connect/oauth2/authorize\"\napi_base = \"{mock}\"\n\
         [session]\nkeys = [{{ file = \"session.key\" }}]\n\
         [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"hs256.key\" }}\n{tables}",
        super::APPID
    )
}

/// A public route from `path` to `upstream`.
pub fn route(path: &str, upstream: &str) -> String {
    format!("[[routes]]\npath = \"{path}\"\nupstream = \"{upstream}\"\naudience = \"shop\"\npolicy = \"public\"\n")
}

/// A child process killed when the test ends, passed or failed.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server the test started (a front proxy): where it listens, killed with its folder when
/// the test ends.
pub struct Listening {
    pub addr: SocketAddr,
    _child: KillOnDrop,
    _dir: tempfile::TempDir,
}

impl Listening {
    /// Spawns `cmd` (its standard error to `<name>.stderr` in `dir`) and waits up to
    /// `within` for it to accept connections on 127.0.0.1:`port`; fails with `name`, its
    /// standard error and the log it writes itself (`log`, in `dir`) when it does not.
    pub fn spawn(
        cmd: &mut Command,
        name: &str,
        port: u16,
        dir: tempfile::TempDir,
        log: Option<&str>,
        within: Duration,
    ) -> Self {
        let stderr = dir.path().join(format!("{name}.stderr"));
        let child =
            KillOnDrop(cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&stderr).unwrap()).spawn().unwrap());
        let said = || {
            let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
            format!("{}{}", read(&stderr), log.map_or(String::new(), |l| read(&dir.path().join(l))))
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + within;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{name} did not listen: {}", said());
            std::thread::sleep(Duration::from_millis(20));
        }
        Listening { addr, _child: child, _dir: dir }
    }
}
