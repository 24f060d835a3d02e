//! Client connection deadlines that pingora does not enforce for HTTP/1.1: its read timeout
//! restarts with every byte, so a client sending its header a byte at a time is never cut
//! off, and an idle keep-alive connection is kept forever (pingora issue #447).
//!
//! [`GuardedApp`] wraps every accepted connection in a [`Guarded`] stream with two deadlines:
//! - idle: a connection waiting for a request (fresh: `header_timeout`; after a response:
//!   `keepalive_timeout`) that sends nothing is closed quietly (the read ends);
//! - header: once a request's first byte has arrived, its whole header must follow within
//!   `header_timeout`, else the client gets the 408 page and the connection closes.
//!
//! HTTP/2 connections are counted but not guarded: they multiplex requests.
//!
//! The proxy tells the stream where a request stands: [`headers_done`] when its header has
//! been read (the first phase), [`request_done`] when its response is finished (logging).
//!
//! [`Activity`] counts the connections and how many of them are waiting for a request, so a
//! shutdown knows when nothing is in flight ([`Activity::drained`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest,
    UniqueID, UniqueIDType, ALPN,
};
use pingora::proxy::Session;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

mod activity;

pub use self::activity::Activity;

use crate::config::Limits;
use crate::http::error::GatewayError;
use crate::runtime::live::LiveGateway;
use prometheus::IntGauge;

const WAITING: u8 = 0;
const IN_HEADER: u8 = 1;
const BUSY: u8 = 2;

/// A client connection with the gateway's deadlines.
pub struct Guarded {
    inner: Stream,
    header_timeout: Duration,
    keepalive_timeout: Duration,
    /// Where the current request stands; set by the proxy through `&self`.
    phase: AtomicU8,
    /// Bumped by [`request_done`]: the idle deadline starts again.
    finished: AtomicU32,
    seen_finished: u32,
    /// When the current wait ends: moved with every request, without touching the timer.
    due: Instant,
    /// Armed for `due` or earlier; one that fires early is armed again for `due`, so a busy
    /// keep-alive connection costs the timer nothing per request.
    deadline: Pin<Box<Sleep>>,
    /// The 408 answer being written, and how much of it is out.
    refusing: Option<(Vec<u8>, usize)>,
    /// Connections open, counted up here and down on drop.
    open: IntGauge,
    /// HTTP/1 connections only: an HTTP/2 connection multiplexes requests, so a silence on it
    /// says nothing about any one of them (its frames are the h2 layer's business).
    enforce: bool,
    /// Where the drain at shutdown learns whether this connection is waiting or busy.
    activity: Arc<Activity>,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.open.dec();
        self.activity.closed(self.enforce && self.phase.load(Ordering::Acquire) == WAITING);
    }
}

impl Guarded {
    pub fn new(inner: Stream, limits: &Limits, open: IntGauge, activity: Arc<Activity>) -> Self {
        open.inc();
        // An HTTP/2 connection counts as busy for its whole life: it closes by itself once its
        // streams are done after a shutdown (GOAWAY).
        let enforce = inner.selected_alpn_proto() != Some(ALPN::H2);
        activity.opened(enforce);
        let due = Instant::now() + limits.header_timeout;
        Self {
            open,
            activity,
            enforce,
            inner,
            header_timeout: limits.header_timeout,
            keepalive_timeout: limits.keepalive_timeout,
            phase: AtomicU8::new(WAITING),
            finished: AtomicU32::new(0),
            seen_finished: 0,
            due,
            deadline: Box::pin(tokio::time::sleep_until(due)),
            refusing: None,
        }
    }

    /// Moves the request to `phase`, telling [`Activity`] when the connection stops or starts
    /// waiting for a request.
    fn enter(&self, phase: u8) {
        let was = self.phase.swap(phase, Ordering::AcqRel);
        if self.enforce && was != phase {
            if was == WAITING {
                self.activity.busy();
            } else if phase == WAITING {
                self.activity.waiting();
            }
        }
    }

    /// Has the wait passed `due`? Otherwise the timer is armed to wake the reader by then.
    fn past_due(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.deadline() > self.due {
                self.deadline.as_mut().reset(self.due);
            }
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= self.due {
                return true;
            }
            // Fired for an earlier wait: armed again for this one.
            self.deadline.as_mut().reset(self.due);
        }
    }

    /// Writes the 408 page, then fails the read that was waiting for the header.
    fn poll_refuse(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = self.refusing.as_mut() {
            if *sent == bytes.len() {
                break;
            }
            match ready!(Pin::new(&mut *self.inner).poll_write(cx, &bytes[*sent..])) {
                Ok(0) | Err(_) => break,
                Ok(n) => *sent += n,
            }
        }
        let _ = Pin::new(&mut *self.inner).poll_flush(cx);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request header not received in time")))
    }
}

