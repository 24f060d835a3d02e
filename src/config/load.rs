//! Turns a TOML document into a typed [`Config`], collecting every mistake.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::hosts::app_hosts_section;
use super::limits::{limits_section, paths_section, rate_limit_section};
use super::operate::{admin_section, log_section, tls_section};
use super::provider::{wechat_section, wecom_section};
use super::reader::{ConfigError, Errors, Table};
use super::secrets::SecretLoader;
use super::sections::{route, session_section, token_section, RouteDraft};
use super::state::state_section;
use super::values::*;
use super::*;
use crate::util::duration;

/// A config that passed every check, with advice that does not stop it from running.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Reads and checks the file at `path`; secret files are relative to its folder.
pub fn load_file(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError { path: String::new(), message: format!("cannot read {}: {e}", path.display()) }]
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parse_str(&text, base)
}

/// Checks a config document; secret files are relative to `base`.
pub fn parse_str(text: &str, base: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        vec![ConfigError { path: String::new(), message: format!("not valid TOML: {}", e.message().trim()) }]
    })?;
    let errors = Errors::default();
    let mut root = Table::root(&doc, &errors);

    let Process { listen, threads, upgrade_sock, drain_timeout, prefix, demo } = process(&mut root);
    let secrets = SecretLoader::new(base, demo.is_some(), &errors);

    let (apps, declared) = apps(&mut root, &secrets);
    let session = required_table(&mut root, "session").and_then(|t| session_section(t, &secrets));
    let first_origin = apps.first().map(|a| a.public_origin());
    let token = required_table(&mut root, "token").and_then(|t| token_section(t, &secrets, first_origin.as_deref()));
    let Clients { trusted_proxies, allowed_return_hosts, login_limit } = clients(&mut root, &errors);

    let paths = root.table("paths").map(paths_section).unwrap_or_default();
    let limits = root.table("limits").map(limits_section).unwrap_or_default();
    let rate_limit = root.table("rate_limit").map(rate_limit_section).unwrap_or_default();
    let admin = root.table("admin").map(|t| admin_section(t, &secrets)).unwrap_or_default();
    let log = root.table("log").map(log_section).unwrap_or_default();
    let tls = root.table("tls").and_then(|t| tls_section(t, &secrets, base));
    let state = root.table("state").map(|t| state_section(t, &secrets, base)).unwrap_or_default();
    check_listeners(listen, &admin, tls.as_ref(), &errors);

    let app_hosts = app_hosts_section(&mut root, &apps, &declared, session.as_ref());
    let routes = routes(&mut root, &apps, &declared, &app_hosts, session.as_ref(), base, &errors);
    root.finish();

    let mut warnings = if demo.is_some() { Vec::new() } else { warnings(&apps) };
    warnings.extend(path_warnings(&paths));
    match (errors.is_empty(), session, token) {
        (true, Some(session), Some(token)) => Ok(Loaded {
            config: Config {
                listen,
                threads,
                prefix,
                apps,
                app_hosts,
                session,
                token,
                routes,
                trusted_proxies,
                allowed_return_hosts,
                login_limit,
                paths,
                limits,
                rate_limit,
                admin,
                log,
                tls,
                state,
                upgrade_sock,
                drain_timeout,
                demo,
            },
            warnings,
        }),
        _ => Err(errors.into_vec()),
    }
}

/// The process's own settings at the top level.
struct Process {
    listen: SocketAddr,
    threads: usize,
    upgrade_sock: String,
    drain_timeout: Duration,
    prefix: String,
    demo: Option<DemoConfig>,
}

fn process(root: &mut Table) -> Process {
    let listen = root.from_str::<SocketAddr>("listen").unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let threads = root.opt::<usize>("threads").unwrap_or(1);
    if threads == 0 || threads > 1024 {
        root.error("threads", "must be between 1 and 1024");
    }
    let demo = root.table("demo").map(|mut t| {
        let mock = t.from_str::<SocketAddr>("mock_wechat").unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8081)));
        let up = t.from_str::<SocketAddr>("upstream").unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8082)));
        t.finish();
        DemoConfig { mock_wechat_listen: mock, upstream_listen: up }
    });
    Process {
        listen,
        threads: threads.clamp(1, 1024),
        upgrade_sock: root.opt::<String>("upgrade_sock").unwrap_or_else(|| "/tmp/openid-gateway-upgrade.sock".into()),
        drain_timeout: root.parsed("drain_timeout", duration::parse).unwrap_or(Duration::from_secs(10)),
        prefix: root.parsed("prefix", parse_prefix).unwrap_or_else(|| "/.gateway".into()),
        demo,
    }
}

/// Which clients are believed, where they may be sent back to, and how often they may log in.
struct Clients {
    trusted_proxies: Vec<IpNet>,
    allowed_return_hosts: Vec<String>,
    login_limit: LoginLimit,
}

