//! Who logs an app's users in, as one [`WechatConfig`] (the account): a WeChat Official
//! Account (`[wechat]`, the default) or a WeCom self-built app (`provider = "wecom"`,
//! `[wecom]`); and the desktop sign-in by QR code that
//! either may offer instead of the "open in WeChat" page (`desktop_login = true`; for WeChat,
//! with the open platform's website app in `[wechat.website]`).

use std::time::Duration;

use url::Url;

use super::reader::Table;
use super::secrets::SecretLoader;
use super::values::{parse_http_url, parse_scope};
use super::Scope;
use crate::util::duration;
use crate::util::secret::Secret;

const WECOM_AUTHORIZE_URL: &str = "https://open.weixin.qq.com/connect/oauth2/authorize";
const WECOM_API_BASE: &str = "https://qyapi.weixin.qq.com";
const WECOM_QR_URL: &str = "https://login.work.weixin.qq.com/wwlogin/sso/login";
const WEBSITE_QR_URL: &str = "https://open.weixin.qq.com/connect/qrconnect";

const DEFAULT_AUTHORIZE_URL: &str = "https://open.weixin.qq.com/connect/oauth2/authorize";
const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
const DEFAULT_JSSDK_URL: &str = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js";

/// `[wechat]`; without the AppSecret when this gateway never runs the app's logins.
pub(super) fn wechat_section(mut t: Table, secrets: &SecretLoader, logins_here: bool) -> Option<WechatConfig> {
    let appid: Option<String> = t.req("appid");
    check_id(&t, "appid", &appid, "the account's AppID (letters and digits, like wx1234567890abcdef)");
    let secret = account_secret(&mut t, secrets, logins_here);
    let scope = t.parsed("scope", parse_scope).unwrap_or(Scope::Base);
    let authorize_url = t
        .parsed("authorize_url", parse_http_url)
        .unwrap_or_else(|| Url::parse(DEFAULT_AUTHORIZE_URL).expect("constant URL"));
    let api_base =
        t.parsed("api_base", parse_http_url).unwrap_or_else(|| Url::parse(DEFAULT_API_BASE).expect("constant URL"));
    let connect_timeout = t.parsed("connect_timeout", duration::parse).unwrap_or(Duration::from_secs(2));
    let timeout = t.parsed("timeout", duration::parse).unwrap_or(Duration::from_secs(5));
    let token_api = t
        .parsed("token_api", |s| match s {
            "stable_token" => Ok(TokenApi::Stable),
            "token" => Ok(TokenApi::Classic),
            _ => Err(format!(
                "{s:?} must be \"stable_token\" (the default: replicas and other servers never invalidate each other's token) or \"token\""
            )),
        })
        .unwrap_or(TokenApi::Stable);
    let jssdk_url =
        t.parsed("jssdk_url", parse_http_url).unwrap_or_else(|| Url::parse(DEFAULT_JSSDK_URL).expect("constant URL"));
    let desktop = super::provider::wechat_desktop(&mut t, secrets);
    t.finish();
    Some(WechatConfig {
        appid: appid?,
        secret: secret?,
        scope,
        authorize_url,
        api_base,
        connect_timeout,
        timeout,
        token_api,
        jssdk_url,
        provider: Provider::Wechat,
        desktop: desktop?,
    })
}

/// The account's `secret`: `Some(None)` where logins run elsewhere (and none is given);
/// `None` when it is missing or unreadable (reported).
pub(super) fn account_secret(t: &mut Table, secrets: &SecretLoader, logins_here: bool) -> Option<Option<Secret>> {
    if logins_here {
        return t.secret("secret").and_then(|s| secrets.load(s, &t.path_of("secret"), 1)).map(Some);
    }
    if t.has("secret") {
        t.error("secret", "is not needed with logins = \"elsewhere\": this gateway never exchanges a code");
    }
    t.opt::<toml::Value>("secret");
    Some(None)
}

/// An AppID, corp id or agent id: letters and digits only; `what` says which, for its error.
pub(super) fn check_id(t: &Table, key: &str, value: &Option<String>, what: &str) {
    if value.as_ref().is_some_and(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric())) {
        t.error(key, format!("must be {what}"));
    }
}

/// The account an app's users log in with, and where its endpoints are: the WeChat Official
/// Account, or for a WeCom app the corp (`appid` its corp id, `secret` the app's Secret).
#[derive(Debug, Clone)]
pub struct WechatConfig {
    pub appid: String,
    /// `None` only where logins run elsewhere ([`super::App::logins_here`] is false).
    pub secret: Option<Secret>,
    pub scope: Scope,
    /// `https://open.weixin.qq.com/connect/oauth2/authorize` unless pointed at a mock.
    pub authorize_url: Url,
    /// `https://api.weixin.qq.com` unless pointed at a mock.
    pub api_base: Url,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Which API fetches the account's global access_token.
    pub token_api: TokenApi,
    /// The JS-SDK that `<prefix>/jssdk.js` loads on a page that has not loaded it itself.
    pub jssdk_url: Url,
    /// WeChat's Official Account, or a WeCom app.
    pub provider: Provider,
    /// Desktop sign-in by QR code, when the app offers it.
    pub desktop: Option<DesktopLogin>,
}

impl WechatConfig {
    /// What the account's global credentials are kept under: the appid, or for a WeCom app
    /// `corpid/agentid` (each app of a corp has a secret and a token of its own).
    pub fn account_key(&self) -> String {
        match &self.provider {
            Provider::Wechat => self.appid.clone(),
            Provider::Wecom { agentid } => format!("{}/{agentid}", self.appid),
        }
    }
}

