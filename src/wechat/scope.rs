//! The authorization scope asked of WeChat, as one type from the config to the token.

use serde::{Deserialize, Serialize};

/// `snsapi_base` (the openid, silently) or `snsapi_userinfo` (with the profile, after consent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[default]
    #[serde(rename = "snsapi_base")]
    Base,
    #[serde(rename = "snsapi_userinfo")]
    Userinfo,
}

impl Scope {
    /// The name WeChat uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::Userinfo => "snsapi_userinfo",
        }
    }

    /// The scope WeChat's answer grants: its `scope` field may list several, comma-separated.
    pub fn granted(answer: &str) -> Self {
        if answer.split(',').any(|s| s.trim() == "snsapi_userinfo") {
            Scope::Userinfo
        } else {
            Scope::Base
        }
    }

    /// Does a session granted `self` carry what `needed` asks for?
    pub fn covers(self, needed: Scope) -> bool {
        needed == Scope::Base || self == Scope::Userinfo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_covers_both_and_base_only_itself() {
        assert!(Scope::Userinfo.covers(Scope::Base) && Scope::Userinfo.covers(Scope::Userinfo));
        assert!(Scope::Base.covers(Scope::Base) && !Scope::Base.covers(Scope::Userinfo));
        assert_eq!(Scope::granted("snsapi_base,snsapi_userinfo"), Scope::Userinfo);
        assert_eq!(Scope::granted("snsapi_base"), Scope::Base);
        assert_eq!(serde_json::to_string(&Scope::Userinfo).unwrap(), "\"snsapi_userinfo\"");
    }
}