fn clients(root: &mut Table, errors: &Errors) -> Clients {
    let trusted_proxies = root
        .opt::<Vec<String>>("trusted_proxies")
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, s)| parse_ipnet(s).map_err(|m| errors.push(format!("trusted_proxies[{i}]"), m)).ok())
        .collect();
    let allowed_return_hosts = root
        .opt::<Vec<String>>("allowed_return_hosts")
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let login_limit =
        root.table("login_limit").map_or(LoginLimit { max: 3, window: Duration::from_secs(60) }, |mut t| {
            let max = t.opt::<u32>("max").unwrap_or(3).max(1);
            let window = t.parsed("window", duration::parse).unwrap_or(Duration::from_secs(60));
            t.finish();
            LoginLimit { max, window }
        });
    Clients { trusted_proxies, allowed_return_hosts, login_limit }
}

/// `[[routes]]`, each checked against the apps and app hosts, and every app that logs in
/// elsewhere serving app hosts.
fn routes(
    root: &mut Table,
    apps: &[App],
    declared: &[String],
    app_hosts: &[AppHost],
    session: Option<&SessionConfig>,
    base: &Path,
    errors: &Errors,
) -> Vec<Route> {
    let route_tables = root.tables("routes");
    if route_tables.is_empty() && !root.has("routes") {
        root.error("routes", "at least one [[routes]] is required");
    }
    let drafts: Vec<RouteDraft> = route_tables.into_iter().map(|t| route(t, apps, declared, app_hosts, base)).collect();
    check_routes(&drafts, apps, app_hosts, session, errors);
    for (i, a) in apps.iter().enumerate().filter(|(i, a)| !a.logins_here && !app_hosts.iter().any(|h| h.app == *i)) {
        let key = if declared.len() > 1 || root.has("apps") { format!("apps[{i}].logins") } else { "logins".into() };
        errors.push(key, format!("app {:?}: \"elsewhere\" serves only app hosts; list them in [[app_hosts]]", a.name));
    }
    drafts.into_iter().filter_map(|d| d.route).collect()
}

/// The public, TLS and admin listeners need addresses of their own (port 0: each gets a free
/// port of its own).
fn check_listeners(listen: SocketAddr, admin: &AdminConfig, tls: Option<&TlsConfig>, errors: &Errors) {
    let clash = |a: SocketAddr, b: SocketAddr| a == b && a.port() != 0;
    if let Some(a) = admin.listen {
        if clash(a, listen) || tls.is_some_and(|t| clash(t.listen, a)) {
            errors.push(
                "admin.listen",
                format!("{a} is already the public listener; the admin listener needs its own address"),
            );
        }
    }
    if tls.is_some_and(|t| clash(t.listen, listen)) {
        errors.push("tls.listen", format!("{listen} is already the plain listener (listen)"));
    }
}

fn required_table<'a>(root: &mut Table<'a>, key: &str) -> Option<Table<'a>> {
    if !root.has(key) {
        root.error(key, "is required");
    }
    root.table(key)
}

/// The apps: `[[apps]]`, or the single-app form (`public_url`, `[wechat]`, `mp_verify` at the
/// top level), whose app is called `default`. Also every name declared, including apps whose
/// own mistakes kept them out, so routes naming them are not blamed too.
fn apps(root: &mut Table, secrets: &SecretLoader) -> (Vec<App>, Vec<String>) {
    let tables = root.tables("apps");
    if tables.is_empty() {
        return (app_from(root, "default".into(), secrets).into_iter().collect(), vec!["default".into()]);
    }
    let mut declared = Vec::new();
    for key in ["public_url", "provider", "wechat", "wecom", "mp_verify", "logins"] {
        if root.has(key) {
            root.error(key, "goes inside each [[apps]] when apps are listed");
        }
    }
    let mut apps: Vec<App> = Vec::new();
    for mut t in tables {
        let name = t.req::<String>("name").unwrap_or_default();
        declared.push(name.clone());
        if apps.iter().any(|a| a.name == name) {
            t.error("name", format!("{name:?} names two apps"));
        }
        if let Some(app) = app_from(&mut t, name, secrets) {
            if apps.iter().any(|a| a.public_host() == app.public_host()) {
                t.error("public_url", "another app already logs in on this host");
            }
            // One account has one token: its apps fetch it from one place, one way.
            let (w, same) = (&app.wechat, |a: &&App| a.wechat.account_key() == app.wechat.account_key());
            if let Some(other) = apps.iter().find(same).filter(|a| {
                a.wechat.api_base != w.api_base
                    || a.wechat.token_api != w.token_api
                    || (a.wechat.secret.is_some() && w.secret.is_some() && a.wechat.secret != w.secret)
            }) {
                t.error(
                    w.provider.name(),
                    format!(
                        "shares its appid with app {:?}: give both the same secret, api_base and token_api (an account has one token)",
                        other.name
                    ),
                );
            }
            apps.push(app);
        }
        t.finish();
    }
    (apps, declared)
}

