//! The two sealed cookies: the session (who the browser is) and the short-lived login cookie
//! (the state nonce and where to return), which never travels in WeChat's `state`.

pub mod seal;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::config::AppHost;
use crate::config::{Config, Scope, SessionConfig};
use crate::handoff::HandoffRequest;
use crate::http::cookies::{self, CookieAttrs};
use crate::session::seal::Sealer;
use crate::util::clock::{max_age_secs, millis, Entropy};
use crate::util::sharded::ShardedMap;
use crate::wechat::Identity;

/// A logged-in browser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "o")]
    pub openid: String,
    #[serde(rename = "a")]
    pub appid: String,
    #[serde(rename = "i")]
    pub issued: u64,
    #[serde(rename = "e")]
    pub expires: u64,
    /// `snsapi_base` or `snsapi_userinfo`.
    #[serde(rename = "s", default)]
    pub scope: String,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// The session's id, which logout revokes (empty in sessions made before ids existed).
    #[serde(rename = "d", default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// On an app host: the id of the login host's session it was handed from, whose
    /// revocation (a global logout) ends this one too.
    #[serde(rename = "f", default, skip_serializing_if = "String::is_empty")]
    pub family: String,
    /// On an app host: the host it was issued for (a wildcard entry covers several).
    #[serde(rename = "w", default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

impl Session {
    /// The family whose revocation ends this session: the one it was handed from or joined,
    /// else its own id.
    pub fn family_id(&self) -> &str {
        if self.family.is_empty() {
            &self.sid
        } else {
            &self.family
        }
    }

    /// Does this session carry what `scope` gives?
    pub fn has_scope(&self, scope: Scope) -> bool {
        scope == Scope::Base || self.scope == Scope::Userinfo.as_str()
    }
}

/// The version of the login cookie's format, in what its value is sealed for (`<name> v2`).
/// Format 2 keeps the expiry in milliseconds (`x`, and the hand-off's too); a login cookie of
/// the first format (seconds) does not open, as if it were missing.
const LOGIN_FORMAT: &str = "v2";

/// A login in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The `state` sent to WeChat: base62, checked on the callback.
    #[serde(rename = "n")]
    pub nonce: String,
    /// Where the browser goes after logging in: a path, or an absolute URL on a routed host.
    #[serde(rename = "r")]
    pub return_to: String,
    /// Milliseconds since the Unix epoch: a login lives `login_lifetime` to the millisecond.
    #[serde(rename = "x")]
    pub expires_ms: u64,
    /// The app host this login is for, which gets a ticket when it is done.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffRequest>,
}

/// Reads and writes the gateway's cookies for one app.
pub struct SessionCookies {
    sealer: Sealer,
    cfg: SessionConfig,
    /// What the session cookie is sealed for: its name, and on an app host the host too.
    bound_to: String,
    /// An app host's cookie: its sessions name the host they were issued for.
    app_host: bool,
    session_attrs: CookieAttrs,
    login_attrs: CookieAttrs,
    opened: Opened,
}

impl SessionCookies {
    /// The cookies of `config.apps[app]`. With several apps, cookie names end in `_<app name>`.
    pub fn new(config: &Config, app: usize) -> Self {
        let mut cfg = config.session.clone();
        let a = &config.apps[app];
        cfg.cookie_name = cookies::app_cookie_name(&cfg.cookie_name, config, app);
        cfg.login_cookie_name = cookies::app_cookie_name(&cfg.login_cookie_name, config, app);
        let secure = a.secure();
        let session_attrs = CookieAttrs { path: "/".into(), secure, domain: cfg.cookie_domain.clone() };
        let login_attrs = CookieAttrs { path: config.prefix.clone(), secure, domain: None };
        Self {
            sealer: Sealer::new(&cfg.keys),
            bound_to: cfg.cookie_name.clone(),
            app_host: false,
            cfg,
            session_attrs,
            login_attrs,
            opened: Opened::default(),
        }
    }

