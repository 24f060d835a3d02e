//! The request path. [`GatewayProxy`] implements pingora's `ProxyHttp`; each phase only
//! dispatches, in the order a request meets them:
//! 1. [`conn`]: the connection's header and idle deadlines;
//! 2. [`limits`], then who asks ([`ClientView`]) and the target read once into its canonical
//!    form ([`crate::http::target`]), which everything after it uses;
//! 3. the gateway's own paths ([`endpoints`]: callback, login, forward auth, JWKS, JS-SDK), else
//!    [`decide`]: verification files, routing, the session, login;
//! 4. [`forward`]: what the upstream receives (hygiene, forwarding headers, token, the
//!    canonical path);
//! 5. [`respond`]: the gateway's own answers, and upstream failures as pages.

pub mod access;
pub mod auth;
pub mod conn;
pub mod decide;
pub mod endpoints;
pub mod forward;
pub mod hsts;
pub mod limits;
pub mod respond;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::http::client::ClientView;
use crate::http::error::GatewayError;
use crate::http::target::{self, Target};
use crate::runtime::live::LiveGateway;
use crate::runtime::{Gateway, HostId, RouteId};
use crate::session::Session as UserSession;
use crate::util::clock::base62_nonce;
use decide::Step;

/// Per-request state shared by the phases.
pub struct RequestCtx {
    /// The gateway current when the request started, kept to its end across reloads.
    pub gw: Arc<Gateway>,
    pub request_id: String,
    pub view: ClientView,
    pub target: Target,
    /// A script (XHR, fetch) rather than a page: errors are answered as JSON.
    pub api: bool,
    pub route: Option<RouteId>,
    /// The app host the request is for, when it is one: its session cookie is the one used.
    pub app_host: Option<HostId>,
    pub user: Option<UserSession>,
    body_seen: usize,
    /// Why the gateway itself stopped the request while proxying (a body over the route's
    /// cap): answered as that error, whatever pingora makes of the stop.
    refused: Option<GatewayError>,
    started: Instant,
    /// Came over TLS.
    pub tls: bool,
    /// The `Strict-Transport-Security` value every answer to it carries.
    pub hsts: Option<String>,
    /// When the request header went upstream, and how long its response header took.
    upstream_sent: Option<Instant>,
    upstream_took: Option<std::time::Duration>,
}

impl RequestCtx {
    /// Milliseconds the upstream took to its response header, when one came.
    pub fn upstream_ms(&self) -> Option<u128> {
        self.upstream_took.map(|d| d.as_millis())
    }
}

/// The proxy: the serving gateway behind pingora's phases.
pub struct GatewayProxy(pub Arc<LiveGateway>);

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        let gw = self.0.current();
        RequestCtx {
            request_id: base62_nonce(gw.entropy(), 16),
            gw,
            view: ClientView::default(),
            target: Target::default(),
            api: false,
            route: None,
            app_host: None,
            user: None,
            body_seen: 0,
            refused: None,
            started: Instant::now(),
            upstream_sent: None,
            upstream_took: None,
            tls: false,
            hsts: None,
        }
    }

    /// The header is in: the connection's header deadline no longer applies.
    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Result<()> {
        conn::headers_done(session);
        Ok(())
    }

    /// `Ok(true)`: the gateway answered by itself (limits, refused targets, its endpoints,
    /// verification files, unknown routes, the ways into login). `Ok(false)`: forward to the
    /// chosen route's upstream.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let gw = ctx.gw.clone();
        // Before pingora sees it: a `Connection` naming what the gateway sets is ignored, not fatal.
        forward::strip_hop_by_hop(session.req_header_mut(), &gw.config.token.header)?;
        let req = session.req_header();
        let peer = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        ctx.view = ClientView::of(req, peer, &gw.config.trusted_proxies);
        ctx.api = !ctx.view.navigation;
        if ctx.view.bad_host {
            return respond::answer(session, ctx, Step::Fail(crate::http::error::GatewayError::BadHost)).await;
        }
        hsts::note(session, ctx);
        if let Some(reply) = hsts::redirect_plain(&gw, req, ctx) {
            return respond::answer(session, ctx, Step::Reply(reply)).await;
        }
        let read = limits::check_headers(req, &gw.config.limits)
            .and_then(|()| target::read(req, &gw.config.paths, &gw.config.limits));
        let step = match read {
            Ok(target) => {
                ctx.target = target;
                let (view, target, rid) = (&ctx.view, &ctx.target, ctx.request_id.as_str());
                if gw.is_reserved(&target.path) {
                    Box::pin(endpoints::serve(&gw, req, view, target, rid)).await.into()
                } else {
                    decide::decide(&gw, req, view, target, rid).await
                }
            }
            Err(e) => Step::Fail(e),
        };
        let answered = respond::answer(session, ctx, step).await?;
        if let (false, Some(route)) = (answered, ctx.route) {
            if session.is_upgrade_req() {
                // pingora reads a client for 60 s at most; an upgraded socket may stay idle
                // as long as its upstream may (the route's `read_timeout`).
                session.set_read_timeout(Some(gw.route(route).config.upstream.read_timeout));
            }
        }
        Ok(answered)
    }

    /// Counts the body against the route's cap (413 past it). The bytes of an upgraded
    /// connection (WebSocket frames) are no request body: they pass uncounted.
    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if session.was_upgraded() {
            return Ok(());
        }
        let max = ctx.route.and_then(|r| ctx.gw.route(r).config.max_body);
        let chunk = body.as_ref().map_or(0, Bytes::len);
        limits::count_body(&mut ctx.body_seen, chunk, max).map_err(|e| {
            let stop = Error::explain(ErrorType::InternalError, e.to_string());
            ctx.refused = Some(e);
            stop
        })
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let route = ctx.route.ok_or_else(|| Error::explain(ErrorType::InternalError, "no route chosen"))?;
        Ok(Box::new(ctx.gw.route(route).peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.upstream_sent = Some(Instant::now());
        match ctx.route {
            Some(route) => {
                let gw = ctx.gw.clone();
                forward::prepare(&gw, gw.route(route), upstream, ctx)
            }
            None => Ok(()),
        }
    }

    /// Upstream answers to TLS requests carry the gateway's HSTS.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream: &mut pingora::http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        conn::close_when_draining(session);
        if let Some(value) = &ctx.hsts {
            upstream.insert_header("strict-transport-security", value.as_str())?;
        }
        Ok(())
    }

    /// Times the upstream to its response header.
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream: &mut pingora::http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(sent), Some(route)) = (ctx.upstream_sent, ctx.route) {
            let took = sent.elapsed();
            ctx.upstream_took = Some(took);
            ctx.gw.route(route).observe_upstream(ctx.gw.metrics(), took);
        }
        Ok(())
    }

    /// Answers upstream failures with the gateway's own pages (502, 504, 413, 400).
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        respond::failure(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        conn::request_done(session);
        access::record(session, ctx, e);
    }
}
