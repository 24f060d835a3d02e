//! The login load of `bench/run`: complete silent logins, each by a new browser with no
//! cookies, as a phone without JavaScript would walk them:
//!
//! 1. the page (`GET <path>`): the gateway answers with its keep-the-fragment page;
//! 2. that page's fallback link, `<prefix>/login?return=…`: 302 to WeChat's authorize URL;
//! 3. the authorize URL on the mock WeChat: 302 back to the callback with a code;
//! 4. the callback: the gateway exchanges the code and answers 302 with a session cookie;
//! 5. the page again with that cookie: the upstream's 200, which carries the token.
//!
//! A login counts only when step 5 is the upstream's answer (`x-bench-upstream`). Each login
//! is a new WeChat user (the mock's `x-mock-user`), so each signs a new token.
//!
//! `login_load <page URL> <concurrency> <seconds>` prints one JSON line: logins, failures,
//! seconds and login latency percentiles. `login_load <page URL> --cookie` logs in once and
//! prints the session's `Cookie` header value, for the required-route load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, ACCEPT, COOKIE, LOCATION, SET_COOKIE, USER_AGENT};
use reqwest::{redirect, Client, StatusCode, Url};

const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                         (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003129) NetType/WIFI";

type Failure = String;

static USERS: AtomicU64 = AtomicU64::new(0);

/// One whole login; the session cookie (`name=value`) when it ends at the upstream.
async fn login(client: &Client, page: &Url) -> Result<String, Failure> {
    let first = client.get(page.clone()).send().await.map_err(|e| format!("page: {e}"))?;
    if first.status() != StatusCode::OK {
        return Err(format!("page: {}", first.status()));
    }
    let body = first.text().await.map_err(|e| format!("page body: {e}"))?;
    let login = fallback_link(&body).ok_or("page: no fallback link")?;
    let login = page.join(&login).map_err(|e| format!("login link: {e}"))?;

    let to_wechat = client.get(login).send().await.map_err(|e| format!("login: {e}"))?;
    let cookies = set_cookies(to_wechat.headers());
    let authorize = redirect_target(&to_wechat, page, "login")?;

    // Every login is a different WeChat user, so no token is reused from an earlier login.
    let user = format!("bench-{}-{}", std::process::id(), USERS.fetch_add(1, Ordering::Relaxed));
    let from_wechat =
        client.get(authorize).header("x-mock-user", user).send().await.map_err(|e| format!("authorize: {e}"))?;
    let callback = redirect_target(&from_wechat, page, "authorize")?;

    let landed = client.get(callback).header(COOKIE, cookies).send().await.map_err(|e| format!("callback: {e}"))?;
    let session = set_cookies(landed.headers());
    let back = redirect_target(&landed, page, "callback")?;

    let app = client.get(back).header(COOKIE, &session).send().await.map_err(|e| format!("app: {e}"))?;
    if app.status() != StatusCode::OK || !app.headers().contains_key("x-bench-upstream") {
        return Err(format!("app: {} without the upstream's mark", app.status()));
    }
    app.bytes().await.map_err(|e| format!("app body: {e}"))?;
    Ok(session)
}

/// The `href` of the page's "Continue" link, unescaped.
fn fallback_link(html: &str) -> Option<String> {
    let start = html.find("<a href=\"")? + "<a href=\"".len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

/// The `Cookie` header a browser would send back: every `Set-Cookie`'s `name=value`.
fn set_cookies(headers: &HeaderMap) -> String {
    let pairs = headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()?.split(';').next());
    pairs.filter(|p| !p.ends_with('=')).collect::<Vec<_>>().join("; ")
}

fn redirect_target(resp: &reqwest::Response, base: &Url, step: &str) -> Result<Url, Failure> {
    if !resp.status().is_redirection() {
        return Err(format!("{step}: {} instead of a redirect", resp.status()));
    }
    let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or(format!("{step}: no Location"))?;
    base.join(location).map_err(|e| format!("{step}: {e}"))
}

fn client(page: &Url) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, WECHAT_UA.parse().expect("a valid header"));
    headers.insert(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8".parse().expect("a valid header"));
    let mut builder = Client::builder().redirect(redirect::Policy::none()).default_headers(headers);
    // `localhost` is the registered domain; its address is IPv4 loopback, never ::1.
    if let Some(host) = page.host_str() {
        builder = builder.resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    builder.pool_max_idle_per_host(1024).build().expect("an HTTP client")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

async fn load(page: Url, concurrency: usize, seconds: f64) {
    let client = client(&page);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (client, page) = (client.clone(), page.clone());
        tokio::spawn(async move {
            let (mut took, mut failures) = (Vec::new(), Vec::new());
            while Instant::now() < until {
                let t = Instant::now();
                match login(&client, &page).await {
                    Ok(_) => took.push(t.elapsed()),
                    Err(e) => failures.push(e),
                }
            }
            (took, failures)
        })
    });
    let (mut took, mut failures) = (Vec::new(), Vec::new());
    for w in workers.collect::<Vec<_>>() {
        let (t, f) = w.await.expect("a worker");
        took.extend(t);
        failures.extend(f);
    }
    let seconds = started.elapsed().as_secs_f64();
    took.sort();
    let first_failure = failures.first().cloned().unwrap_or_default();
    println!(
        "{{\"logins\": {}, \"failures\": {}, \"first_failure\": {:?}, \"seconds\": {seconds:.3}, \
         \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}}}",
        took.len(),
        failures.len(),
        first_failure,
        percentile(&took, 50.0),
        percentile(&took, 99.0),
        percentile(&took, 99.9),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: login_load <page URL> (<concurrency> <seconds> | --cookie)");
        std::process::exit(2)
    };
    let Some(page) = args.first().and_then(|u| Url::parse(u).ok()) else { usage() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    match args.get(1).map(String::as_str) {
        Some("--cookie") => match runtime.block_on(login(&client(&page), &page)) {
            Ok(cookie) => println!("{cookie}"),
            Err(e) => {
                eprintln!("login_load: the login failed at {e}");
                std::process::exit(1);
            }
        },
        Some(n) => {
            let (Ok(concurrency), Some(Ok(seconds))) = (n.parse(), args.get(2).map(|s| s.parse())) else { usage() };
            runtime.block_on(load(page, concurrency, seconds));
        }
        None => usage(),
    }
}