/// The 408 page as a whole HTTP/1.1 response that closes the connection.
fn timeout_response() -> Vec<u8> {
    let reply = crate::pages::errors::page(&GatewayError::HeaderTimeout, "-");
    let mut out =
        format!("HTTP/1.1 408 Request Timeout\r\ncontent-length: {}\r\nconnection: close\r\n", reply.body.len());
    for (name, value) in &reply.headers {
        out.push_str(&format!("{}: {value}\r\n", name.as_str()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&reply.body);
    bytes
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.enforce {
            return Pin::new(&mut *this.inner).poll_read(cx, buf);
        }
        if this.refusing.is_some() {
            return this.poll_refuse(cx);
        }
        let finished = this.finished.load(Ordering::Acquire);
        if finished != this.seen_finished {
            this.seen_finished = finished;
            this.due = Instant::now() + this.keepalive_timeout;
        }
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut *this.inner).poll_read(cx, buf) {
            let got_bytes = buf.filled().len() > before;
            if got_bytes && this.phase.compare_exchange(WAITING, IN_HEADER, Ordering::AcqRel, Ordering::Acquire).is_ok()
            {
                this.activity.busy();
                this.due = Instant::now() + this.header_timeout;
            }
            return Poll::Ready(result);
        }
        let phase = this.phase.load(Ordering::Acquire);
        if phase == BUSY || !this.past_due(cx) {
            return Poll::Pending;
        }
        if phase == WAITING {
            // Idle too long: end the connection as if the client had closed it.
            return Poll::Ready(Ok(()));
        }
        this.refusing = Some((timeout_response(), 0));
        this.poll_refuse(cx)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// The request's header has been read: no deadline of ours until its response is done.
pub fn headers_done(session: &Session) {
    if let Some(g) = guarded(session) {
        g.enter(BUSY);
    }
}

/// The request's response is finished: the connection waits for the next one, idle deadline.
pub fn request_done(session: &Session) {
    if let Some(g) = guarded(session) {
        g.enter(WAITING);
        g.finished.fetch_add(1, Ordering::AcqRel);
    }
}

/// Has the drain begun? Then the response closes its connection (`Connection: close`): a
/// request that began before the signal, answered after it, must not invite the client's next
/// request onto a connection that is about to close.
fn draining(session: &Session) -> bool {
    guarded(session).is_some_and(|g| g.activity.deadline().is_some())
}

/// Answers the current request with `Connection: close` once the drain has begun.
pub fn close_when_draining(session: &mut Session) {
    if draining(session) {
        session.set_keepalive(None);
    }
}

fn guarded(session: &Session) -> Option<&Guarded> {
    session.stream()?.as_any().downcast_ref::<Guarded>()
}

/// A server app whose connections are [`Guarded`], with the limits of the gateway serving
/// when each connection was accepted.
pub struct GuardedApp<A> {
    app: Arc<A>,
    live: Arc<LiveGateway>,
    activity: Arc<Activity>,
}

impl<A> GuardedApp<A> {
    /// `activity` counts the connections of every listener of the process.
    pub fn new(app: A, live: Arc<LiveGateway>, activity: Arc<Activity>) -> Self {
        Self { app: Arc::new(app), live, activity }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for GuardedApp<A> {
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        // A kept-alive connection comes back for its next request already guarded.
        let stream: Stream = if stream.as_any().is::<Guarded>() {
            stream
        } else {
            let limits = self.live.current().config.limits;
            let open = self.live.deps().metrics.connections.clone();
            Box::new(Guarded::new(stream, &limits, open, self.activity.clone()))
        };
        self.app.process_new(stream, shutdown).await
    }

    /// Called once the listeners have stopped accepting: what was accepted is served first.
    /// Until the drain is over, a connection still waiting for a request keeps waiting (its
    /// request may be on its way) and each request gets `Connection: close`; then pingora's
    /// own cleanup closes the connections still waiting.
    async fn cleanup(&self) {
        self.activity.begin_drain(self.live.current().config.drain_timeout);
        self.activity.drained().await;
        self.app.cleanup().await;
    }
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for Guarded {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Guarded {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Guarded {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
}

impl GetProxyDigest for Guarded {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for Guarded {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for Guarded {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
