//! A real Redis for the tests: Debian's `redis-server`, installed with apt-get when missing
//! ([`super::prepare`]), started by each test on free `127.0.0.1` ports in its own temporary
//! folder, without persistence, and killed and reaped when the test drops it.
//!
//! Ports come from below the kernel's ephemeral range, chosen at random: a `bind` to port 0
//! and every outgoing connection take theirs from that range, so nothing takes one of ours
//! by chance, and a server killed by its test comes back on its port. No two servers of one
//! test process are given the same port (a killed one keeps its port until dropped). Should
//! another process hold a port anyway, `redis-server` says so and the next port is tried.
//!
//! A server is up when it has printed `Ready to accept connections` and answered `PING`: no
//! sleeps. Only the cluster's convergence is polled, for want of anything to wait on. Every
//! server runs under `setpriv --pdeathsig KILL`, spawned by one thread that lives as long as
//! the test process, so a test binary killed outright leaves no Redis behind either.
//! (Installing the package starts no system Redis in our containers, whose `policy-rc.d`
//! refuses services; where one does start, it listens on 6379, which no test uses.)

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::prepare;

/// Debian's `redis-server`, as the package installs it (a link into `redis-tools`).
const REDIS_SERVER: &str = "/usr/bin/redis-server";
const PACKAGES: [&str; 2] = ["redis-server", "redis-tools"];
const PRESENT: [&str; 2] = [REDIS_SERVER, "/usr/bin/redis-cli"];
/// How long a server may take to start, or a cluster to agree.
const PATIENCE: Duration = Duration::from_secs(15);
const READY: &str = "Ready to accept connections";
const PORT_TAKEN: &str = "Address already in use";
/// Fresh ports tried before giving up (another process may hold the one tried).
const ATTEMPTS: usize = 20;
/// The lowest port given out, when the ephemeral range starts high enough above it.
const LOWEST_PORT: u16 = 10_000;

/// Debian's `redis-server`, installed with `redis-tools` (for `redis-cli`) when missing.
pub fn redis_server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        prepare::apt("redis", &PACKAGES, &PRESENT);
        PathBuf::from(REDIS_SERVER)
    })
    .clone()
}

/// One `redis-server` of the test's own. `kill` crashes it; `restart` brings it back on the
/// same port and folder (empty, as nothing is saved; a cluster node keeps its `nodes.conf`).
pub struct RedisServer {
    pub port: u16,
    /// The cluster bus port, for a cluster node.
    bus_port: Option<u16>,
    password: Option<String>,
    /// More `redis-server` options, given again on a restart.
    options: Vec<String>,
    dir: TempDir,
    child: Child,
    log: Log,
    /// Given back once the server is dropped (after it is killed).
    _ports: Ports,
}

/// Everything a server printed, across restarts, for failure messages.
type Log = Arc<Mutex<String>>;

/// The server could not listen: another process took its port.
struct Taken;

impl RedisServer {
    /// A server without a password.
    pub fn start() -> Self {
        Self::launch(None, false, &[])
    }

    /// A server refusing every command but `AUTH` until given `password`.
    pub fn start_with_password(password: &str) -> Self {
        Self::launch(Some(password.into()), false, &[])
    }

    /// A server given more options, as `redis-server` takes them on its command line
    /// (`["--maxmemory-policy", "allkeys-lru"]`); a restart gives them again.
    pub fn start_with(options: &[&str]) -> Self {
        Self::launch(None, false, options)
    }

    /// `redis://127.0.0.1:<port>`, without the password (see [`RedisServer::password`]).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A connection, authenticated when the server has a password.
    pub fn connect(&self) -> Conn {
        let mut conn = Conn::open(self.port).unwrap_or_else(|e| panic!("redis on {}: {e}", self.port));
        if let Some(password) = &self.password {
            conn.ok(&["AUTH", password]);
        }
        conn
    }

