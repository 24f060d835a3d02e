//! `[[app_hosts]]`: app hosts that log in through an app's public host, the login host. Only
//! the login host is registered with WeChat (网页授权域名); every listed host gets the identity
//! from it with a one-time ticket ([`crate::login::handoff`]) and keeps a session of its own.

use std::time::Duration;

use super::reader::Table;
use super::sections::app_of;
use super::values::{parse_cookie_name, parse_host_pattern};
use super::{App, HostPattern, SessionConfig};
use crate::util::duration;

/// One app host allowed to log in through its app's login host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHost {
    /// An exact host or `*.example.com`, never any host.
    pub host: HostPattern,
    /// Index of the app (and so of the login host) in [`super::Config::apps`].
    pub app: usize,
    /// The token's `aud` for routes on this host that name none.
    pub audience: String,
    /// The session cookie on this host, always host-only: a session counts only on the host
    /// it was issued for.
    pub cookie_name: String,
    /// How long a session on this host lasts.
    pub lifetime: Duration,
}

impl AppHost {
    /// Does this entry cover `pattern` (a route's host): the same host, or hosts under it?
    pub fn covers(&self, pattern: &HostPattern) -> bool {
        match (&self.host, pattern) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Wildcard(_), HostPattern::Exact(h)) => self.host.matches(h),
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => b.ends_with(a.as_str()),
            _ => false,
        }
    }
}

/// Reads every `[[app_hosts]]` table, collecting every mistake.
pub(super) fn app_hosts_section(
    root: &mut Table,
    apps: &[App],
    declared: &[String],
    session: Option<&SessionConfig>,
) -> Vec<AppHost> {
    let mut out: Vec<AppHost> = Vec::new();
    for mut t in root.tables("app_hosts") {
        let host = t.req_parsed("host", "an exact host or *.example.com", parse_host_pattern);
        let app = app_of(&mut t, apps, declared);
        let audience = t.req::<String>("audience").filter(|a| {
            if a.is_empty() {
                t.error("audience", "must not be empty");
            }
            !a.is_empty()
        });
        let cookie_name = t
            .parsed("cookie_name", parse_cookie_name)
            .or_else(|| session.map(|s| s.cookie_name.clone()))
            .unwrap_or_else(|| "ogw_session".into());
        if session.is_some_and(|s| s.login_cookie_name == cookie_name) {
            t.error("cookie_name", "must differ from session.login_cookie_name");
        }
        let domain = session.and_then(|s| s.cookie_domain.as_deref()).map(|d| d.trim_start_matches('.'));
        if let (Some(d), Some(h)) = (domain, &host) {
            let under = match h {
                HostPattern::Exact(name) => name == d || name.ends_with(&format!(".{d}")),
                HostPattern::Wildcard(suffix) => suffix.ends_with(&format!(".{d}")),
                HostPattern::Any => false,
            };
            if under && session.is_some_and(|s| s.cookie_name == cookie_name) {
                t.error(
                    "cookie_name",
                    "must differ from session.cookie_name: session.cookie_domain also sends the login host's cookie to this host",
                );
            }
        }
        let lifetime = t
            .parsed("lifetime", duration::parse)
            .or_else(|| session.map(|s| s.lifetime))
            .unwrap_or(Duration::from_secs(7 * 86_400));
        if let (Some(host), Some(app)) = (&host, app) {
            check_host(&t, host, &apps[app], apps, &out);
        }
        t.finish();
        if let (Some(host), Some(app), Some(audience)) = (host, app, audience) {
            out.push(AppHost { host, app, audience, cookie_name, lifetime });
        }
    }
    out
}

fn check_host(t: &Table, host: &HostPattern, app: &App, apps: &[App], seen: &[AppHost]) {
    if let HostPattern::Exact(h) = host {
        if h == app.public_host() {
            t.error(
                "host",
                format!("is app {:?}'s login host itself; list only the hosts that log in through it", app.name),
            );
        } else if let Some(other) = apps.iter().find(|a| a.public_host() == h) {
            t.error("host", format!("is app {:?}'s login host", other.name));
        }
    }
    if matches!(host, HostPattern::Wildcard(_)) && host.matches(app.public_host()) {
        t.error("host", format!("covers app {:?}'s login host {}", app.name, app.public_host()));
    }
    if seen.iter().any(|s| &s.host == host) {
        t.error("host", "is listed twice");
    }
}
