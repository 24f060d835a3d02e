//! `[state]`: where what several replicas share lives: `memory` (one replica, the default) or
//! `redis` (a server, or a cluster), with its secrets from secret sources.

use std::path::Path;
use std::time::Duration;

use super::reader::Table;
use super::secrets::SecretLoader;
use crate::util::duration;
use crate::util::secret::Secret;

/// The state backend.
#[derive(Debug, Clone, Default)]
pub enum StateConfig {
    /// In this process: right for one replica.
    #[default]
    Memory,
    Redis(RedisConfig),
}

/// A Redis server or cluster shared by every replica.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `rediss://` (TLS); several for a cluster's seed nodes.
    pub urls: Vec<String>,
    pub cluster: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// PEM CA certificates for `rediss://` (default: the system's).
    pub ca: Option<Vec<u8>>,
    pub key_prefix: String,
    /// Multiplexed connections per replica.
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// How long a revocation answer is reused in process.
    pub revocation_cache: Duration,
    /// Redis unreachable: accept sessions anyway (`true`, the default) or refuse them.
    pub revocation_fail_open: bool,
}

pub(super) fn state_section(mut t: Table, secrets: &SecretLoader, base: &Path) -> StateConfig {
    let backend = t.opt::<String>("backend").unwrap_or_else(|| "memory".into());
    let config = match backend.as_str() {
        "memory" => StateConfig::Memory,
        "redis" => redis(&mut t, secrets, base).map_or(StateConfig::Memory, StateConfig::Redis),
        other => {
            t.error("backend", format!("{other:?} must be \"memory\" or \"redis\""));
            StateConfig::Memory
        }
    };
    t.finish();
    config
}

fn redis(t: &mut Table, secrets: &SecretLoader, base: &Path) -> Option<RedisConfig> {
    let urls = match (t.opt::<String>("url"), t.opt::<Vec<String>>("urls")) {
        (Some(u), None) => vec![u],
        (None, Some(us)) if !us.is_empty() => us,
        (Some(_), Some(_)) => {
            t.error("urls", "give url (one server) or urls (a cluster's nodes), not both");
            return None;
        }
        _ => {
            t.error("url", "is required with backend = \"redis\" (like \"redis://10.0.0.5:6379/0\")");
            return None;
        }
    };
    for (i, u) in urls.iter().enumerate() {
        let ok = url::Url::parse(u).is_ok_and(|p| {
            (p.scheme() == "redis" || p.scheme() == "rediss") && p.host_str().is_some() && p.password().is_none()
        });
        if !ok {
            // Not echoed: a URL with a password in it would put the password in the output.
            t.error(
                &format!("urls[{i}]"),
                "must be redis://host:port or rediss://host:port with no password in it (use password)",
            );
        }
    }
    let cluster = t.opt::<bool>("cluster").unwrap_or(urls.len() > 1);
    if !cluster && urls.len() > 1 {
        t.error("cluster", "several urls are a cluster's nodes: set cluster = true, or give one url");
    }
    let username = t.opt::<String>("username");
    let password = t.has("password").then(|| t.secret("password")).flatten().and_then(|src| {
        let path = t.path_of("password");
        secrets.load(src, &path, 1)
    });
    let ca = t.opt::<String>("ca").and_then(|p| {
        let file = base.join(&p);
        std::fs::read(&file).map_err(|e| t.error("ca", format!("cannot read {}: {e}", file.display()))).ok()
    });
    let key_prefix = t.opt::<String>("key_prefix").unwrap_or_else(|| "ogw:".into());
    if key_prefix.contains(['{', '}']) {
        t.error("key_prefix", "must not contain { or }: they would decide a key's cluster slot");
    }
    let pool_size = t.opt::<usize>("pool_size").unwrap_or(2);
    if pool_size == 0 || pool_size > 64 {
        t.error("pool_size", "must be between 1 and 64");
    }
    let connect_timeout = t.parsed("connect_timeout", duration::parse).unwrap_or(Duration::from_secs(1));
    let command_timeout = t.parsed("command_timeout", duration::parse).unwrap_or(Duration::from_millis(250));
    for (key, v) in [("connect_timeout", connect_timeout), ("command_timeout", command_timeout)] {
        if v < Duration::from_millis(1) || v > Duration::from_secs(30) {
            t.error(key, "must be between 1ms and 30s");
        }
    }
    let revocation_cache = t.parsed("revocation_cache", duration::parse).unwrap_or(Duration::from_secs(1));
    let revocation_fail_open = t
        .parsed("revocation_fail", |s| match s {
            "open" => Ok(true),
            "closed" => Ok(false),
            _ => Err(format!(
                "{s:?} must be \"open\" (sessions are accepted while Redis is unreachable) or \"closed\" (refused)"
            )),
        })
        .unwrap_or(true);
    Some(RedisConfig {
        urls,
        cluster,
        username,
        password,
        ca,
        key_prefix,
        pool_size: pool_size.clamp(1, 64),
        connect_timeout,
        command_timeout,
        revocation_cache,
        revocation_fail_open,
    })
}
