//! The gateway's configuration: read once from TOML into typed values. Only these types cross
//! module boundaries; runtime code never sees raw strings or optional keys.

mod hosts;
mod limits;
mod load;
mod operate;
mod provider;
pub mod reader;
mod secrets;
mod sections;
mod state;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::HeaderName;
use url::Url;

use crate::util::secret::Secret;

pub use crate::wechat::Scope;
pub use hosts::AppHost;
pub use limits::{EscapedSlashes, PathRules};
pub use load::{load_file, parse_str, Loaded};
pub use operate::{AdminConfig, Hsts, LogConfig, LogFormat, ServerCert, TlsConfig};
pub use provider::{DesktopLogin, Provider, TokenApi, Website, WechatConfig};
pub use reader::ConfigError;
pub use state::{RedisConfig, StateConfig};

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub threads: usize,
    /// Reserved path prefix served by the gateway itself, such as `/.gateway`.
    pub prefix: String,
    /// The Official Accounts (公众号) served; routes refer to them by index.
    pub apps: Vec<App>,
    /// Hosts that log in through an app's public host with tickets.
    pub app_hosts: Vec<AppHost>,
    pub session: SessionConfig,
    pub token: TokenConfig,
    pub routes: Vec<Route>,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Hosts, besides those of the routes and apps, that return URLs may point to.
    pub allowed_return_hosts: Vec<String>,
    pub login_limit: LoginLimit,
    /// How request paths are made canonical.
    pub paths: PathRules,
    pub limits: Limits,
    pub rate_limit: RateLimitConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub tls: Option<TlsConfig>,
    /// Where what replicas share lives.
    pub state: StateConfig,
    /// Where a graceful upgrade hands the listening sockets over.
    pub upgrade_sock: String,
    /// On SIGTERM (or after handing the listeners over), how long requests in flight may take.
    pub drain_timeout: Duration,
    pub demo: Option<DemoConfig>,
}

/// Client-side timeouts and request size caps (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's header must be complete this long after its first byte (else 408).
    pub header_timeout: Duration,
    /// An idle client connection is closed this long after its last response.
    pub keepalive_timeout: Duration,
    /// Bytes of all header names and values together (else 431).
    pub max_header_bytes: usize,
    /// Number of header fields (else 431).
    pub max_headers: usize,
    /// Bytes of the request target (else 414).
    pub max_url_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_url_bytes: 8 * 1024,
        }
    }
}

/// Per-client-address token buckets for login starts and callbacks (`[rate_limit]`);
/// `0` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub login_per_minute: u32,
    pub callback_per_minute: u32,
    /// Requests allowed at once before the rate applies.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    /// Generous enough for many users behind one carrier-grade NAT.
    fn default() -> Self {
        Self { login_per_minute: 120, callback_per_minute: 120, burst: 60 }
    }
}

/// One Official Account (or WeCom app) and the public URL its login runs on.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// Scheme and host (and port, where there is one) of the callback and session cookie.
    pub public_url: Url,
    pub wechat: WechatConfig,
    /// Tokens of `MP_verify_<token>.txt` files served at the root of the app's hosts.
    pub mp_verify: Vec<String>,
    /// This gateway runs the app's logins (`logins = "here"`, the default), or only serves
    /// app hosts whose logins run on the login host's gateway (`"elsewhere"`: no AppSecret).
    pub logins_here: bool,
}

impl App {
    /// `scheme://host[:port]` of the public URL, without a trailing slash.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The public host, lower case, without port.
    pub fn public_host(&self) -> &str {
        self.public_url.host_str().unwrap_or_default()
    }

    pub fn secure(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// How many logins one browser may start within a window before the gateway stops
/// redirecting and explains what is wrong.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit {
    pub max: u32,
    pub window: Duration,
}

/// An IP network such as `10.0.0.0/8` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => masked(u32::from(n).into(), u32::from(a).into(), self.prefix, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(u128::from(n), u128::from(a), self.prefix, 128),
            (IpAddr::V6(n), IpAddr::V4(a)) => n.to_ipv4_mapped() == Some(a) && self.prefix == 128,
            (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped() == Some(n),
        }
    }
}

