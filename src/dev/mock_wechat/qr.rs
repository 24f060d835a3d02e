//! The desktop QR sign-in pages (WeCom web login and WeChat website login), their scan ids,
//! the status the page polls and the mock phone that scans: `GET /mock/qr/status?scan=` and
//! `POST /mock/qr/scan?scan=&user=`. A scan id lives five minutes and is scanned once.

use std::collections::HashMap;

use http::Response;
use url::Url;

use super::authorize::callback_location;
use super::{json, param, text, MockWechat};
use crate::pages::escape;
use crate::util::clock::base62_nonce;

/// A scan id can be scanned this long after its page was served.
pub const SCAN_LIFETIME_SECS: u64 = 300;
/// Scans are forgotten this long after their page was served.
const FORGET_AFTER_SECS: u64 = 3600;
const SCAN_ID_LEN: usize = 24;

/// Whose QR page it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Provider {
    /// WeCom web login: the corp's code, for `cgi-bin/auth/getuserinfo`.
    Corp,
    /// WeChat website login: the website app's code, for `sns/oauth2/access_token`.
    Website,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pending,
    /// A phone is scanning it (no second scan meanwhile).
    Claimed,
    /// Where the page goes: the redirect with `code` and `state`.
    Scanned(String),
    /// Why the phone was refused.
    Refused(String),
}

struct Scan {
    provider: Provider,
    redirect: Url,
    state: String,
    created: u64,
    seq: u64,
    outcome: Outcome,
}

/// The QR pages' part of the mock's state.
#[derive(Default)]
pub(super) struct Scans {
    by_id: HashMap<String, Scan>,
    seq: u64,
}

const EXPIRED: &str = "二维码已过期，请刷新页面 · The QR code has expired: reload the page";

impl MockWechat {
    /// Serves a QR page of `provider` that comes back to `redirect` with `state`.
    pub(super) fn qr_page(&self, provider: Provider, redirect: Url, state: &str) -> Response<Vec<u8>> {
        let id = base62_nonce(self.entropy.as_ref(), SCAN_ID_LEN);
        let now = self.clock.now();
        {
            let mut st = self.lock();
            st.scans.by_id.retain(|_, s| now < s.created.saturating_add(FORGET_AFTER_SECS));
            st.scans.seq += 1;
            let scan = Scan {
                provider,
                redirect,
                state: state.to_string(),
                created: now,
                seq: st.scans.seq,
                outcome: Outcome::Pending,
            };
            st.scans.by_id.insert(id.clone(), scan);
            st.stats.qr_pages += 1;
        }
        text(200, "text/html; charset=utf-8", render(provider, &id))
    }

