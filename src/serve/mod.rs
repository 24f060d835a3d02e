//! The process `run` starts: every service on one tokio runtime, on sockets bound before any of
//! them starts ([`listeners`]), and the signals that end it.
//!
//! - `SIGTERM` and `SIGINT`: stop accepting, then drain: requests in flight finish, each with
//!   `Connection: close`, and the process exits as soon as nothing is in flight, never later
//!   than `drain_timeout` ([`crate::proxy::conn::Activity`]). A second `SIGINT` exits at once.
//! - `SIGQUIT`: hand the sockets to the process started with `run --upgrade`, then stop
//!   accepting and drain the same way. Connections arriving meanwhile wait in the sockets'
//!   queue for the new process; nothing is refused or reset. If the hand-over fails, this
//!   process keeps serving and says why.
//! - `SIGHUP`: reload the config (see [`crate::serve::run`]).

pub mod admin;
pub mod listeners;
pub mod run;
pub mod server;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use pingora::server::ShutdownWatch;
use pingora::services::Service;

use crate::proxy::conn::Activity;
use crate::runtime::live::LiveGateway;

pub use listeners::{Bound, ListenError, Listeners};

/// A service ready to start on the sockets of [`Listeners`].
pub type BoxedService = Box<dyn Service>;

/// Starts a task beside the services, which ends when the watch turns true.
pub type Background = Box<dyn FnOnce(ShutdownWatch) + Send>;

/// How long after the drain's deadline the services get to wind down before the runtime is
/// stopped under them.
const WIND_DOWN: Duration = Duration::from_millis(500);

/// The signals the process answers, registered before any socket is open so none of them can
/// kill it the default way once it serves.
pub struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
}

impl Signals {
    pub fn register() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub async fn stopped(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Starts `services` on `listeners` and serves until a signal ends the process (module docs);
/// `activity` counts the connections of the proxy services.
/// Each of `background` is started with the shutdown watch (it spawns what it runs).
pub async fn serve(
    mut signals: Signals,
    services: Vec<BoxedService>,
    listeners: Listeners,
    activity: Arc<Activity>,
    live: Arc<LiveGateway>,
    upgrade_sock: String,
    background: Vec<Background>,
) {
    let (shutdown, watch) = watch::channel(false);
    let fds = Arc::new(parking_lot::Mutex::new(listeners.for_services()));
    let mut running = JoinSet::new();
    for mut service in services {
        let (fds, watch) = (fds.clone(), watch.clone());
        running.spawn(async move { service.start_service(Some(fds), watch, 1).await });
    }
    for task in background {
        task(watch.clone());
    }

    let why = loop {
        tokio::select! {
            _ = signals.term.recv() => break "SIGTERM",
            _ = signals.int.recv() => break "SIGINT",
            _ = signals.quit.recv() => {
                log::info!("SIGQUIT: handing the listening sockets over on {upgrade_sock}");
                let (table, path) = (listeners.clone(), upgrade_sock.clone());
                let sent = tokio::task::spawn_blocking(move || table.hand_over(&path)).await;
                match sent {
                    Ok(Ok(())) => break "SIGQUIT: the sockets are handed over",
                    Ok(Err(e)) => log::error!("graceful upgrade failed, still serving: {e}"),
                    Err(e) => log::error!("graceful upgrade failed, still serving: {e}"),
                }
            }
        }
    };
    // The drain_timeout of the config serving now (a reload may have changed it).
    let timeout = live.current().config.drain_timeout;
    activity.begin_drain(timeout);
    log::info!(
        "{why}: no longer accepting; draining {} request(s) in flight for at most {}",
        activity.in_flight(),
        humantime::format_duration(timeout)
    );
    let _ = shutdown.send(true);
    let until = activity.deadline().map_or_else(tokio::time::Instant::now, |d| d + WIND_DOWN);
    let ended = tokio::select! {
        _ = async { while running.join_next().await.is_some() {} } => true,
        _ = tokio::time::sleep_until(until) => false,
        _ = signals.int.recv() => {
            log::warn!("SIGINT again: exiting without waiting for requests in flight");
            false
        }
    };
    let left = activity.in_flight();
    if ended && left == 0 {
        log::info!("drained: exiting");
    } else {
        log::warn!("exiting with {left} request(s) still in flight: they are cut");
    }
}