fn masked(net: u128, addr: u128, prefix: u8, bits: u8) -> bool {
    let shift = u32::from(bits.saturating_sub(prefix));
    shift >= u32::from(bits) || net.checked_shr(shift) == addr.checked_shr(shift)
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
    /// How long a ticket from the login host to an app host stays valid.
    pub ticket_lifetime: Duration,
}

/// The identity token forwarded to upstreams.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub header: HeaderName,
    pub algorithm: TokenAlgorithm,
    /// The first key signs; every asymmetric key is published in the JWKS.
    pub keys: Vec<Secret>,
    pub issuer: String,
    pub lifetime: Duration,
    /// A signed token is reused while less than this fraction of its lifetime has passed.
    pub reuse: f64,
    /// How many signed tokens are remembered at most.
    pub cache_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlgorithm {
    HS256,
    ES256,
    EdDSA,
    RS256,
}

impl TokenAlgorithm {
    /// Its name in JOSE (`alg`) and in the config.
    pub fn name(self) -> &'static str {
        match self {
            TokenAlgorithm::HS256 => "HS256",
            TokenAlgorithm::ES256 => "ES256",
            TokenAlgorithm::EdDSA => "EdDSA",
            TokenAlgorithm::RS256 => "RS256",
        }
    }
}

/// Whether a route needs a WeChat identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// No session: log in first.
    Required,
    /// Forwarded either way, with a token when there is a session; never redirected.
    Optional,
    /// Forwarded as is; a token is added when there is a session.
    Public,
}

/// What a required route does with a browser that is not WeChat's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonWechat {
    /// A page with a QR code of the URL, to open it in WeChat on a phone.
    QrPage,
    /// Forward without identity.
    Pass,
    /// Send it to WeChat's authorize page anyway.
    Login,
}

/// Which hosts a route serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    /// One host, lower case.
    Exact(String),
    /// `*.example.com`: stored as `.example.com`; matches any host ending in it.
    Wildcard(String),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }

    /// Exact beats wildcard beats any.
    pub fn rank(&self) -> u8 {
        match self {
            HostPattern::Any => 0,
            HostPattern::Wildcard(_) => 1,
            HostPattern::Exact(_) => 2,
        }
    }
}

/// One upstream application and the requests that go to it.
#[derive(Debug, Clone)]
pub struct Route {
    pub host: HostPattern,
    /// Path prefix, starting with `/`.
    pub path: String,
    pub upstream: Upstream,
    pub audience: String,
    pub policy: Policy,
    /// Path prefixes under this route that are always public (assets, health checks).
    pub public_paths: Vec<String>,
    /// Keep the client's `Host` header (default) or send the upstream's.
    pub preserve_host: bool,
    /// Index of the route's app in [`Config::apps`].
    pub app: usize,
    /// The scope this route needs (the app's unless the route asks for more).
    pub scope: Scope,
    pub non_wechat: NonWechat,
    /// Carry the page's `#fragment` through login with a small script page.
    pub keep_fragment: bool,
    /// Honour `X-Openid-Token-Test` (deliberately invalid tokens); only on non-production routes.
    pub verifier_test: bool,
    /// Request bodies larger than this get 413.
    pub max_body: Option<usize>,
    /// A WeCom app's route for the corp's members only: other users are refused (403).
    pub members_only: bool,
}

impl Route {
    /// Does this route serve `host` (no port, lower case) and `path`?
    pub fn matches(&self, host: &str, path: &str) -> bool {
        self.host.matches(host) && path_has_prefix(path, &self.path)
    }

