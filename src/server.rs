//! Starting the gateway: as a whole pingora server (`run`), or one service at a time on a
//! listener that is already bound (tests, embedding).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use pingora::apps::ServerApp;
use pingora::listeners::tls::TlsSettings;
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::ServerConf;
use pingora::server::Fds;
use pingora::services::listening::Service as ListeningService;
use pingora::services::Service;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::live::LiveGateway;
use crate::proxy::conn::GuardedApp;
use crate::proxy::GatewayProxy;

/// The gateway as pingora serves it: the proxy behind the connection guard.
pub type GatewayService = ListeningService<GuardedApp<HttpProxy<GatewayProxy>>>;

/// The pingora settings the gateway runs with.
pub fn server_conf(threads: usize) -> ServerConf {
    ServerConf {
        threads,
        // Finish in-flight requests for at most a few seconds on SIGTERM, not pingora's 300
        // (`run` uses the config's drain_timeout).
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    }
}

/// The proxy service for `gateway`, not yet listening anywhere: every client connection
/// gets the header and idle deadlines of `[limits]` ([`crate::proxy::conn`]).
pub fn proxy_service(live: Arc<LiveGateway>, conf: &Arc<ServerConf>) -> GatewayService {
    let proxy = http_proxy(conf, GatewayProxy(live.clone()));
    ListeningService::new("openid-gateway".into(), GuardedApp::new(proxy, live))
}

/// A service started on a listener of its own; it stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for the service to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts `service` on `listener` (bound by the caller, for example to `127.0.0.1:0`) in the
/// current tokio runtime.
pub fn start_on<A>(service: ListeningService<A>, listener: TcpListener) -> std::io::Result<Running>
where
    A: ServerApp + Send + Sync + 'static,
{
    start_with(service, listener, None)
}

/// Like [`start_on`], speaking TLS with `settings`.
pub fn start_tls_on<A>(
    service: ListeningService<A>,
    listener: TcpListener,
    settings: TlsSettings,
) -> std::io::Result<Running>
where
    A: ServerApp + Send + Sync + 'static,
{
    start_with(service, listener, Some(settings))
}

fn start_with<A>(
    mut service: ListeningService<A>,
    listener: TcpListener,
    tls: Option<TlsSettings>,
) -> std::io::Result<Running>
where
    A: ServerApp + Send + Sync + 'static,
{
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let key = addr.to_string();
    match tls {
        Some(settings) => service.add_tls_with_settings(&key, None, settings),
        None => service.add_tcp(&key),
    }
    let mut fds = Fds::new();
    fds.add(key, listener.into_raw_fd());
    let fds = Arc::new(parking_lot::Mutex::new(fds));
    let (shutdown, watch_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        Service::start_service(&mut service, Some(fds), watch_rx, 1).await;
    });
    Ok(Running { addr, shutdown, task })
}
