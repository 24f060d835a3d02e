//! The silent login: the way to WeChat ([`start`], rate-limited per client address and
//! counted per browser by the [`loop_breaker`]), the callback that comes back from it
//! ([`callback`]), each code exchanged once ([`exchange`]), and where the browser may be
//! sent afterwards ([`returns`]).

pub mod callback;
pub mod exchange;
pub mod loop_breaker;
pub mod rate;
pub mod returns;

use http::HeaderMap;

use crate::config::Scope;
use crate::handoff::HandoffRequest;
use crate::http::client::ClientView;
use crate::http::error::GatewayError;
use crate::http::reply::Reply;
use crate::runtime::Gateway;
use crate::util::clock::base62_nonce;
use crate::wechat::authorize::{authorize_url, encode_component};
use rate::Door;

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

/// Sends the browser to WeChat to log in to app `app` with `scope`, landing as `landing` says. Must run on the app's public host, where the login cookie
/// is set. `fresh`: the user asked to log in again, so the loop breaker's count starts over.
///
/// `Ok`: `302` to the authorize URL with the login cookie and the loop breaker's count.
/// `Err(TooMany)`: this client address started too many logins (429, naming the wait).
/// `Err(LoginLoop)`: this browser started more logins than `login_limit` allows in its window.
pub async fn start(
    gw: &Gateway,
    app: usize,
    scope: Scope,
    landing: Landing<'_>,
    headers: &HeaderMap,
    view: &ClientView,
    fresh: bool,
) -> Result<Reply, GatewayError> {
    let runtime = &gw.apps[app];
    if !runtime.config.logins_here {
        // This gateway serves only app hosts; the login host is another gateway's.
        return Err(GatewayError::NoApp);
    }
    gw.rate.admit(Door::LoginStart, view.ip).await.map_err(|wait| GatewayError::TooMany { wait })?;
    let now = gw.now();
    let Some(counted) = runtime.loops.admit(headers, fresh, now, gw.entropy.as_ref()) else {
        gw.metrics.loop_breaker.with_label_values(&[&runtime.config.name]).inc();
        return Err(GatewayError::LoginLoop {
            retry: format!("{}/login?retry=1&return={}", login_base(gw, app), encode_component(landing.page())),
        });
    };
    gw.metrics.login_starts.with_label_values(&[&runtime.config.name]).inc();
    let nonce = base62_nonce(gw.entropy.as_ref(), STATE_LEN);
    let handoff = match landing {
        Landing::Handoff(r) => Some(r),
        Landing::Page(_) => None,
    };
    let a = &runtime.config;
    let url = authorize_url(
        a.wechat.authorize_url.as_str(),
        &a.wechat.appid,
        &a.callback_url(&gw.config.prefix),
        scope.as_str(),
        &nonce,
    );
    Ok(Reply::redirect(url)
        .with_header(
            "set-cookie",
            runtime.cookies.new_login(&nonce, landing.page(), handoff, gw.clock.now_millis(), gw.entropy.as_ref()),
        )
        .with_header("set-cookie", counted))
}

/// `<app public origin><prefix>` : where the app's login endpoints live.
pub fn login_base(gw: &Gateway, app: usize) -> String {
    format!("{}{}", gw.apps[app].config.public_origin(), gw.config.prefix)
}

/// `<app public origin><prefix>/login?return=` (append the encoded return URL).
pub fn login_url_prefix(gw: &Gateway, app: usize) -> String {
    format!("{}/login?return=", login_base(gw, app))
}