    /// `GET /mock/qr/status?scan=SCANID`: what the page should do.
    pub(super) fn qr_status(&self, query: &str) -> Response<Vec<u8>> {
        let Some(id) = param(query, "scan") else {
            return no_store(json(400, r#"{"error":"scan is required"}"#));
        };
        let now = self.clock.now();
        let st = self.lock();
        let body = match st.scans.by_id.get(&id) {
            None => return no_store(json(404, r#"{"error":"unknown scan id"}"#)),
            Some(s) => match &s.outcome {
                Outcome::Scanned(location) => serde_json::json!({ "scanned": true, "location": location }),
                Outcome::Refused(message) => serde_json::json!({ "refused": true, "message": message }),
                Outcome::Pending if now >= s.created + SCAN_LIFETIME_SECS => {
                    serde_json::json!({ "expired": true, "message": EXPIRED })
                }
                Outcome::Pending | Outcome::Claimed => serde_json::json!({ "scanned": false }),
            },
        };
        no_store(json(200, &body.to_string()))
    }

    /// `POST /mock/qr/scan?scan=SCANID&user=NAME`: NAME's phone scans the page (without `scan`:
    /// the most recent pending one; without `user`: the default user).
    pub(super) fn qr_scan(&self, query: &str) -> Response<Vec<u8>> {
        let user = param(query, "user").filter(|u| !u.is_empty()).unwrap_or_else(|| self.cfg.default_user.clone());
        let now = self.clock.now();
        let scannable = |s: &Scan| s.outcome == Outcome::Pending && now < s.created + SCAN_LIFETIME_SECS;
        let (id, provider, redirect, state) = {
            let mut st = self.lock();
            let id = match param(query, "scan") {
                Some(id) => id,
                None => match st.scans.by_id.iter().filter(|(_, s)| scannable(s)).max_by_key(|(_, s)| s.seq) {
                    Some((id, _)) => id.clone(),
                    None => return json(404, r#"{"error":"no QR page is waiting for a scan"}"#),
                },
            };
            let Some(scan) = st.scans.by_id.get_mut(&id).filter(|s| scannable(s)) else {
                return json(404, r#"{"error":"unknown, expired or already scanned scan id"}"#);
            };
            scan.outcome = Outcome::Claimed;
            let taken = (id, scan.provider, scan.redirect.clone(), scan.state.clone());
            st.stats.qr_scans += 1;
            taken
        };
        let outcome = match provider {
            Provider::Corp => match self.corp_scan(&user) {
                Ok(code) => Outcome::Scanned(callback_location(&redirect, Some(&code), &state)),
                Err(refusal) => Outcome::Refused(refusal.into()),
            },
            Provider::Website => {
                Outcome::Scanned(callback_location(&redirect, Some(&self.issue_website_code(&user)), &state))
            }
        };
        let body = match &outcome {
            Outcome::Refused(message) => serde_json::json!({ "refused": true, "message": message }),
            _ => serde_json::json!({ "scanned": true }),
        };
        if let Some(scan) = self.lock().scans.by_id.get_mut(&id) {
            scan.outcome = outcome;
        }
        json(200, &body.to_string())
    }
}

fn no_store(mut r: Response<Vec<u8>>) -> Response<Vec<u8>> {
    r.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    r
}

/// The page polls its status every 300 ms and follows the location once scanned; it also
/// offers a mock phone (a user name and a button) for trying the flow by hand.
const SCRIPT: &str = r#"(function(){
var el=document.getElementById('mock-qr'),msg=document.getElementById('mock-qr-msg'),id=el.getAttribute('data-scan');
function stop(text){msg.textContent=text;el.className='done';}
function poll(){fetch('/mock/qr/status?scan='+encodeURIComponent(id),{cache:'no-store'}).then(function(r){return r.json();}).then(function(j){
if(j.scanned&&j.location){location.href=j.location;return;}
if(j.refused||j.expired){stop(j.message);return;}
if(j.error){stop(j.error);return;}
setTimeout(poll,300);}).catch(function(){setTimeout(poll,300);});}
setTimeout(poll,300);
document.getElementById('mock-phone').addEventListener('submit',function(e){e.preventDefault();
var u=document.getElementById('mock-user').value;
fetch('/mock/qr/scan?scan='+encodeURIComponent(id)+(u?'&user='+encodeURIComponent(u):''),{method:'POST'});});
})();"#;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;\
margin:0;padding:24px 16px;text-align:center;color:#222;background:#f5f5f5}\
main{max-width:360px;margin:0 auto;background:#fff;border-radius:12px;padding:24px 16px}\
h1{font-size:20px;margin:0 0 4px}p{margin:8px 0}.en{color:#666;font-size:14px}\
#mock-qr svg{width:100%;max-width:240px;height:auto}#mock-qr.done svg{opacity:.2}\
#mock-qr-msg{font-weight:600}form{margin-top:16px;font-size:14px;color:#666}\
input,button{font-size:16px;padding:6px 8px;margin:4px}";

fn render(provider: Provider, id: &str) -> String {
    let (title, zh, en) = match provider {
        Provider::Corp => {
            ("企业微信登录 · WeCom sign-in", "请使用企业微信扫描二维码登录", "Scan with WeCom to sign in")
        }
        Provider::Website => {
            ("微信登录 · Sign in with WeChat", "请使用微信扫描二维码登录", "Scan with WeChat to sign in")
        }
    };
    let qr = crate::pages::h5::qr_svg(&format!("mock-qr:{id}"));
    let id = escape(id);
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} (mock)</title><style>{STYLE}</style></head><body><main>\
         <h1>{title}</h1><div id=\"mock-qr\" data-scan=\"{id}\">{qr}</div>\
         <p id=\"mock-qr-msg\">{zh}<br><span class=\"en\">{en}</span></p>\
         <form id=\"mock-phone\">模拟手机 Mock phone: <input id=\"mock-user\" placeholder=\"user\" autocomplete=\"off\">\
         <button type=\"submit\">扫码 Scan</button></form></main><script>{SCRIPT}</script></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_scan_id_and_polls_its_status() {
        let page = render(Provider::Corp, "abc123");
        assert!(page.contains(r#"<div id="mock-qr" data-scan="abc123">"#));
        assert!(page.contains("/mock/qr/status?scan=") && page.contains("setTimeout(poll,300)"));
        assert!(page.contains("企业微信") && page.contains("<svg"));
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "no external resources");
        assert!(render(Provider::Website, "x").contains("请使用微信扫描二维码登录"));
    }
}
