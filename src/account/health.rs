//! How an account's credentials fare: the last refusal and what the operator should do about
//! it, a pause before WeChat is asked again (growing with each failure, never a loop of
//! retries), and what `/readyz` and the metrics say.

use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use super::Kind;
use crate::observe::metrics::Metrics;
use crate::wechat::ExchangeError;

/// The first pause after a failure; it doubles with each one after, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(5);
pub const MAX_PAUSE: Duration = Duration::from_secs(300);
/// The longest pause after a refused use of a token that logins need.
pub const LOGIN_MAX_PAUSE: Duration = Duration::from_secs(30);

/// Does `errcode`, answered to a use of a token, mean the token went bad (and one refresh
/// heals it)?
pub fn token_went_bad(errcode: i64) -> bool {
    matches!(errcode, 40001 | 42001 | 40014)
}

/// What the operator should do about a refusal of the account's credentials.
pub fn advice(e: &ExchangeError) -> &'static str {
    match e {
        ExchangeError::Rejected { errcode, .. } => match errcode {
            45009 => "the account's daily quota of this API is spent: it resets at midnight (Beijing time); the quota can be reset at mp.weixin.qq.com > 开发 > 接口权限, and a server other than this gateway fetching tokens is the likely cause",
            40164 => "this server's outbound IP is not on the account's IP allow-list: add it at mp.weixin.qq.com > 设置与开发 > 基本配置 > IP白名单",
            40125 | 41004 => "the AppSecret is wrong (reset, or another account's): check wechat.secret against mp.weixin.qq.com > 基本配置",
            40013 | 41002 => "the AppID is not an Official Account's: check wechat.appid (or wecom.corpid: not the corp's id)",
            60020 => "this server's outbound IP is not among the WeCom app's trusted IPs: add it at work.weixin.qq.com > 应用管理 > the app > 企业可信IP",
            40056 => "the AgentId is not the WeCom app's: check wecom.agentid",
            -1 => "WeChat is busy: asked again after a pause",
            40001 | 42001 | 40014 => "the token was replaced or expired: refreshed once (refused when fetching a token: the secret is wrong, check wechat.secret or wecom.secret)",
            48001 => "the account lacks the permission for this API (a verified service account is needed for the JS-SDK's sharing APIs)",
            _ => "an error code WeChat documents elsewhere: see the errmsg",
        },
        ExchangeError::Timeout | ExchangeError::Network(_) => {
            "api.weixin.qq.com could not be reached from this server: check its outbound network and DNS"
        }
        ExchangeError::Http(_) | ExchangeError::Malformed(_) => "WeChat answered something unexpected: asked again after a pause",
        ExchangeError::Credential { .. } => "the token this call needs could not be had: see its own refusal",
    }
}

/// One refusal to record.
struct Failed<'a> {
    kind: Kind,
    appid: &'a str,
    e: &'a ExchangeError,
    now_ms: u64,
    /// `fetching` or `using`, for the log.
    doing: &'a str,
    max_pause: Duration,
}

#[derive(Clone)]
struct Failure {
    what: String,
    errcode: Option<i64>,
    /// Consecutive failures.
    count: u32,
    at_ms: u64,
    until_ms: u64,
}

/// The account's health, per credential.
#[derive(Default)]
pub struct Health {
    token: Mutex<Option<Failure>>,
    ticket: Mutex<Option<Failure>>,
}

impl Health {
    fn of(&self, kind: Kind) -> &Mutex<Option<Failure>> {
        match kind {
            Kind::Token => &self.token,
            Kind::Ticket => &self.ticket,
        }
    }

    /// How long WeChat is not asked again after the last failure, if it is not yet over.
    pub fn pausing(&self, kind: Kind, now_ms: u64) -> Option<Duration> {
        let f = self.of(kind).lock();
        f.as_ref().filter(|f| now_ms < f.until_ms).map(|f| Duration::from_millis(f.until_ms - now_ms))
    }

    /// The last failure, said for a person, and its error code.
    pub fn last_error(&self, kind: Kind) -> Option<(String, Option<i64>)> {
        self.of(kind).lock().as_ref().map(|f| (f.what.clone(), f.errcode))
    }

    pub fn succeeded(&self, kind: Kind, appid: &str, metrics: &Metrics) {
        if self.of(kind).lock().take().is_some() {
            log::info!("wechat credentials: account {appid}: the {} is fetched again", kind.name());
        }
        if self.token.lock().is_none() && self.ticket.lock().is_none() {
            metrics.credential_degraded.with_label_values(&[appid]).set(0);
        }
    }

