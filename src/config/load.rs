//! Turns a TOML document into a typed [`Config`], collecting every mistake.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use http::HeaderName;
use url::Url;

use super::reader::{secret_from, ConfigError, Errors, Table};
use super::values::*;
use super::*;
use crate::duration;
use crate::seal::MIN_SECRET_LEN;
use crate::secret::{Secret, SecretSource};

const DEFAULT_AUTHORIZE_URL: &str = "https://open.weixin.qq.com/connect/oauth2/authorize";
const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// A config that passed every check, with advice that does not stop it from running.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Reads and checks the file at `path`; secret files are relative to its folder.
pub fn load_file(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_str(&text, base)
}

/// Checks a config document; secret files are relative to `base`.
pub fn parse_str(text: &str, base: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        vec![ConfigError {
            path: String::new(),
            message: format!("not valid TOML: {}", e.message().trim()),
        }]
    })?;
    let errors = Errors::default();
    let mut warnings = Vec::new();
    let mut root = Table::root(&doc, &errors);

    let listen = root
        .from_str::<SocketAddr>("listen")
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let threads = root.opt::<usize>("threads").unwrap_or(1).max(1);
    let public_url = root.req_parsed(
        "public_url",
        "the URL browsers use to reach the gateway",
        parse_public_url,
    );
    let prefix = root
        .parsed("prefix", parse_prefix)
        .unwrap_or_else(|| "/.gateway".into());

    let demo = root.table("demo").map(|mut t| {
        let mock = t
            .from_str::<SocketAddr>("mock_wechat")
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8081)));
        let up = t
            .from_str::<SocketAddr>("upstream")
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8082)));
        t.finish();
        DemoConfig {
            mock_wechat_listen: mock,
            upstream_listen: up,
        }
    });
    let secrets = SecretLoader {
        base,
        demo: demo.is_some(),
        errors: &errors,
    };

    let wechat = match root.table("wechat") {
        Some(t) => wechat_section(t, &secrets),
        None => {
            root.error("wechat", "is required");
            None
        }
    };
    let session = match root.table("session") {
        Some(t) => session_section(t, &secrets, public_url.as_ref()),
        None => {
            root.error("session", "is required");
            None
        }
    };
    let token = match root.table("token") {
        Some(t) => token_section(t, &secrets, public_url.as_ref()),
        None => {
            root.error("token", "is required");
            None
        }
    };
    let route_tables = root.tables("routes");
    if route_tables.is_empty() && !doc.contains_key("routes") {
        root.error("routes", "at least one [[routes]] is required");
    }
    let parsed: Vec<(RouteKey, Option<Route>)> = route_tables
        .into_iter()
        .map(|t| route(t, public_url.as_ref()))
        .collect();
    check_route_overlap(parsed.iter().map(|(k, _)| k), &errors);
    let routes: Vec<Route> = parsed.into_iter().filter_map(|(_, r)| r).collect();
    root.finish();

    if let Some(u) = &public_url {
        if demo.is_none() {
            if u.port().is_some() {
                warnings.push("public_url: has a port; WeChat refuses a redirect_uri with a port (error 10003)".into());
            }
            if u.host_str()
                .is_some_and(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok())
            {
                warnings.push(
                    "public_url: is an IP address; WeChat only redirects to a registered domain"
                        .into(),
                );
            }
            if u.scheme() == "http" {
                warnings.push("public_url: is http; session cookies are not marked Secure".into());
            }
        }
    }

    match (errors.is_empty(), public_url, wechat, session, token) {
        (true, Some(public_url), Some(wechat), Some(session), Some(token)) => Ok(Loaded {
            config: Config {
                listen,
                threads,
                public_url,
                prefix,
                wechat,
                session,
                token,
                routes,
                demo,
            },
            warnings,
        }),
        _ => Err(errors.into_vec()),
    }
}

/// Loads secrets, reporting failures at the key path.
struct SecretLoader<'a> {
    base: &'a Path,
    demo: bool,
    errors: &'a Errors,
}

impl SecretLoader<'_> {
    fn load(&self, src: SecretSource, path: &str, min_len: usize) -> Option<Secret> {
        if src.is_ephemeral() && !self.demo {
            self.errors.push(path, "ephemeral secrets are only for the embedded demo ([demo]); use { env = \"NAME\" } or { file = \"PATH\" }");
            return None;
        }
        let secret = src
            .load(self.base)
            .map_err(|m| self.errors.push(path, m))
            .ok()?;
        if secret.len() < min_len {
            self.errors.push(
                path,
                format!("is {} bytes; at least {min_len} are needed", secret.len()),
            );
            return None;
        }
        Some(secret)
    }
}

fn wechat_section(mut t: Table, secrets: &SecretLoader) -> Option<WechatConfig> {
    let appid: Option<String> = t.req("appid");
    if let Some(a) = &appid {
        if a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric()) {
            t.error(
                "appid",
                "must be the account's AppID (letters and digits, like wx1234567890abcdef)",
            );
        }
    }
    let secret = t
        .secret("secret")
        .and_then(|s| secrets.load(s, &t.path_of("secret"), 1));
    let scope = t.parsed("scope", parse_scope).unwrap_or(Scope::Base);
    let authorize_url = t
        .parsed("authorize_url", parse_http_url)
        .unwrap_or_else(|| Url::parse(DEFAULT_AUTHORIZE_URL).expect("constant URL"));
    let api_base = t
        .parsed("api_base", parse_http_url)
        .unwrap_or_else(|| Url::parse(DEFAULT_API_BASE).expect("constant URL"));
    let connect_timeout = t
        .parsed("connect_timeout", duration::parse)
        .unwrap_or(Duration::from_secs(2));
    let timeout = t
        .parsed("timeout", duration::parse)
        .unwrap_or(Duration::from_secs(5));
    t.finish();
    Some(WechatConfig {
        appid: appid?,
        secret: secret?,
        scope,
        authorize_url,
        api_base,
        connect_timeout,
        timeout,
    })
}

