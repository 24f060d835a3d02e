//! WeCom's server side: `GET /cgi-bin/gettoken` (the corp token: the same one while it lives,
//! a new one after; only from the corp's trusted IPs when it has a list) and
//! `GET /cgi-bin/auth/getuserinfo` (a single-use code into `userid`, or `openid` and
//! `external_userid`). Errors are HTTP 200 JSON served as `text/plain`, as WeCom answers.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use http::Response;

use super::wecom::{external_userid, Membership};
use super::{param, text, MockWechat, CODE_LIFETIME_SECS};
use crate::util::clock::base62_nonce;

/// The corp token lives this long, as at WeCom.
pub const CORP_TOKEN_LIFETIME_SECS: u64 = 7200;
/// A member's `user_ticket` lives this long.
const USER_TICKET_LIFETIME_SECS: u64 = 1800;
/// Dead tokens are forgotten this long after their expiry (until then: 42001, not 40014).
const FORGET_AFTER_SECS: u64 = 86_400;
const TOKEN_LEN: usize = 64;
const CODE_LEN: usize = 43;

type Refusal = (i64, Cow<'static, str>);

fn refuse(errcode: i64, msg: &'static str) -> Refusal {
    (errcode, Cow::Borrowed(msg))
}

struct CorpCode {
    user: String,
    issued: u64,
}

struct CorpToken {
    expires: u64,
    /// Killed by [`MockWechat::invalidate_corp_token`].
    killed: bool,
}

/// WeCom's part of the mock's state.
#[derive(Default)]
pub(super) struct CorpState {
    codes: HashMap<String, CorpCode>,
    tokens: HashMap<String, CorpToken>,
    /// The token gettoken hands out while it lives.
    current: Option<String>,
    /// `None`: any caller may fetch the corp token.
    trusted_ips: Option<Vec<IpAddr>>,
    /// Errcodes the next gettoken calls answer.
    token_faults: VecDeque<i64>,
}

impl CorpState {
    /// WeCom answers only the corp's trusted IPs, when it has a list: `60020` to any other.
    fn check_peer(&self, peer: Option<IpAddr>) -> Result<(), Refusal> {
        let peer = peer.map(|p| p.to_canonical());
        match &self.trusted_ips {
            Some(list) if !peer.is_some_and(|ip| list.iter().any(|a| a.to_canonical() == ip)) => {
                let from = peer.map_or("unknown".to_string(), |ip| ip.to_string());
                Err((60020, format!("not allow to access from your ip, from ip: {from}").into()))
            }
            _ => Ok(()),
        }
    }

    fn check_token(&self, token: &str, now: u64) -> Result<(), Refusal> {
        match self.tokens.get(token) {
            _ if token.is_empty() => Err(refuse(41001, "access_token missing")),
            None => Err(refuse(40014, "invalid access_token")),
            Some(t) if t.killed => Err(refuse(40014, "invalid access_token")),
            Some(t) if now >= t.expires => Err(refuse(42001, "access_token expired")),
            Some(_) => Ok(()),
        }
    }
}

impl MockWechat {
    /// The corp's trusted IPs, checked against the TCP peer of gettoken and getuserinfo
    /// (`None`: any caller).
    pub fn set_corp_trusted_ips(&self, ips: Option<Vec<IpAddr>>) {
        self.lock().corp.trusted_ips = ips;
    }

    /// The corp token dies now (later calls with it: 40014); the next gettoken issues a new one.
    pub fn invalidate_corp_token(&self) {
        let mut st = self.lock();
        st.corp.tokens.values_mut().for_each(|t| t.killed = true);
        st.corp.current = None;
    }

    /// The next gettoken call answers `errcode` and does nothing else (faults queue up).
    pub fn inject_corp_token_fault(&self, errcode: i64) {
        self.lock().corp.token_faults.push_back(errcode);
    }

    /// Whether `token` is a living corp token.
    pub fn corp_token_valid(&self, token: &str) -> bool {
        let now = self.clock.now();
        self.lock().corp.check_token(token, now).is_ok()
    }

    /// A new single-use code of the corp for `user`, living five minutes.
    pub(super) fn issue_corp_code(&self, user: &str) -> String {
        let code = base62_nonce(self.entropy.as_ref(), CODE_LEN);
        let now = self.clock.now();
        let mut st = self.lock();
        st.corp.codes.retain(|_, c| now < c.issued + CODE_LIFETIME_SECS);
        st.corp.codes.insert(code.clone(), CorpCode { user: user.to_string(), issued: now });
        code
    }

    /// `GET /cgi-bin/gettoken?corpid=&corpsecret=`.
    pub(super) fn corp_gettoken(&self, query: &str, peer: Option<IpAddr>) -> Response<Vec<u8>> {
        match self.corp_token(query, peer) {
            Ok((token, expires_in)) => {
                let body = serde_json::json!({
                    "errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in,
                });
                text(200, "text/plain", body.to_string())
            }
            Err((errcode, msg)) => self.error(errcode, &msg),
        }
    }

    /// The living corp token and its remaining seconds, or a new one.
    fn corp_token(&self, query: &str, peer: Option<IpAddr>) -> Result<(String, u64), Refusal> {
        let get = |k: &str| param(query, k).filter(|v| !v.is_empty());
        let now = self.clock.now();
        let mut st = self.lock();
        st.stats.corp_token_calls += 1;
        if let Some(c) = st.corp.token_faults.pop_front() {
            return Err(refuse(c, "system error"));
        }
        let corpid = get("corpid").ok_or_else(|| refuse(41002, "corpid missing"))?;
        let corp =
            self.cfg.corp.as_ref().filter(|c| c.corpid == corpid).ok_or_else(|| refuse(40013, "invalid corpid"))?;
        let secret = get("corpsecret").ok_or_else(|| refuse(41004, "corpsecret missing"))?;
        if secret != corp.secret {
            return Err(refuse(40001, "invalid credential"));
        }
        st.corp.check_peer(peer)?;
        let current = st.corp.current.as_ref().filter(|t| st.corp.check_token(t, now).is_ok());
        if let Some(t) = current {
            let expires = st.corp.tokens.get(t).map_or(now, |t| t.expires);
            return Ok((t.clone(), expires - now));
        }
        st.corp.tokens.retain(|_, t| now < t.expires.saturating_add(FORGET_AFTER_SECS));
        let token = base62_nonce(self.entropy.as_ref(), TOKEN_LEN);
        let expires = now.saturating_add(CORP_TOKEN_LIFETIME_SECS);
        st.corp.tokens.insert(token.clone(), CorpToken { expires, killed: false });
        st.corp.current = Some(token.clone());
        st.stats.corp_tokens_issued += 1;
        Ok((token, CORP_TOKEN_LIFETIME_SECS))
    }

    /// `GET /cgi-bin/auth/getuserinfo?access_token=&code=`, only from the trusted IPs, as
    /// every call with the token; queued faults apply.
    pub(super) async fn corp_userinfo(&self, query: &str, peer: Option<IpAddr>) -> Response<Vec<u8>> {
        self.lock().stats.corp_userinfo_calls += 1;
        if let Some(failed) = self.play_fault().await {
            return failed;
        }
        if let Err((errcode, msg)) = self.lock().corp.check_peer(peer) {
            return self.error(errcode, &msg);
        }
        let user = match self.redeem_corp_code(query) {
            Ok(user) => user,
            Err((errcode, msg)) => return self.error(errcode, &msg),
        };
        let Some(corp) = self.cfg.corp.as_ref() else {
            return self.error(40014, "invalid access_token");
        };
        let body = match corp.membership(&user) {
            Membership::Member | Membership::Hidden => serde_json::json!({
                "errcode": 0,
                "errmsg": "ok",
                "userid": user,
                "user_ticket": base62_nonce(self.entropy.as_ref(), 86),
                "expires_in": USER_TICKET_LIFETIME_SECS,
            }),
            Membership::Outsider => serde_json::json!({
                "errcode": 0,
                "errmsg": "ok",
                "openid": super::openid(&corp.corpid, &user),
                "external_userid": external_userid(&corp.corpid, &user),
            }),
        };
        text(200, "text/plain", body.to_string())
    }

    /// Checks the token, then spends the code: its user.
    fn redeem_corp_code(&self, query: &str) -> Result<String, Refusal> {
        let get = |k: &str| param(query, k).unwrap_or_default();
        let now = self.clock.now();
        let mut st = self.lock();
        st.corp.check_token(&get("access_token"), now)?;
        let code = get("code");
        if code.is_empty() {
            return Err(refuse(41008, "missing code"));
        }
        match st.corp.codes.remove(&code) {
            Some(c) if now < c.issued + CODE_LIFETIME_SECS => Ok(c.user),
            _ => Err(refuse(40029, "invalid code")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::dev::mock_wechat::{MockConfig, MockCorp};
    use crate::util::clock::{Clock, ManualClock};

    fn mock() -> (MockWechat, ManualClock) {
        let clock = ManualClock::new(1_702_087_200);
        let cfg = MockConfig {
            corp: Some(MockCorp {
                corpid: "ww1".into(),
                agentid: "1000002".into(),
                secret: "corp-secret".into(),
                domains: vec!["h5.test".into()],
                members: vec!["alice".into()],
                hidden: vec![],
            }),
            ..MockConfig::for_tests("wxoa", "oa-secret")
        };
        (MockWechat::with_clock(cfg, Arc::new(clock.clone())), clock)
    }

    fn errcode(r: Result<(String, u64), Refusal>) -> i64 {
        r.expect_err("refused").0
    }

    #[test]
    fn gettoken_shares_one_token_until_it_expires() {
        let (m, clock) = mock();
        let q = "corpid=ww1&corpsecret=corp-secret";
        let (a, e) = m.corp_token(q, None).unwrap();
        assert_eq!(e, 7200);
        clock.advance(1000);
        assert_eq!(m.corp_token(q, None).unwrap(), (a.clone(), 6200));
        clock.advance(6200);
        let (b, e) = m.corp_token(q, None).unwrap();
        assert_ne!(a, b);
        assert_eq!(e, 7200);
        assert_eq!(m.lock().corp.check_token(&a, clock.now()).unwrap_err().0, 42001);
        m.invalidate_corp_token();
        assert_eq!(m.lock().corp.check_token(&b, clock.now()).unwrap_err().0, 40014);
        assert!(!m.corp_token_valid(&b));
        let s = m.stats();
        assert_eq!((s.corp_token_calls, s.corp_tokens_issued), (3, 2));
    }

    #[test]
    fn gettoken_errors() {
        let (m, _) = mock();
        assert_eq!(errcode(m.corp_token("corpsecret=corp-secret", None)), 41002);
        assert_eq!(errcode(m.corp_token("corpid=ww2&corpsecret=corp-secret", None)), 40013);
        assert_eq!(errcode(m.corp_token("corpid=ww1", None)), 41004);
        assert_eq!(errcode(m.corp_token("corpid=ww1&corpsecret=nope", None)), 40001);
        m.set_corp_trusted_ips(Some(vec!["10.9.9.9".parse().unwrap()]));
        let q = "corpid=ww1&corpsecret=corp-secret";
        assert_eq!(errcode(m.corp_token(q, Some("127.0.0.1".parse().unwrap()))), 60020);
        assert_eq!(errcode(m.corp_token(q, None)), 60020);
        assert!(m.corp_token(q, Some("::ffff:10.9.9.9".parse().unwrap())).is_ok());
        m.inject_corp_token_fault(-1);
        assert_eq!(errcode(m.corp_token(q, Some("10.9.9.9".parse().unwrap()))), -1);
        assert!(m.corp_token(q, Some("10.9.9.9".parse().unwrap())).is_ok());
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let (m, clock) = mock();
        let (token, _) = m.corp_token("corpid=ww1&corpsecret=corp-secret", None).unwrap();
        let code = m.issue_corp_code("alice");
        let q = |c: &str| format!("access_token={token}&code={c}");
        assert_eq!(m.redeem_corp_code(&format!("access_token=nope&code={code}")).unwrap_err().0, 40014);
        assert_eq!(m.redeem_corp_code(&format!("access_token={token}")).unwrap_err().0, 41008);
        assert_eq!(m.redeem_corp_code(&q(&code)).unwrap(), "alice");
        assert_eq!(m.redeem_corp_code(&q(&code)).unwrap_err().0, 40029);
        let late = m.issue_corp_code("bob");
        clock.advance(CODE_LIFETIME_SECS);
        assert_eq!(m.redeem_corp_code(&q(&late)).unwrap_err().0, 40029);
    }
}