    /// Records a refused fetch, logs it with what to do, and pauses: at most `max_pause`
    /// ([`MAX_PAUSE`], or [`LOGIN_MAX_PAUSE`] for a token that logins need).
    pub fn failed(
        &self,
        kind: Kind,
        appid: &str,
        e: &ExchangeError,
        now_ms: u64,
        metrics: &Metrics,
        max_pause: Duration,
    ) {
        self.record(Failed { kind, appid, e, now_ms, doing: "fetching", max_pause }, metrics);
    }

    /// Records a use of the token refused for a reason only the operator can fix (WeCom's
    /// `60020` on a user lookup: this server is not among the trusted IPs), as a fetch would
    /// have been: logged with what to do, in `/readyz` and the metrics, paused at most
    /// [`LOGIN_MAX_PAUSE`] (logins need the token: once the cause is fixed they come back soon).
    pub fn use_failed(&self, kind: Kind, appid: &str, e: &ExchangeError, now_ms: u64, metrics: &Metrics) {
        self.record(Failed { kind, appid, e, now_ms, doing: "using", max_pause: LOGIN_MAX_PAUSE }, metrics);
    }

    fn record(&self, f: Failed<'_>, metrics: &Metrics) {
        let Failed { kind, appid, e, now_ms, doing, max_pause } = f;
        let mut slot = self.of(kind).lock();
        let count = slot.as_ref().map_or(1, |f| f.count.saturating_add(1));
        let pause = FIRST_PAUSE.saturating_mul(1 << (count - 1).min(10)).min(max_pause);
        let errcode = match e {
            ExchangeError::Rejected { errcode, .. } => Some(*errcode),
            _ => None,
        };
        let what = format!("{e} — {}", advice(e));
        let level = if matches!(errcode, Some(-1) | None) { log::Level::Warn } else { log::Level::Error };
        log::log!(
            level,
            "wechat credentials: account {appid}: {doing} the {} failed: {what}; asked again in {} s",
            kind.name(),
            pause.as_secs()
        );
        metrics.credential_degraded.with_label_values(&[appid]).set(1);
        *slot = Some(Failure { what, errcode, count, at_ms: now_ms, until_ms: now_ms + pause.as_millis() as u64 });
    }

    /// `/readyz`: `ok`, or `degraded` with the error, its code and what to do.
    pub fn status(&self) -> serde_json::Value {
        let failures: Vec<_> = [Kind::Token, Kind::Ticket]
            .into_iter()
            .filter_map(|k| self.of(k).lock().clone().map(|f| (k, f)))
            .map(|(k, f)| json!({"credential": k.name(), "errcode": f.errcode, "error": f.what, "failures": f.count, "at": f.at_ms / 1000}))
            .collect();
        if failures.is_empty() {
            json!({"status": "ok"})
        } else {
            json!({"status": "degraded", "errors": failures})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_end_with_a_success() {
        let (h, m) = (Health::default(), Metrics::new());
        let busy = ExchangeError::Rejected { errcode: -1, errmsg: "system busy".into() };
        h.failed(Kind::Token, "wx1", &busy, 1_000, &m, MAX_PAUSE);
        assert_eq!(h.pausing(Kind::Token, 1_000), Some(Duration::from_secs(5)));
        assert_eq!(h.pausing(Kind::Token, 6_000), None);
        assert_eq!(h.pausing(Kind::Ticket, 1_000), None);
        h.failed(Kind::Token, "wx1", &busy, 6_000, &m, MAX_PAUSE);
        assert_eq!(h.pausing(Kind::Token, 6_000), Some(Duration::from_secs(10)));
        for i in 0..20 {
            h.failed(Kind::Token, "wx1", &busy, 7_000 + i, &m, MAX_PAUSE);
        }
        assert_eq!(h.pausing(Kind::Token, 7_019), Some(MAX_PAUSE));
        assert_eq!(h.status()["status"], "degraded");
        h.succeeded(Kind::Token, "wx1", &m);
        assert_eq!(h.pausing(Kind::Token, 7_019), None);
        assert_eq!(h.status()["status"], "ok");
    }

    #[test]
    fn each_reported_error_says_what_to_do() {
        for code in [45009, 40164, 40125, 40013, -1] {
            let e = ExchangeError::Rejected { errcode: code, errmsg: String::new() };
            assert!(!advice(&e).starts_with("an error code"), "{code}");
        }
        assert!(token_went_bad(40001) && token_went_bad(42001) && token_went_bad(40014));
        assert!(!token_went_bad(45009));
    }
}
