//! Writes the gateway's own answers: a [`Step`] decided before proxying, and upstream
//! failures after it.

use pingora::http::ResponseHeader;
use pingora::proxy::{FailToProxy, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use super::decide::Step;
use super::RequestCtx;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::pages::errors;

/// Carries out `step`. `Ok(false)`: forward (route and user are now in `ctx`); `Ok(true)`:
/// answered here, with the page, or JSON for a script, of an error.
pub async fn answer(session: &mut Session, ctx: &mut RequestCtx, step: Step) -> Result<bool> {
    if !matches!(step, Step::Forward { .. }) {
        super::conn::close_when_draining(session);
    }
    match step {
        Step::Forward { route, host, user } => {
            ctx.route = Some(route);
            ctx.app_host = host;
            ctx.user = user;
            return Ok(false);
        }
        Step::Reply(reply) => send(session, secure(reply, ctx)).await?,
        Step::Fail(e) => {
            e.log(&ctx.request_id);
            send(session, secure(errors::reply_for(&e, &ctx.request_id, ctx.api), ctx)).await?;
        }
    }
    Ok(true)
}

/// `reply` with `Strict-Transport-Security` when the request came over TLS and `[tls] hsts`
/// asks for it.
fn secure(reply: Reply, ctx: &RequestCtx) -> Reply {
    match &ctx.hsts {
        Some(value) => reply.with_header(Header::Hsts, value.clone()),
        None => reply,
    }
}

/// Writes status, headers and body, and ends the response.
pub async fn send(session: &mut Session, reply: Reply) -> Result<()> {
    let mut header = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (name, value) in reply.headers {
        header.append_header(name.into_name(), value)?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, reply.body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD || reply.body.is_empty();
    session.write_response_header(Box::new(header), head_only).await?;
    if !head_only {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

/// What a failure while proxying means for the client: an upstream that timed out (504) or
/// failed (502), a request the upstream side cannot take (400) (a body over the route's cap
/// is the gateway's own refusal, kept in the context: 413); a client that went away, or the gateway's own failure (`None`, answered 500 by
/// [`failure`]), gets no page of its own. Answered with the page (JSON for a script) unless a
/// response was already under way, in which case the connection just ends.
pub fn classify(e: &Error) -> Option<GatewayError> {
    match (e.etype(), e.esource()) {
        (ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout, ErrorSource::Upstream) => {
            Some(GatewayError::UpstreamTimeout(e.to_string()))
        }
        (_, ErrorSource::Upstream) => Some(GatewayError::Upstream(e.to_string())),
        (ErrorType::InvalidHTTPHeader, ErrorSource::Downstream) => {
            Some(GatewayError::BadRequest { reason: "request the upstream side cannot take" })
        }
        (_, ErrorSource::Downstream | ErrorSource::Internal | ErrorSource::Unset) => None,
    }
}

/// `fail_to_proxy`: answers `e` as [`classify`] says.
pub async fn failure(session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
    let Some(failure) = ctx.refused.take().or_else(|| classify(e)) else {
        if e.esource() == &ErrorSource::Downstream {
            return FailToProxy { error_code: 0, can_reuse_downstream: false };
        }
        log::error!("{}: {e}", ctx.request_id);
        if session.response_written().is_none() {
            let _ = session.respond_error(500).await;
        }
        return FailToProxy { error_code: 500, can_reuse_downstream: false };
    };
    failure.log(&ctx.request_id);
    let reply = errors::reply_for(&failure, &ctx.request_id, ctx.api);
    let code = reply.status;
    if session.response_written().is_none() {
        // The connection is not reused after a failure: say so, so clients do not send on it.
        session.set_keepalive(None);
        if let Err(err) = send(session, secure(reply, ctx)).await {
            log::debug!("{}: could not send the {code} page: {err}", ctx.request_id);
        }
    }
    FailToProxy { error_code: code, can_reuse_downstream: false }
}