    /// The policy for `path`: public under one of the route's public paths.
    pub fn policy_for(&self, path: &str) -> Policy {
        if self.public_paths.iter().any(|p| path_has_prefix(path, p)) {
            Policy::Public
        } else {
            self.policy
        }
    }
}

/// `/app` is a prefix of `/app`, `/app/x` and `/app?q`, not of `/apple`.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let p = prefix.trim_end_matches('/');
    path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// Where a route's requests are proxied.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port` to connect to.
    pub address: String,
    /// The `Host` header value when the route does not keep the client's.
    pub host_header: String,
    pub connect_timeout: Duration,
    /// Longest wait for the upstream to send something (504 after).
    pub read_timeout: Duration,
    /// Longest wait for the upstream to take what is sent to it.
    pub write_timeout: Duration,
    /// How long an idle kept-alive upstream connection is kept for reuse.
    pub idle_timeout: Duration,
    /// `https://` upstreams: the name verified and sent as SNI, and the CA certificates
    /// (DER) trusted instead of the system's.
    pub tls: Option<UpstreamTls>,
}

/// How an `https://` upstream is verified.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub sni: String,
    pub ca: Option<Vec<Vec<u8>>>,
}

/// The embedded demo: a mock WeChat and a demo upstream started beside the gateway.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub mock_wechat_listen: SocketAddr,
    pub upstream_listen: SocketAddr,
}

/// A small valid config for unit tests: `public_url`, then `top` (top-level keys),
/// `session` (keys of `[session]`) and `routes` (`[[routes]]` tables; one default route when
/// empty). Its secret files live in a temporary folder.
#[cfg(test)]
pub(crate) fn for_tests(public_url: &str, top: &str, session: &str, routes: &str) -> Config {
    // One folder per call: tests run in parallel, and rewriting a shared key file while
    // another test reads it would hand that test an empty key.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ogw-config-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("k"), "0123456789abcdef0123456789abcdef").expect("key file");
    let routes = if routes.is_empty() { "[[routes]]\nupstream = \"http://127.0.0.1:1\"\n" } else { routes };
    let text = format!(
        "public_url = \"{public_url}\"\n{top}\n[wechat]\nappid = \"wx1\"\nsecret = {{ file = \"k\" }}\n\
         [session]\nkeys = [{{ file = \"k\" }}]\n{session}\n\
         [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"k\" }}\n{routes}"
    );
    let config = parse_str(&text, &dir).expect("a valid test config").config;
    // Every secret is read by now.
    let _ = std::fs::remove_dir_all(&dir);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let net = |a: &str, p| IpNet { addr: a.parse().unwrap(), prefix: p };
        assert!(net("10.0.0.0", 8).contains("10.1.2.3".parse().unwrap()));
        assert!(!net("10.0.0.0", 8).contains("11.0.0.1".parse().unwrap()));
        assert!(net("127.0.0.1", 32).contains("127.0.0.1".parse().unwrap()));
        assert!(!net("127.0.0.1", 32).contains("127.0.0.2".parse().unwrap()));
        assert!(net("0.0.0.0", 0).contains("8.8.8.8".parse().unwrap()));
        assert!(net("fd00::", 8).contains("fd12::1".parse().unwrap()));
        assert!(net("127.0.0.1", 32).contains("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn host_patterns() {
        assert!(HostPattern::Wildcard(".example.com".into()).matches("a.example.com"));
        assert!(!HostPattern::Wildcard(".example.com".into()).matches("example.com"));
        assert!(!HostPattern::Wildcard(".example.com".into()).matches("badexample.com"));
        assert!(HostPattern::Exact("a.test".into()).matches("a.test"));
    }

    #[test]
    fn path_prefixes_stop_at_segments() {
        assert!(path_has_prefix("/app", "/app"));
        assert!(path_has_prefix("/app/x", "/app"));
        assert!(path_has_prefix("/app/x", "/app/"));
        assert!(!path_has_prefix("/apple", "/app"));
        assert!(path_has_prefix("/anything", "/"));
    }
}
