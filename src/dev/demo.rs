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
        let verified = token.map(|t| (t, self.verifier.verify(t)));
        if req.uri.path() == "/api/me" {
            return api_me(verified.as_ref().map(|(_, r)| r));
        }
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        // The JS-SDK signatures are an Official Account's: a WeCom app's page goes without.
        let wecom = matches!(&verified, Some((_, Ok(c))) if c.provider == "wecom");
        let jssdk = if wecom { "" } else { JSSDK };
        let body = match verified {
            Some((raw, Ok(claims))) => verified_section(&claims, raw, path),
            Some((_, Err(e))) => section("令牌无效 / Token rejected", &format!("<p id=\"verified\" data-state=\"rejected\">rejected: {}</p>", escape(&e.to_string()))),
            None => section(
                "没有身份 / No identity",
                "<p id=\"verified\" data-state=\"none\">此请求没有携带令牌（公开路由）。<br>This request carries no token (a public route).</p>",
            ),
        };
        let html = format!(
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>openid-gateway demo</title>\
             <style>body{{font-family:-apple-system,'PingFang SC',sans-serif;max-width:40rem;margin:0 auto;padding:1.5rem;color:#222}}\
             table{{border-collapse:collapse;width:100%}}td{{border-bottom:1px solid #ddd;padding:.4rem;word-break:break-all}}\
             code,pre{{word-break:break-all;white-space:pre-wrap;font-size:.8rem;background:#f3f3f3;display:block;padding:.5rem}}.ok{{color:#07c160}}</style>\
             </head><body><p>演示应用 · Demo app behind openid-gateway</p>{body}\
             <p>前端路由 / Hash route: <b id=\"route\"></b></p>\
             <p><button id=\"call\">fetch('/api/me')</button> <a href=\"/.gateway/logout?return=/public/\">退出 / Log out</a></p>\
             <pre id=\"api\"></pre>\
             {jssdk}<script>document.getElementById('route').textContent=location.hash||'(none)';\
             document.getElementById('call').onclick=async()=>{{const r=await fetch('/api/me');\
             document.getElementById('api').textContent=r.status+' '+await r.text();}};</script></body></html>"
        );
        respond(200, "text/html; charset=utf-8", html)
    }
}

/// `GET /api/me`: the verified claims as JSON, or 401.
fn api_me(verified: Option<&Result<Claims, jsonwebtoken::errors::Error>>) -> Response<Vec<u8>> {
    match verified {
        Some(Ok(c)) => {
            respond(200, "application/json", serde_json::json!({ "verified": true, "claims": c }).to_string())
        }
        Some(Err(e)) => respond(
            401,
            "application/json",
            serde_json::json!({ "verified": false, "error": e.to_string() }).to_string(),
        ),
        None => respond(401, "application/json", r#"{"verified":false,"error":"no token"}"#.to_string()),
    }
}

fn respond(status: u16, content_type: &'static str, body: String) -> Response<Vec<u8>> {
    let mut r = Response::new(body.into_bytes());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    let len = r.body().len();
    r.headers_mut().insert(http::header::CONTENT_LENGTH, len.into());
    r
}

/// The page's JS-SDK, configured by the gateway, and what came of it.
const JSSDK: &str = "<p>微信 JS-SDK: <b id=\"jssdk\" data-state=\"pending\">…</b></p>\
     <script>document.addEventListener('openid-gateway:jssdk',function(e){var b=document.getElementById('jssdk');\
     b.dataset.state=e.detail.ok?'ready':'failed';b.textContent=e.detail.ok?'JS-SDK ready ✔':'JS-SDK failed: '+e.detail.error;});</script>\
     <script src=\"/.gateway/jssdk.js\" data-js-api-list=\"updateAppMessageShareData,scanQRCode\"></script>";

fn section(title: &str, inner: &str) -> String {
    format!("<h1>{title}</h1>{inner}")
}

fn verified_section(c: &Claims, raw: &str, path: &str) -> String {
    let member = match c.member {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let hello = if c.provider == "wecom" {
        "你好，企业微信用户 / Hello, WeCom user"
    } else {
        "你好，微信用户 / Hello, WeChat user"
    };
    let rows: String = [
        ("sub", c.sub.as_str()),
        ("sub_type", c.sub_type.as_str()),
        ("provider", c.provider.as_str()),
        ("appid", c.appid.as_str()),
        ("corpid", c.corpid.as_deref().unwrap_or("-")),
        ("member", member),
        ("aud", c.aud.as_str()),
        ("iss", c.iss.as_str()),
        ("scope", c.scope.as_str()),
        ("nickname", c.nickname.as_deref().unwrap_or("-")),
        ("unionid", c.unionid.as_deref().unwrap_or("-")),
    ]
    .iter()
    .map(|(k, v)| format!("<tr><td>{k}</td><td>{}</td></tr>", escape(v)))
    .chain([format!("<tr><td>iat</td><td>{}</td></tr>", c.iat), format!("<tr><td>exp</td><td>{}</td></tr>", c.exp)])
    .collect();
    section(
        &format!("<span class=\"ok\">✔</span> {hello}"),
        &format!(
            "<p id=\"verified\" data-state=\"ok\">本应用自行验证了 <b>X-Openid-Token</b>，身份如下。<br>This app verified the token itself; the gateway says you are:</p>\
             <table>{rows}</table><p>openid: <b id=\"openid\">{}</b></p><p>请求路径 / Path: {}</p><p>令牌 / Raw token:</p><code>{}</code>",
            escape(&c.sub),
            escape(path),
            escape(raw)
        ),
    )
}
