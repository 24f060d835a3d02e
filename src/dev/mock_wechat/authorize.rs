//! `GET /connect/oauth2/authorize`: checks the request as WeChat does, then sends the browser
//! back to `redirect_uri` with a fresh single-use code.

use http::Response;
use pingora::http::RequestHeader;
use url::Url;

use super::{text, Code, MockWechat};
use crate::http::cookies;
use crate::util::clock::base62_nonce;

/// The one parameter order WeChat accepts; anything else may only follow `state`.
pub(super) const ORDER: [&str; 5] = ["appid", "redirect_uri", "response_type", "scope", "state"];

/// What WeChat says of parameters missing or out of [`ORDER`].
pub(super) const OUT_OF_ORDER: &str =
    "parameters missing or out of order (appid, redirect_uri, response_type, scope, state)";

/// A query's `name=value` pairs as sent, in order, not decoded.
pub(super) fn raw_pairs(query: &str) -> Vec<(&str, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect()
}

/// The values of the first five `pairs` when they are named as [`ORDER`] says.
pub(super) fn in_order<'a>(pairs: &[(&'a str, &'a str)]) -> Option<[&'a str; 5]> {
    let named = pairs.len() >= ORDER.len() && pairs.iter().map(|(k, _)| *k).take(ORDER.len()).eq(ORDER);
    named.then(|| [0, 1, 2, 3, 4].map(|i| pairs[i].1))
}

