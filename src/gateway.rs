//! The gateway's state, built once from the config: per-app cookies and code exchanges, the
//! token signer, resolved upstreams, and the injected clock and randomness.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::clock::{Clock, Entropy, OsEntropy, SystemClock};
use crate::config::{App, Config, Route};
use crate::exchange::CodeExchanges;
use crate::session::SessionCookies;
use crate::token::{TokenError, TokenSigner};
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
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

impl Default for Deps {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), entropy: Arc::new(OsEntropy) }
    }
}

/// One Official Account's cookies and code exchanges.
pub struct AppState {
    pub cookies: SessionCookies,
    pub exchanges: CodeExchanges,
}

/// Everything a request needs, shared by all requests.
pub struct Gateway {
    pub config: Arc<Config>,
    /// By app index.
    pub apps: Vec<AppState>,
    pub signer: TokenSigner,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// The resolved address of each route's upstream, by route index.
    pub upstream_addrs: Vec<SocketAddr>,
}

impl Gateway {
    pub fn new(config: Config, deps: Deps) -> Result<Self, BuildError> {
        let apps = config
            .apps
            .iter()
            .enumerate()
            .map(|(i, app)| {
                let w = &app.wechat;
                let client = WechatClient::new(&w.api_base, &w.appid, w.secret.clone(), w.connect_timeout, w.timeout);
                AppState {
                    cookies: SessionCookies::new(&config, i),
                    exchanges: CodeExchanges::new(Arc::new(client), deps.clock.clone()),
                }
            })
            .collect();
        let upstream_addrs = config
            .routes
            .iter()
            .enumerate()
            .map(|(index, r)| resolve(index, &r.upstream.address))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            apps,
            signer: TokenSigner::new(&config.token, deps.entropy.clone())?,
            config: Arc::new(config),
            clock: deps.clock,
            entropy: deps.entropy,
            upstream_addrs,
        })
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The index of the route for `host` and `path`: exact host over wildcard over any, then
    /// the longest path prefix.
    pub fn route_for(&self, host: &str, path: &str) -> Option<usize> {
        self.config
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(host, path))
            .max_by_key(|(_, r)| (r.host.rank(), r.path.trim_end_matches('/').len()))
            .map(|(i, _)| i)
    }

    pub fn route(&self, index: usize) -> &Route {
        &self.config.routes[index]
    }

    pub fn app(&self, index: usize) -> &App {
        &self.config.apps[index]
    }

    /// The app whose public host is `host` (where its callback and login endpoints live).
    pub fn app_at(&self, host: &str) -> Option<usize> {
        self.config.apps.iter().position(|a| a.public_host() == host)
    }

    /// The app a host belongs to: by public host, else through the routes serving it.
    pub fn app_of_host(&self, host: &str) -> Option<usize> {
        self.app_at(host).or_else(|| self.route_for(host, "/").map(|r| self.route(r).app))
    }

    /// Is `path` under the gateway's reserved prefix?
    pub fn is_reserved(&self, path: &str) -> bool {
        crate::config::path_has_prefix(path, &self.config.prefix)
    }
}

fn resolve(index: usize, address: &str) -> Result<SocketAddr, BuildError> {
    let err = |reason: String| BuildError::Resolve { index, address: address.into(), reason };
    address.to_socket_addrs().map_err(|e| err(e.to_string()))?.next().ok_or_else(|| err("no address".into()))
}
