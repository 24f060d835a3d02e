//! Who is asking and how: the client's address, host and scheme (believing `X-Forwarded-*`
//! only from trusted proxies), whether it is WeChat, and whether it is a page navigation.

use std::net::IpAddr;

use pingora::http::RequestHeader;

use super::host;
use http::header::{HeaderName, ACCEPT, UPGRADE, USER_AGENT};

use crate::config::{App, IpNet, Provider};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// The client as the gateway sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientView {
    /// The client's address: the peer's, or from `X-Forwarded-For` behind trusted proxies.
    pub ip: Option<IpAddr>,
    /// `ip` as text (`-` when unknown), written once for the headers and the log.
    pub ip_text: String,
    /// The host asked for: lower case, without port.
    pub host: String,
    /// The host asked for, with its port if it had one, when it is a valid `host[:port]`.
    pub authority: Option<String>,
    /// A host was named (`Host`, or `X-Forwarded-Host` from a trusted proxy) that is not a
    /// valid `host[:port]`: the request is answered 400, and `host` is empty.
    pub bad_host: bool,
    /// The scheme a trusted proxy named (or TLS, once the request is known to have come over it).
    pub proto: Option<Scheme>,
    /// The `X-Forwarded-For` the upstream receives.
    pub forwarded_for: Option<String>,
    /// The address of the connection's other end.
    pub peer: Option<IpAddr>,
    /// `peer` is a trusted proxy, whose forwarding headers were believed.
    pub via_trusted_proxy: bool,
    /// A top-level page navigation ([`is_navigation`]); else a script, whose errors are JSON.
    pub navigation: bool,
    /// WeChat's in-app browser ([`Agent::of`]).
    pub wechat: bool,
    /// What kind of browser.
    pub agent: Agent,
}

impl ClientView {
    /// Reads the request from `peer`; forwarding headers count only when `peer` is trusted.
    pub fn of(req: &RequestHeader, peer: Option<IpAddr>, trusted: &[IpNet]) -> Self {
        let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
        let header = |name: &HeaderName| {
            req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
        };
        let via_proxy = peer.is_some_and(is_trusted);
        let (agent, wechat) = Agent::of(header(&USER_AGENT).unwrap_or(""));
        let (raw_host, bad_host) = match host::named(req, via_proxy) {
            Ok(named) => (named.unwrap_or_default(), false),
            Err(host::BadHost) => ("", true),
        };
        let authority = (!raw_host.is_empty()).then(|| raw_host.to_ascii_lowercase());
        let proto = via_proxy
            .then(|| header(&X_FORWARDED_PROTO).and_then(|p| p.split(',').next()).and_then(Scheme::parse))
            .flatten();
        // Every `X-Forwarded-For` line, in order: a proxy may append its own line after one the
        // client sent, and the nearest hops are at the end.
        let chain: Vec<&str> = req
            .headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let chain = (!chain.is_empty()).then(|| chain.join(", "));
        let (ip, forwarded_for) = match (peer, via_proxy.then_some(chain).flatten()) {
            (Some(p), Some(chain)) => {
                // The nearest address no trusted proxy vouches for is the client.
                let hops: Vec<IpAddr> = chain.split(',').filter_map(|h| h.trim().parse().ok()).collect();
                let client =
                    hops.iter().rev().find(|h| !is_trusted(**h)).copied().or(hops.first().copied()).unwrap_or(p);
                (Some(client), Some(format!("{chain}, {p}")))
            }
            (Some(p), None) => (Some(p), Some(p.to_string())),
            (None, _) => (None, None),
        };
        let ip_text = match (ip, &forwarded_for) {
            (Some(ip), Some(direct)) if Some(ip) == peer && !via_proxy => direct.clone(),
            (Some(ip), _) => ip.to_string(),
            (None, _) => "-".to_string(),
        };
        ClientView {
            ip,
            ip_text,
            host: host::strip_port(raw_host).to_ascii_lowercase(),
            authority,
            bad_host,
            proto,
            forwarded_for,
            peer,
            via_trusted_proxy: via_proxy,
            navigation: is_navigation(req),
            wechat,
            agent,
        }
    }

