//! The gateway's state, built once from the config: one runtime record per app (its cookies,
//! code exchanges, loop breaker and metrics), per app host and per route (a prebuilt upstream
//! peer), the token signer, the per-address rate limits, and what outlives a reload (time,
//! randomness, metrics, shared state) behind [`Gateway::deps`].
//!
//! Apps, app hosts and routes are named by [`AppId`], [`HostId`] and [`RouteId`], which cannot
//! be mixed up; modules receive the runtime record itself.

pub mod live;
mod peers;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;
use prometheus::Histogram;

use crate::account::{Account, AccountDeps, Accounts, Memories};
use crate::config::{App, AppHost, Config, HostPattern, Provider, Route};
use crate::login::exchange::{CodeExchanger, CodeExchanges, Shared};
use crate::login::handoff::{Handoff, NonceCookie};
use crate::login::loop_breaker::LoopBreaker;
use crate::login::rate::RateLimits;
use crate::login::state::LoginCookie;
use crate::login::wecom::WecomExchanger;
use crate::observe::access::AccessLog;
use crate::observe::metrics::{AppMetrics, Metrics, RequestCounters};
use crate::session::seal::Sealer;
use crate::session::{Session, Sessions};
use crate::shared::SharedState;
use crate::token::{TokenError, TokenSigner};
use crate::util::clock::{Clock, Entropy, OsEntropy, SystemClock};
use crate::util::secret::Secret;
use crate::wechat::wecom::WecomUsers;
use crate::wechat::WechatClient;

/// Why the gateway could not be built from a checked config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("routes[{index}].upstream: cannot resolve {address}: {reason}")]
    Resolve { index: usize, address: String, reason: String },
}

/// What the gateway uses from outside and what outlives every reload.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub metrics: Arc<Metrics>,
    /// What replicas share.
    pub state: Arc<SharedState>,
    /// The accounts' credentials held in this process.
    pub credentials: Arc<Memories>,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            metrics: Arc::new(Metrics::new()),
            state: Arc::new(SharedState::memory()),
            credentials: Arc::default(),
        }
    }
}

/// An app (`[[apps]]`, or the top-level account) of the gateway serving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppId(usize);

/// An `[[app_hosts]]` entry of the gateway serving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostId(usize);

/// A route of the gateway serving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(usize);

/// One Official Account at run time.
pub struct AppRuntime {
    pub id: AppId,
    pub config: App,
    /// Its session cookie, on its public host and the hosts its routes serve.
    pub sessions: Sessions,
    /// Its login cookie, on its public host.
    pub logins: LoginCookie,
    /// Its code exchanges: of the phone's login (and WeCom's web login).
    pub exchanges: CodeExchanges,
    /// WeChat's desktop sign-in: the website app's code exchanges.
    pub desktop_exchanges: Option<CodeExchanges>,
    pub loops: LoopBreaker,
    /// The nonce cookie of logins through the login host, set on app hosts.
    pub nonces: NonceCookie,
    pub metrics: AppMetrics,
    /// Its account's global credentials (shared with the other apps of the account).
    pub account: Arc<Account>,
}

impl AppRuntime {
    /// The exchanges of a login's codes: the website app's for WeChat's desktop sign-in.
    pub fn exchanges_for(&self, desktop: bool) -> &CodeExchanges {
        match &self.desktop_exchanges {
            Some(website) if desktop => website,
            _ => &self.exchanges,
        }
    }
}

/// One `[[app_hosts]]` entry at run time: its config and its session cookie.
pub struct HostRuntime {
    pub id: HostId,
    pub app: AppId,
    pub config: AppHost,
    pub sessions: Sessions,
}

/// One route at run time: its config and the peer its requests are proxied to, built once
/// (address resolved, timeouts set).
pub struct RouteRuntime {
    pub id: RouteId,
    pub app: AppId,
    pub config: Route,
    pub peer: HttpPeer,
    /// The route in metrics and logs: `host/path`, or the path for routes on any host.
    pub label: String,
    /// Its request counters, resolved once.
    pub counters: RequestCounters,
    /// Its series of the upstream's response time, resolved when first observed.
    upstream_seconds: OnceLock<Histogram>,
}

impl RouteRuntime {
    /// Counts `took`, the time its upstream took to answer with a response header.
    pub fn observe_upstream(&self, metrics: &Metrics, took: Duration) {
        let series = self.upstream_seconds.get_or_init(|| metrics.upstream_seconds.with_label_values(&[&self.label]));
        series.observe(took.as_secs_f64());
    }
}

