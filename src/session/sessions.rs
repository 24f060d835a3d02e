//! The session cookie of one app (on its public host and routed hosts) or of one app host,
//! and the one way a request's session is read: opened, unexpired, of this app (and host),
//! and standing (not revoked on any replica).

use std::time::Duration;

use http::HeaderMap;

use super::cookie::SealedCookie;
use super::opened::Opened;
use super::{Session, SessionId};
use crate::config::{AppHost, Config};
use crate::http::cookies::{app_cookie_name, CookieAttrs};
use crate::shared::{SharedState, Standing};
use crate::util::clock::{base62_nonce, Entropy};
use crate::wechat::Identity;

/// The shared state could not say whether a session was revoked (Redis unreachable); a
/// required route fails closed on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unconfirmed;

/// Reads and writes the session cookie of one app or app host.
pub struct Sessions {
    cookie: SealedCookie<Session>,
    /// The app's WeChat appid: a session of another app does not count here.
    appid: String,
    lifetime: Duration,
    /// An app host's: its sessions name the host they were issued for, and end no later than
    /// the login host's session they came from.
    app_host: bool,
    opened: Opened,
}

impl Sessions {
    /// The session cookie of `config.apps[app]`. With several apps, its name ends in
    /// `_<app name>`.
    pub fn for_app(config: &Config, app: usize) -> Self {
        let a = &config.apps[app];
        let name = app_cookie_name(&config.session.cookie_name, config, app);
        let attrs = CookieAttrs { path: "/".into(), secure: a.secure(), domain: config.session.cookie_domain.clone() };
        Self {
            cookie: SealedCookie::new(name.clone(), name, attrs, &config.session.keys),
            appid: a.wechat.appid.clone(),
            lifetime: config.session.lifetime,
            app_host: false,
            opened: Opened::default(),
        }
    }

    /// The session cookie of app host `entry`: host-only, and sealed for that entry so no
    /// other entry's session opens as this one.
    pub fn for_app_host(config: &Config, entry: &AppHost) -> Self {
        let app = &config.apps[entry.app];
        let attrs = CookieAttrs { path: "/".into(), secure: app.secure(), domain: None };
        let bound_to = format!("{} host {:?}", entry.cookie_name, entry.host);
        Self {
            cookie: SealedCookie::new(entry.cookie_name.clone(), bound_to, attrs, &config.session.keys),
            appid: app.wechat.appid.clone(),
            lifetime: entry.lifetime,
            app_host: true,
            opened: Opened::default(),
        }
    }

    /// The cookie's name, which upstreams never see.
    pub fn name(&self) -> &str {
        self.cookie.name()
    }

    /// The session in the request's cookies, for a request to `host`, if it opens, is
    /// unexpired and belongs to this app (and on an app host, to `host`). Anything else
    /// (tampered, foreign key, old format) counts as no session. Revocation is not asked:
    /// see [`Sessions::current`].
    pub fn read(&self, headers: &HeaderMap, host: &str, now: u64) -> Option<Session> {
        let value = self.cookie.value(headers)?;
        let s = match self.opened.get(value) {
            Some(s) => s,
            None => {
                let s = self.cookie.open(value)?;
                self.opened.put(value, &s);
                s
            }
        };
        let here = !self.app_host || s.host.as_deref() == Some(host);
        (s.expires > now && s.appid == self.appid && here).then_some(s)
    }

    /// The session the request stands on: [`Sessions::read`], and not revoked. A revoked
    /// session is no session (the browser logs in again); `Err(Unconfirmed)` when the shared
    /// state cannot say.
    pub async fn current(
        &self,
        headers: &HeaderMap,
        host: &str,
        now: u64,
        state: &SharedState,
    ) -> Result<Option<Session>, Unconfirmed> {
        let Some(s) = self.read(headers, host, now) else { return Ok(None) };
        match state.standing(&s, now).await {
            Standing::Valid => Ok(Some(s)),
            Standing::Revoked => Ok(None),
            Standing::Unknown => Err(Unconfirmed),
        }
    }

    /// A new session of `identity` in `family` (`None`: a family of its own), and the
    /// `Set-Cookie` that carries it.
    pub fn issue(
        &self,
        identity: &Identity,
        family: Option<SessionId>,
        now: u64,
        entropy: &dyn Entropy,
    ) -> (Session, String) {
        let s = Session {
            openid: identity.openid.clone(),
            appid: self.appid.clone(),
            scope: identity.scope,
            nickname: identity.nickname.clone(),
            avatar: identity.avatar.clone(),
            unionid: identity.unionid.clone(),
            subject: identity.subject,
            sub_appid: identity.sub_appid.clone(),
            external_userid: identity.external_userid.clone(),
            ..Session::default()
        };
        self.renew(&s, family, None, now, entropy)
    }

    /// A session of `from`'s user with a new id, issued now for this cookie's lifetime, in
    /// `family`, for app host `host` (`None` elsewhere); and the `Set-Cookie` that carries it.
    ///
    /// On an app host the session ends no later than `from` (the login host's), so whatever
    /// ends that one (its expiry, a revocation until then) ends this one too.
    pub fn renew(
        &self,
        from: &Session,
        family: Option<SessionId>,
        host: Option<&str>,
        now: u64,
        entropy: &dyn Entropy,
    ) -> (Session, String) {
        let mut lifetime = self.lifetime.as_secs();
        if self.app_host {
            lifetime = lifetime.min(from.expires.saturating_sub(now));
        }
        let s = Session {
            issued: now,
            expires: now + lifetime,
            sid: SessionId(base62_nonce(entropy, 16)),
            family,
            host: host.map(str::to_string),
            ..from.clone()
        };
        let cookie = self.cookie.write(&s, lifetime, entropy);
        (s, cookie)
    }