    /// Is the client the in-app browser `app`'s users log in from: WeCom's (`wxwork`) for a
    /// WeCom app, WeChat's (`MicroMessenger`, which WeCom's carries too) for an Official
    /// Account?
    pub fn in_app(&self, app: &App) -> bool {
        match app.wechat.provider {
            Provider::Wecom { .. } => self.agent == Agent::WeCom,
            Provider::Wechat => self.wechat,
        }
    }

    /// Does the client sign in to `app` by scanning a QR code: a desktop browser, where the
    /// app offers desktop sign-in?
    pub fn signs_in_by_qr(&self, app: &App) -> bool {
        app.wechat.desktop.is_some() && self.agent == Agent::Desktop && !self.in_app(app)
    }

    /// `scheme://authority` the client asked for: the scheme a trusted proxy named (or TLS),
    /// else `app`'s; the authority asked for, else the app's public host.
    pub fn origin(&self, app: &App) -> String {
        let scheme = self.proto.map_or(app.public_url.scheme(), |s| s.as_str());
        let authority = self.authority.as_deref().unwrap_or(app.public_host());
        format!("{scheme}://{authority}")
    }
}

/// The first value of `key` in a query string, percent-decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The scheme a request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`, in any letter case and with white space around it.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.trim() {
            p if p.eq_ignore_ascii_case("http") => Some(Scheme::Http),
            p if p.eq_ignore_ascii_case("https") => Some(Scheme::Https),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What kind of browser, from its `User-Agent`: WeChat (and which), another mobile or desktop
/// browser, or a robot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Agent {
    WeCom,
    MiniProgram,
    Wechat,
    #[default]
    None,
    Robot,
    Mobile,
    Desktop,
}

impl Agent {
    /// The agent of `ua`, and whether it is WeChat's in-app browser (`MicroMessenger`, which
    /// WeChat's desktop clients and WeCom carry too).
    pub fn of(ua: &str) -> (Agent, bool) {
        if ua.is_empty() {
            return (Agent::None, false);
        }
        let has = |s: &str| ua.contains(s);
        let wechat = has("MicroMessenger");
        let agent = if has("wxwork") {
            Agent::WeCom
        } else if has("miniProgram") || has("MiniProgramEnv") {
            Agent::MiniProgram
        } else if wechat {
            Agent::Wechat
        } else if ["bot", "Bot", "spider", "Spider", "curl/", "python"].iter().any(|w| has(w)) {
            Agent::Robot
        } else if ["Mobile", "Android", "iPhone"].iter().any(|w| has(w)) {
            Agent::Mobile
        } else {
            Agent::Desktop
        };
        (agent, wechat)
    }

    /// Its name in the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::WeCom => "wecom",
            Agent::MiniProgram => "wechat-miniprogram",
            Agent::Wechat => "wechat",
            Agent::None => "none",
            Agent::Robot => "robot",
            Agent::Mobile => "mobile",
            Agent::Desktop => "desktop",
        }
    }
}

