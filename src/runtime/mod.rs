//! The gateway's state, built once from the config: one runtime record per app (its config,
//! cookies, code exchanges and loop breaker) and per route (its config and a prebuilt
//! upstream peer), the token signer, the per-address rate limits, and the injected clock and
//! randomness.

pub mod live;
mod peers;

use std::sync::Arc;
use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;

use crate::config::{App, AppHost, Config, HostPattern, Route};
use crate::handoff::{Handoff, NonceCookie};
use crate::login::exchange::{CodeExchanges, Shared};
use crate::login::loop_breaker::LoopBreaker;
use crate::login::rate::RateLimits;
use crate::observe::metrics::{Metrics, RequestCounters};
use crate::proxy::access::AccessLog;
use crate::session::seal::Sealer;
use crate::session::{Session, SessionCookies};
use crate::shared::SharedState;
use crate::token::{TokenError, TokenSigner};
use crate::util::clock::{Clock, Entropy, OsEntropy, SystemClock};
use crate::wechat::WechatClient;

/// Why the gateway could not be built from a checked config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("routes[{index}].upstream: cannot resolve {address}: {reason}")]
    Resolve { index: usize, address: String, reason: String },
}

/// What the gateway uses from outside: time and randomness.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// Outlives every reload.
    pub metrics: Arc<Metrics>,
    /// What replicas share; outlives every reload.
    pub state: Arc<SharedState>,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            metrics: Arc::new(Metrics::new()),
            state: Arc::new(SharedState::memory()),
        }
    }
}

/// One Official Account at run time.
pub struct AppRuntime {
    pub config: App,
    pub cookies: SessionCookies,
    pub exchanges: CodeExchanges,
    pub loops: LoopBreaker,
    /// The nonce cookie of logins through the login host, set on app hosts.
    pub nonces: NonceCookie,
}

/// One `[[app_hosts]]` entry at run time: its config and its session cookie.
pub struct HostRuntime {
    pub config: AppHost,
    pub cookies: SessionCookies,
}

/// One route at run time: its config and the peer its requests are proxied to, built once
/// (address resolved, timeouts set).
pub struct RouteRuntime {
    pub config: Route,
    pub peer: HttpPeer,
    /// The route in metrics and logs: `host/path`, or the path for routes on any host.
    pub label: String,
    /// Its request counters, resolved once.
    pub counters: RequestCounters,
}

/// Everything a request needs, shared by all requests.
pub struct Gateway {
    pub config: Arc<Config>,
    pub apps: Vec<AppRuntime>,
    pub routes: Vec<RouteRuntime>,
    /// The app hosts that log in through a login host, in config order.
    pub hosts: Vec<HostRuntime>,
    /// Seals the requests and tickets between app hosts and login hosts.
    pub handoff: Handoff,
    pub signer: TokenSigner,
    pub rate: RateLimits,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub metrics: Arc<Metrics>,
    /// The request counters of the gateway's own answers (route `-`).
    pub own_counters: RequestCounters,
    pub state: Arc<SharedState>,
    pub access: AccessLog,
}