    /// The session cookie of app host `entry`: host-only, and sealed for that entry so no other
    /// entry's session opens as this one.
    pub fn for_app_host(config: &Config, entry: &AppHost) -> Self {
        let mut cfg = config.session.clone();
        cfg.cookie_name.clone_from(&entry.cookie_name);
        cfg.lifetime = entry.lifetime;
        let secure = config.apps[entry.app].secure();
        let session_attrs = CookieAttrs { path: "/".into(), secure, domain: None };
        let login_attrs = CookieAttrs { path: config.prefix.clone(), secure, domain: None };
        let bound_to = format!("{} host {:?}", entry.cookie_name, entry.host);
        let sealer = Sealer::new(&cfg.keys);
        Self { sealer, cfg, bound_to, app_host: true, session_attrs, login_attrs, opened: Opened::default() }
    }

    /// The session in the request's cookies, if it opens, is unexpired and belongs to `appid`.
    /// Anything else (tampered, foreign key, old version) counts as no session.
    pub fn session(&self, headers: &HeaderMap, appid: &str, now: u64) -> Option<Session> {
        // Trimmed as the sealer trims it, so one sealed value is one entry however it is padded.
        let value = cookies::get(headers, &self.cfg.cookie_name)?.trim();
        let s = match self.opened.get(value) {
            Some(s) => s,
            None => {
                let s: Session = serde_json::from_slice(&self.sealer.open(&self.bound_to, value)?).ok()?;
                self.opened.put(value, &s);
                s
            }
        };
        (s.expires > now && s.appid == appid).then_some(s)
    }

    /// Like [`SessionCookies::session`], for a request to `host`: an app host's session only
    /// counts on the host it was issued for.
    pub fn session_on(&self, headers: &HeaderMap, appid: &str, host: &str, now: u64) -> Option<Session> {
        self.session(headers, appid, now).filter(|s| !self.app_host || s.host == host)
    }

    /// A new session of `identity` in `family` (empty: a family of its own), and the
    /// `Set-Cookie` that carries it.
    pub fn new_session(
        &self,
        identity: &Identity,
        appid: &str,
        family: &str,
        now: u64,
        entropy: &dyn Entropy,
    ) -> (Session, String) {
        let s = Session {
            openid: identity.openid.clone(),
            appid: appid.into(),
            scope: identity.scope.clone(),
            nickname: identity.nickname.clone(),
            avatar: identity.avatar.clone(),
            unionid: identity.unionid.clone(),
            ..Session::default()
        };
        self.renew(&s, family, "", now, entropy)
    }

    /// A session of `from`'s user with a new id, issued now for this cookie's lifetime, in the
    /// family `family`, for app host `host` (empty elsewhere); and the `Set-Cookie` that
    /// carries it.
    ///
    /// On an app host the session ends no later than `from` (the login host's), so whatever
    /// ends that one (its expiry, a revocation until then) ends this one too.
    pub fn renew(
        &self,
        from: &Session,
        family: &str,
        host: &str,
        now: u64,
        entropy: &dyn Entropy,
    ) -> (Session, String) {
        let mut lifetime = self.cfg.lifetime.as_secs();
        if self.app_host {
            lifetime = lifetime.min(from.expires.saturating_sub(now));
        }
        let s = Session {
            issued: now,
            expires: now + lifetime,
            sid: crate::util::clock::base62_nonce(entropy, 16),
            family: family.into(),
            host: host.into(),
            ..from.clone()
        };
        let json = serde_json::to_vec(&s).expect("plain structs of strings and integers always serialize");
        let value = self.sealer.seal(&self.bound_to, &json, entropy);
        let cookie = cookies::set(&self.cfg.cookie_name, &value, lifetime, &self.session_attrs);
        (s, cookie)
    }

    /// `Set-Cookie` values that end the session and the login in progress.
    pub fn clear_all(&self) -> [String; 2] {
        [
            cookies::clear(&self.cfg.cookie_name, &self.session_attrs),
            cookies::clear(&self.cfg.login_cookie_name, &self.login_attrs),
        ]
    }

