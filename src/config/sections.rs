//! Readers for the `[session]`, `[token]` and `[[routes]]` tables.

use std::path::Path;
use std::time::Duration;

use http::HeaderName;

use super::reader::{secret_from, Table};
use super::secrets::SecretLoader;
use super::values::*;
use super::*;
use crate::session::seal::MIN_SECRET_LEN;
use crate::util::duration;
use crate::util::secret::{Secret, SecretSource};

pub(super) fn session_section(mut t: Table, secrets: &SecretLoader) -> Option<SessionConfig> {
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
    let lifetime = t.parsed("lifetime", duration::parse).unwrap_or(Duration::from_secs(7 * 86_400));
    let cookie_name = t.parsed("cookie_name", parse_cookie_name).unwrap_or_else(|| "ogw_session".into());
    let login_cookie_name = t.parsed("login_cookie_name", parse_cookie_name).unwrap_or_else(|| "ogw_login".into());
    if cookie_name == login_cookie_name {
        t.error("login_cookie_name", "must differ from cookie_name");
    }
    let login_lifetime = t.parsed("login_lifetime", duration::parse).unwrap_or(Duration::from_secs(600));
    let cookie_domain = t.opt::<String>("cookie_domain").map(|d| d.to_ascii_lowercase());
    let ticket_lifetime = t.parsed("ticket_lifetime", duration::parse).unwrap_or(Duration::from_secs(30));
    if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&ticket_lifetime) {
        t.error("ticket_lifetime", "must be between 1s and 5m: a ticket only crosses one redirect");
    }
    t.finish();
    keys_ok.then_some(SessionConfig {
        keys,
        lifetime,
        cookie_name,
        login_cookie_name,
        login_lifetime,
        cookie_domain,
        ticket_lifetime,
    })
}

pub(super) fn token_section(mut t: Table, secrets: &SecretLoader, default_issuer: Option<&str>) -> Option<TokenConfig> {
    let header = t.parsed("header", parse_header_name).unwrap_or(HeaderName::from_static("x-openid-token"));
    let algorithm = t.req_parsed("algorithm", "\"ES256\", \"EdDSA\", \"RS256\" or \"HS256\"", parse_algorithm);
    let sources: Vec<(String, SecretSource)> = match (t.has("key"), t.has("keys")) {
        (true, true) => {
            t.error("keys", "write key (one) or keys (several), not both");
            Vec::new()
        }
        (_, true) => {
            let path = t.path_of("keys");
            let raw: Vec<toml::Value> = t.opt("keys").unwrap_or_default();
            if raw.is_empty() {
                t.error("keys", "needs at least one key");
            }
            raw.iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    secret_from(v, &format!("{path}[{i}]"), t.errors).map(|s| (format!("{path}[{i}]"), s))
                })
                .collect()
        }
        _ => t.secret("key").map(|s| (t.path_of("key"), s)).into_iter().collect(),
    };
    let expected = sources.len();
    let keys: Vec<Secret> = sources
        .into_iter()
        .enumerate()
        .filter_map(|(i, (path, src))| {
            let min = if algorithm == Some(TokenAlgorithm::HS256) { MIN_SECRET_LEN } else { 1 };
            let secret = match (src.is_ephemeral(), algorithm?) {
                // The demo's asymmetric key: a new one at every start.
                (true, alg) if alg != TokenAlgorithm::HS256 && secrets.ephemeral_allowed(&path) => {
                    let kind = crate::token::keys::KeyAlg::parse(alg.name())?;
                    super::secrets::ephemeral(&format!("{path}#{}", alg.name()), || {
                        Some(Secret::new(crate::token::keys::generate(kind).ok()?.into_bytes()))
                    })?
                }
                _ => secrets.load(src, &path, min)?,
            };
            check_token_key(algorithm?, &secret, i == 0).map_err(|m| t.errors.push(path, m)).ok()?;
            Some(secret)
        })
        .collect();
    let issuer = t.opt::<String>("issuer").or(default_issuer.map(str::to_string)).unwrap_or_default();
    let lifetime = t.parsed("lifetime", duration::parse).unwrap_or(Duration::from_secs(300));
    let reuse = t.opt::<f64>("reuse").unwrap_or(0.5);
    if !(0.0..=0.9).contains(&reuse) {
        t.error("reuse", "must be between 0.0 (never reuse) and 0.9");
    }
    let cache_size = t.opt::<usize>("cache_size").unwrap_or(100_000);
    t.finish();
    (keys.len() == expected && expected > 0).then_some(())?;
    Some(TokenConfig { header, algorithm: algorithm?, keys, issuer, lifetime, reuse, cache_size })
}

