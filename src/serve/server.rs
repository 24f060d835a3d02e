//! The gateway's pingora services, and starting one at a time on a listener that is already
//! bound (tests, embedding); `run` starts them all through [`crate::serve`].

use std::net::{SocketAddr, TcpListener};
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use pingora::apps::ServerApp;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::ServerConf;
use pingora::server::Fds;
use pingora::services::listening::Service as ListeningService;
use pingora::services::Service;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::proxy::conn::{Activity, GuardedApp};
use crate::proxy::GatewayProxy;
use crate::runtime::live::LiveGateway;

/// The gateway as pingora serves it: the proxy behind the connection guard.
pub type GatewayService = ListeningService<GuardedApp<HttpProxy<GatewayProxy>>>;

/// The pingora settings the proxy is built with. Shutdown and upgrade are not pingora's
/// server's here but [`crate::serve`]'s, so its grace periods play no part.
pub fn server_conf(threads: usize) -> ServerConf {
    ServerConf { threads, ..ServerConf::default() }
}

/// Bytes of each client connection's read buffer in front of its socket. pingora's default is
/// 64 KiB, filled with zeros per connection by the allocator; pingora reads request headers
/// into its own 4 KiB buffer and bodies into their own buffers, so the extra layer only
/// copies. Without it an idle keep-alive connection holds far less memory (BENCHMARKS.md).
pub const L4_READ_BUFFER: usize = 0;

/// A listening endpoint on `addr` with the gateway's socket buffer sizes, speaking TLS with
/// `tls` when given.
pub fn listener(addr: &str, tls: Option<TlsSettings>) -> ListenerConfig {
    let buffers = L4BufferSettings { read: Some(L4_READ_BUFFER), write: None };
    let endpoint = ListenerConfig::tcp(addr).l4_buffer(buffers);
    match tls {
        Some(settings) => endpoint.tls(settings),
        None => endpoint,
    }
}

/// The proxy service for `gateway`, not yet listening anywhere: every client connection
/// gets the header and idle deadlines of `[limits]` ([`crate::proxy::conn`]).
pub fn proxy_service(live: Arc<LiveGateway>, conf: &Arc<ServerConf>) -> GatewayService {
    proxy_service_counted(live, conf, Arc::default())
}

/// Like [`proxy_service`], its connections counted in `activity` (shared by the listeners of
/// one process, for the drain at shutdown).
pub fn proxy_service_counted(
    live: Arc<LiveGateway>,
    conf: &Arc<ServerConf>,
    activity: Arc<Activity>,
) -> GatewayService {
    let proxy = http_proxy(conf, GatewayProxy(live.clone()));
    ListeningService::new("openid-gateway".into(), GuardedApp::new(proxy, live, activity))
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
    service.add_listener(self::listener(&key, tls));
    let mut fds = Fds::new();
    fds.add(key, listener.into_raw_fd());
    let fds = Arc::new(parking_lot::Mutex::new(fds));
    let (shutdown, watch_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        Service::start_service(&mut service, Some(fds), watch_rx, 1).await;
    });
    Ok(Running { addr, shutdown, task })
}