    /// The login in progress, if its cookie opens and has not expired at `now_ms`
    /// (milliseconds since the Unix epoch).
    pub fn login(&self, headers: &HeaderMap, now_ms: u64) -> Option<LoginState> {
        let name = &self.cfg.login_cookie_name;
        let plain = self.sealer.open(&format!("{name} {LOGIN_FORMAT}"), cookies::get(headers, name)?)?;
        let l: LoginState = serde_json::from_slice(&plain).ok()?;
        (l.expires_ms > now_ms).then_some(l)
    }

    /// `Set-Cookie` for a login that returns to `return_to`, with state `nonce`.
    pub fn new_login(
        &self,
        nonce: &str,
        return_to: &str,
        handoff: Option<&HandoffRequest>,
        now_ms: u64,
        entropy: &dyn Entropy,
    ) -> String {
        let lifetime = millis(self.cfg.login_lifetime);
        let l = LoginState {
            nonce: nonce.into(),
            return_to: return_to.into(),
            expires_ms: now_ms.saturating_add(lifetime),
            handoff: handoff.cloned(),
        };
        let name = &self.cfg.login_cookie_name;
        let json = serde_json::to_vec(&l).expect("plain structs of strings and integers always serialize");
        let sealed = self.sealer.seal(&format!("{name} {LOGIN_FORMAT}"), &json, entropy);
        cookies::set(name, &sealed, max_age_secs(lifetime), &self.login_attrs)
    }

    /// The names of the gateway's cookies, which upstreams never see.
    pub fn names(&self) -> [&str; 2] {
        [&self.cfg.cookie_name, &self.cfg.login_cookie_name]
    }
}

/// How many opened sessions each [`SessionCookies`] remembers at most.
const OPENED_MAX: usize = 16_384;
/// Longer values are opened every time, never remembered: a session cookie is a few hundred
/// bytes, so at most 16,384 entries of at most 4 KiB.
const OPENED_VALUE_MAX: usize = 4096;

/// Sessions already opened, by their exact sealed cookie value. A browser sends the same value
/// with every request, and opening it (XChaCha20-Poly1305, then JSON) was the largest part of
/// what a session costs a request. Only values that opened are remembered, so any other value
/// is opened as before; expiry and `appid` are checked on every request, revocation by the
/// caller as before. A full shard is emptied.
struct Opened(ShardedMap<Box<str>, Session>);

impl Default for Opened {
    fn default() -> Self {
        Self(ShardedMap::new(OPENED_MAX))
    }
}

impl Opened {
    fn get(&self, value: &str) -> Option<Session> {
        self.0.get(value, |s| Some(s.clone()))
    }