/// A top-level page navigation, as opposed to an XHR, `fetch()`, WebSocket or asset request:
/// `X-Requested-With` or `Upgrade` (a browser never navigates with one) means no; else
/// `Sec-Fetch-Mode` decides; else an `Accept` with `text/html` (or none at all) means yes.
pub fn is_navigation(req: &RequestHeader) -> bool {
    let get = |name: &HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
    if get(&X_REQUESTED_WITH).is_some() || req.headers.contains_key(UPGRADE) {
        return false;
    }
    if let Some(mode) = get(&SEC_FETCH_MODE) {
        return mode.eq_ignore_ascii_case("navigate");
    }
    get(&ACCEPT).is_none_or(|a| a.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn net(s: &str) -> IpNet {
        let (a, p) = s.split_once('/').unwrap();
        IpNet { addr: a.parse().unwrap(), prefix: p.parse().unwrap() }
    }

    #[test]
    fn agents_are_classed() {
        let class = |ua: &str| Agent::of(ua).0.as_str();
        assert_eq!(class("Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"), "wechat");
        assert_eq!(class("Mozilla/5.0 MicroMessenger/8.0 miniProgram"), "wechat-miniprogram");
        assert_eq!(class("Mozilla/5.0 wxwork/4.1 MicroMessenger/7.0"), "wecom");
        assert_eq!(class("curl/8.5.0"), "robot");
        assert_eq!(class("Mozilla/5.0 (X11; Linux x86_64) Chrome/120"), "desktop");
        assert_eq!(class("Mozilla/5.0 (Linux; Android 14) Mobile Safari"), "mobile");
        assert_eq!(class(""), "none");
        assert!(Agent::of("Mozilla/5.0 wxwork/4.1 MicroMessenger/7.0").1, "WeCom carries MicroMessenger");
        assert!(!Agent::of("Mozilla/5.0 wxwork/4.1").1);
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let r = req(&[
            ("host", "Internal:8080"),
            ("x-forwarded-host", "shop.example.com"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
        ]);
        let untrusted = ClientView::of(&r, Some("9.9.9.9".parse().unwrap()), &[net("10.0.0.0/8")]);
        assert_eq!(untrusted.host, "internal");
        assert_eq!(untrusted.proto, None);
        assert_eq!(untrusted.forwarded_for.as_deref(), Some("9.9.9.9"));
        assert_eq!(untrusted.ip, Some("9.9.9.9".parse().unwrap()));

        let trusted = ClientView::of(&r, Some("10.0.0.5".parse().unwrap()), &[net("10.0.0.0/8")]);
        assert_eq!(trusted.host, "shop.example.com");
        assert_eq!(trusted.proto, Some(Scheme::Https));
        assert_eq!(trusted.forwarded_for.as_deref(), Some("6.6.6.6, 1.2.3.4, 10.0.0.5"));
        assert_eq!(trusted.ip, Some("1.2.3.4".parse().unwrap()), "the nearest untrusted hop");
    }

    #[test]
    fn every_forwarded_for_line_counts_so_a_client_line_cannot_hide_the_proxys() {
        let mut r = req(&[("x-forwarded-for", "6.6.6.6")]);
        r.append_header("x-forwarded-for", "1.2.3.4").unwrap();
        let trusted = ClientView::of(&r, Some("10.0.0.5".parse().unwrap()), &[net("10.0.0.0/8")]);
        assert_eq!(trusted.ip, Some("1.2.3.4".parse().unwrap()));
        assert_eq!(trusted.forwarded_for.as_deref(), Some("6.6.6.6, 1.2.3.4, 10.0.0.5"));
    }

    #[test]
    fn navigation_or_api() {
        assert!(is_navigation(&req(&[("sec-fetch-mode", "navigate"), ("accept", "*/*")])));
        assert!(!is_navigation(&req(&[("sec-fetch-mode", "cors"), ("accept", "text/html")])));
        assert!(!is_navigation(&req(&[("accept", "application/json")])));
        assert!(!is_navigation(&req(&[("accept", "text/html"), ("x-requested-with", "XMLHttpRequest")])));
        assert!(is_navigation(&req(&[("accept", "text/html,application/xhtml+xml")])));
        assert!(is_navigation(&req(&[])));
        assert!(!is_navigation(&req(&[("upgrade", "websocket"), ("connection", "upgrade")])));
    }

    #[test]
    fn wechat_user_agents() {
        let wechat = |ua: &str| ClientView::of(&req(&[("user-agent", ua)]), None, &[]).wechat;
        assert!(wechat("Mozilla/5.0 ... MicroMessenger/8.0.47 wxwork/4.1"));
        assert!(!wechat("Mozilla/5.0 Chrome/120"));
    }
}
