//! The listening sockets of `run`: bound by the gateway itself before anything starts, so a
//! taken port is one clear error naming its config key, or taken over from the process being
//! upgraded, and handed on to the next one.
//!
//! Each socket is known by its config key (`listen`, `tls.listen`, `admin.listen`, …) and the
//! address it is bound to. A port of 0 binds a free port; the address actually bound is what
//! the services listen on and what the log says. In a hand-over the sockets travel with
//! `key=address` names, so the next process claims each by its key (a port of 0 in its config
//! takes whatever port the socket has); a socket the next process does not claim is closed.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{IntoRawFd, RawFd};
use std::path::Path;

use pingora::server::Fds;

/// Why a listening socket could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{key} {addr}: {reason}")]
    Bind { key: &'static str, addr: SocketAddr, reason: String },
    #[error("upgrade_sock {path}: {reason}")]
    Upgrade { path: String, reason: String },
}

/// One listening socket, open in this process.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The config key that asked for it.
    pub key: &'static str,
    /// The address it is bound to (the real port when the config said 0).
    pub addr: SocketAddr,
    fd: RawFd,
}

/// Every listening socket of the process. The descriptors belong to the services listening
/// on them (pingora closes each when its accept loop ends); this table only names them.
#[derive(Debug, Default, Clone)]
pub struct Listeners {
    bound: Vec<Bound>,
}

impl Listeners {
    /// A socket for each `(key, address)`: the one of `inherited` with that key when its
    /// address fits, else a new one. Inherited sockets that fit no key are closed.
    pub fn open(wanted: &[(&'static str, SocketAddr)], inherited: Option<Fds>) -> Result<Self, ListenError> {
        let mut inherited = Inherited::read(inherited.unwrap_or_else(Fds::new));
        let claimed: Vec<Option<Bound>> = wanted.iter().map(|&(key, addr)| inherited.claim(key, addr)).collect();
        // Before binding anew: a key may move onto an address another key gave up.
        inherited.close_unclaimed();
        let mut bound = Vec::with_capacity(wanted.len());
        for (&(key, addr), claimed) in wanted.iter().zip(claimed) {
            bound.push(match claimed {
                Some(socket) => socket,
                None => bind(key, addr)?,
            });
        }
        Ok(Self { bound })
    }

    /// The sockets, in the order they were asked for.
    pub fn bound(&self) -> &[Bound] {
        &self.bound
    }

    /// The socket for `key`, if one was asked for.
    pub fn get(&self, key: &str) -> Option<&Bound> {
        self.bound.iter().find(|b| b.key == key)
    }

    /// The table pingora's listeners take their sockets from, keyed by bound address.
    pub fn for_services(&self) -> Fds {
        let mut fds = Fds::new();
        for b in &self.bound {
            fds.add(b.addr.to_string(), b.fd);
        }
        fds
    }

    /// Sends every socket to the process waiting on `path` (`run --upgrade`). The sockets stay
    /// open here too until this process stops accepting.
    pub fn hand_over(&self, path: &str) -> Result<(), ListenError> {
        let mut fds = Fds::new();
        for b in &self.bound {
            fds.add(format!("{}={}", b.key, b.addr), b.fd);
        }
        fds.send_to_sock(path)
            .map(drop)
            .map_err(|e| ListenError::Upgrade { path: path.into(), reason: format!("cannot send the sockets: {e}") })
    }
}

/// Waits on `path` for the running gateway to hand its sockets over (it does on SIGQUIT).
pub fn receive(path: &str) -> Result<Fds, ListenError> {
    let fail = |reason: String| ListenError::Upgrade { path: path.into(), reason };
    let dir = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(fail(format!("{} is not a directory", dir.display())));
    }
    if path.len() >= 108 {
        return Err(fail("longer than a Unix socket path may be (107 bytes)".into()));
    }
    // pingora's receiving end panics where it cannot make the socket: try it here first.
    let _ = std::fs::remove_file(path);
    match std::os::unix::net::UnixListener::bind(path) {
        Ok(probe) => {
            drop(probe);
            let _ = std::fs::remove_file(path);
        }
        Err(e) => return Err(fail(format!("cannot make the socket here: {}", reason(&e)))),
    }
    let mut fds = Fds::new();
    fds.get_from_sock(path).map_err(|e| {
        fail(format!("no running gateway handed its sockets over ({e}); start the new process first, then send SIGQUIT to the old one"))
    })?;
    Ok(fds)
}

fn bind(key: &'static str, addr: SocketAddr) -> Result<Bound, ListenError> {
    // std sets SO_REUSEADDR; pingora raises the backlog when it starts listening.
    let listener = TcpListener::bind(addr).map_err(|e| ListenError::Bind { key, addr, reason: reason(&e) })?;
    let fail = |e: std::io::Error| ListenError::Bind { key, addr, reason: reason(&e) };
    let local = listener.local_addr().map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(Bound { key, addr: local, fd: listener.into_raw_fd() })
}

/// `address in use`, `permission denied`, …: what went wrong, without the OS error number.
fn reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        kind @ (AddrInUse | AddrNotAvailable | PermissionDenied) => kind.to_string(),
        _ => {
            let text = e.to_string();
            text.split(" (os error").next().unwrap_or(&text).to_lowercase()
        }
    }
}

