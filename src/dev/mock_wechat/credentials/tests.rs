//! The credentials' rules on a manual clock, driving the handlers directly.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dev::mock_wechat::MockConfig;
use crate::util::clock::ManualClock;

pub(crate) const APPID: &str = "wxcred00000000001";
pub(crate) const SECRET: &str = "credential-secret";
pub(crate) const DOMAIN: &str = "h5.test";
/// 10:00 in Beijing; the next Beijing day starts 14 hours later.
const START: u64 = 1_702_087_200;
const TO_NEXT_DAY: u64 = 14 * 3600;

/// A mock with these rules on a manual clock.
pub(crate) fn mock(rules: CredentialRules) -> (MockWechat, ManualClock) {
    let clock = ManualClock::new(START);
    let cfg = MockConfig { domains: vec![DOMAIN.into()], rules, ..MockConfig::for_tests(APPID, SECRET) };
    (MockWechat::with_clock(cfg, Arc::new(clock.clone())), clock)
}

/// A well-formed `cgi-bin/token` query.
pub(crate) fn token_query() -> String {
    format!("grant_type=client_credential&appid={APPID}&secret={SECRET}")
}

fn stable_body(force: bool) -> Vec<u8> {
    serde_json::json!({ "grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force })
        .to_string()
        .into_bytes()
}

fn code<T: std::fmt::Debug>(r: Result<T, Refusal>) -> i64 {
    r.expect_err("refused").0
}

fn ticket_of(m: &MockWechat, token: &str) -> Result<(String, u64), Refusal> {
    m.ticket(&format!("access_token={token}&type=jsapi"))
}

#[test]
fn a_new_classic_token_clobbers_the_earlier_ones_after_the_grace() {
    let (m, clock) = mock(CredentialRules { token_grace: Duration::from_secs(60), ..CredentialRules::default() });
    let (a, expires_in) = m.classic_token(&token_query(), None).unwrap();
    assert_eq!(expires_in, 7200);
    assert!(a.len() >= 160 && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    clock.advance(100);
    let (b, _) = m.classic_token(&token_query(), None).unwrap();
    assert_ne!(a, b);
    clock.advance(59);
    assert!(m.token_valid(&a) && m.token_valid(&b));
    clock.advance(1);
    assert_eq!(m.use_token(&a), Err(INVALID));
    assert!(m.token_valid(&b));
    // The grace never lengthens a token's life: issued near b's end, b still dies at its expiry.
    clock.advance(7200 - 60 - 10);
    let (_c, _) = m.classic_token(&token_query(), None).unwrap();
    clock.advance(10);
    assert_eq!(m.use_token(&b), Err(EXPIRED));
    assert_eq!(m.stats().tokens_issued, 3);
}

#[test]
fn the_stable_token_is_shared_until_its_renewal_and_both_work_meanwhile() {
    let (m, clock) = mock(CredentialRules::default());
    let (a, e) = m.stable_token(&stable_body(false), None).unwrap();
    assert_eq!(e, 7200);
    clock.advance(1000);
    assert_eq!(m.stable_token(&stable_body(false), None).unwrap(), (a.clone(), 6200));
    // Less than 300 s left: a new one, the old one working until its own expiry.
    clock.advance(6200 - 299);
    let (b, e) = m.stable_token(&stable_body(false), None).unwrap();
    assert_ne!(a, b);
    assert_eq!(e, 7200);
    assert!(m.token_valid(&a));
    clock.advance(299);
    assert_eq!(m.use_token(&a), Err(EXPIRED));
    assert!(m.token_valid(&b));
    // Separate from cgi-bin/token's: a classic token does not clobber it.
    m.classic_token(&token_query(), None).unwrap();
    m.classic_token(&token_query(), None).unwrap();
    clock.advance(400);
    assert!(m.token_valid(&b));
    // Invalidated: the next normal call issues a new one.
    m.invalidate_tokens();
    assert_eq!(m.use_token(&b), Err(INVALID));
    let (c, _) = m.stable_token(&stable_body(false), None).unwrap();
    assert!(c != b && m.token_valid(&c));
    assert_eq!(m.stats().stable_calls, 4);
}

#[test]
fn a_short_lived_stable_token_is_renewed_when_it_expires() {
    let (m, clock) = mock(CredentialRules { token_lifetime: Duration::from_secs(100), ..CredentialRules::default() });
    let (a, _) = m.stable_token(&stable_body(false), None).unwrap();
    clock.advance(99);
    assert_eq!(m.stable_token(&stable_body(false), None).unwrap(), (a.clone(), 1));
    clock.advance(1);
    assert_ne!(m.stable_token(&stable_body(false), None).unwrap().0, a);
}

#[test]
fn force_refresh_kills_the_old_token_at_most_once_in_30_s_and_20_a_day() {
    let (m, clock) = mock(CredentialRules { force_daily_limit: 2, ..CredentialRules::default() });
    let (a, _) = m.stable_token(&stable_body(false), None).unwrap();
    let (b, _) = m.stable_token(&stable_body(true), None).unwrap();
    assert_ne!(a, b);
    assert_eq!(m.use_token(&a), Err(INVALID));
    // Within 30 s: the current token, unchanged, not counted.
    clock.advance(29);
    assert_eq!(m.stable_token(&stable_body(true), None).unwrap().0, b);
    assert_eq!(m.stats().forced_refreshes, 1);
    clock.advance(1);
    let (c, _) = m.stable_token(&stable_body(true), None).unwrap();
    assert!(c != b && !m.token_valid(&b));
    clock.advance(30);
    assert_eq!(code(m.stable_token(&stable_body(true), None)), 45009);
    assert!(m.token_valid(&c), "a refused refresh kills nothing");
    assert_eq!(m.stable_token(&stable_body(false), None).unwrap().0, c);
    clock.advance(TO_NEXT_DAY);
    assert!(m.stable_token(&stable_body(true), None).is_ok());
    assert_eq!(m.stats().forced_refreshes, 3);
}

#[test]
fn daily_quotas_end_at_the_limit_and_start_again_on_the_next_beijing_day() {
    let rules = CredentialRules { token_daily_limit: 2, stable_daily_limit: 1, ..CredentialRules::default() };
    let (m, clock) = mock(rules);
    m.classic_token(&token_query(), None).unwrap();
    m.classic_token(&token_query(), None).unwrap();
    let refused = m.classic_token(&token_query(), None).unwrap_err();
    assert_eq!((refused.0, refused.1.as_ref()), (45009, "reach max api daily quota limit"));
    m.stable_token(&stable_body(false), None).unwrap();
    assert_eq!(code(m.stable_token(&stable_body(false), None)), 45009);
    // 23:59:59 in Beijing is still the same day.
    clock.advance(TO_NEXT_DAY - 1);
    assert_eq!(code(m.classic_token(&token_query(), None)), 45009);
    clock.advance(1);
    m.classic_token(&token_query(), None).unwrap();
    m.classic_token(&token_query(), None).unwrap();
    assert_eq!(code(m.classic_token(&token_query(), None)), 45009);
    assert!(m.stable_token(&stable_body(false), None).is_ok());
    assert_eq!(m.stats().token_calls, 7);
}

#[test]
fn only_allowed_ips_get_tokens() {
    let allowed: IpAddr = "10.0.0.1".parse().unwrap();
    let (m, _) = mock(CredentialRules { allowed_ips: Some(vec![allowed]), ..CredentialRules::default() });
    assert!(m.classic_token(&token_query(), Some(allowed)).is_ok());
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert!(m.stable_token(&stable_body(false), Some(mapped)).is_ok());
    let other = m.classic_token(&token_query(), Some("10.0.0.2".parse().unwrap())).unwrap_err();
    assert_eq!((other.0, other.1.as_ref()), (40164, "invalid ip 10.0.0.2 ipv6 ::ffff:10.0.0.2, not in whitelist"));
    assert_eq!(code(m.stable_token(&stable_body(false), Some("10.0.0.2".parse().unwrap()))), 40164);
    assert_eq!(code(m.classic_token(&token_query(), None)), 40164);
    m.set_allowed_ips(None);
    assert!(m.classic_token(&token_query(), Some("10.0.0.2".parse().unwrap())).is_ok());
    m.set_allowed_ips(Some(vec!["10.0.0.3".parse().unwrap()]));
    assert_eq!(code(m.classic_token(&token_query(), Some(allowed))), 40164);
}

#[test]
fn the_account_is_checked_in_wechats_order() {
    let (m, _) = mock(CredentialRules::default());
    let cases = [
        (format!("grant_type=authorization_code&appid={APPID}&secret={SECRET}"), 40002),
        (format!("appid={APPID}&secret={SECRET}"), 40002),
        (format!("grant_type=client_credential&secret={SECRET}"), 41002),
        (format!("grant_type=client_credential&appid=wxOTHER&secret={SECRET}"), 40013),
        (format!("grant_type=client_credential&appid={APPID}"), 41004),
        (format!("grant_type=client_credential&appid={APPID}&secret=wrong"), 40125),
        ("grant_type=client_credential&appid=wxOTHER&secret=wrong".to_string(), 40013),
    ];
    for (q, expected) in cases {
        assert_eq!(code(m.classic_token(&q, None)), expected, "{q}");
    }
    let body = |secret: &str| {
        serde_json::json!({ "grant_type": "client_credential", "appid": APPID, "secret": secret }).to_string()
    };
    assert_eq!(code(m.stable_token(body("wrong").as_bytes(), None)), 40125);
    assert_eq!(code(m.stable_token(b"grant_type=client_credential", None)), 47001);
    assert_eq!(code(m.stable_token(b"", None)), 47001);
    assert!(m.stable_token(body(SECRET).as_bytes(), None).is_ok(), "force_refresh may be left out");
    assert_eq!(m.stats().tokens_issued, 1, "refused calls issue nothing");
}

#[test]
fn a_ticket_is_bound_to_its_token_and_dies_with_it() {
    let (m, clock) = mock(CredentialRules { token_grace: Duration::from_secs(10), ..CredentialRules::default() });
    let (a, _) = m.classic_token(&token_query(), None).unwrap();
    let (ta, e) = ticket_of(&m, &a).unwrap();
    assert_eq!(e, 7200);
    assert!(ta.len() >= 80 && m.ticket_valid(&ta));
    clock.advance(100);
    assert_eq!(ticket_of(&m, &a).unwrap(), (ta.clone(), 7100));
    let (b, _) = m.classic_token(&token_query(), None).unwrap();
    let (tb, _) = ticket_of(&m, &b).unwrap();
    assert_ne!(ta, tb);
    assert!(m.ticket_valid(&ta), "a's grace");
    clock.advance(10);
    assert!(!m.ticket_valid(&ta) && m.ticket_valid(&tb));
    assert_eq!(code(ticket_of(&m, &a)), 40001);
    assert_eq!(code(m.ticket(&format!("access_token={b}&type=wx_card"))), 40097);
    assert_eq!(code(m.ticket(&format!("access_token={b}"))), 40097);
    m.invalidate_tokens();
    assert!(!m.ticket_valid(&tb));
    assert!(!m.ticket_valid("made-up"));
    assert_eq!(m.stats().tickets_issued, 2);
}

#[test]
fn uses_tell_a_replaced_token_from_an_expired_one() {
    let (m, clock) = mock(CredentialRules { ticket_daily_limit: 1, ..CredentialRules::default() });
    assert_eq!(m.use_token(""), Err((41001, "access_token missing")));
    assert_eq!(m.use_token("made-up"), Err(INVALID));
    assert_eq!(code(m.ticket("type=jsapi")), 41001);
    let (a, _) = m.stable_token(&stable_body(false), None).unwrap();
    assert!(ticket_of(&m, &a).is_ok());
    assert_eq!(code(ticket_of(&m, &a)), 45009);
    clock.advance(7200);
    assert_eq!(m.use_token(&a), Err(EXPIRED));
    assert_eq!(code(ticket_of(&m, &a)), 42001);
    let (b, _) = m.stable_token(&stable_body(false), None).unwrap();
    m.stable_token(&stable_body(true), None).unwrap();
    assert_eq!(m.use_token(&b), Err(INVALID));
}

#[test]
fn queued_faults_answer_the_next_credential_calls() {
    let (m, _) = mock(CredentialRules::default());
    m.inject_credential_fault(-1);
    m.inject_credential_fault(45009);
    assert_eq!(code(m.classic_token(&token_query(), None)), -1);
    assert_eq!(code(m.stable_token(&stable_body(false), None)), 45009);
    let (t, _) = m.classic_token(&token_query(), None).unwrap();
    m.inject_credential_fault(40001);
    assert_eq!(code(ticket_of(&m, &t)), 40001);
    assert!(ticket_of(&m, &t).is_ok());
    let s = m.stats();
    assert_eq!((s.token_calls, s.stable_calls, s.ticket_calls, s.tokens_issued), (2, 1, 2, 1));
}