/// Everything a request needs, shared by all requests.
pub struct Gateway {
    pub config: Arc<Config>,
    apps: Vec<AppRuntime>,
    routes: Vec<RouteRuntime>,
    /// The app hosts that log in through a login host, in config order.
    hosts: Vec<HostRuntime>,
    /// Seals the requests and tickets between app hosts and login hosts.
    pub handoff: Handoff,
    pub signer: TokenSigner,
    pub rate: RateLimits,
    /// The request counters of the gateway's own answers (route `-`).
    pub own_counters: RequestCounters,
    pub access: AccessLog,
    /// The accounts' global credentials, by appid.
    pub accounts: Accounts,
    deps: Deps,
}

impl Gateway {
    pub fn new(config: Config, deps: Deps) -> Result<Self, BuildError> {
        crate::observe::logging::register_secrets(secrets_of(&config));
        let accounts = Accounts::new(&config, || AccountDeps {
            clock: deps.clock.clone(),
            entropy: deps.entropy.clone(),
            metrics: deps.metrics.clone(),
            state: deps.state.clone(),
            memories: deps.credentials.clone(),
        });
        let apps = (0..config.apps.len()).map(|i| app(&config, i, &deps, &accounts)).collect();
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(index, r)| {
                Ok(RouteRuntime {
                    id: RouteId(index),
                    app: AppId(r.app),
                    config: r.clone(),
                    peer: peers::peer(r, peers::resolve(index, &r.upstream.address)?),
                    label: peers::label(r),
                    counters: RequestCounters::default(),
                    upstream_seconds: OnceLock::new(),
                })
            })
            .collect::<Result<_, BuildError>>()?;
        let hosts = config
            .app_hosts
            .iter()
            .enumerate()
            .map(|(i, h)| HostRuntime {
                id: HostId(i),
                app: AppId(h.app),
                config: h.clone(),
                sessions: Sessions::for_app_host(&config, h),
            })
            .collect();
        Ok(Self {
            apps,
            routes,
            hosts,
            handoff: Handoff::new(&config),
            signer: TokenSigner::new(&config.token, deps.entropy.clone())?.with_metrics(&deps.metrics),
            rate: RateLimits::new(&config.rate_limit, deps.clock.clone()).with_shared(deps.state.clone()),
            access: AccessLog::new(&config),
            own_counters: RequestCounters::default(),
            accounts,
            config: Arc::new(config),
            deps,
        })
    }

    /// What outlives a reload: time, randomness, metrics and the shared state.
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    pub fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    pub fn entropy(&self) -> &dyn Entropy {
        self.deps.entropy.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.deps.metrics
    }

    pub fn state(&self) -> &SharedState {
        &self.deps.state
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.deps.clock.now()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        self.deps.clock.now_millis()
    }

    pub fn app(&self, id: AppId) -> &AppRuntime {
        &self.apps[id.0]
    }

    pub fn host(&self, id: HostId) -> &HostRuntime {
        &self.hosts[id.0]
    }

    pub fn route(&self, id: RouteId) -> &RouteRuntime {
        &self.routes[id.0]
    }

    pub fn apps(&self) -> &[AppRuntime] {
        &self.apps
    }

    pub fn routes(&self) -> &[RouteRuntime] {
        &self.routes
    }

    /// The route for `host` and the canonical `path`: exact host over wildcard over any, then
    /// the longest path prefix.
    pub fn route_for(&self, host: &str, path: &str) -> Option<&RouteRuntime> {
        self.routes
            .iter()
            .filter(|r| r.config.matches(host, path))
            .max_by_key(|r| (r.config.host.rank(), r.config.path.trim_end_matches('/').len()))
    }

    /// The app whose public host is `host` and whose logins run here (its callback and login
    /// endpoints live there).
    pub fn app_at(&self, host: &str) -> Option<&AppRuntime> {
        self.apps.iter().find(|a| a.config.logins_here && a.config.public_host() == host)
    }

    /// The app a host belongs to: by public host, else as an app host, else through the
    /// routes serving it.
    pub fn app_of_host(&self, host: &str) -> Option<&AppRuntime> {
        self.app_at(host)
            .or_else(|| self.app_host(host).map(|h| self.app(h.app)))
            .or_else(|| self.route_for(host, "/").map(|r| self.app(r.app)))
    }

    /// The `[[app_hosts]]` entry serving `host` (exact over the longest wildcard), unless
    /// `host` is a login host itself.
    pub fn app_host(&self, host: &str) -> Option<&HostRuntime> {
        if self.hosts.is_empty() || self.app_at(host).is_some() {
            return None;
        }
        self.hosts.iter().filter(|h| h.config.host.matches(host)).max_by_key(|h| match &h.config.host {
            HostPattern::Exact(_) => usize::MAX,
            HostPattern::Wildcard(suffix) => suffix.len(),
            HostPattern::Any => 0,
        })
    }

    /// The app host entry of `app` serving `host`, if any.
    pub fn app_host_of(&self, app: AppId, host: &str) -> Option<&HostRuntime> {
        self.app_host(host).filter(|h| h.app == app)
    }

    /// Ends session `s`: its id is revoked until it would have expired. With `family`, so is
    /// the family it belongs to (the login host session it came from, or the one it replaced),
    /// for as long as a session can last, which ends every app host session handed from that
    /// login. A session of its own family ends the sessions handed from it with its own id.
    pub async fn end_session(&self, s: &Session, family: bool) {
        let now = self.now();
        let state = self.state();
        state.revoke_session(&s.appid, s.sid.as_str(), s.expires, now).await;
        if let Some(f) = s.family.as_ref().filter(|_| family) {
            let until = now + self.config.session.lifetime.as_secs();
            state.revoke_session(&s.appid, f.as_str(), until, now).await;
        }
    }

    /// Is the canonical `path` under the gateway's reserved prefix?
    pub fn is_reserved(&self, path: &str) -> bool {
        crate::config::path_has_prefix(path, &self.config.prefix)
    }
}

