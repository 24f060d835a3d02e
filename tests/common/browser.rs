//! A browser for the tests: keeps cookies (or drops chosen ones), sends what a browser sends
//! for a page navigation, and follows redirects and meta refreshes only when asked.

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use reqwest::cookie::{CookieStore, Jar};

use super::NAV_ACCEPT;

/// A browser with user agent `ua` whose resolver sends `host` to `addr` (URLs without a port
/// reach `addr`'s port; URLs with a port keep theirs).
pub fn browser(ua: &str, host: &str, addr: SocketAddr) -> Browser {
    let jar = Arc::new(Jar::default());
    Browser { client: nav_client(ua, host, addr, jar.clone()), jar, origin: format!("http://{host}") }
}

/// A client that sends what a browser sends for a page navigation, follows no redirect, keeps
/// cookies in `store`, and resolves `host` to `addr`.
pub fn nav_client<S: CookieStore + 'static>(ua: &str, host: &str, addr: SocketAddr, store: Arc<S>) -> reqwest::Client {
    nav_client_for(ua, &[(host, addr)], store)
}

/// Like [`nav_client`], resolving each of `hosts` to its address.
pub fn nav_client_for<S: CookieStore + 'static>(
    ua: &str,
    hosts: &[(&str, SocketAddr)],
    store: Arc<S>,
) -> reqwest::Client {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::ACCEPT, http::HeaderValue::from_static(NAV_ACCEPT));
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(store)
        .user_agent(ua);
    for (host, addr) in hosts {
        builder = builder.resolve(host, *addr);
    }
    builder.build().unwrap()
}

/// A WeChat browser with an empty cookie jar whose resolver sends each of `hosts` to its
/// address; its origin (for [`Browser::cookies`]) is the first host's.
pub fn browser_on(hosts: &[(&str, SocketAddr)]) -> Browser {
    let jar = Arc::new(Jar::default());
    let client = nav_client_for(super::WECHAT_UA, hosts, jar.clone());
    Browser { client, jar, origin: format!("http://{}", hosts[0].0) }
}

/// A cookie store that never keeps the cookies named in `drop` (a browser whose settings
/// or a misconfiguration lose them).
pub struct Dropping {
    pub jar: Jar,
    pub drop: Vec<String>,
}

impl CookieStore for Dropping {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &http::HeaderValue>, url: &url::Url) {
        let kept: Vec<&http::HeaderValue> = headers
            .filter(|h| {
                let name = h.to_str().unwrap_or("").split('=').next().unwrap_or("");
                !self.drop.iter().any(|d| d == "*" || d == name)
            })
            .collect();
        self.jar.set_cookies(&mut kept.into_iter(), url);
    }

    fn cookies(&self, url: &url::Url) -> Option<http::HeaderValue> {
        self.jar.cookies(url)
    }
}

/// A browser: keeps cookies, does not follow redirects by itself.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub origin: String,
}

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub url: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    /// Where a browser goes next: `Location`, or a `<meta http-equiv="refresh">` (as a browser
    /// with script disabled follows the gateway's fragment-keeping page).
    pub fn next_url(&self) -> Option<String> {
        let base = url::Url::parse(&self.url).unwrap();
        let target = if (300..400).contains(&self.status) {
            self.location().to_string()
        } else {
            let start = self.body.find("http-equiv=\"refresh\" content=\"0;url=")?;
            let rest = &self.body[start + "http-equiv=\"refresh\" content=\"0;url=".len()..];
            rest[..rest.find('"')?].replace("&amp;", "&")
        };
        Some(base.join(&target).unwrap().to_string())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
}

impl Browser {
    pub async fn get(&self, url: &str) -> Page {
        self.get_with(url, &[]).await
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Page {
        // Browsers never send the fragment.
        let url = url.split('#').next().unwrap().to_string();
        let mut req = self.client.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        Page {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            url: url.clone(),
            body: resp.text().await.unwrap(),
        }
    }

    /// Follows redirects and meta refreshes by hand, as a browser without script would, and
    /// returns every response.
    pub async fn walk(&self, url: &str) -> Vec<Page> {
        self.walk_until(url, |_| false).await
    }

    /// Like [`Browser::walk`], stopping before requesting a URL for which `stop` is true (that
    /// URL is then the last page's [`Page::next_url`]).
    pub async fn walk_until(&self, url: &str, stop: impl Fn(&str) -> bool) -> Vec<Page> {
        let mut pages = Vec::new();
        let mut next = url.to_string();
        for _ in 0..40 {
            let page = self.get(&next).await;
            let follow = page.next_url();
            pages.push(page);
            match follow {
                Some(u) if !stop(&u) => next = u,
                _ => return pages,
            }
        }
        panic!("more than 40 redirects from {url}: a loop");
    }

    /// Starts a login at `path` and returns the callback URL WeChat sends the browser to,
    /// without requesting it.
    pub async fn callback_url(&self, url: &str) -> String {
        let pages = self.walk_until(url, |u| u.contains("/.gateway/callback?")).await;
        let last = pages.last().unwrap();
        last.next_url().filter(|u| u.contains("/.gateway/callback?")).unwrap_or_else(|| {
            panic!("no callback: {:?}", pages.iter().map(|p| (p.status, &p.url, &p.body)).collect::<Vec<_>>())
        })
    }

    /// The cookies the browser would send to the gateway's `path`.
    pub fn cookies(&self, path: &str) -> String {
        let url = format!("{}{path}", self.origin).parse().unwrap();
        self.jar.cookies(&url).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    /// Replaces a cookie as a tampering client would.
    pub fn set_cookie(&self, cookie: &str) {
        self.set_cookie_at(&self.origin.clone(), cookie);
    }

    /// The cookies the browser would send to `url`.
    pub fn cookies_at(&self, url: &str) -> String {
        self.jar.cookies(&url.parse().unwrap()).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    /// Stores `cookie` as if `url` had set it.
    pub fn set_cookie_at(&self, url: &str, cookie: &str) {
        self.jar.add_cookie_str(cookie, &url.parse().unwrap());
    }
}

/// The value of cookie `name` in a `Cookie` header value.
pub fn cookie_value(cookies: &str, name: &str) -> Option<String> {
    cookies.split("; ").find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}