/// `[A-Za-z0-9]{1,128}`, WeChat's and WeCom's state.
pub(super) fn state_ok(state: &str) -> bool {
    (1..=128).contains(&state.len()) && state.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// WeChat's refusal of an empty `redirect_uri`, `scope` or `state`, or of a `response_type`
/// other than `code`, in the order it checks them (after the appid).
pub(super) fn missing(
    redirect: &str,
    response_type: &str,
    scope: &str,
    state: &str,
) -> Option<(i64, &'static str, &'static str)> {
    if redirect.is_empty() {
        Some((10011, "redirect_uri 参数为空", "redirect_uri is empty"))
    } else if scope.is_empty() {
        Some((10010, "scope 参数为空", "scope is empty"))
    } else if state.is_empty() {
        Some((10013, "state 参数为空", "state is empty"))
    } else if response_type != "code" {
        Some((10005, "response_type 参数错误", "response_type must be code"))
    } else {
        None
    }
}

impl MockWechat {
    pub(super) fn authorize(&self, req: &RequestHeader, query: &str) -> Response<Vec<u8>> {
        self.lock().stats.authorizes += 1;
        let ua = req.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.cfg.any_browser && !ua.contains("MicroMessenger") {
            return error_page(None, "请在微信客户端打开链接", "Open this link in the WeChat client");
        }
        let Some([appid, redirect_raw, response_type, scope, state]) = in_order(&raw_pairs(query)) else {
            return error_page(Some(10005), "Scope 参数错误或没有 Scope 权限", OUT_OF_ORDER);
        };
        if appid.is_empty() {
            return error_page(Some(10012), "appid 参数为空", "appid is empty");
        }
        if appid != self.cfg.appid {
            return error_page(Some(10016), "appid 参数错误", "unknown appid");
        }
        if let Some((code, zh, en)) = missing(redirect_raw, response_type, scope, state) {
            return error_page(Some(code), zh, en);
        }
        if scope != "snsapi_base" && scope != "snsapi_userinfo" {
            return error_page(
                Some(10005),
                "Scope 参数错误或没有 Scope 权限",
                "scope must be snsapi_base or snsapi_userinfo",
            );
        }
        if !state_ok(state) {
            return error_page(None, "state 参数错误", "state must be at most 128 characters of [A-Za-z0-9]");
        }
        let redirect = match self.check_redirect(redirect_raw) {
            Ok(u) => u,
            Err((code, zh, en)) => return error_page(code, zh, en),
        };
        let user = self.mock_user(req);
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let userinfo = scope == "snsapi_userinfo";
        let mut r = text(302, "text/html; charset=utf-8", String::new());
        if userinfo && header("x-mock-consent") == Some("deny") {
            if let Ok(v) = callback_location(&redirect, None, state).parse() {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            return r;
        }
        let snapshot = userinfo && header("x-mock-snapshot") == Some("1");
        let code = base62_nonce(self.entropy.as_ref(), 32);
        let openid = if snapshot { self.openid_for("snapshot-virtual-user") } else { self.openid_for(&user) };
        let now = self.clock.now();
        self.lock()
            .codes
            .insert(code.clone(), Code { user, openid, scope: scope.to_string(), issued: now, used: false, snapshot });
        if let Ok(v) = callback_location(&redirect, Some(&code), state).parse() {
            r.headers_mut().insert(http::header::LOCATION, v);
        }
        r
    }

    /// The user of a request: `X-Mock-User`, else the `mock_user` cookie, else the default user.
    pub(super) fn mock_user(&self, req: &RequestHeader) -> String {
        req.headers
            .get("x-mock-user")
            .and_then(|v| v.to_str().ok())
            .or_else(|| cookies::get(&req.headers, "mock_user"))
            .unwrap_or(&self.cfg.default_user)
            .to_string()
    }

    fn check_redirect(&self, raw: &str) -> Result<Url, RedirectRefusal> {
        check_redirect(raw, &self.cfg.domains, self.cfg.allow_port)
    }
}

/// Why a `redirect_uri` is refused: the page's errcode (if any) and its Chinese and English text.
pub(super) type RedirectRefusal = (Option<i64>, &'static str, &'static str);

/// `redirect_uri` must be encoded as a whole (as `encodeURIComponent` does) and point at one of
/// `domains`: exact host, no IP address, no port unless `allow_port`.
pub(super) fn check_redirect(raw: &str, domains: &[String], allow_port: bool) -> Result<Url, RedirectRefusal> {
    let encoded_whole = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%".contains(&b));
    if !encoded_whole {
        return Err((None, "redirect_uri 参数错误", "redirect_uri must be percent-encoded as a whole"));
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| (None, "redirect_uri 参数错误", "redirect_uri is not UTF-8"))?;
    let url = Url::parse(&decoded).map_err(|_| (None, "redirect_uri 参数错误", "redirect_uri is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err((None, "redirect_uri 参数错误", "redirect_uri must be http or https"));
    }
    let host = url.host_str().unwrap_or("");
    let is_ip = matches!(url.host(), Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_)));
    let registered = domains.iter().any(|d| d.eq_ignore_ascii_case(host));
    if is_ip || !registered || (url.port().is_some() && !allow_port) {
        return Err((
            Some(10003),
            "redirect_uri 域名与后台配置不一致",
            "redirect_uri domain does not match the registered domain",
        ));
    }
    Ok(url)
}

/// The redirect back: `code` (unless consent was refused) and `state` appended with `?` or
/// `&`, before any fragment.
pub(super) fn callback_location(redirect: &Url, code: Option<&str>, state: &str) -> String {
    let mut base = redirect.clone();
    let fragment = base.fragment().map(str::to_string);
    base.set_fragment(None);
    let sep = if base.query().is_some() { '&' } else { '?' };
    let code = code.map_or(String::new(), |c| format!("code={c}&"));
    let mut out = format!("{base}{sep}{code}state={state}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&f);
    }
    out
}

/// WeChat's error page: HTML with status 200, no redirect.
pub(super) fn error_page(errcode: Option<i64>, zh: &str, en: &str) -> Response<Vec<u8>> {
    refusal_page("微信网页授权 (mock)", errcode, zh, en)
}

/// An error page titled `title`, as WeChat and WeCom show them: HTML with status 200, no
/// redirect.
pub(super) fn refusal_page(title: &str, errcode: Option<i64>, zh: &str, en: &str) -> Response<Vec<u8>> {
    let code = errcode.map_or(String::new(), |c| format!("<p>错误码 errcode: {c}</p>"));
    let body = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title></head><body><h1>{}</h1><p>{}</p>{code}</body></html>",
        crate::pages::escape(title),
        crate::pages::escape(zh),
        crate::pages::escape(en)
    );
    text(200, "text/html; charset=utf-8", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_goes_before_the_fragment() {
        let u = Url::parse("https://h.example/cb?x=1#frag").unwrap();
        assert_eq!(callback_location(&u, Some("C"), "S"), "https://h.example/cb?x=1&code=C&state=S#frag");
        let u = Url::parse("https://h.example/cb").unwrap();
        assert_eq!(callback_location(&u, Some("C"), "S"), "https://h.example/cb?code=C&state=S");
        assert_eq!(callback_location(&u, None, "S"), "https://h.example/cb?state=S");
    }
}
