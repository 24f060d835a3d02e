//! Reading `Cookie` request headers and writing `Set-Cookie` values.

use http::HeaderMap;

/// The value of the first cookie called `name` across every `Cookie` header.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The `Cookie` header without the cookies named in `drop`; `None` when nothing is left.
pub fn without(header: &str, drop: &[&str]) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !drop.contains(&name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// `base` as the cookie of `config.apps[app]`: with several apps, `base_<app name>`.
pub fn app_cookie_name(base: &str, config: &crate::config::Config, app: usize) -> String {
    if config.apps.len() > 1 {
        format!("{base}_{}", config.apps[app].name)
    } else {
        base.to_string()
    }
}

/// Attributes shared by the gateway's cookies.
#[derive(Debug, Clone)]
pub struct CookieAttrs {
    pub path: String,
    pub secure: bool,
    pub domain: Option<String>,
}

/// `name=value; Path=..; Max-Age=..; HttpOnly; SameSite=Lax[; Secure][; Domain=..]`.
pub fn set(name: &str, value: &str, max_age_secs: u64, attrs: &CookieAttrs) -> String {
    let mut c = format!("{name}={value}; Path={}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax", attrs.path);
    if attrs.secure {
        c.push_str("; Secure");
    }
    if let Some(d) = &attrs.domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    c
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(name: &str, attrs: &CookieAttrs) -> String {
    set(name, "", 0, attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_across_headers() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; b=2".parse().unwrap());
        h.append("cookie", "c=3".parse().unwrap());
        assert_eq!(get(&h, "b"), Some("2"));
        assert_eq!(get(&h, "c"), Some("3"));
        assert_eq!(get(&h, "d"), None);
    }

    #[test]
    fn drops_named_cookies() {
        assert_eq!(without("a=1; s=x; b=2", &["s"]).as_deref(), Some("a=1; b=2"));
        assert_eq!(without("s=x", &["s"]), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let attrs = CookieAttrs { path: "/".into(), secure: true, domain: None };
        assert_eq!(set("s", "v", 60, &attrs), "s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        assert!(clear("s", &attrs).contains("Max-Age=0"));
    }
}
