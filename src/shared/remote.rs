//! The Redis side of the shared state: connections (one server through multiplexed
//! connection managers, or a cluster), each command bounded by `command_timeout`, and whether
//! Redis is reachable: after a failure the gateway works on local state and tries Redis again
//! at most once a second, so an outage costs no request a timeout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::RedisConfig;
use crate::observe::metrics::Metrics;

/// How often an unreachable Redis is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Why Redis could not be set up from the config.
#[derive(Debug, thiserror::Error)]
#[error("state.url: {0}")]
pub struct SetupError(String);

enum Pool {
    /// Managers are made on first use: they need the runtime that serves requests.
    Single {
        client: Client,
        config: ConnectionManagerConfig,
        size: usize,
        managers: tokio::sync::OnceCell<Vec<ConnectionManager>>,
    },
    Cluster {
        client: ClusterClient,
        conn: tokio::sync::Mutex<Option<ClusterConnection>>,
    },
}

/// One connection, to a server or to the cluster.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(p, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Redis, and whether it answers.
pub struct Remote {
    pool: Pool,
    next: AtomicUsize,
    pub prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    down: AtomicBool,
    /// One request at a time tries an unreachable Redis again; the others go on locally.
    probing: AtomicBool,
    last_failure: Mutex<Option<Instant>>,
    /// When the last "Redis refused a command" line was logged.
    last_refusal_log: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl Remote {
    /// Connections are made lazily: a gateway starts (degraded) while Redis is down.
    pub fn new(cfg: &RedisConfig, metrics: Arc<Metrics>) -> Result<Self, SetupError> {
        let err = |e: redis::RedisError| SetupError(e.to_string());
        let info = |url: &str| -> Result<redis::ConnectionInfo, SetupError> {
            let mut info = url.into_connection_info().map_err(err)?;
            let mut settings = info.redis_settings().clone();
            if let Some(user) = &cfg.username {
                settings = settings.set_username(user);
            }
            if let Some(pw) = &cfg.password {
                settings = settings.set_password(pw.expose_str());
            }
            info = info.set_redis_settings(settings);
            Ok(info)
        };
        let certs = || redis::TlsCertificates { client_tls: None, root_cert: cfg.ca.clone() };
        let pool = if cfg.cluster {
            let infos = cfg.urls.iter().map(|u| info(u)).collect::<Result<Vec<_>, _>>()?;
            let mut b = ClusterClient::builder(infos)
                .connection_timeout(cfg.connect_timeout)
                .response_timeout(cfg.command_timeout)
                .retries(1);
            if cfg.ca.is_some() {
                b = b.certs(certs());
            }
            Pool::Cluster { client: b.build().map_err(err)?, conn: tokio::sync::Mutex::new(None) }
        } else {
            let info = info(&cfg.urls[0])?;
            let client = match cfg.ca {
                Some(_) => Client::build_with_tls(info, certs()),
                None => Client::open(info),
            }
            .map_err(err)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(cfg.connect_timeout))
                .set_response_timeout(Some(cfg.command_timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            Pool::Single { client, config, size: cfg.pool_size, managers: tokio::sync::OnceCell::new() }
        };
        Ok(Self {
            pool,
            next: AtomicUsize::new(0),
            prefix: cfg.key_prefix.clone(),
            command_timeout: cfg.command_timeout,
            connect_timeout: cfg.connect_timeout,
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            last_failure: Mutex::new(None),
            last_refusal_log: Mutex::new(None),
            metrics,
        })
    }

    /// Is Redis answering (as far as the last command knows)?
    pub fn healthy(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// Runs `op` on a connection within the command timeout; `None` when Redis is down (and
    /// was tried less than a second ago, or another request is trying it now) or fails now.
    /// Only an unreachable Redis (no connection, dropped, silent) counts as down; a command
    /// Redis refuses (out of memory, read-only replica) fails alone and is logged at most once
    /// a second.
    pub async fn run<T, F, Fut>(&self, what: &str, op: F) -> Option<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let probe = self.down.load(Ordering::Relaxed);
        if probe {
            let due = self.last_failure.lock().is_none_or(|at| at.elapsed() >= RETRY_EVERY);
            if !due || self.probing.swap(true, Ordering::AcqRel) {
                return None;
            }
        }
        let result = match tokio::time::timeout(self.connect_timeout, self.conn()).await {
            Ok(Ok(conn)) => match tokio::time::timeout(self.command_timeout, op(conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) if outage(&e) => Err(Some(e.to_string())),
                Ok(Err(e)) => {
                    self.refused(what, &e);
                    Err(None)
                }
                Err(_) => Err(Some(format!("no answer within {:?}", self.command_timeout))),
            },
            Ok(Err(e)) => Err(Some(e.to_string())),
            Err(_) => Err(Some(format!("no connection within {:?}", self.connect_timeout))),
        };
        if probe {
            self.probing.store(false, Ordering::Release);
        }
        match result {
            Ok(v) => {
                if (probe || !self.down.load(Ordering::Relaxed)) && self.down.swap(false, Ordering::Relaxed) {
                    log::info!("shared state: Redis answers again; shared behaviour resumes");
                    self.metrics.state_degraded.set(0);
                }
                Some(v)
            }
            Err(None) => None,
            Err(Some(e)) => {
                *self.last_failure.lock() = Some(Instant::now());
                self.metrics.state_errors.inc();
                if !self.down.swap(true, Ordering::Relaxed) {
                    log::warn!("shared state: Redis unreachable ({what}: {e}); each replica uses its own state until it answers again");
                    self.metrics.state_degraded.set(1);
                }
                None
            }
        }
    }

    /// A command Redis answered with an error: counted, logged at most once a second.
    fn refused(&self, what: &str, e: &redis::RedisError) {
        self.metrics.state_errors.inc();
        let mut last = self.last_refusal_log.lock();
        if last.is_none_or(|at| at.elapsed() >= RETRY_EVERY) {
            *last = Some(Instant::now());
            log::warn!("shared state: Redis refused a command ({what}: {e}); decided locally");
        }
    }

    async fn conn(&self) -> RedisResult<Conn> {
        match &self.pool {
            Pool::Single { client, config, size, managers } => {
                let managers = managers
                    .get_or_try_init(|| async {
                        (0..*size)
                            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
                            .collect::<RedisResult<Vec<_>>>()
                    })
                    .await?;
                let i = self.next.fetch_add(1, Ordering::Relaxed) % managers.len();
                Ok(Conn::Single(managers[i].clone()))
            }
            Pool::Cluster { client, conn } => {
                let mut slot = conn.lock().await;
                if let Some(c) = slot.as_ref() {
                    return Ok(Conn::Cluster(c.clone()));
                }
                let c = client.get_async_connection().await?;
                *slot = Some(c.clone());
                Ok(Conn::Cluster(c))
            }
        }
    }

    /// `prefix` + `rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }
}

/// Does `e` mean Redis cannot be reached (rather than that it refused one command)?
fn outage(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}