/// Sockets handed over by the previous process, by `key=address` name (or by address alone,
/// from a gateway of a release that handed them over by address).
struct Inherited {
    fds: Fds,
    names: Vec<(String, SocketAddr, String)>,
    claimed: HashSet<String>,
}

impl Inherited {
    fn read(fds: Fds) -> Self {
        let (names, _) = fds.serialize();
        let names = names
            .into_iter()
            .filter_map(|name| {
                let (key, addr) = name.split_once('=').unwrap_or(("", name.as_str()));
                Some((key.to_string(), addr.parse().ok()?, name))
            })
            .collect();
        Self { fds, names, claimed: HashSet::new() }
    }

    /// The socket handed over for `key`, when `wanted` is its address (or the same IP with port 0).
    fn claim(&mut self, key: &'static str, wanted: SocketAddr) -> Option<Bound> {
        let fits = |addr: &SocketAddr| addr.ip() == wanted.ip() && (wanted.port() == 0 || addr.port() == wanted.port());
        let (_, addr, name) = self
            .names
            .iter()
            .filter(|(_, _, name)| !self.claimed.contains(name))
            .find(|(k, addr, _)| (k == key || k.is_empty()) && fits(addr))?;
        let fd = *self.fds.get(name)?;
        self.claimed.insert(name.clone());
        Some(Bound { key, addr: *addr, fd })
    }

    fn close_unclaimed(&mut self) {
        for name in self.fds.close_unclaimed(&self.claimed) {
            log::warn!("upgrade: the socket handed over as {name} is not in this config and is closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_names_its_key_and_address() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Listeners::open(&[("admin.listen", addr)], None).unwrap_err();
        assert_eq!(err.to_string(), format!("admin.listen {addr}: address in use"));
    }

    #[test]
    fn port_zero_binds_a_free_port_and_says_which() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let l = Listeners::open(&[("listen", any), ("admin.listen", any)], None).unwrap();
        let (a, b) = (l.get("listen").unwrap().addr, l.get("admin.listen").unwrap().addr);
        assert!(a.port() != 0 && b.port() != 0 && a != b);
        assert!(l.for_services().get(&a.to_string()).is_some());
    }

    #[test]
    fn handed_over_sockets_are_claimed_by_key() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let old = Listeners::open(&[("listen", any), ("admin.listen", any)], None).unwrap();
        let mut sent = Fds::new();
        for b in old.bound() {
            sent.add(format!("{}={}", b.key, b.addr), b.fd);
        }
        let listen = old.get("listen").unwrap().clone();
        let next = Listeners::open(&[("listen", any), ("tls.listen", any)], Some(sent)).unwrap();
        let got = next.get("listen").unwrap();
        assert_eq!((got.addr, got.fd), (listen.addr, listen.fd), "the same socket, not a new one");
        assert_ne!(next.get("tls.listen").unwrap().addr.port(), 0, "a key not handed over is bound anew");
        let unclaimed = old.get("admin.listen").unwrap().addr;
        assert!(std::net::TcpStream::connect(unclaimed).is_err(), "a socket no key claims is closed");
    }

    #[test]
    fn sockets_handed_over_by_address_alone_are_claimed_by_address() {
        // As a gateway of the release before key names handed them over.
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let old = Listeners::open(&[("listen", any), ("admin.listen", any)], None).unwrap();
        let mut sent = Fds::new();
        for b in old.bound() {
            sent.add(b.addr.to_string(), b.fd);
        }
        let (listen, admin) = (old.get("listen").unwrap().clone(), old.get("admin.listen").unwrap().clone());
        let next = Listeners::open(&[("listen", listen.addr), ("admin.listen", admin.addr)], Some(sent)).unwrap();
        assert_eq!(next.get("listen").unwrap().fd, listen.fd);
        assert_eq!(next.get("admin.listen").unwrap().fd, admin.fd);
    }
}
