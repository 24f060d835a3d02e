//! What running the gateway in production needs: `[admin]` (health, readiness, metrics),
//! `[log]` (format, level, what the access log shows) and `[tls]` (certificates chosen by SNI,
//! HTTP/2, redirect, HSTS). Certificate files are read and checked here, so `check` reports a
//! bad certificate at its key path.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::reader::Table;
use super::secrets::SecretLoader;
use super::values::read_pem_certs;
use crate::util::duration;

/// The admin listener (`[admin]`): `/healthz`, `/readyz`, `/metrics`, `POST /revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// `None`: no admin listener (`listen = "off"`).
    pub listen: Option<SocketAddr>,
    /// The bearer token `POST /revoke` and `/wechat/access_token` need; without one `/revoke`
    /// is taken from loopback only, and the account's token is handed to nobody.
    pub token: Option<crate::util::secret::Secret>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))), token: None }
    }
}

/// How log lines are written (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A filter such as `info` or `info,openid_gateway=debug`; `RUST_LOG` overrides it.
    pub level: String,
    /// One event per request at `info`.
    pub access_log: bool,
    /// Show the openid in the access log as it is, instead of a keyed hash of it.
    pub plain_openid: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".into(), access_log: true, plain_openid: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

/// TLS termination (`[tls]`).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// The first is served to clients that name no known host.
    pub certificates: Vec<ServerCert>,
    /// Offer HTTP/2 over ALPN.
    pub http2: bool,
    /// The plain listener answers every request with a redirect to https.
    pub redirect_http: bool,
    /// `Strict-Transport-Security` on every https answer.
    pub hsts: Option<Hsts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    pub max_age: Duration,
    pub include_subdomains: bool,
}

impl Hsts {
    pub fn header_value(&self) -> String {
        let sub = if self.include_subdomains { "; includeSubDomains" } else { "" };
        format!("max-age={}{sub}", self.max_age.as_secs())
    }
}

/// A certificate chain with its key, and the DNS names it covers.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
}

pub(super) fn admin_section(mut t: Table, secrets: &SecretLoader) -> AdminConfig {
    let listen = t.parsed("listen", |s| match s {
        "off" => Ok(None),
        _ => s.parse::<SocketAddr>().map(Some).map_err(|e| format!("{s:?}: {e} (or \"off\")")),
    });
    let path = t.path_of("token");
    let token = t.has("token").then(|| t.secret("token")).flatten().and_then(|src| secrets.load(src, &path, 16));
    t.finish();
    AdminConfig { listen: listen.unwrap_or(AdminConfig::default().listen), token }
}

pub(super) fn log_section(mut t: Table) -> LogConfig {
    let d = LogConfig::default();
    let format = t
        .parsed("format", |s| match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{s:?} must be \"text\" or \"json\"")),
        })
        .unwrap_or(d.format);
    let level = t
        .parsed("level", |s| {
            tracing_subscriber::EnvFilter::builder()
                .parse(s)
                .map(|_| s.to_string())
                .map_err(|e| format!("{s:?}: {e} (like \"info\" or \"info,openid_gateway=debug\")"))
        })
        .unwrap_or(d.level);
    let access_log = t.opt::<bool>("access_log").unwrap_or(d.access_log);
    let plain_openid = t.opt::<bool>("plain_openid").unwrap_or(d.plain_openid);
    t.finish();
    LogConfig { format, level, access_log, plain_openid }
}

pub(super) fn tls_section(mut t: Table, secrets: &SecretLoader, base: &Path) -> Option<TlsConfig> {
    let listen =
        t.req_parsed("listen", "like \"0.0.0.0:443\"", |s| s.parse::<SocketAddr>().map_err(|e| format!("{s:?}: {e}")));
    let tables = t.tables("certificates");
    if tables.is_empty() {
        t.error("certificates", "at least one { cert = \"PATH\", key = { file = \"PATH\" } } is required");
    }
    let certificates: Vec<ServerCert> = tables.into_iter().filter_map(|c| server_cert(c, secrets, base)).collect();
    let http2 = t.opt::<bool>("http2").unwrap_or(true);
    let redirect_http = t.opt::<bool>("redirect_http").unwrap_or(false);
    let max_age = t.parsed("hsts", duration::parse);
    let include_subdomains = t.opt::<bool>("hsts_include_subdomains").unwrap_or(false);
    if include_subdomains && max_age.is_none() {
        t.error("hsts_include_subdomains", "needs hsts (a max-age such as \"365d\")");
    }
    t.finish();
    let hsts = max_age.map(|max_age| Hsts { max_age, include_subdomains });
    Some(TlsConfig { listen: listen?, certificates, http2, redirect_http, hsts })
}

fn server_cert(mut t: Table, secrets: &SecretLoader, base: &Path) -> Option<ServerCert> {
    let chain = t.req::<String>("cert").and_then(|p| read_pem_certs(base, &p).map_err(|m| t.error("cert", m)).ok());
    let key_path = t.path_of("key");
    let signing = t.secret("key").and_then(|src| secrets.load(src, &key_path, 1)).and_then(|secret| {
        let key = PrivateKeyDer::from_pem_slice(secret.expose()).map_err(|e| format!("not a PEM private key: {e}"));
        key.and_then(|k| any_supported_type(&k).map_err(|e| format!("unusable private key: {e}")))
            .map_err(|m| t.error("key", m))
            .ok()
    });
    let cert = match (chain, signing) {
        (Some(chain), Some(signing)) => {
            let names = names_of(&chain[0]);
            let key = CertifiedKey::new(chain, signing);
            match (key.keys_match(), names) {
                (Err(e), _) => {
                    t.error("key", format!("does not belong to the certificate: {e}"));
                    None
                }
                (Ok(()), Err(m)) => {
                    t.error("cert", m);
                    None
                }
                (Ok(()), Ok(names)) => Some(ServerCert { names, key: Arc::new(key) }),
            }
        }
        _ => None,
    };
    t.finish();
    cert
}

/// The names a certificate covers, lower case: its DNS and IP address subject alternative
/// names (`127.0.0.1`, `::1`), else its common name. A certificate for IP addresses only is
/// served to clients that name no host (an IP address is never sent as SNI).
fn names_of(cert: &CertificateDer) -> Result<Vec<String>, String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, x509) = X509Certificate::from_der(cert.as_ref()).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut names: Vec<String> = match x509.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => ip_of(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(x509.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase));
    }
    if names.is_empty() {
        return Err("names no host (no DNS or IP address subject alternative name, no common name)".into());
    }
    Ok(names)
}

/// An IP address subject alternative name: 4 or 16 bytes.
fn ip_of(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}