/// An HS256 key is any secret; an asymmetric key must be a PEM private key, and the signing
/// (first) key must be of the configured algorithm.
fn check_token_key(algorithm: TokenAlgorithm, secret: &Secret, signing: bool) -> Result<(), String> {
    if algorithm == TokenAlgorithm::HS256 {
        return Ok(());
    }
    let text = std::str::from_utf8(secret.expose()).map_err(|_| "is not PEM text".to_string())?;
    let pair = crate::token::keys::parse_private_pem(text).map_err(|e| e.to_string())?;
    let wanted = algorithm.name();
    if signing && pair.alg.name() != wanted {
        return Err(format!("is a {} key but algorithm is {wanted}", pair.alg.name()));
    }
    Ok(())
}

/// A route as read, with what two routes must not share (host and path) even when the rest
/// of it has mistakes.
pub(super) struct RouteDraft {
    pub key: (HostPattern, String),
    pub route: Option<Route>,
}

/// The `app` a table names (its index), or the only app; every mistake reported. Apps that
/// were declared but had mistakes of their own are not blamed again.
pub(super) fn app_of(t: &mut Table, apps: &[App], declared: &[String]) -> Option<usize> {
    match t.opt::<String>("app") {
        Some(name) => apps.iter().position(|a| a.name == name).or_else(|| {
            if !declared.contains(&name) {
                t.error("app", format!("no app is called {name:?}"));
            }
            None
        }),
        None if declared.len() > 1 => {
            t.error("app", "is required when several apps are listed");
            None
        }
        None => (!apps.is_empty()).then_some(0),
    }
}

