//! The silent login: the way to WeChat ([`start`], rate-limited per client address and
//! counted per browser by the [`loop_breaker`]), the login in progress the browser carries
//! ([`state`]), the callback that comes back from it ([`callback()`]), each code exchanged once
//! ([`exchange`]), where the browser may be sent afterwards ([`returns`]), and the logins of
//! app hosts through one login host ([`handoff`]).

pub mod callback;
pub mod exchange;
pub mod handoff;
pub mod loop_breaker;
pub mod rate;
pub mod returns;
pub mod state;
pub mod wecom;

use http::HeaderMap;

use crate::http::client::ClientView;
use crate::http::endpoint::Endpoint;
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::login::handoff::HandoffRequest;
use crate::runtime::{AppRuntime, Gateway};
use crate::util::clock::base62_nonce;
use crate::wechat::authorize::sign_in_url;
use crate::wechat::Scope;
use rate::Door;
use state::Started;

pub use callback::callback;

/// Length of the `state` nonce: 32 base62 characters, about 190 bits.
const STATE_LEN: usize = 32;

/// Where a login ends.
#[derive(Debug, Clone, Copy)]
pub enum Landing<'a> {
    /// On this page (validated): a path, or an absolute URL on a served host.
    Page(&'a str),
    /// On an app host, with a ticket.
    Handoff(&'a HandoffRequest),
}

impl Landing<'_> {
    /// The page the browser is sent to in the end (to try again from, too).
    pub fn page(&self) -> &str {
        match self {
            Landing::Page(p) => p,
            Landing::Handoff(r) => &r.return_to,
        }
    }
}

/// A browser to be logged in: what it needs, where it lands, and who it is.
#[derive(Debug, Clone, Copy)]
pub struct LoginRequest<'a> {
    pub scope: Scope,
    pub landing: Landing<'a>,
    /// The request's headers (its cookies: the loop breaker's count, the nonces).
    pub headers: &'a HeaderMap,
    pub view: &'a ClientView,
    /// The user asked to log in again: the loop breaker's count starts over.
    pub fresh: bool,
}

/// Sends the browser to WeChat (or WeCom) to log in to `app`: a desktop browser to the QR
/// sign-in page where the app offers one. Must run on the app's public host, where the login
/// cookie is set.
///
/// `Ok`: `302` to the authorize URL with the login cookie and the loop breaker's count.
/// `Err(TooMany)`: this client address started too many logins (429, naming the wait).
/// `Err(LoginLoop)`: this browser started more logins than `login_limit` allows in its window.
pub async fn start(gw: &Gateway, app: &AppRuntime, login: LoginRequest<'_>) -> Result<Reply, GatewayError> {
    if !app.config.logins_here {
        // This gateway serves only app hosts; the login host is another gateway's.
        return Err(GatewayError::NoApp);
    }
    gw.rate.knock(Door::LoginStart, login.view.ip).await?;
    let prefix = &gw.config.prefix;
    let retry = || {
        Endpoint::Login.url(&app.config.public_origin(), prefix, &[("retry", "1"), ("return", login.landing.page())])
    };
    let counted = app.loops.count(login.headers, login.fresh, gw.now(), gw.entropy(), &app.metrics, retry)?;
    app.metrics.login_starts.inc();
    let nonce = base62_nonce(gw.entropy(), STATE_LEN);
    let handoff = match login.landing {
        Landing::Handoff(r) => Some(r),
        Landing::Page(_) => None,
    };
    let a = &app.config;
    // A desktop browser scans a QR code instead, where the app offers it.
    let desktop = login.view.signs_in_by_qr(a);
    let callback = Endpoint::Callback.url(&a.public_origin(), prefix, &[]);
    let url = sign_in_url(&a.wechat, desktop, &callback, login.scope, &nonce);
    let started = Started { nonce: &nonce, return_to: login.landing.page(), handoff, desktop };
    let cookie = app.logins.write(started, gw.now_millis(), gw.entropy());
    Ok(Reply::redirect(url).with_header(Header::SetCookie, cookie).with_header(Header::SetCookie, counted))
}

/// `<app public origin><prefix>/login?return=` (append the encoded return URL).
pub fn login_url_prefix(gw: &Gateway, app: &AppRuntime) -> String {
    Endpoint::Login.url(&app.config.public_origin(), &gw.config.prefix, &[("return", "")])
}