/// The API that fetches an account's global access_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenApi {
    /// `POST /cgi-bin/stable_token`: callers never invalidate each other's token (the default).
    Stable,
    /// `GET /cgi-bin/token`: every call replaces the token; the previous one dies 5 minutes later.
    Classic,
}

/// Who logs an app's users in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Provider {
    /// A WeChat Official Account (公众号): every user is an openid of the account.
    #[default]
    Wechat,
    /// A WeCom (企业微信) self-built app of the corp whose id is the account's `appid`:
    /// members are userids, other users openids.
    Wecom { agentid: String },
}

impl Provider {
    /// Its name in the config, the token's `provider` claim and the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Wechat => "wechat",
            Provider::Wecom { .. } => "wecom",
        }
    }

    pub fn is_wecom(&self) -> bool {
        matches!(self, Provider::Wecom { .. })
    }
}

/// Desktop sign-in by QR code, in place of the "open in WeChat" page for desktop browsers.
#[derive(Debug, Clone)]
pub struct DesktopLogin {
    /// The page with the QR code: WeChat's `qrconnect`, or WeCom's web login.
    pub qr_url: Url,
    /// WeChat only: the open platform's website app whose codes that page issues.
    pub website: Option<Website>,
}

/// An open platform website application (网站应用), for WeChat's desktop sign-in.
#[derive(Debug, Clone)]
pub struct Website {
    pub appid: String,
    pub secret: Secret,
}

/// `desktop_login` and, for WeChat, `[wechat.website]`: `Some(None)` when desktop sign-in is
/// off; `None` when something is wrong (reported).
pub(super) fn wechat_desktop(t: &mut Table, secrets: &SecretLoader) -> Option<Option<DesktopLogin>> {
    let on = t.opt::<bool>("desktop_login").unwrap_or(false);
    let website = t.table("website");
    match (on, website) {
        (false, None) => Some(None),
        (false, Some(_)) => {
            t.error("website", "is only used with desktop_login = true");
            None
        }
        (true, None) => {
            t.error(
                "desktop_login",
                "needs [wechat.website]: the appid and secret of the open platform's website app (网站应用) whose QR login desktop browsers use",
            );
            None
        }
        (true, Some(mut w)) => {
            let appid: Option<String> = w.req("appid");
            check_id(&w, "appid", &appid, "the website app's AppID (letters and digits, like wx1234567890abcdef)");
            let secret = w.secret("secret").and_then(|s| secrets.load(s, &w.path_of("secret"), 1));
            let qr_url = w
                .parsed("qr_login_url", parse_http_url)
                .unwrap_or_else(|| Url::parse(WEBSITE_QR_URL).expect("constant URL"));
            w.finish();
            let website = Website { appid: appid?, secret: secret? };
            Some(Some(DesktopLogin { qr_url, website: Some(website) }))
        }
    }
}

/// `[wecom]`: the corp, its self-built app and where WeCom's endpoints are. Read into the
/// account the app logs in with (`appid` is the corp id, `secret` the app's corpsecret).
pub(super) fn wecom_section(mut t: Table, secrets: &SecretLoader, logins_here: bool) -> Option<WechatConfig> {
    let corpid: Option<String> = t.req("corpid");
    check_id(
        &t,
        "corpid",
        &corpid,
        "the corp's ID (letters and digits: 我的企业 > 企业信息 > 企业ID, like ww1234567890abcdef)",
    );
    let agentid: Option<String> = match t.opt::<toml::Value>("agentid") {
        Some(toml::Value::Integer(n)) if n > 0 => Some(n.to_string()),
        Some(toml::Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Some(s),
        Some(_) => {
            t.error("agentid", "must be the app's AgentId (digits, like 1000002)");
            None
        }
        None => {
            t.error("agentid", "is required (应用管理 > the app > AgentId)");
            None
        }
    };
    let secret = account_secret(&mut t, secrets, logins_here);
    if let Some(scope) = t.opt::<String>("scope").filter(|s| s != "snsapi_base") {
        t.error("scope", format!("{scope:?}: WeCom's silent login is snsapi_base (the only scope offered here)"));
    }
    let url = |t: &mut Table, key: &str, default: &str| {
        t.parsed(key, parse_http_url).unwrap_or_else(|| Url::parse(default).expect("constant URL"))
    };
    let authorize_url = url(&mut t, "authorize_url", WECOM_AUTHORIZE_URL);
    let api_base = url(&mut t, "api_base", WECOM_API_BASE);
    let qr_url = url(&mut t, "qr_login_url", WECOM_QR_URL);
    let connect_timeout = t.parsed("connect_timeout", duration::parse).unwrap_or(Duration::from_secs(2));
    let timeout = t.parsed("timeout", duration::parse).unwrap_or(Duration::from_secs(5));
    let desktop = t.opt::<bool>("desktop_login").unwrap_or(false).then_some(DesktopLogin { qr_url, website: None });
    t.finish();
    Some(WechatConfig {
        appid: corpid?,
        secret: secret?,
        scope: Scope::Base,
        authorize_url,
        api_base,
        connect_timeout,
        timeout,
        token_api: TokenApi::Stable,
        jssdk_url: Url::parse(DEFAULT_JSSDK_URL).expect("constant URL"),
        provider: Provider::Wecom { agentid: agentid? },
        desktop,
    })
}
