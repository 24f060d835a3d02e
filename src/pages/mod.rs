//! The pages the gateway shows by itself: Chinese first, then English; one small screen;
//! no external assets; each names its request id.

pub mod errors;
pub mod h5;

use crate::http::reply::{Header, Reply};

/// Text in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Bilingual<'a> {
    pub zh: &'a str,
    pub en: &'a str,
}

/// A link the page offers.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    pub href: &'a str,
    pub label: Bilingual<'a>,
}

/// A whole page.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub status: u16,
    pub title: Bilingual<'a>,
    pub message: Bilingual<'a>,
    pub action: Option<Action<'a>>,
    pub request_id: &'a str,
    /// Points listed under the message (causes, steps).
    pub details: &'a [Bilingual<'a>],
    /// Trusted markup shown under the message (a QR code).
    pub figure: Option<&'a str>,
}

pub(crate) const STYLE: &str = "body{margin:0;font-family:-apple-system,BlinkMacSystemFont,'PingFang SC','Microsoft YaHei',sans-serif;background:#f5f5f5;color:#222}\
main{max-width:30rem;margin:0 auto;padding:3rem 1.25rem}\
h1{font-size:1.35rem;margin:0 0 .25rem}h2{font-size:1rem;font-weight:normal;color:#666;margin:0 0 1.5rem}\
p{line-height:1.6;margin:.5rem 0}.en{color:#666;font-size:.92rem}\
a.btn{display:block;text-align:center;margin:2rem 0 1rem;padding:.8rem;border-radius:.5rem;background:#07c160;color:#fff;text-decoration:none;font-size:1.05rem}\
footer{color:#999;font-size:.75rem;margin-top:2rem;word-break:break-all}\
ul{padding-left:1.2rem;line-height:1.6}li span{display:block;color:#666;font-size:.88rem}\
figure{margin:1.5rem auto;max-width:16rem}figure svg{width:100%;height:auto;display:block}\
.url{word-break:break-all;color:#666;font-size:.85rem;text-align:center}";

impl Page<'_> {
    pub fn render(&self) -> Reply {
        let action = self.action.map_or(String::new(), |a| {
            format!("<a class=\"btn\" href=\"{}\">{} / {}</a>", escape(a.href), escape(a.label.zh), escape(a.label.en))
        });
        let details: String = if self.details.is_empty() {
            String::new()
        } else {
            let items: String = self
                .details
                .iter()
                .map(|d| format!("<li>{}<span>{}</span></li>", escape(d.zh), escape(d.en)))
                .collect();
            format!("<ul>{items}</ul>")
        };
        let figure = self.figure.map_or(String::new(), |f| format!("<figure>{f}</figure>"));
        let html = format!(
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{tz} / {te}</title><style>{STYLE}</style></head><body><main>\
             <h1>{tz}</h1><h2>{te}</h2><p>{mz}</p><p class=\"en\">{me}</p>{details}{figure}{action}\
             <footer>请求编号 / Request ID: {rid}</footer></main></body></html>",
            tz = escape(self.title.zh),
            te = escape(self.title.en),
            mz = escape(self.message.zh),
            me = escape(self.message.en),
            rid = escape(self.request_id),
        );
        Reply::html(self.status, html).with_header(Header::RequestId, self.request_id)
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_first_escaped_with_request_id() {
        let r = Page {
            status: 400,
            title: Bilingual { zh: "登录失败", en: "Login failed" },
            message: Bilingual { zh: "<b>", en: "x" },
            action: Some(Action { href: "/a?b=1&c=\"", label: Bilingual { zh: "重试", en: "Retry" } }),
            request_id: "R1",
            details: &[],
            figure: None,
        }
        .render();
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(body.find("登录失败").unwrap() < body.find("Login failed").unwrap());
        assert!(body.contains("&lt;b&gt;") && body.contains("/a?b=1&amp;c=&quot;"));
        assert!(body.contains("R1") && body.contains("viewport"));
        assert!(!body.contains("src=") && !body.contains("<link"));
        assert_eq!(r.status, 400);
    }
}
