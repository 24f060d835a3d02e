//! What the client connections are doing, for the drain at shutdown: how many are open and how
//! many of those are waiting for a request (just accepted, or kept alive after a response).
//! The rest are busy: a request's header is arriving or its response is being made.
//!
//! The drain ([`Activity::drained`]) ends once nothing is busy and the short
//! [`LINGER`] since the drain began has passed, or at `drain_timeout`, whichever comes first.
//! The linger is for requests already on their way when the listeners stopped: a connection
//! accepted an instant before, or a kept-alive one whose client has just sent its next request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// How long a drain waits at least for requests already on their way to be read.
pub const LINGER: Duration = Duration::from_millis(500);

/// How often the drain looks at the counts; nothing on the request path waits for it.
const POLL: Duration = Duration::from_millis(10);

/// Connection counts shared by every listener of the process.
#[derive(Debug, Default)]
pub struct Activity {
    open: AtomicUsize,
    waiting: AtomicUsize,
    /// When the drain began and when it must end.
    drain: OnceLock<(Instant, Instant)>,
}

impl Activity {
    /// A connection was accepted; `waiting`: it waits for its first request (HTTP/1).
    pub fn opened(&self, waiting: bool) {
        self.open.fetch_add(1, Ordering::AcqRel);
        if waiting {
            self.waiting.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A connection ended; `waiting`: it was waiting for a request when it did.
    pub fn closed(&self, waiting: bool) {
        if waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// A waiting connection's request has begun.
    pub fn busy(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }

    /// A busy connection's response is done; it waits for the next request.
    pub fn waiting(&self) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
    }

    /// Connections with a request in progress (HTTP/2 connections count while they are open).
    pub fn in_flight(&self) -> usize {
        self.open.load(Ordering::Acquire).saturating_sub(self.waiting.load(Ordering::Acquire))
    }

    /// Starts the drain now, to end at the latest after `timeout`; a drain already begun keeps
    /// its times.
    pub fn begin_drain(&self, timeout: Duration) {
        let now = Instant::now();
        self.drain.get_or_init(|| (now, now + timeout));
    }

    /// The drain's deadline, once it has begun.
    pub fn deadline(&self) -> Option<Instant> {
        self.drain.get().map(|(_, end)| *end)
    }

    /// Waits until nothing is in flight and the linger is over (`true`), or the drain's
    /// deadline (`false`: what is still in flight will be cut). Begins the drain if nobody has.
    pub async fn drained(&self) -> bool {
        let (began, deadline) = *self.drain.get_or_init(|| {
            let now = Instant::now();
            (now, now)
        });
        let linger_end = (began + LINGER).min(deadline);
        loop {
            let now = Instant::now();
            if now >= linger_end && self.in_flight() == 0 {
                return true;
            }
            if now >= deadline {
                return false;
            }
            tokio::time::sleep_until((now + POLL).min(deadline)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_connections_are_not_in_flight() {
        let a = Activity::default();
        a.opened(true);
        a.opened(true);
        a.opened(false);
        assert_eq!(a.in_flight(), 1, "an HTTP/2 connection is in flight while it is open");
        a.busy();
        assert_eq!(a.in_flight(), 2);
        a.waiting();
        a.closed(true);
        a.closed(true);
        a.closed(false);
        assert_eq!(a.in_flight(), 0);
        assert_eq!(a.open.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_ends_after_the_linger_when_nothing_is_in_flight() {
        let a = Activity::default();
        a.begin_drain(Duration::from_secs(30));
        let start = Instant::now();
        assert!(a.drained().await);
        let took = start.elapsed();
        assert!(took >= LINGER && took < LINGER + Duration::from_millis(50), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_waits_for_a_busy_connection_and_no_longer_than_its_timeout() {
        let a = std::sync::Arc::new(Activity::default());
        a.opened(true);
        a.busy();
        a.begin_drain(Duration::from_secs(3));
        let start = Instant::now();
        let done = {
            let a = a.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                a.waiting();
            })
        };
        assert!(a.drained().await);
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(1100), "{took:?}");
        done.await.unwrap();

        a.busy();
        let start = Instant::now();
        assert!(!a.drained().await, "the request still in flight at the deadline is reported");
        assert!(start.elapsed() <= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_shorter_than_the_linger_ends_on_time() {
        let a = Activity::default();
        a.begin_drain(Duration::from_millis(100));
        let start = Instant::now();
        assert!(a.drained().await);
        assert!(start.elapsed() <= Duration::from_millis(110));
    }
}
