//! The authorize URL, built exactly as WeChat's regex checks it; WeCom's, which adds the
//! app's `agentid` after `state`; and the desktop QR sign-in pages of both.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::Scope;
use crate::config::{DesktopLogin, Provider, WechatConfig};

/// What `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes a whole value as `encodeURIComponent` does.
pub fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, URI_COMPONENT).to_string()
}

/// `<authorize_url>?appid=..&redirect_uri=..&response_type=code&scope=..&state=..#wechat_redirect`
///
/// The parameters come in the one order WeChat accepts, `redirect_uri` is encoded as a whole,
/// and the URL ends in the mandatory `#wechat_redirect`. `state` must already be base62.
pub fn authorize_url(base: &str, appid: &str, redirect_uri: &str, scope: &str, state: &str) -> String {
    debug_assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
    format!(
        "{base}?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
        encode_component(appid),
        encode_component(redirect_uri),
        encode_component(scope),
        state,
    )
}

/// Where a browser logs in to `w`'s account, coming back to `redirect_uri` with `state`:
/// the silent login in WeChat's (or WeCom's) browser, or with `desktop`, the page whose QR
/// code the user scans (WeChat's website login, or WeCom's web login).
pub fn sign_in_url(w: &WechatConfig, desktop: bool, redirect_uri: &str, scope: Scope, state: &str) -> String {
    let qr = w.desktop.as_ref().filter(|_| desktop);
    match (&w.provider, qr) {
        (Provider::Wecom { agentid }, Some(d)) => format!(
            "{}?login_type=CorpApp&appid={}&agentid={}&redirect_uri={}&state={}",
            d.qr_url,
            encode_component(&w.appid),
            encode_component(agentid),
            encode_component(redirect_uri),
            encode_component(state),
        ),
        (Provider::Wechat, Some(DesktopLogin { qr_url, website: Some(site) })) => {
            authorize_url(qr_url.as_str(), &site.appid, redirect_uri, "snsapi_login", state)
        }
        (Provider::Wecom { agentid }, _) => {
            // WeCom: `agentid` follows `state`; snsapi_base is the silent login.
            let url = authorize_url(w.authorize_url.as_str(), &w.appid, redirect_uri, Scope::Base.as_str(), state);
            let (head, fragment) = url.split_once('#').unwrap_or((&url, "wechat_redirect"));
            format!("{head}&agentid={}#{fragment}", encode_component(agentid))
        }
        (Provider::Wechat, _) => authorize_url(w.authorize_url.as_str(), &w.appid, redirect_uri, scope.as_str(), state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_form_order_encoding_and_fragment() {
        let url = authorize_url(
            "https://open.weixin.qq.com/connect/oauth2/authorize",
            "wx1234567890abcdef",
            "https://h5.example.com/.gateway/callback?x=1&y=2",
            "snsapi_base",
            "Ab3dEf9",
        );
        assert_eq!(
            url,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef\
             &redirect_uri=https%3A%2F%2Fh5.example.com%2F.gateway%2Fcallback%3Fx%3D1%26y%3D2\
             &response_type=code&scope=snsapi_base&state=Ab3dEf9#wechat_redirect"
        );
    }

    #[test]
    fn parameters_appear_in_wechat_order() {
        let url = authorize_url("https://w/a", "wx1", "https://h/c", "snsapi_userinfo", "s");
        let query = url.split_once('?').unwrap().1.split_once('#').unwrap().0;
        let names: Vec<&str> = query.split('&').map(|kv| kv.split_once('=').unwrap().0).collect();
        assert_eq!(names, ["appid", "redirect_uri", "response_type", "scope", "state"]);
        assert!(url.ends_with("#wechat_redirect"));
    }

    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(encode_component("a b/c?d=é!*'()~"), "a%20b%2Fc%3Fd%3D%C3%A9!*'()~");
    }
}
