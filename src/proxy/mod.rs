//! The pingora `ProxyHttp` implementation. Each phase only dispatches to the modules that
//! own the logic: [`crate::access`] (endpoints, routing, login), [`crate::token`],
//! [`forward`].

pub mod forward;
pub mod respond;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::access::{self, Step};
use crate::client::ClientView;
use crate::clock::base62_nonce;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::session::Session as UserSession;

/// Per-request state shared by the phases.
pub struct RequestCtx {
    pub request_id: String,
    pub view: ClientView,
    pub route: Option<usize>,
    pub user: Option<UserSession>,
    started: Instant,
}

/// The proxy: the gateway's state behind pingora's phases.
pub struct GatewayProxy(pub Arc<Gateway>);

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            request_id: base62_nonce(self.0.entropy.as_ref(), 16),
            view: ClientView::default(),
            route: None,
            user: None,
            started: Instant::now(),
        }
    }

    /// `Ok(true)`: the gateway answered by itself (its endpoints, verification files, unknown
    /// routes, the ways into login). `Ok(false)`: forward to the chosen route's upstream.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let gw = &self.0;
        let peer = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        ctx.view = ClientView::of(session.req_header(), peer, &gw.config.trusted_proxies);
        match access::decide(gw, session.req_header(), &ctx.view, &ctx.request_id).await {
            Step::Forward { route, user } => {
                ctx.route = Some(route);
                ctx.user = user;
                Ok(false)
            }
            Step::Reply(reply) => {
                respond::send(session, reply).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let index = ctx.route.ok_or_else(|| Error::explain(ErrorType::InternalError, "no route chosen"))?;
        let route = self.0.route(index);
        let mut peer = HttpPeer::new(self.0.upstream_addrs[index], false, String::new());
        peer.options.connection_timeout = Some(route.upstream.connect_timeout);
        peer.options.total_connection_timeout = Some(route.upstream.connect_timeout);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let gw = &self.0;
        let Some(index) = ctx.route else {
            return Ok(());
        };
        let route = gw.route(index);
        let token_header = &gw.config.token.header;
        forward::strip_identity(upstream, token_header);
        forward::strip_gateway_cookies(upstream, &gw.apps[route.app].cookies.names())?;
        forward::forwarding_headers(upstream, &ctx.view, gw.app(route.app).public_url.scheme(), route)?;
        upstream.insert_header("x-request-id", &ctx.request_id)?;
        let test = forward::take_test_switch(upstream);
        let token = forward::identity_token(gw, route, ctx.user.as_ref(), test)
            .map_err(|e| Error::because(ErrorType::InternalError, "signing the identity token", e))?;
        if let Some(token) = token {
            upstream.insert_header(token_header.clone(), &*token)?;
        }
        Ok(())
    }

    /// Answers upstream failures with the gateway's own 502 page.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => 0,
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code == 502 || code == 504 {
            let reply = GatewayError::Upstream(e.to_string()).reply(&ctx.request_id);
            if let Err(err) = respond::send(session, reply).await {
                log::debug!("{}: could not send the 502 page: {err}", ctx.request_id);
            }
        } else if code > 0 {
            let _ = session.respond_error(code).await;
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        let who = ctx.user.as_ref().map_or("-", |u| u.openid.as_str());
        let ms = ctx.started.elapsed().as_millis();
        match e {
            Some(e) => {
                log::warn!("{} {} {} {status} {who} {ms}ms error: {e}", ctx.request_id, req.method, req.uri.path())
            }
            None => log::info!("{} {} {} {status} {who} {ms}ms", ctx.request_id, req.method, req.uri.path()),
        }
    }
}
