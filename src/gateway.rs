//! The gateway's state, built once from the config: cookies, code exchanges, token signer,
//! routes, and the injected clock and randomness.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use pingora::http::RequestHeader;

use crate::clock::{Clock, Entropy, OsEntropy, SystemClock};
use crate::config::{Config, Route};
use crate::exchange::{CodeExchanger, CodeExchanges};
use crate::session::SessionCookies;
use crate::token::{TokenError, TokenSigner};
use crate::wechat::WechatClient;

/// Why the gateway could not be built from a checked config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("routes[{index}].upstream: cannot resolve {address}: {reason}")]
    Resolve {
        index: usize,
        address: String,
        reason: String,
    },
}

/// What the gateway uses from outside: time, randomness and the code exchange.
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// `None`: the real WeChat client for the configured `api_base`.
    pub exchanger: Option<Arc<dyn CodeExchanger>>,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            exchanger: None,
        }
    }
}

/// Everything a request needs, shared by all requests.
pub struct Gateway {
    pub config: Arc<Config>,
    pub cookies: SessionCookies,
    pub exchanges: CodeExchanges,
    pub signer: TokenSigner,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// The resolved address of each route's upstream, by route index.
    pub upstream_addrs: Vec<SocketAddr>,
    public_host: String,
}

impl Gateway {
    pub fn new(config: Config, deps: Deps) -> Result<Self, BuildError> {
        let exchanger = deps.exchanger.unwrap_or_else(|| {
            let w = &config.wechat;
            Arc::new(WechatClient::new(
                &w.api_base,
                &w.appid,
                w.secret.clone(),
                w.connect_timeout,
                w.timeout,
            ))
        });
        let upstream_addrs = config
            .routes
            .iter()
            .enumerate()
            .map(|(index, r)| resolve(index, &r.upstream.address))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            cookies: SessionCookies::new(&config),
            exchanges: CodeExchanges::new(exchanger, deps.clock.clone()),
            signer: TokenSigner::new(&config.token)?,
            public_host: config
                .public_url
                .host_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            config: Arc::new(config),
            clock: deps.clock,
            entropy: deps.entropy,
            upstream_addrs,
        })
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The index of the route for `host` and `path`: an exact host beats any host, then the
    /// longest path prefix wins.
    pub fn route_for(&self, host: &str, path: &str) -> Option<usize> {
        self.config
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(host, path))
            .max_by_key(|(_, r)| (r.host.is_some(), r.path.trim_end_matches('/').len()))
            .map(|(i, _)| i)
    }

    pub fn route(&self, index: usize) -> &Route {
        &self.config.routes[index]
    }

    /// Is `host` the public URL's host (where the callback and session cookie live)?
    pub fn is_public_host(&self, host: &str) -> bool {
        host == self.public_host
    }

    /// Is `path` under the gateway's reserved prefix?
    pub fn is_reserved(&self, path: &str) -> bool {
        crate::config::path_has_prefix(path, &self.config.prefix)
    }
}

fn resolve(index: usize, address: &str) -> Result<SocketAddr, BuildError> {
    let err = |reason: String| BuildError::Resolve {
        index,
        address: address.into(),
        reason,
    };
    address
        .to_socket_addrs()
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))
}

/// The host a request was sent to: lower case, without port.
pub fn request_host(req: &RequestHeader) -> String {
    let raw = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or_default();
    strip_port(raw).to_ascii_lowercase()
}

/// The `Host` header as sent (with port), when it is a plausible host name.
pub fn request_authority(req: &RequestHeader) -> Option<String> {
    let raw = req.headers.get(http::header::HOST)?.to_str().ok()?;
    raw.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        .then(|| raw.to_ascii_lowercase())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_ports_and_case() {
        assert_eq!(strip_port("Shop.Example:8080"), "Shop.Example");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
