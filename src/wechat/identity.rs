//! Who a login says the browser's user is, for every provider.

use serde::{Deserialize, Serialize};

use super::Scope;

/// Whose id a user's `openid` is, which the token's `sub_type` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// The Official Account's openid.
    #[default]
    #[serde(rename = "openid")]
    Openid,
    /// The open platform website app's openid (a desktop sign-in by QR code); the `unionid`
    /// links it to the same person's openid of the Official Account.
    #[serde(rename = "website_openid")]
    WebsiteOpenid,
    /// A WeCom corp member's `userid`.
    #[serde(rename = "userid")]
    Member,
    /// A WeCom user who is not a member of the corp: an openid in the corp.
    #[serde(rename = "corp_openid")]
    Outsider,
}

impl Subject {
    /// Is the user's id a WeCom one (a member's userid, or an outsider's openid in the corp)?
    pub fn is_wecom(self) -> bool {
        matches!(self, Subject::Member | Subject::Outsider)
    }

    pub fn is_default(&self) -> bool {
        *self == Subject::Openid
    }

    /// Its name in the token's `sub_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Openid => "openid",
            Subject::WebsiteOpenid => "website_openid",
            Subject::Member => "userid",
            Subject::Outsider => "corp_openid",
        }
    }

    /// The provider that names such a user: the token's `provider`.
    pub fn provider(self) -> &'static str {
        if self.is_wecom() {
            "wecom"
        } else {
            "wechat"
        }
    }
}

/// Who WeChat says the browser's user is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user's id: an openid, or a WeCom member's userid ([`Identity::subject`] says).
    pub openid: String,
    #[serde(default)]
    pub subject: Subject,
    /// The appid `openid` belongs to, when it is not the app's own (the website app's).
    #[serde(default)]
    pub sub_appid: Option<String>,
    /// A WeCom outsider's external contact id, when WeCom gives one.
    #[serde(default)]
    pub external_userid: Option<String>,
    pub unionid: Option<String>,
    pub scope: Scope,
    /// `is_snapshotuser: 1`: a virtual openid from WeChat's snapshot page.
    pub snapshot_user: bool,
    /// From `/sns/userinfo`, with `snsapi_userinfo` only.
    pub nickname: Option<String>,
    pub avatar: Option<String>,
    /// The exchange's access token, needed for `/sns/userinfo`; never stored in a session or
    /// shared with other replicas.
    #[serde(skip)]
    pub access_token: Option<String>,
}
