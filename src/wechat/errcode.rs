//! What each WeChat (or WeCom) `errcode` of the code exchange means for the person waiting.

/// The outcome class of an exchange error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrClass {
    /// The code is bad, expired or used: the user starts the login again.
    CodeRejected,
    /// WeChat is busy or limiting: try again a little later.
    Transient,
    /// The gateway's WeChat settings are wrong: only an operator can fix it.
    Misconfigured,
    /// The request reached WeChat without a code.
    MissingCode,
    /// A code WeChat documents nowhere.
    Unknown,
}

/// Classifies an exchange `errcode`, with advice for the operator's log.
pub fn classify(errcode: i64) -> (ErrClass, &'static str) {
    match errcode {
        40029 => (ErrClass::CodeRejected, "invalid code (bad, expired, already used, or for another appid)"),
        40163 => (ErrClass::CodeRejected, "code already used"),
        42003 => (ErrClass::CodeRejected, "code expired"),
        41008 => (ErrClass::MissingCode, "missing code"),
        -1 => (ErrClass::Transient, "WeChat system busy"),
        45011 => (ErrClass::Transient, "API called too frequently"),
        40013 => (ErrClass::Misconfigured, "invalid appid: check wechat.appid (or wecom.corpid)"),
        40125 => (ErrClass::Misconfigured, "invalid appsecret: check wechat.secret"),
        41002 => (ErrClass::Misconfigured, "appid missing: check wechat.appid"),
        41004 => (ErrClass::Misconfigured, "appsecret missing: check wechat.secret"),
        40002 => (ErrClass::Misconfigured, "invalid grant_type"),
        40164 => (
            ErrClass::Misconfigured,
            "this server's IP is not in the account's IP whitelist (mp.weixin.qq.com > 基本配置 > IP白名单)",
        ),
        48001 => (ErrClass::Misconfigured, "API unauthorized: the account lacks 网页授权 permission for this scope"),
        // WeCom's user lookup, with the corp's token.
        60020 => (
            ErrClass::Misconfigured,
            "this server's IP is not among the WeCom app's trusted IPs (work.weixin.qq.com > 应用管理 > the app > 企业可信IP)",
        ),
        40014 | 42001 => (ErrClass::Transient, "the access_token was refused even after a refresh"),
        40056 => (ErrClass::Misconfigured, "invalid agentid: check wecom.agentid"),
        60011 => (ErrClass::Misconfigured, "no privilege: the user is outside the WeCom app's visible range (可见范围)"),
        _ => (ErrClass::Unknown, "unknown error code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_has_a_class() {
        for c in [40029, 40163, 42003] {
            assert_eq!(classify(c).0, ErrClass::CodeRejected, "{c}");
        }
        for c in [-1, 45011] {
            assert_eq!(classify(c).0, ErrClass::Transient, "{c}");
        }
        for c in [40013, 40125, 41002, 41004, 40002, 40164, 48001, 60020, 40056, 60011] {
            assert_eq!(classify(c).0, ErrClass::Misconfigured, "{c}");
        }
        assert_eq!(classify(41008).0, ErrClass::MissingCode);
        assert_eq!(classify(99999).0, ErrClass::Unknown);
    }
}