    /// SIGKILL, as a crash: once this returns, the port refuses connections.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().expect("reaping redis-server");
    }

    /// Kills the server if it runs, and starts it again on the same port and folder.
    pub fn restart(&mut self) {
        self.kill();
        let cmd = command(self.port, self.bus_port, self.password.as_deref(), &self.options, self.dir.path());
        match spawn(cmd, &self.log) {
            Ok(child) => self.child = child,
            Err(Taken) => panic!("redis port {} was taken while the server was down", self.port),
        }
        self.ping();
    }

    fn launch(password: Option<String>, cluster: bool, options: &[&str]) -> Self {
        redis_server_bin();
        let dir = tempfile::tempdir().expect("creating redis's folder");
        let log = Log::default();
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        for _ in 0..ATTEMPTS {
            let ports = Ports::take(if cluster { 2 } else { 1 });
            let (port, bus_port) = (ports.0[0], ports.0.get(1).copied());
            let cmd = command(port, bus_port, password.as_deref(), &options, dir.path());
            if let Ok(child) = spawn(cmd, &log) {
                let server = RedisServer { port, bus_port, password, options, dir, child, log, _ports: ports };
                server.ping();
                return server;
            }
        }
        panic!("redis-server found no free port in {ATTEMPTS} attempts:\n{}", log.lock().unwrap());
    }

    fn ping(&self) {
        let reply = self.connect().command(&["PING"]);
        assert!(matches!(&reply, Ok(Reply::Status(s)) if s == "PONG"), "redis PING: {reply:?}\n{}", self.log());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports given to a server of this process, given back when dropped.
struct Ports(Vec<u16>);

/// The ports servers of this process have (a killed server keeps its own).
fn given() -> std::sync::MutexGuard<'static, HashSet<u16>> {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    GIVEN.get_or_init(Mutex::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ports {
    /// `count` distinct ports that no server of this process has and that were free a moment
    /// ago, below the ephemeral range when it leaves room (else from it, through port 0).
    fn take(count: usize) -> Self {
        use rand::Rng;
        let below = ephemeral_start().filter(|start| *start > LOWEST_PORT + 1_000);
        let mut given = given();
        let (mut ports, mut tries) = (Vec::new(), 0);
        while ports.len() < count {
            tries += 1;
            assert!(tries <= 10_000, "no {count} free ports found on 127.0.0.1");
            let port = match below {
                Some(start) => rand::thread_rng().gen_range(LOWEST_PORT..start),
                None => {
                    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port()
                }
            };
            if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.insert(port);
                ports.push(port);
            }
        }
        Ports(ports)
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        let mut given = given();
        for port in &self.0 {
            given.remove(port);
        }
    }
}

/// The first port of the kernel's ephemeral range, if it says.
fn ephemeral_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// `redis-server` in the foreground, without persistence, dying with the test process.
fn command(port: u16, bus_port: Option<u16>, password: Option<&str>, options: &[String], dir: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", REDIS_SERVER, "--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
    if let Some(password) = password {
        cmd.args(["--requirepass", password]);
    }
    cmd.args(options);
    if let Some(bus) = bus_port {
        cmd.args(["--cluster-enabled", "yes", "--cluster-port", &bus.to_string()]).args([
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ]);
    }
    cmd
}

/// Starts `cmd` and returns once it printed that it is ready; `Err(Taken)` if it exited
/// because its port was taken. Its output goes to `log` for as long as it runs.
fn spawn(mut cmd: Command, log: &Log) -> Result<Child, Taken> {
    let (output, input) = io::pipe().expect("creating a pipe");
    cmd.stdin(Stdio::null()).stdout(input.try_clone().expect("cloning a pipe")).stderr(input);
    let from = log.lock().unwrap().len();
    let mut child = spawn_outliving(cmd).unwrap_or_else(|e| panic!("starting redis-server (setpriv): {e}"));
    let (ready_tx, ready) = mpsc::channel();
    let log_ = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(output).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line);
            log_.lock().unwrap().push_str(&format!("{line}\n"));
            if line.contains(READY) {
                let _ = ready_tx.send(());
            }
        }
    });
    match ready.recv_timeout(PATIENCE) {
        Ok(()) => Ok(child),
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            let printed = log.lock().unwrap()[from..].to_string();
            match why {
                mpsc::RecvTimeoutError::Disconnected if printed.contains(PORT_TAKEN) => Err(Taken),
                _ => panic!("redis-server did not start ({why}):\n{printed}"),
            }
        }
    }
}

