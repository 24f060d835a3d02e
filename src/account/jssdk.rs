//! `wx.config` for pages behind the gateway:
//! - `GET <prefix>/jssdk/config?url=<page URL>` answers `{appId, timestamp, nonceStr,
//!   signature, url}`: the signature is SHA-1 over
//!   `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, `url` being the page URL exactly as the
//!   browser has it, cut at `#`. Only URLs on the host that asks, when this gateway serves that
//!   host for the account, are signed (never a signing oracle for other sites); callers from
//!   another site are refused.
//! - `GET <prefix>/jssdk.js`: the script a page includes to do all of it (see `jssdk.js`).

use pingora::http::RequestHeader;

use crate::config::HostPattern;
use crate::http::client::{query_param, ClientView};
use crate::http::error::GatewayError;
use crate::http::reply::{Header, Reply};
use crate::runtime::Gateway;
use crate::util::clock::base62_nonce;

/// The longest page URL signed.
const MAX_URL: usize = 4096;

/// Lower-case hex SHA-1 of `jsapi_ticket=T&noncestr=N&timestamp=TS&url=U`: what the JS-SDK
/// checks `wx.config`'s signature against.
pub fn signature(ticket: &str, noncestr: &str, timestamp: u64, url: &str) -> String {
    let text = format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET <prefix>/jssdk/config?url=`: the `wx.config` values for the page at `url`.
pub async fn config(gw: &Gateway, req: &RequestHeader, view: &ClientView) -> Result<Reply, GatewayError> {
    same_site(req, &view.host)?;
    let raw = query_param(req.uri.query().unwrap_or(""), "url")
        .ok_or(GatewayError::PageUrl { reason: "url is required: the page's location.href" })?;
    let url = page_url(&raw, &view.host)?;
    // The account of the page's own route, where the host alone does not name an app.
    let path = url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_default();
    let app = gw
        .app_at(&view.host)
        .or_else(|| gw.app_host(&view.host).map(|h| gw.app(h.app)))
        .or_else(|| gw.route_for(&view.host, &path).map(|r| gw.app(r.app)))
        .ok_or(GatewayError::NoApp)?;
    if app.config.wechat.provider.is_wecom() {
        return Err(GatewayError::PageUrl {
            reason: "this host's app is a WeCom app: the JS-SDK signatures here are an Official Account's",
        });
    }
    if !serves(gw, &app.config.wechat.appid, &view.host) {
        return Err(GatewayError::PageUrl {
            reason:
                "this gateway does not serve this host for a WeChat account (public_url, app_hosts or a route's host)",
        });
    }
    let ticket = app.account.ticket().await.map_err(|e| GatewayError::Credentials { message: e.public() })?;
    let timestamp = gw.now();
    let nonce = base62_nonce(gw.entropy(), 16);
    let body = serde_json::json!({
        "appId": app.config.wechat.appid,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature(&ticket.value, &nonce, timestamp, url),
        "url": url,
    });
    Ok(Reply::json(200, body.to_string()))
}

/// Refuses a caller from another site: a browser says so in `Sec-Fetch-Site`, `Origin` or
/// `Referer` (a page elsewhere cannot read the answer either: no CORS header is sent).
fn same_site(req: &RequestHeader, host: &str) -> Result<(), GatewayError> {
    // Every copy of each header counts: a second one cannot hide the first.
    let values = |name: &str| req.headers.get_all(name).into_iter().map(|v| v.to_str().unwrap_or("?"));
    let same_host = |value: &str| {
        url::Url::parse(value).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).as_deref() == Some(host)
    };
    if values("sec-fetch-site").any(|s| s != "same-origin" && s != "none")
        || values("origin").chain(values("referer")).any(|v| !same_host(v))
    {
        return Err(GatewayError::CrossSite);
    }
    Ok(())
}

/// The URL to sign: `raw` cut at `#`, as the browser has it, on `host` itself.
fn page_url<'a>(raw: &'a str, host: &str) -> Result<&'a str, GatewayError> {
    let refuse = |reason| Err(GatewayError::PageUrl { reason });
    let url = raw.split('#').next().unwrap_or_default();
    if url.len() > MAX_URL {
        return refuse("url is longer than 4096 bytes");
    }
    if !url.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return refuse(
            "url must be location.href as the browser has it (no spaces, control characters or backslashes)",
        );
    }
    let Ok(parsed) = url::Url::parse(url) else { return refuse("url is not an absolute URL") };
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("url must be an http or https URL without user or password");
    }
    let authority = match parsed.port() {
        Some(p) => format!("{}://{}:{p}", parsed.scheme(), parsed.host_str().unwrap_or_default()),
        None => format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or_default()),
    };
    let rest = url.strip_prefix(authority.as_str());
    if !rest.is_some_and(|r| r.is_empty() || r.starts_with(['/', '?'])) {
        return refuse("url must be written as the browser writes it (lower-case host, no default port)");
    }
    if parsed.host_str() != Some(host) {
        return refuse("url must be a page on the host that asks for its signature");
    }
    Ok(url)
}

/// Does this gateway serve `host` for account `appid`: an app's public host, an app host, or
/// a route's host (a route on any host serves no host in particular)?
fn serves(gw: &Gateway, appid: &str, host: &str) -> bool {
    let of = |app| gw.app(app).config.wechat.appid == appid;
    gw.apps().iter().any(|a| a.config.wechat.appid == appid && a.config.public_host() == host)
        || gw.app_host(host).is_some_and(|h| of(h.app))
        || gw.routes().iter().any(|r| r.config.host != HostPattern::Any && r.config.host.matches(host) && of(r.app))
}

/// `GET <prefix>/jssdk.js`: configures the JS-SDK on the page that includes it.
pub fn script(gw: &Gateway, view: &ClientView) -> Result<Reply, GatewayError> {
    let app = gw.app_of_host(&view.host).ok_or(GatewayError::NoApp)?;
    let text = include_str!("jssdk.js")
        .replace("__PREFIX__", &json_string(&gw.config.prefix))
        .replace("__SDK__", &json_string(app.config.wechat.jssdk_url.as_str()));
    Ok(Reply {
        status: 200,
        headers: vec![
            (Header::ContentType, "application/javascript; charset=utf-8".into()),
            (Header::CacheControl, "public, max-age=300".into()),
        ],
        body: bytes::Bytes::from(text),
    })
}

/// `s` as a JavaScript string literal that cannot end a script element.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string().replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_wechats_example() {
        // The worked example of WeChat's JS-SDK documentation (附录1).
        let ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
        let sig = signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value");
        assert_eq!(sig, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
    }

    #[test]
    fn only_the_askers_own_pages_as_the_browser_writes_them() {
        let ok = |raw, host| page_url(raw, host).map(str::to_string).ok();
        assert_eq!(ok("https://gw.test/a?b=1#/route?x", "gw.test").as_deref(), Some("https://gw.test/a?b=1"));
        assert_eq!(ok("http://gw.test:8080/", "gw.test").as_deref(), Some("http://gw.test:8080/"));
        for bad in [
            "https://evil.test/a",
            "https://gw.test.evil.test/",
            "https://user@gw.test/",
            "https://GW.test/",
            "https://gw.test:443/",
            "javascript://gw.test/%0aalert(1)",
            "https://gw.test/a b",
            "https://gw.test\\@evil.test/",
            "/relative",
            "",
        ] {
            assert!(ok(bad, "gw.test").is_none(), "{bad} was accepted");
        }
    }
}