impl Gateway {
    pub fn new(config: Config, deps: Deps) -> Result<Self, BuildError> {
        crate::observe::logging::register_secrets(secrets_of(&config));
        let apps = config
            .apps
            .iter()
            .enumerate()
            .map(|(i, app)| {
                let w = &app.wechat;
                // Without the secret (logins elsewhere) the client is never asked: no login starts here.
                let secret = w.secret.clone().unwrap_or_else(|| crate::util::secret::Secret::new(Vec::new()));
                let client = WechatClient::new(&w.api_base, &w.appid, secret, w.connect_timeout, w.timeout);
                let cookies = SessionCookies::new(&config, i);
                AppRuntime {
                    config: app.clone(),
                    loops: LoopBreaker::new(&config, i),
                    nonces: NonceCookie::new(&config, i),
                    cookies,
                    exchanges: CodeExchanges::new(Arc::new(client), deps.clock.clone(), config.session.login_lifetime)
                        .with_metrics(deps.metrics.clone(), &app.name)
                        .with_shared(Shared {
                            state: deps.state.clone(),
                            appid: w.appid.clone(),
                            sealer: Sealer::new(&config.session.keys),
                            entropy: deps.entropy.clone(),
                            // userinfo makes two calls to WeChat; then the outcome is published.
                            wait: 2 * (w.connect_timeout + w.timeout) + Duration::from_secs(1),
                        }),
                }
            })
            .collect();
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let peer = peers::peer(r, peers::resolve(index, &r.upstream.address)?);
                Ok(RouteRuntime {
                    config: r.clone(),
                    peer,
                    label: peers::label(r),
                    counters: RequestCounters::default(),
                })
            })
            .collect::<Result<_, BuildError>>()?;
        let hosts = config
            .app_hosts
            .iter()
            .map(|h| HostRuntime { config: h.clone(), cookies: SessionCookies::for_app_host(&config, h) })
            .collect();
        Ok(Self {
            apps,
            routes,
            hosts,
            handoff: Handoff::new(&config),
            signer: TokenSigner::new(&config.token, deps.entropy.clone())?.with_metrics(deps.metrics.clone()),
            rate: RateLimits::new(&config.rate_limit, deps.clock.clone()).with_shared(deps.state.clone()),
            access: AccessLog::new(&config),
            config: Arc::new(config),
            clock: deps.clock,
            entropy: deps.entropy,
            metrics: deps.metrics,
            own_counters: RequestCounters::default(),
            state: deps.state,
        })
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The index of the route for `host` and the canonical `path`: exact host over wildcard
    /// over any, then the longest path prefix.
    pub fn route_for(&self, host: &str, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.config.matches(host, path))
            .max_by_key(|(_, r)| (r.config.host.rank(), r.config.path.trim_end_matches('/').len()))
            .map(|(i, _)| i)
    }

    /// The app whose public host is `host` and whose logins run here (its callback and login
    /// endpoints live there).
    pub fn app_at(&self, host: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.config.logins_here && a.config.public_host() == host)
    }

    /// The app a host belongs to: by public host, else as an app host, else through the
    /// routes serving it.
    pub fn app_of_host(&self, host: &str) -> Option<usize> {
        self.app_at(host)
            .or_else(|| self.app_host(host).map(|h| self.hosts[h].config.app))
            .or_else(|| self.route_for(host, "/").map(|r| self.routes[r].config.app))
    }

    /// The `[[app_hosts]]` entry serving `host` (exact over the longest wildcard), unless
    /// `host` is a login host itself.
    pub fn app_host(&self, host: &str) -> Option<usize> {
        if self.hosts.is_empty() || self.app_at(host).is_some() {
            return None;
        }
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.config.host.matches(host))
            .max_by_key(|(_, h)| match &h.config.host {
                HostPattern::Exact(_) => usize::MAX,
                HostPattern::Wildcard(suffix) => suffix.len(),
                HostPattern::Any => 0,
            })
            .map(|(i, _)| i)
    }

    /// The session cookie of app `app` on `host`: the app host's own, or the app's.
    pub fn cookies_for(&self, app: usize, host: &str) -> &SessionCookies {
        match self.app_host(host) {
            Some(h) if self.hosts[h].config.app == app => &self.hosts[h].cookies,
            _ => &self.apps[app].cookies,
        }
    }

    /// Ends session `s`: its id is revoked until it would have expired. With `family`, so is
    /// the login host session it came from (or its own family), for as long as a session can
    /// last, which ends every app host session handed from that login.
    pub async fn end_session(&self, s: &Session, family: bool) {
        let now = self.now();
        if !s.sid.is_empty() {
            self.state.revoke_session(&s.appid, &s.sid, s.expires, now).await;
        }
        if family && !s.family.is_empty() {
            let until = now + self.config.session.lifetime.as_secs();
            self.state.revoke_session(&s.appid, &s.family, until, now).await;
        }
    }

    /// Is the canonical `path` under the gateway's reserved prefix?
    pub fn is_reserved(&self, path: &str) -> bool {
        crate::config::path_has_prefix(path, &self.config.prefix)
    }
}

/// Every configured secret's bytes, which no log line may show.
fn secrets_of(config: &Config) -> impl Iterator<Item = &[u8]> {
    let wechat = config.apps.iter().filter_map(|a| a.wechat.secret.as_ref()).map(|s| s.expose());
    let session = config.session.keys.iter().map(|k| k.expose());
    let token = config.token.keys.iter().map(|k| k.expose());
    let admin = config.admin.token.iter().map(|k| k.expose());
    wechat.chain(session).chain(token).chain(admin)
}