/// Spawns `cmd` from a thread that lives as long as the process: the kernel sends the
/// `--pdeathsig` signal when the *thread* that spawned the child ends, so that thread must not
/// be a test's, nor a runtime's blocking thread.
fn spawn_outliving(cmd: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("redis-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in inbox {
                    let child = cmd.spawn();
                    drop(cmd); // our end of the child's output pipe: EOF comes when the child exits
                    let _ = reply.send(child);
                }
            })
            .expect("starting the redis spawner thread");
        jobs
    });
    let (reply, answer) = mpsc::channel();
    spawner.send((cmd, reply)).expect("the redis spawner thread is gone");
    answer.recv().expect("the redis spawner thread is gone")
}

/// Three masters sharing the 16384 slots, as `redis-cli --cluster create --cluster-replicas 0`
/// makes them; each node a [`RedisServer`] a test may kill and restart.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, gives each a third of the slots, introduces them to each other and
    /// returns once every node says `cluster_state:ok`.
    pub fn start() -> Self {
        const SLOTS: usize = 16384;
        let nodes: Vec<_> = (0..3).map(|_| RedisServer::launch(None, true, &[])).collect();
        let mut first = nodes[0].connect();
        for (i, node) in nodes.iter().enumerate() {
            let (low, high) = (i * SLOTS / nodes.len(), (i + 1) * SLOTS / nodes.len() - 1);
            let mut conn = node.connect();
            conn.ok(&["CLUSTER", "ADDSLOTSRANGE", &low.to_string(), &high.to_string()]);
            conn.ok(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
            let bus = node.bus_port.unwrap().to_string();
            if i > 0 {
                first.ok(&["CLUSTER", "MEET", "127.0.0.1", &node.port.to_string(), &bus]);
            }
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// The nodes' `redis://127.0.0.1:<port>`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Polls every node's `CLUSTER INFO` until each knows all the others and says
    /// `cluster_state:ok` (gossip gives nothing to wait on).
    pub fn wait_until_ok(&self) {
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        let deadline = Instant::now() + PATIENCE;
        loop {
            let infos: Vec<_> = self.nodes.iter().map(|n| n.connect().command(&["CLUSTER", "INFO"])).collect();
            let ok = |info: &io::Result<Reply>| {
                let text = info.as_ref().ok().and_then(Reply::text).unwrap_or_default();
                text.contains("cluster_state:ok") && text.contains(&known)
            };
            if infos.iter().all(ok) {
                return;
            }
            assert!(Instant::now() < deadline, "the redis cluster did not converge: {infos:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a status or bulk reply.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// A raw RESP2 connection: enough to see what is in Redis without a client crate.
pub struct Conn(BufReader<TcpStream>);

impl Conn {
    pub fn open(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(PATIENCE))?;
        Ok(Conn(BufReader::new(stream)))
    }

    /// Sends one command and reads its reply (a Redis error is an `Ok(Reply::Error)`).
    pub fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        self.0.get_mut().write_all(&request)?;
        self.reply()
    }

    /// Sends a command that must answer `+OK`.
    pub fn ok(&mut self, args: &[&str]) {
        let reply = self.command(args);
        assert!(matches!(&reply, Ok(Reply::Status(s)) if s == "OK"), "redis {args:?}: {reply:?}");
    }

    fn reply(&mut self) -> io::Result<Reply> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("RESP: {what:?}"));
        let mut line = String::new();
        self.0.read_line(&mut line)?;
        let body = line.strip_suffix("\r\n").ok_or_else(|| bad(&line))?;
        let rest = body.get(1..).ok_or_else(|| bad(body))?;
        let number = || rest.parse::<i64>().map_err(|_| bad(body));
        Ok(match &body[..1] {
            "+" => Reply::Status(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(number()?),
            "$" => match usize::try_from(number()?) {
                Err(_) => Reply::Bulk(None),
                Ok(len) => {
                    let mut bytes = vec![0; len + 2];
                    self.0.read_exact(&mut bytes)?;
                    bytes.truncate(len);
                    Reply::Bulk(Some(bytes))
                }
            },
            "*" => match usize::try_from(number()?) {
                Err(_) => Reply::Array(None),
                Ok(len) => Reply::Array(Some((0..len).map(|_| self.reply()).collect::<io::Result<_>>()?)),
            },
            _ => return Err(bad(body)),
        })
    }
}