pub(super) fn route(mut t: Table, apps: &[App], declared: &[String], hosts: &[AppHost], base: &Path) -> RouteDraft {
    let host = t.parsed("host", parse_host_pattern).unwrap_or(HostPattern::Any);
    let path = t.parsed("path", parse_route_path).unwrap_or_else(|| "/".into());
    let upstream_url = t.req_parsed("upstream", "like \"http://127.0.0.1:3000\"", parse_upstream);
    let app = app_of(&mut t, apps, declared);
    // Unnamed, the audience is the app host's (when one covers this route) or the app's origin.
    let audience = t
        .opt::<String>("audience")
        .or_else(|| hosts.iter().find(|e| Some(e.app) == app && e.covers(&host)).map(|e| e.audience.clone()))
        .or_else(|| app.map(|i| apps[i].public_origin()))
        .unwrap_or_default();
    let policy = t.parsed("policy", parse_policy).unwrap_or(Policy::Required);
    let public_paths: Vec<String> = t.opt("public_paths").unwrap_or_default();
    for (i, p) in public_paths.iter().enumerate() {
        if parse_route_path(p).is_err() {
            t.error(&format!("public_paths[{i}]"), format!("{p:?} must be a path starting with /"));
        }
    }
    let preserve_host = t.opt::<bool>("preserve_host").unwrap_or(true);
    let connect_timeout = t.parsed("connect_timeout", duration::parse).unwrap_or(Duration::from_secs(3));
    let read_timeout = t.parsed("read_timeout", duration::parse).unwrap_or(Duration::from_secs(60));
    let write_timeout = t.parsed("write_timeout", duration::parse).unwrap_or(Duration::from_secs(60));
    let idle_timeout = t.parsed("idle_timeout", duration::parse).unwrap_or(Duration::from_secs(60));
    let max_body = t.parsed("max_body", parse_size);
    let upstream_sni = t.opt::<String>("upstream_sni");
    let upstream_ca = t.opt::<String>("upstream_ca").and_then(|p| read_ca(&mut t, base, &p));
    if (upstream_sni.is_some() || upstream_ca.is_some()) && upstream_url.as_ref().is_some_and(|u| u.scheme() != "https")
    {
        t.error("upstream", "upstream_sni and upstream_ca need an https:// upstream");
    }
    let scope = t.parsed("scope", parse_scope);
    let keep_fragment = t.opt::<bool>("keep_fragment").unwrap_or(true);
    let production = t.opt::<bool>("production").unwrap_or(true);
    let verifier_test = t.opt::<bool>("verifier_test").unwrap_or(false);
    let non_wechat = t.parsed("non_wechat", parse_non_wechat).unwrap_or(NonWechat::QrPage);
    let members_only = t.opt::<bool>("members_only").unwrap_or(false);
    let wecom = app.is_some_and(|i| apps[i].wechat.provider.is_wecom());
    if members_only && app.is_some() && !wecom {
        t.error("members_only", "is for routes of a WeCom app (provider = \"wecom\"): only WeCom has members");
    }
    if members_only && policy != Policy::Required {
        t.error("members_only", "needs policy = \"required\": an optional or public route lets anyone in");
    }
    if members_only && non_wechat == NonWechat::Pass {
        t.error("non_wechat", "\"pass\" forwards other browsers without identity: a members-only route cannot");
    }
    if wecom && scope == Some(Scope::Userinfo) {
        t.error("scope", "WeCom's silent login is snsapi_base: a WeCom app's routes cannot ask for snsapi_userinfo");
    }
    if verifier_test && production {
        t.error("verifier_test", "sends invalid tokens on purpose: only allowed with production = false on the route");
    }
    t.finish();
    let key = (host.clone(), path.trim_end_matches('/').to_string());
    let (Some(url), Some(app)) = (upstream_url, app) else { return RouteDraft { key, route: None } };
    let host_name = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let tls = (url.scheme() == "https")
        .then(|| UpstreamTls { sni: upstream_sni.unwrap_or_else(|| host_name.clone()), ca: upstream_ca });
    let upstream = Upstream {
        address: format!("{host_name}:{port}"),
        host_header: match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name,
        },
        connect_timeout,
        read_timeout,
        write_timeout,
        idle_timeout,
        tls,
    };
    let scope = match (scope, apps[app].wechat.scope) {
        (Some(Scope::Userinfo), _) | (_, Scope::Userinfo) => Scope::Userinfo,
        _ => Scope::Base,
    };
    let route = Route {
        host,
        path,
        upstream,
        audience,
        policy,
        public_paths,
        preserve_host,
        app,
        scope,
        non_wechat,
        keep_fragment,
        verifier_test: verifier_test && !production,
        max_body,
        members_only,
    };
    RouteDraft { key, route: Some(route) }
}

/// The CA certificates (PEM) an https upstream is verified with, as DER.
fn read_ca(t: &mut Table, base: &Path, path: &str) -> Option<Vec<Vec<u8>>> {
    let checked = read_pem_certs(base, path).and_then(|certs| {
        let mut store = rustls::RootCertStore::empty();
        match certs.iter().try_for_each(|c| store.add(c.clone())) {
            Ok(()) => Ok(certs.into_iter().map(|c| c.to_vec()).collect()),
            Err(e) => Err(format!("{}: {e}", base.join(path).display())),
        }
    });
    checked.map_err(|m| t.error("upstream_ca", m)).ok()
}