/// The runtime record of `config.apps[index]`.
fn app(config: &Config, index: usize, deps: &Deps, accounts: &Accounts) -> AppRuntime {
    let app = &config.apps[index];
    let w = &app.wechat;
    let account = accounts.get(&w.account_key()).expect("every app's account is built").clone();
    // Without the secret (logins elsewhere) the client is never asked: no login starts here.
    let secret = w.secret.clone().unwrap_or_else(|| Secret::new(Vec::new()));
    let phone: Arc<dyn CodeExchanger> = match &w.provider {
        Provider::Wechat => Arc::new(WechatClient::new(&w.api_base, &w.appid, secret, w.connect_timeout, w.timeout)),
        Provider::Wecom { .. } => Arc::new(WecomExchanger::new(WecomUsers::new(w), account.clone())),
    };
    // WeCom's web login codes go through the same lookup; WeChat's are the website app's.
    let desktop = w.desktop.as_ref().and_then(|d| d.website.as_ref()).map(|site| {
        let client = WechatClient::new(&w.api_base, &site.appid, site.secret.clone(), w.connect_timeout, w.timeout);
        exchanges(config, deps, app, Arc::new(client.website()), &site.appid)
    });
    AppRuntime {
        id: AppId(index),
        config: app.clone(),
        sessions: Sessions::for_app(config, index),
        logins: LoginCookie::new(config, index),
        exchanges: exchanges(config, deps, app, phone, &w.appid),
        desktop_exchanges: desktop,
        loops: LoopBreaker::new(config, index),
        nonces: NonceCookie::new(config, index),
        metrics: deps.metrics.for_app(&app.name),
        account,
    }
}

/// The code exchanges of `app` through `exchanger`, shared with the other replicas under
/// `appid` (the one whose codes they are).
fn exchanges(config: &Config, deps: &Deps, app: &App, exchanger: Arc<dyn CodeExchanger>, appid: &str) -> CodeExchanges {
    let w = &app.wechat;
    // Userinfo makes two calls to WeChat; WeCom's corp token, a lookup, a refresh and one more
    // lookup make four. Then the outcome is published; other replicas wait as long.
    let calls = if w.provider.is_wecom() { 4 } else { 2 };
    let budget = calls * (w.connect_timeout + w.timeout) + Duration::from_secs(1);
    CodeExchanges::new(exchanger, deps.clock.clone(), config.session.login_lifetime)
        .with_metrics(deps.metrics.clone(), &app.name)
        .with_budget(budget)
        .with_shared(Shared {
            state: deps.state.clone(),
            appid: appid.to_string(),
            sealer: Sealer::new(&config.session.keys),
            entropy: deps.entropy.clone(),
            wait: budget,
        })
}

/// Every configured secret's bytes, which no log line may show.
fn secrets_of(config: &Config) -> impl Iterator<Item = &[u8]> + '_ {
    let wechat = config.apps.iter().filter_map(|a| a.wechat.secret.as_ref()).map(|s| s.expose());
    let websites = config.apps.iter().filter_map(|a| a.wechat.desktop.as_ref()?.website.as_ref());
    let wechat = wechat.chain(websites.map(|w| w.secret.expose()));
    let session = config.session.keys.iter().map(|k| k.expose());
    let token = config.token.keys.iter().map(|k| k.expose());
    let admin = config.admin.token.iter().map(|k| k.expose());
    wechat.chain(session).chain(token).chain(admin)
}
