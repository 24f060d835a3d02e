//! Who a browser is: the [`Session`] it holds, in a sealed cookie of its app or app host
//! ([`Sessions`]), and the sealed cookie type every gateway cookie is ([`SealedCookie`]).

pub mod cookie;
mod opened;
pub mod seal;
mod sessions;

use serde::{Deserialize, Serialize};

use crate::wechat::{Scope, Subject};
pub use cookie::SealedCookie;
pub use sessions::{Sessions, Unconfirmed};

/// The id of one session, which logout revokes: 16 base62 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl SessionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A logged-in browser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "o")]
    pub openid: String,
    #[serde(rename = "a")]
    pub appid: String,
    #[serde(rename = "i")]
    pub issued: u64,
    #[serde(rename = "e")]
    pub expires: u64,
    #[serde(rename = "s")]
    pub scope: Scope,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// Whose id `openid` is: the account's openid unless said otherwise.
    #[serde(rename = "k", default, skip_serializing_if = "Subject::is_default")]
    pub subject: Subject,
    /// The appid `openid` belongs to, when not `appid` (a website app's, from the desktop).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub sub_appid: Option<String>,
    /// A WeCom outsider's external contact id.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub external_userid: Option<String>,
    /// The session's id, which logout revokes.
    #[serde(rename = "d")]
    pub sid: SessionId,
    /// On an app host: the id of the login host's session it was handed from; after a scope
    /// upgrade, the family of the session it replaced. Its revocation (a global logout) ends
    /// this one too.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub family: Option<SessionId>,
    /// On an app host: the host it was issued for (a wildcard entry covers several).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Session {
    /// The family whose revocation ends this session: the one it was handed from or joined,
    /// else its own id.
    pub fn family_id(&self) -> &SessionId {
        self.family.as_ref().unwrap_or(&self.sid)
    }

    /// The appid the user's id belongs to: the website app's after a desktop sign-in, else
    /// the app's (for WeCom, the corp's).
    pub fn id_appid(&self) -> &str {
        self.sub_appid.as_deref().unwrap_or(&self.appid)
    }

    /// Does this session carry what `scope` gives?
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scope.covers(scope)
    }
}