fn app_from(t: &mut Table, name: String, secrets: &SecretLoader) -> Option<App> {
    let public_url = t.req_parsed("public_url", "the URL browsers use to reach the gateway", parse_public_url);
    let logins_here = match t.opt::<String>("logins").as_deref() {
        None | Some("here") => true,
        Some("elsewhere") => false,
        Some(other) => {
            t.error("logins", format!("{other:?} must be \"here\" or \"elsewhere\""));
            true
        }
    };
    let wecom = match t.opt::<String>("provider").as_deref() {
        None | Some("wechat") => false,
        Some("wecom") => true,
        Some(other) => {
            t.error(
                "provider",
                format!("{other:?} must be \"wechat\" (an Official Account) or \"wecom\" (a WeCom app)"),
            );
            return None;
        }
    };
    let (table, other) = if wecom { ("wecom", "wechat") } else { ("wechat", "wecom") };
    if t.has(other) {
        let provider = if wecom { "wecom" } else { "wechat" };
        t.error(other, format!("does not go with provider = \"{provider}\": its account is [{table}]"));
        t.opt::<toml::Value>(other);
    }
    let wechat = match t.table(table) {
        Some(w) if wecom => wecom_section(w, secrets, logins_here),
        Some(w) => wechat_section(w, secrets, logins_here),
        None => {
            t.error(table, "is required");
            None
        }
    };
    let mp_verify: Vec<String> = t.opt("mp_verify").unwrap_or_default();
    for (i, token) in mp_verify.iter().enumerate() {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            t.error(&format!("mp_verify[{i}]"), "must be the token of MP_verify_<token>.txt (letters and digits)");
        }
    }
    Some(App { name, public_url: public_url?, wechat: wechat?, mp_verify, logins_here })
}

/// Two routes may not match the same thing; a route on a host other than its app's public
/// host needs a session cookie domain that covers both.
fn check_routes(
    drafts: &[RouteDraft],
    apps: &[App],
    app_hosts: &[AppHost],
    session: Option<&SessionConfig>,
    errors: &Errors,
) {
    if let Some(domain) = session.and_then(|s| s.cookie_domain.as_deref()).map(|d| d.trim_start_matches('.')) {
        for app in
            apps.iter().filter(|a| a.public_host() != domain && !a.public_host().ends_with(&format!(".{domain}")))
        {
            errors.push(
                "session.cookie_domain",
                format!(
                    "does not cover app {:?}'s host {}: browsers would drop every session cookie",
                    app.name,
                    app.public_host()
                ),
            );
        }
    }
    for (i, a) in drafts.iter().enumerate() {
        for (j, b) in drafts.iter().enumerate().skip(i + 1) {
            if a.key == b.key {
                errors.push(format!("routes[{j}]"), format!("matches the same host and path as routes[{i}]"));
            }
        }
        let Some(route) = &a.route else { continue };
        let app = &apps[route.app];
        let domain = session.and_then(|s| s.cookie_domain.as_deref()).map(|d| d.trim_start_matches('.'));
        let covered = |host: &str| {
            host == app.public_host()
                || domain.is_some_and(|d| {
                    (host == d || host.ends_with(&format!(".{d}")))
                        && (app.public_host() == d || app.public_host().ends_with(&format!(".{d}")))
                })
        };
        let through_login_host = app_hosts.iter().any(|e| e.app == route.app && e.covers(&route.host));
        let ok = through_login_host
            || match &route.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => covered(h),
                HostPattern::Wildcard(suffix) => covered(&format!("x{suffix}")),
            };
        if !ok && route.policy != Policy::Public {
            errors.push(
                format!("routes[{i}].host"),
                format!(
                    "is not the host of app {:?} ({}): list it in [[app_hosts]] to log in through that host, set session.cookie_domain to a domain covering both, or give this host its own app",
                    app.name,
                    app.public_host()
                ),
            );
        }
    }
}

/// What each non-default path choice gives up.
fn path_warnings(paths: &PathRules) -> Vec<String> {
    let mut out = Vec::new();
    match paths.escaped_slashes {
        EscapedSlashes::Reject => {}
        EscapedSlashes::Keep => out.push(
            "paths.escaped_slashes = \"keep\": %2F and %5C reach the upstream encoded; a backend that decodes them \
             before routing may serve another page than the one the gateway decided on"
                .into(),
        ),
        EscapedSlashes::Unescape => out.push(
            "paths.escaped_slashes = \"unescape\": %2F and %5C become /; a backend that needs them as data in a \
             segment will see other paths"
                .into(),
        ),
    }
    if !paths.merge_slashes {
        out.push(
            "paths.merge_slashes = false: //a is forwarded as is; backends that merge slashes themselves see the \
             same page, others may not"
                .into(),
        );
    }
    out
}

fn warnings(apps: &[App]) -> Vec<String> {
    let mut out = Vec::new();
    for a in apps {
        let u = &a.public_url;
        if u.port().is_some() {
            out.push(format!(
                "{}: public_url has a port; WeChat refuses a redirect_uri with a port (error 10003)",
                a.name
            ));
        }
        if u.host_str().is_some_and(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()) {
            out.push(format!("{}: public_url is an IP address; WeChat only redirects to a registered domain", a.name));
        }
        if u.scheme() == "http" {
            out.push(format!("{}: public_url is http; session cookies are not marked Secure", a.name));
        }
    }
    out
}