    /// `Set-Cookie` that ends the session.
    pub fn clear(&self) -> String {
        self.cookie.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::super::opened::{OPENED_MAX, OPENED_VALUE_MAX};
    use super::*;
    use crate::util::clock::OsEntropy;
    use crate::wechat::Scope;

    fn config(public_url: &str) -> Config {
        crate::config::for_tests(public_url, "", "lifetime = \"1h\"", "")
    }

    fn sent(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, value.parse().unwrap());
        h
    }

    fn identity() -> Identity {
        Identity { openid: "oA".into(), scope: Scope::Base, ..Identity::default() }
    }

    #[test]
    fn secure_only_on_https_and_bound_to_the_app() {
        let https = Sessions::for_app(&config("https://h5.example.com"), 0);
        let (_, set) = https.issue(&identity(), None, 1000, &OsEntropy);
        assert!(set.contains("; Secure") && set.contains("Max-Age=3600") && set.contains("HttpOnly"));
        let http = Sessions::for_app(&config("http://h5.example.com"), 0);
        assert!(!http.issue(&identity(), None, 1000, &OsEntropy).1.contains("Secure"));

        let headers = sent(set.split(';').next().unwrap());
        assert_eq!(https.read(&headers, "h5.example.com", 1001).unwrap().openid, "oA");
        let mut other = config("https://h5.example.com");
        other.apps[0].wechat.appid = "wx-other".into();
        assert!(Sessions::for_app(&other, 0).read(&headers, "h5.example.com", 1001).is_none(), "another app's");
        assert!(https.read(&headers, "h5.example.com", 4600).is_none(), "expired");
    }

    #[test]
    fn an_opened_session_is_remembered_only_for_its_exact_value_and_cookie() {
        let cfg = config("https://h5.example.com");
        let c = Sessions::for_app(&cfg, 0);
        let (_, set) = c.issue(&identity(), None, 1000, &OsEntropy);
        let value = set.split(';').next().unwrap().to_string();
        for _ in 0..2 {
            assert_eq!(c.read(&sent(&value), "h", 1001).unwrap().openid, "oA");
        }
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(c.read(&sent(&String::from_utf8(tampered).unwrap()), "h", 1001).is_none());
        // The same sealed value under another cookie's binding (an app host's) does not open.
        let host = AppHost {
            host: crate::config::HostPattern::Exact("mall.test".into()),
            app: 0,
            audience: "mall".into(),
            cookie_name: "ogw_session".into(),
            lifetime: Duration::from_secs(3600),
        };
        assert!(Sessions::for_app_host(&cfg, &host).read(&sent(&value), "mall.test", 1001).is_none());
        // Padding the value makes no new entry, and an overlong value is never remembered.
        let before = c.opened.0.len();
        for pad in [" ", "  ", "\t", " \t "] {
            let padded = value.replacen('=', &format!("={pad}"), 1);
            assert_eq!(c.read(&sent(&padded), "h", 1001).unwrap().openid, "oA");
        }
        assert_eq!(c.opened.0.len(), before);
        c.opened.put(&"v".repeat(OPENED_VALUE_MAX + 1), &Session::default());
        assert_eq!(c.opened.0.len(), before);
        // Bounded: many sessions later, the first still opens (again).
        for i in 0..OPENED_MAX + 10 {
            c.opened.put(&format!("v{i}"), &Session::default());
        }
        assert!(c.opened.0.len() <= OPENED_MAX);
        assert_eq!(c.read(&sent(&value), "h", 1001).unwrap().openid, "oA");
    }

    #[test]
    fn an_app_host_session_counts_only_on_its_host_and_ends_with_the_login_hosts() {
        let cfg = config("https://login.example.com");
        let entry = AppHost {
            host: crate::config::HostPattern::Wildcard(".mall.test".into()),
            app: 0,
            audience: "mall".into(),
            cookie_name: "ogw_host".into(),
            lifetime: Duration::from_secs(7200),
        };
        let c = Sessions::for_app_host(&cfg, &entry);
        let from = Session { openid: "oA".into(), appid: "wx1".into(), expires: 1600, ..Session::default() };
        let (s, set) = c.renew(&from, Some(SessionId("F".into())), Some("a.mall.test"), 1000, &OsEntropy);
        assert_eq!((s.expires, s.family_id().as_str()), (1600, "F"));
        let headers = sent(set.split(';').next().unwrap());
        assert!(c.read(&headers, "a.mall.test", 1001).is_some());
        assert!(c.read(&headers, "b.mall.test", 1001).is_none(), "another host of the same entry");
    }

    #[test]
    fn a_session_without_an_id_does_not_open() {
        let cfg = config("https://h5.example.com");
        let c = Sessions::for_app(&cfg, 0);
        let sealer = super::super::seal::Sealer::new(&cfg.session.keys);
        let old =
            sealer.seal("ogw_session", br#"{"o":"oA","a":"wx1","i":1,"e":4000000000,"s":"snsapi_base"}"#, &OsEntropy);
        assert!(c.read(&sent(&format!("ogw_session={old}")), "h", 1001).is_none());
        let with_id = sealer.seal(
            "ogw_session",
            br#"{"o":"oA","a":"wx1","i":1,"e":4000000000,"s":"snsapi_base","d":"S1"}"#,
            &OsEntropy,
        );
        assert!(c.read(&sent(&format!("ogw_session={with_id}")), "h", 1001).is_some(), "positive control");
    }
}