    fn put(&self, value: &str, session: &Session) {
        if value.len() <= OPENED_VALUE_MAX {
            self.0.insert(value.into(), session.clone(), |_| false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::OsEntropy;

    fn config(public_url: &str) -> Config {
        crate::config::for_tests(public_url, "", "lifetime = \"1h\"", "")
    }

    #[test]
    fn secure_only_on_https_and_bound_to_the_app() {
        let https = SessionCookies::new(&config("https://h5.example.com"), 0);
        let id = Identity { openid: "oA".into(), scope: "snsapi_base".into(), ..Identity::default() };
        let (_, set) = https.new_session(&id, "wx1", "", 1000, &OsEntropy);
        assert!(set.contains("; Secure") && set.contains("Max-Age=3600") && set.contains("HttpOnly"));
        let http = SessionCookies::new(&config("http://h5.example.com"), 0);
        assert!(!http.new_session(&id, "wx1", "", 1000, &OsEntropy).1.contains("Secure"));

        let value = set.split(';').next().unwrap().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, value.parse().unwrap());
        assert_eq!(https.session(&headers, "wx1", 1001).unwrap().openid, "oA");
        assert!(https.session(&headers, "wx2", 1001).is_none(), "another app's session");
        assert!(https.session(&headers, "wx1", 4600).is_none(), "expired");
    }

    #[test]
    fn an_opened_session_is_remembered_only_for_its_exact_value_and_cookie() {
        let cfg = config("https://h5.example.com");
        let c = SessionCookies::new(&cfg, 0);
        let id = Identity { openid: "oA".into(), scope: "snsapi_base".into(), ..Identity::default() };
        let (_, set) = c.new_session(&id, "wx1", "", 1000, &OsEntropy);
        let value = set.split(';').next().unwrap().to_string();
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::COOKIE, v.parse().unwrap());
            h
        };
        for _ in 0..2 {
            assert_eq!(c.session(&headers(&value), "wx1", 1001).unwrap().openid, "oA");
        }
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(c.session(&headers(&String::from_utf8(tampered).unwrap()), "wx1", 1001).is_none());
        // The same sealed value under another cookie's binding (an app host's) does not open.
        let host = AppHost {
            host: crate::config::HostPattern::Exact("mall.test".into()),
            app: 0,
            audience: "mall".into(),
            cookie_name: "ogw_session".into(),
            lifetime: std::time::Duration::from_secs(3600),
        };
        assert!(SessionCookies::for_app_host(&cfg, &host).session(&headers(&value), "wx1", 1001).is_none());
        // Padding the value makes no new entry, and an overlong value is never remembered.
        let before = c.opened.0.len();
        for pad in [" ", "  ", "\t", " \t "] {
            let padded = value.replacen('=', &format!("={pad}"), 1);
            assert_eq!(c.session(&headers(&padded), "wx1", 1001).unwrap().openid, "oA");
        }
        assert_eq!(c.opened.0.len(), before);
        c.opened.put(&"v".repeat(OPENED_VALUE_MAX + 1), &Session::default());
        assert_eq!(c.opened.0.len(), before);
        // Bounded: many sessions later, the first still opens (again).
        for i in 0..OPENED_MAX + 10 {
            c.opened.put(&format!("v{i}"), &Session::default());
        }
        assert!(c.opened.0.len() <= OPENED_MAX);
        assert_eq!(c.session(&headers(&value), "wx1", 1001).unwrap().openid, "oA");
    }

    #[test]
    fn login_cookie_is_scoped_to_the_prefix_and_lives_to_the_millisecond() {
        let c = SessionCookies::new(&config("https://h5.example.com"), 0);
        let t = 1_000_000; // milliseconds
        let set = c.new_login("N1", "/a?b", None, t, &OsEntropy);
        assert!(set.starts_with("ogw_login=") && set.contains("Path=/.gateway") && set.contains("Max-Age=600"));
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, set.split(';').next().unwrap().parse().unwrap());
        let l = c.login(&headers, t + 1).unwrap();
        assert_eq!((l.nonce.as_str(), l.return_to.as_str()), ("N1", "/a?b"));
        assert!(c.login(&headers, t + 599_999).is_some());
        assert!(c.login(&headers, t + 600_000).is_none());
    }

    #[test]
    fn a_login_cookie_of_the_first_format_does_not_open() {
        let config = config("https://h5.example.com");
        let c = SessionCookies::new(&config, 0);
        // Format 1: sealed for the bare name, expiry in seconds.
        let v1 =
            Sealer::new(&config.session.keys).seal("ogw_login", br#"{"n":"N1","r":"/a","e":4000000000}"#, &OsEntropy);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, format!("ogw_login={v1}").parse().unwrap());
        assert!(c.login(&headers, 1_000_000).is_none());
    }

    #[test]
    fn a_sub_second_login_lifetime_is_kept_and_its_cookie_outlives_it() {
        let mut config = config("https://h5.example.com");
        config.session.login_lifetime = std::time::Duration::from_millis(1500);
        let c = SessionCookies::new(&config, 0);
        let set = c.new_login("N1", "/a", None, 1_000_000, &OsEntropy);
        assert!(set.contains("Max-Age=2"), "{set}");
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, set.split(';').next().unwrap().parse().unwrap());
        assert!(c.login(&headers, 1_001_499).is_some() && c.login(&headers, 1_001_500).is_none());
    }
}
