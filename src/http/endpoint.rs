//! The gateway's own endpoints under its reserved prefix, matched and formatted in this one
//! place.

use crate::wechat::authorize::encode_component;

/// An endpoint of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `<prefix>/callback?code=&state=`: WeChat comes back here.
    Callback,
    /// `<prefix>/login?return=URL[&retry=1]`, or `?handoff=` on a login host.
    Login,
    /// `<prefix>/ticket?ticket=` on an app host.
    Ticket,
    /// `<prefix>/logout[?return=URL][&everywhere=1]`.
    Logout,
    /// `<prefix>/jwks.json`: the public keys of the token.
    Jwks,
    /// `<prefix>/jssdk/config?url=`: `wx.config` values for a page.
    JssdkConfig,
    /// `<prefix>/jssdk.js`: the script that configures the JS-SDK on a page.
    JssdkScript,
    /// `<prefix>/auth`: a front proxy's sub-request (Traefik, Caddy): granted, or the answer
    /// the browser gets.
    Auth,
    /// `<prefix>/auth/nginx`: nginx `auth_request`: granted, 401 or 403.
    AuthNginx,
    /// `<prefix>/auth/signin`: nginx's `error_page 401` target: the way into the login.
    AuthSignin,
    /// `<prefix>/auth/envoy/<original path>`: Envoy's HTTP `ext_authz` (`path_prefix`).
    AuthEnvoy,
}

impl Endpoint {
    const ALL: [Endpoint; 11] = [
        Endpoint::Callback,
        Endpoint::Login,
        Endpoint::Ticket,
        Endpoint::Logout,
        Endpoint::Jwks,
        Endpoint::JssdkConfig,
        Endpoint::JssdkScript,
        Endpoint::Auth,
        Endpoint::AuthNginx,
        Endpoint::AuthSignin,
        Endpoint::AuthEnvoy,
    ];

    /// Its path under the prefix.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Callback => "/callback",
            Endpoint::Login => "/login",
            Endpoint::Ticket => "/ticket",
            Endpoint::Logout => "/logout",
            Endpoint::Jwks => "/jwks.json",
            Endpoint::JssdkConfig => "/jssdk/config",
            Endpoint::JssdkScript => "/jssdk.js",
            Endpoint::Auth => "/auth",
            Endpoint::AuthNginx => "/auth/nginx",
            Endpoint::AuthSignin => "/auth/signin",
            Endpoint::AuthEnvoy => "/auth/envoy",
        }
    }

    /// The endpoint at the canonical `path`, which starts with `prefix`. Envoy's sub-request
    /// carries the original path after [`Endpoint::AuthEnvoy`]'s.
    pub fn of(prefix: &str, path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix(prefix)?;
        if rest.strip_prefix(Endpoint::AuthEnvoy.path()).is_some_and(|r| r.starts_with('/')) {
            return Some(Endpoint::AuthEnvoy);
        }
        Self::ALL.into_iter().find(|e| e.path() == rest)
    }

    /// `<origin><prefix><path>?k=v&…`, each value percent-encoded. A last value left empty
    /// leaves the URL ready for one to be appended (`…/login?return=`).
    pub fn url(self, origin: &str, prefix: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{origin}{prefix}{}", self.path());
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode_component(v));
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_is_found_at_its_path_and_formatted_with_it() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::of("/.gateway", &format!("/.gateway{}", e.path())), Some(e));
        }
        assert_eq!(Endpoint::of("/.gateway", "/.gateway/login/"), None);
        assert_eq!(Endpoint::of("/.gateway", "/.gateway"), None);
        assert_eq!(Endpoint::of("/.gateway", "/.gateway/auth/envoy/shop/1"), Some(Endpoint::AuthEnvoy));
        assert_eq!(Endpoint::of("/.gateway", "/.gateway/auth/envoyx"), None);
        assert_eq!(
            Endpoint::Login.url("https://h.test", "/.gateway", &[("retry", "1"), ("return", "/a?b=c#d")]),
            "https://h.test/.gateway/login?retry=1&return=%2Fa%3Fb%3Dc%23d"
        );
        assert_eq!(Endpoint::Login.url("", "/g", &[("return", "")]), "/g/login?return=");
    }
}