fn session_section(
    mut t: Table,
    secrets: &SecretLoader,
    public_url: Option<&Url>,
) -> Option<SessionConfig> {
    let keys_path = t.path_of("keys");
    let raw_keys: Vec<toml::Value> = t.req("keys").unwrap_or_default();
    let mut keys = Vec::new();
    let mut keys_ok = !raw_keys.is_empty();
    if raw_keys.is_empty() && t.has("keys") {
        t.error("keys", "needs at least one key");
    }
    for (i, v) in raw_keys.iter().enumerate() {
        let path = format!("{keys_path}[{i}]");
        match secret_from(v, &path, t.errors).and_then(|s| secrets.load(s, &path, MIN_SECRET_LEN)) {
            Some(k) => keys.push(k),
            None => keys_ok = false,
        }
    }
    let lifetime = t
        .parsed("lifetime", duration::parse)
        .unwrap_or(Duration::from_secs(7 * 86_400));
    let cookie_name = t
        .parsed("cookie_name", parse_cookie_name)
        .unwrap_or_else(|| "ogw_session".into());
    let login_cookie_name = t
        .parsed("login_cookie_name", parse_cookie_name)
        .unwrap_or_else(|| "ogw_login".into());
    if cookie_name == login_cookie_name {
        t.error("login_cookie_name", "must differ from cookie_name");
    }
    let login_lifetime = t
        .parsed("login_lifetime", duration::parse)
        .unwrap_or(Duration::from_secs(600));
    let cookie_domain: Option<String> = t.opt("cookie_domain");
    t.finish();
    let secure = public_url.is_some_and(|u| u.scheme() == "https");
    keys_ok.then_some(SessionConfig {
        keys,
        lifetime,
        cookie_name,
        login_cookie_name,
        login_lifetime,
        cookie_domain,
        secure,
    })
}

fn token_section(
    mut t: Table,
    secrets: &SecretLoader,
    public_url: Option<&Url>,
) -> Option<TokenConfig> {
    let header = t
        .parsed("header", parse_header_name)
        .unwrap_or(HeaderName::from_static("x-openid-token"));
    let algorithm = t.req_parsed("algorithm", "\"ES256\" or \"HS256\"", parse_algorithm);
    let key_path = t.path_of("key");
    let key = t.secret("key").and_then(|src| {
        let min = if algorithm == Some(TokenAlgorithm::HS256) {
            MIN_SECRET_LEN
        } else {
            1
        };
        let secret = secrets.load(src, &key_path, min)?;
        if algorithm == Some(TokenAlgorithm::ES256) {
            if let Err(e) = crate::token::es256_keys(secret.expose()) {
                t.error("key", e.to_string());
                return None;
            }
        }
        Some(secret)
    });
    let issuer = t
        .opt::<String>("issuer")
        .or_else(|| public_url.map(|u| u.origin().ascii_serialization()))
        .unwrap_or_default();
    let lifetime = t
        .parsed("lifetime", duration::parse)
        .unwrap_or(Duration::from_secs(300));
    t.finish();
    Some(TokenConfig {
        header,
        algorithm: algorithm?,
        key: key?,
        issuer,
        lifetime,
    })
}

/// What two routes must not share: host and path.
type RouteKey = (Option<String>, String);

fn route(mut t: Table, public_url: Option<&Url>) -> (RouteKey, Option<Route>) {
    let host = t.opt::<String>("host").map(|h| h.to_ascii_lowercase());
    let path = t
        .parsed("path", parse_route_path)
        .unwrap_or_else(|| "/".into());
    let upstream_url = t.req_parsed("upstream", "like \"http://127.0.0.1:3000\"", parse_upstream);
    let audience = t
        .opt::<String>("audience")
        .or_else(|| public_url.map(|u| u.origin().ascii_serialization()))
        .unwrap_or_default();
    let policy = t.parsed("policy", parse_policy).unwrap_or(Policy::Required);
    let preserve_host = t.opt::<bool>("preserve_host").unwrap_or(true);
    let connect_timeout = t
        .parsed("connect_timeout", duration::parse)
        .unwrap_or(Duration::from_secs(3));
    t.finish();
    let key = (host.clone(), path.trim_end_matches('/').to_string());
    let Some(url) = upstream_url else {
        return (key, None);
    };
    let host_name = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let upstream = Upstream {
        address: format!("{}:{port}", host_name),
        host_header: match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name,
        },
        connect_timeout,
    };
    (
        key,
        Some(Route {
            host,
            path,
            upstream,
            audience,
            policy,
            preserve_host,
        }),
    )
}

fn check_route_overlap<'a>(keys: impl Iterator<Item = &'a RouteKey>, errors: &Errors) {
    let keys: Vec<&RouteKey> = keys.collect();
    for (i, a) in keys.iter().enumerate() {
        for (j, b) in keys.iter().enumerate().skip(i + 1) {
            if a == b {
                errors.push(
                    format!("routes[{j}]"),
                    format!("matches the same host and path as routes[{i}]"),
                );
            }
        }
    }
}
