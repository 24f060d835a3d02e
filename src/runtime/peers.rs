//! The upstream peers of the routes, built once per config: address resolved, timeouts
//! and keep-alive set, TLS verified with the route's CA certificates.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use pingora::protocols::l4::ext::TcpKeepalive;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, WrappedX509};

use super::BuildError;
use crate::config::{HostPattern, Route};

/// The route in metrics and logs: `host/path`, or the path for routes on any host.
pub(super) fn label(route: &Route) -> String {
    match &route.host {
        HostPattern::Any => route.path.clone(),
        HostPattern::Exact(h) => format!("{h}{}", route.path),
        HostPattern::Wildcard(suffix) => format!("*{suffix}{}", route.path),
    }
}

/// The peer of `route`: plain HTTP to `addr`, with the route's timeouts.
pub(super) fn peer(route: &Route, addr: SocketAddr) -> HttpPeer {
    let up = &route.upstream;
    let tls = up.tls.as_ref();
    let mut peer = HttpPeer::new(addr, tls.is_some(), tls.map_or_else(String::new, |t| t.sni.clone()));
    if let Some(ca) = tls.and_then(|t| t.ca.as_deref()) {
        peer.options.ca = Some(peer_ca(ca));
    }
    peer.options.connection_timeout = Some(up.connect_timeout);
    peer.options.total_connection_timeout = Some(up.connect_timeout);
    peer.options.read_timeout = Some(up.read_timeout);
    peer.options.write_timeout = Some(up.write_timeout);
    peer.options.idle_timeout = Some(up.idle_timeout);
    // pingora stops writing a body after `write_timeout`, but then still waits `read_timeout` for
    // an answer. TCP_USER_TIMEOUT makes the kernel drop a connection whose peer has taken no data
    // (a zero window) for as long, so a deaf upstream gets its 504 within `write_timeout`.
    peer.options.tcp_keepalive = Some(TcpKeepalive {
        idle: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        count: 3,
        #[cfg(target_os = "linux")]
        user_timeout: up.write_timeout,
    });
    peer
}

pub(super) fn resolve(index: usize, address: &str) -> Result<SocketAddr, BuildError> {
    let err = |reason: String| BuildError::Resolve { index, address: address.into(), reason };
    address.to_socket_addrs().map_err(|e| err(e.to_string()))?.next().ok_or_else(|| err("no address".into()))
}

/// CA certificates (DER, checked when the config was read) as pingora's peers take them.
fn peer_ca(ders: &[Vec<u8>]) -> Arc<[WrappedX509]> {
    ders.iter().map(|der| WrappedX509::new(der.clone(), parse_x509)).collect::<Vec<_>>().into()
}
