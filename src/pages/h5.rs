//! The pages a WeChat H5 app needs from its gateway: the script page that keeps the
//! `#fragment` through login, the "open in WeChat" (or WeCom) QR page, and the 401 answer for
//! API calls.

use bytes::Bytes;
use qrcode::render::svg;
use qrcode::QrCode;

use super::{escape, Bilingual, Page, STYLE};
use crate::config::Provider;
use crate::http::reply::{Header, Reply};

/// A page that sends the browser to `login_url` + the encoded return URL, where the return
/// URL is `target` plus the page's `location.hash`. Without script, a meta refresh goes to the
/// same login without the fragment. It needs no cookie to work.
pub fn keep_fragment(login_url: &str, target: &str, request_id: &str) -> Reply {
    let fallback = format!("{login_url}{}", crate::wechat::authorize::encode_component(target));
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>正在登录 / Logging in</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"0;url={fallback_attr}\"></noscript>\
         <style>{STYLE}</style></head><body><main>\
         <h1>正在登录…</h1><h2>Logging in…</h2>\
         <p><a href=\"{fallback_attr}\">如未自动跳转，请点这里 / Continue</a></p>\
         <footer>请求编号 / Request ID: {rid}</footer></main>\
         <script>location.replace({login_js}+encodeURIComponent({target_js}+location.hash));</script>\
         </body></html>",
        fallback_attr = escape(&fallback),
        rid = escape(request_id),
        login_js = js_string(login_url),
        target_js = js_string(target),
    );
    Reply::html(200, html).with_header(Header::RequestId, request_id)
}

/// "请在微信中打开 / Open in WeChat" (or in WeCom, for a WeCom app), with a QR code of `url`
/// to scan with the phone.
pub fn open_in_app(url: &str, provider: &Provider, request_id: &str) -> Reply {
    let figure = qr_svg(url);
    let caption = format!("<p class=\"url\">{}</p>", escape(url));
    let figure = format!("{figure}{caption}");
    let (title, message) = if provider.is_wecom() {
        (
            Bilingual { zh: "请在企业微信中打开", en: "Open in WeCom" },
            Bilingual {
                zh: "此页面需要企业微信登录。请用手机企业微信扫描下方二维码，在企业微信中继续。",
                en:
                    "This page signs you in with WeCom. Scan the code below with WeCom on your phone to continue there.",
            },
        )
    } else {
        (
            Bilingual { zh: "请在微信中打开", en: "Open in WeChat" },
            Bilingual {
                zh: "此页面需要微信登录。请用手机微信扫描下方二维码，在微信中继续。",
                en: "This page signs you in with WeChat. Scan the code below with WeChat on your phone to continue there.",
            },
        )
    };
    Page { status: 200, title, message, action: None, request_id, details: &[], figure: Some(&figure) }.render()
}

/// An SVG QR code of `data`, sized by its viewBox.
pub fn qr_svg(data: &str) -> String {
    match QrCode::new(data.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .dark_color(svg::Color("#000"))
            .light_color(svg::Color("#fff"))
            .build()
            .split_once("<svg")
            .map_or(String::new(), |(_, rest)| format!("<svg{rest}")),
        Err(_) => String::new(),
    }
}

/// `401` for a request that is not a page navigation: `{"error":"login_required",
/// "login_url":...}`, with the same URL in `X-Login-Url`, so the page's script can
/// `location.href = login_url`.
pub fn login_required(login_url: &str, request_id: &str) -> Reply {
    let body = serde_json::json!({ "error": "login_required", "login_url": login_url, "request_id": request_id });
    Reply {
        status: 401,
        headers: vec![
            (Header::ContentType, "application/json; charset=utf-8".into()),
            (Header::CacheControl, "no-store".into()),
            (Header::LoginUrl, login_url.into()),
            (Header::RequestId, request_id.into()),
        ],
        body: Bytes::from(body.to_string()),
    }
}

/// A JavaScript string literal that is also safe inside `<script>`.
fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default().replace('<', "\\u003c").replace('>', "\\u003e")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_page_has_script_and_fallback() {
        let r = keep_fragment("https://h.test/.gateway/login?return=", "/app/?x=1", "RID");
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(body.contains("location.replace(\"https://h.test/.gateway/login?return=\"+encodeURIComponent(\"/app/?x=1\"+location.hash))"));
        assert!(body.contains("url=https://h.test/.gateway/login?return=%2Fapp%2F%3Fx%3D1"));
        assert!(!body.contains("src="));
    }

    #[test]
    fn script_strings_cannot_close_the_script() {
        assert_eq!(js_string("</script><x>"), "\"\\u003c/script\\u003e\\u003cx\\u003e\"");
    }

    #[test]
    fn qr_page_holds_an_svg() {
        let r = open_in_app("https://h.test/a?b=1", &Provider::Wechat, "RID");
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(body.contains("<svg") && body.contains("请在微信中打开") && body.contains("https://h.test/a?b=1"));
    }
}
