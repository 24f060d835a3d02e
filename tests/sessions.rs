//! Session cookies that are tampered with, foreign, expired or for another app count as no
//! session: the browser logs in again, it never sees an error.

mod common;

use base64::Engine;
use common::*;

async fn assert_sent_to_wechat(h: &Harness, b: &Browser) {
    let forwarded = h.upstream.seen().len();
    let pages = b.walk_until(&h.url("/private"), |u| u.contains("/connect/oauth2/authorize")).await;
    let next = pages.last().unwrap().next_url().unwrap_or_default();
    assert!(next.starts_with(&h.mock_url("/connect/oauth2/authorize?")), "not sent to log in: {next}");
    assert_eq!(h.upstream.seen().len(), forwarded, "the upstream saw nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_cookie_means_a_new_login() {
    let h = Harness::start().await;
    let b = logged_in(&h).await;
    let value = cookie_value(&b.cookies("/"), "ogw_session").unwrap();
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&value).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    b.set_cookie(&format!("ogw_session={tampered}"));
    assert_sent_to_wechat(&h, &b).await;
    b.set_cookie("ogw_session=garbage");
    assert_sent_to_wechat(&h, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_other_app_and_expired_sessions_mean_a_new_login() {
    let h = Harness::start().await;
    let now = openid_gateway::util::clock::Clock::now(&h.clock);
    let b = h.browser();
    let good = format!(r#"{{"o":"oGOOD","a":"{APPID}","i":{now},"e":{}}}"#, now + 3600);
    // Sealed with the gateway's key, it is accepted: the forgery tests below are meaningful.
    b.set_cookie(&format!("ogw_session={}", seal("ogw_session", SESSION_KEY, &good)));
    assert_eq!(b.get(&h.url("/private")).await.status, 200);

    b.set_cookie(&format!("ogw_session={}", seal("ogw_session", "some-other-key-0123456789abcdef0123456789", &good)));
    assert_sent_to_wechat(&h, &b).await;

    let other_app = format!(r#"{{"o":"oGOOD","a":"wxOTHERAPP","i":{now},"e":{}}}"#, now + 3600);
    b.set_cookie(&format!("ogw_session={}", seal("ogw_session", SESSION_KEY, &other_app)));
    assert_sent_to_wechat(&h, &b).await;

    let real = logged_in(&h).await;
    h.clock.advance(7 * 86_400);
    assert_sent_to_wechat(&h, &real).await;
}
