//! The gateway's configuration: read once from TOML into typed values. Only these types cross
//! module boundaries; runtime code never sees raw strings or optional keys.

mod load;
pub mod reader;
mod values;

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;
use url::Url;

use crate::secret::Secret;

pub use load::{load_file, parse_str, Loaded};
pub use reader::ConfigError;

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub threads: usize,
    /// Scheme and host (and port, where there is one) that browsers use to reach the gateway.
    pub public_url: Url,
    /// Reserved path prefix served by the gateway itself, such as `/.gateway`.
    pub prefix: String,
    pub wechat: WechatConfig,
    pub session: SessionConfig,
    pub token: TokenConfig,
    pub routes: Vec<Route>,
    pub demo: Option<DemoConfig>,
}

impl Config {
    /// The `redirect_uri` given to WeChat: `<public_url><prefix>/callback`.
    pub fn callback_url(&self) -> String {
        format!("{}{}/callback", self.public_origin(), self.prefix)
    }

    /// `scheme://host[:port]` of the public URL, without a trailing slash.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

/// The WeChat Official Account and where its endpoints are.
#[derive(Debug, Clone)]
pub struct WechatConfig {
    pub appid: String,
    pub secret: Secret,
    pub scope: Scope,
    /// `https://open.weixin.qq.com/connect/oauth2/authorize` unless pointed at a mock.
    pub authorize_url: Url,
    /// `https://api.weixin.qq.com` unless pointed at a mock.
    pub api_base: Url,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

/// The authorization scope requested from WeChat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    Userinfo,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::Userinfo => "snsapi_userinfo",
        }
    }
}

/// Session and login cookies.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The first key seals; every key opens.
    pub keys: Vec<Secret>,
    pub lifetime: Duration,
    pub cookie_name: String,
    pub login_cookie_name: String,
    pub login_lifetime: Duration,
    pub cookie_domain: Option<String>,
    /// True when the public URL is https.
    pub secure: bool,
}

/// The identity token forwarded to upstreams.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub header: HeaderName,
    pub algorithm: TokenAlgorithm,
    pub key: Secret,
    pub issuer: String,
    pub lifetime: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlgorithm {
    HS256,
    ES256,
}

/// Whether a route needs a WeChat identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// No session: log in first.
    Required,
    /// Forwarded as is; a token is added when there is a session.
    Public,
}

/// One upstream application and the requests that go to it.
#[derive(Debug, Clone)]
pub struct Route {
    /// Exact host the route serves (lower case, without port); `None` serves every host.
    pub host: Option<String>,
    /// Path prefix, starting with `/`.
    pub path: String,
    pub upstream: Upstream,
    pub audience: String,
    pub policy: Policy,
    /// Keep the client's `Host` header (default) or send the upstream's.
    pub preserve_host: bool,
}

impl Route {
    /// Does this route serve `host` (no port, lower case) and `path`?
    pub fn matches(&self, host: &str, path: &str) -> bool {
        self.host.as_deref().is_none_or(|h| h == host) && path_has_prefix(path, &self.path)
    }
}

/// `/app` is a prefix of `/app`, `/app/x` and `/app?q`, not of `/apple`.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let p = prefix.trim_end_matches('/');
    path.strip_prefix(p)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// Where a route's requests are proxied.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port` to connect to.
    pub address: String,
    /// The `Host` header value when the route does not keep the client's.
    pub host_header: String,
    pub connect_timeout: Duration,
}

/// The embedded demo: a mock WeChat and a demo upstream started beside the gateway.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub mock_wechat_listen: SocketAddr,
    pub upstream_listen: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefixes_stop_at_segments() {
        assert!(path_has_prefix("/app", "/app"));
        assert!(path_has_prefix("/app/x", "/app"));
        assert!(path_has_prefix("/app/x", "/app/"));
        assert!(!path_has_prefix("/apple", "/app"));
        assert!(path_has_prefix("/anything", "/"));
    }
}
