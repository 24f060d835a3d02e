//! The errors a request can meet: each with its status, its stable code for scripts and the
//! log level its cause deserves. What a person or a script is shown for each is written in
//! one place, [`crate::pages::errors`].

use std::time::Duration;

use crate::wechat::errcode::ErrClass;
use crate::wechat::ExchangeError;

/// Why the gateway answers a request with a page instead of the app.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("no route serves this host and path")]
    NoRoute,
    #[error("no gateway endpoint at this path")]
    NoEndpoint,
    #[error("no app logs in on this host")]
    NoApp,
    #[error("callback without a login cookie (expired, or cookies blocked)")]
    LoginCookieMissing,
    #[error("too many login starts from one browser: likely a login loop")]
    LoginLoop { retry: String },
    #[error("refused return URL: {reason}")]
    BadReturn { reason: &'static str },
    #[error("bad request: {reason}")]
    BadRequest { reason: &'static str },
    #[error("the Host header is not a valid host[:port]")]
    BadHost,
    #[error("request target longer than the limit")]
    UriTooLong,
    #[error("request header fields larger or more numerous than the limit")]
    HeadersTooLarge,
    #[error("request body larger than the route allows")]
    BodyTooLarge,
    #[error("request header not received in time")]
    HeaderTimeout,
    #[error("too many logins from this address; retry in {}s", wait_secs(*wait))]
    TooMany { wait: Duration },
    #[error("this login already exchanged another code")]
    LoginSpent { retry: String },
    #[error("callback state does not match the login cookie")]
    StateMismatch { retry: String },
    #[error("callback without a code (consent refused or a damaged link)")]
    NoCode { retry: String },
    #[error("WeChat gave a snapshot-page (virtual) identity")]
    SnapshotUser { retry: String },
    #[error("the route is for the corp's members; the user is not one")]
    MembersOnly,
    #[error("code exchange failed: {source}")]
    Exchange { source: ExchangeError, retry: String },
    #[error("upstream failed: {0}")]
    Upstream(String),
    #[error("upstream timed out: {0}")]
    UpstreamTimeout(String),
    #[error("the shared state (Redis) is unreachable and revocation fails closed")]
    StateUnavailable,
    #[error("page URL refused: {reason}")]
    PageUrl { reason: &'static str },
    #[error("a page of another site asked for a JS-SDK signature")]
    CrossSite,
    #[error("forward auth answers only the front proxies in trusted_proxies")]
    Untrusted,
    #[error("the account's credentials are unavailable: {message}")]
    Credentials { message: String },
    #[error("login through the login host refused: {}", refusal.as_str())]
    Handoff { refusal: Refusal, retry: Option<String> },
}

/// A wait in whole seconds, rounded up, at least 1.
pub fn wait_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

impl GatewayError {
    /// Logs the error at the level its cause deserves: operator mistakes as errors (with the
    /// WeChat hint), WeChat trouble as warnings, a user's own mishaps as info.
    pub fn log(&self, request_id: &str) {
        match self {
            GatewayError::Exchange { source, .. } => {
                let hint = match source {
                    ExchangeError::Rejected { errcode, .. } => crate::wechat::errcode::classify(*errcode).1,
                    ExchangeError::Credential { .. } => "the account's credentials log and /readyz say what to do",
                    _ => "transport failure",
                };
                match source.class() {
                    ErrClass::Misconfigured => {
                        log::error!("{request_id} code exchange: {source} ({hint})")
                    }
                    ErrClass::Transient | ErrClass::Unknown => {
                        log::warn!("{request_id} code exchange: {source} ({hint})")
                    }
                    ErrClass::CodeRejected | ErrClass::MissingCode => {
                        log::info!("{request_id} code exchange: {source} ({hint})")
                    }
                }
            }
            GatewayError::Upstream(e) | GatewayError::UpstreamTimeout(e) => log::warn!("{request_id} upstream: {e}"),
            // Said once by the shared state when Redis goes away; not once per request.
            GatewayError::StateUnavailable => log::debug!("{request_id} {self}"),
            // Said by the account's health with what to do, once per failed call to WeChat.
            GatewayError::Credentials { .. } => log::debug!("{request_id} {self}"),
            other => log::info!("{request_id} {other}"),
        }
    }
}

impl GatewayError {
    /// A short stable code for scripts (the `error` of the JSON form).
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::NoRoute | GatewayError::NoEndpoint | GatewayError::NoApp => "not_found",
            GatewayError::LoginCookieMissing | GatewayError::LoginLoop { .. } => "login_incomplete",
            GatewayError::BadReturn { .. } => "bad_return_url",
            GatewayError::BadRequest { .. } => "bad_request",
            GatewayError::BadHost => "bad_host",
            GatewayError::UriTooLong => "uri_too_long",
            GatewayError::HeadersTooLarge => "headers_too_large",
            GatewayError::BodyTooLarge => "body_too_large",
            GatewayError::HeaderTimeout => "request_timeout",
            GatewayError::TooMany { .. } => "too_many_requests",
            GatewayError::StateMismatch { .. } | GatewayError::LoginSpent { .. } => "login_check_failed",
            GatewayError::NoCode { .. } => "no_authorization",
            GatewayError::SnapshotUser { .. } => "snapshot_user",
            GatewayError::MembersOnly => "members_only",
            GatewayError::Exchange { .. } => "login_failed",
            GatewayError::Upstream(_) => "bad_gateway",
            GatewayError::UpstreamTimeout(_) => "gateway_timeout",
            GatewayError::StateUnavailable => "state_unavailable",
            GatewayError::Handoff { refusal, .. } => refusal.as_str(),
            GatewayError::PageUrl { .. } => "url_refused",
            GatewayError::CrossSite => "cross_site",
            GatewayError::Untrusted => "untrusted_proxy",
            GatewayError::Credentials { .. } => "credentials_unavailable",
        }
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::NoRoute | GatewayError::NoEndpoint | GatewayError::NoApp => 404,
            GatewayError::LoginLoop { .. } | GatewayError::TooMany { .. } => 429,
            GatewayError::LoginCookieMissing
            | GatewayError::BadRequest { .. }
            | GatewayError::BadHost
            | GatewayError::BadReturn { .. }
            | GatewayError::LoginSpent { .. }
            | GatewayError::StateMismatch { .. }
            | GatewayError::NoCode { .. } => 400,
            GatewayError::UriTooLong => 414,
            GatewayError::HeadersTooLarge => 431,
            GatewayError::BodyTooLarge => 413,
            GatewayError::HeaderTimeout => 408,
            GatewayError::SnapshotUser { .. } | GatewayError::MembersOnly => 403,
            GatewayError::Exchange { source, .. } => match source.class() {
                ErrClass::CodeRejected | ErrClass::MissingCode => 400,
                ErrClass::Transient | ErrClass::Unknown => 503,
                ErrClass::Misconfigured => 500,
            },
            GatewayError::StateUnavailable => 503,
            GatewayError::Handoff { refusal, .. } => refusal.status(),
            GatewayError::PageUrl { .. } => 400,
            GatewayError::CrossSite | GatewayError::Untrusted => 403,
            GatewayError::Credentials { .. } => 503,
            GatewayError::UpstreamTimeout(_) => 504,
            GatewayError::Upstream(_) => 502,
        }
    }
}

/// Why an app host's login through the login host was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A request or ticket that does not open: tampered, cut, or sealed with other keys.
    Damaged,
    /// The app host is not listed on the login host.
    Unlisted,
    Expired,
    /// Presented without the nonce cookie it is bound to (another browser, or cookies lost).
    NoNonce,
    /// Already used.
    Replayed,
    /// Minted for another app host.
    OtherHost,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Damaged => "damaged",
            Refusal::Unlisted => "unlisted_host",
            Refusal::Expired => "expired",
            Refusal::NoNonce => "no_nonce",
            Refusal::Replayed => "replayed",
            Refusal::OtherHost => "other_host",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Refusal::Unlisted | Refusal::OtherHost => 403,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_named_in_whole_seconds_rounded_up() {
        assert_eq!(wait_secs(Duration::from_millis(9_200)), 10);
        assert_eq!(wait_secs(Duration::from_secs(3)), 3);
        assert_eq!(wait_secs(Duration::ZERO), 1);
    }
}
