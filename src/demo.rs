//! The embedded demo upstream: a small app that verifies `X-Openid-Token` itself, as any
//! backend would, and shows who the gateway says the user is.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::config::TokenConfig;
use crate::pages::escape;
use crate::token::{Claims, TokenVerifier};

/// The demo app behind the gateway.
pub struct DemoApp {
    header: http::HeaderName,
    verifier: TokenVerifier,
}

impl DemoApp {
    pub fn new(token: &TokenConfig, audience: &str) -> Result<Self, crate::token::TokenError> {
        Ok(Self { header: token.header.clone(), verifier: TokenVerifier::new(token, audience)? })
    }
}

#[async_trait]
impl ServeHttp for DemoApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let token = req.headers.get(&self.header).and_then(|v| v.to_str().ok());
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let body = match token.map(|t| (t, self.verifier.verify(t))) {
            Some((raw, Ok(claims))) => verified(&claims, raw, path),
            Some((_, Err(e))) => section("令牌无效 / Token rejected", &format!("<p>{}</p>", escape(&e.to_string()))),
            None => section(
                "没有身份 / No identity",
                "<p>此请求没有携带令牌（公开路由）。<br>This request carries no token (a public route).</p>",
            ),
        };
        let html = format!(
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>openid-gateway demo</title>\
             <style>body{{font-family:-apple-system,'PingFang SC',sans-serif;max-width:40rem;margin:0 auto;padding:1.5rem;color:#222}}\
             table{{border-collapse:collapse;width:100%}}td{{border-bottom:1px solid #ddd;padding:.4rem;word-break:break-all}}\
             code{{word-break:break-all;font-size:.8rem;background:#f3f3f3;display:block;padding:.5rem}}.ok{{color:#07c160}}</style>\
             </head><body><p>演示应用 · Demo app behind openid-gateway</p>{body}</body></html>"
        );
        let mut r = Response::new(html.into_bytes());
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
        let len = r.body().len();
        r.headers_mut().insert(http::header::CONTENT_LENGTH, len.into());
        r
    }
}

fn section(title: &str, inner: &str) -> String {
    format!("<h1>{title}</h1>{inner}")
}

fn verified(c: &Claims, raw: &str, path: &str) -> String {
    let rows: String = [
        ("sub (openid)", c.sub.as_str()),
        ("appid", c.appid.as_str()),
        ("aud", c.aud.as_str()),
        ("iss", c.iss.as_str()),
    ]
    .iter()
    .map(|(k, v)| format!("<tr><td>{k}</td><td>{}</td></tr>", escape(v)))
    .chain([format!("<tr><td>iat</td><td>{}</td></tr>", c.iat), format!("<tr><td>exp</td><td>{}</td></tr>", c.exp)])
    .collect();
    section(
        "<span class=\"ok\">✔</span> 你好，微信用户 / Hello, WeChat user",
        &format!(
            "<p>本应用自行验证了 <b>X-Openid-Token</b>，身份如下。<br>This app verified the token itself; the gateway says you are:</p>\
             <table>{rows}</table><p>请求路径 / Path: {}</p><p>令牌 / Raw token:</p><code>{}</code>",
            escape(path),
            escape(raw)
        ),
    )
}
