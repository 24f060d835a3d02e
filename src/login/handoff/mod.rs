//! One WeChat account, many app domains: logins for app hosts through one login host.
//!
//! WeChat redirects only to an account's registered domains (网页授权域名, two at most), so the
//! app hosts listed in `[[app_hosts]]` log in through their app's public host, the login host:
//! 1. An app host without a session sets a short-lived nonce cookie on itself ([`NonceCookie`])
//!    and sends the browser to `<login host><prefix>/login?handoff=<request>`. The
//!    [`HandoffRequest`] (app host, return URL, nonce, scope, expiry) is sealed with the session
//!    keys, so only gateways holding them can make or read one ([`app_host::start`]).
//! 2. The login host refuses hosts it does not list, then uses its own session or runs the silent
//!    login exactly as for itself: its login cookie, state, one exchange per code
//!    ([`login_host::issue`]).
//! 3. It sends the browser to `<app host><prefix>/ticket?ticket=<ticket>`. The [`Ticket`] carries
//!    the identity sealed (XChaCha20-Poly1305 under the shared session keys), for that host and
//!    that nonce, for `session.ticket_lifetime`, with an id spent on first use
//!    ([`login_host::ticket_redirect`]).
//! 4. The app host checks host, expiry, its nonce cookie and the id, sets a session of its own and
//!    lands the browser on the return URL, fragment included ([`app_host::redeem`]).
//!
//! The ticket is sealed rather than a reference into shared state: gateways that share only the
//! keys (no Redis) can hand identities over, and nothing about the user is stored anywhere. What
//! must be shared is small: the ids of spent tickets, which live in [`crate::shared`] (on every
//! replica with Redis). The WeChat code never leaves the login host; the openid leaves it only
//! sealed.

pub mod app_host;
pub mod login_host;
mod nonces;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Config;
pub use crate::http::error::Refusal;
use crate::session::seal::Sealer;
use crate::session::Session;
use crate::util::clock::{millis, Entropy};
use crate::wechat::Scope;
pub use nonces::NonceCookie;

/// What the sealed request and ticket are bound to (the AEAD's associated data), with the
/// version of their format. `-v2`: expiry in milliseconds (`x`) instead of seconds (`e`); a
/// request or ticket of the first format does not open, and is refused as damaged.
const REQUEST: &str = "ogw-handoff-request-v2";
const TICKET: &str = "ogw-ticket-v2";

/// What an app host asks of the login host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// The app host, lower case, without port.
    #[serde(rename = "h")]
    pub host: String,
    /// Where the browser lands afterwards: an absolute URL on `host`, fragment included.
    #[serde(rename = "r")]
    pub return_to: String,
    /// The nonce held in the app host's nonce cookie.
    #[serde(rename = "n")]
    pub nonce: String,
    /// What the app host's route needs.
    #[serde(rename = "s")]
    pub scope: Scope,
    /// Milliseconds since the Unix epoch: a request lives `login_lifetime` to the millisecond.
    #[serde(rename = "x")]
    pub expires_ms: u64,
}

impl HandoffRequest {
    /// Has it expired at `now_ms` (milliseconds since the Unix epoch)?
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms <= now_ms
    }
}

/// The identity handed to one app host, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The app host it is for (its audience).
    #[serde(rename = "h")]
    pub host: String,
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "r")]
    pub return_to: String,
    /// Milliseconds since the Unix epoch: a ticket lives `ticket_lifetime` to the millisecond.
    #[serde(rename = "x")]
    pub expires_ms: u64,
    /// Spent on first use.
    #[serde(rename = "j")]
    pub id: String,
    /// The login host's session: the identity, and the id a global logout revokes.
    #[serde(rename = "s")]
    pub session: Session,
}

impl Ticket {
    /// Has it expired at `now_ms` (milliseconds since the Unix epoch)?
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms <= now_ms
    }
}

/// Seals and opens requests and tickets with the session keys.
pub struct Handoff {
    sealer: Sealer,
    /// Milliseconds a request is valid (`login_lifetime`).
    request_lifetime: u64,
    /// Milliseconds a ticket is valid (`ticket_lifetime`).
    ticket_lifetime: u64,
}

impl Handoff {
    pub fn new(config: &Config) -> Self {
        Self {
            sealer: Sealer::new(&config.session.keys),
            request_lifetime: millis(config.session.login_lifetime),
            ticket_lifetime: millis(config.session.ticket_lifetime),
        }
    }

    /// When a request made at `now_ms` expires.
    pub fn request_expiry(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.request_lifetime)
    }

    /// When a ticket issued at `now_ms` expires.
    pub fn ticket_expiry(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.ticket_lifetime)
    }

    fn seal<T: Serialize>(&self, name: &str, value: &T, entropy: &dyn Entropy) -> String {
        self.sealer.seal_json(name, value, entropy)
    }

    fn open<T: DeserializeOwned>(&self, name: &str, value: &str) -> Option<T> {
        self.sealer.open_json(name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::{Clock, ManualClock, OsEntropy};

    fn handoff(session: &str) -> Handoff {
        Handoff::new(&crate::config::for_tests("https://login.example.com", "", session, ""))
    }

    fn ticket(expires_ms: u64) -> Ticket {
        Ticket {
            host: "mall.test".into(),
            nonce: "N1".into(),
            return_to: "http://mall.test/".into(),
            expires_ms,
            id: "J1".into(),
            session: Session::default(),
        }
    }

    #[test]
    fn a_2s_ticket_is_valid_at_1999_ms_and_refused_at_2001_ms() {
        let h = handoff("ticket_lifetime = \"2s\"");
        let clock = ManualClock::new(1_700_000_000);
        // Issued 0.9 s into a second: counted in whole seconds, it would end 1.1 s later.
        clock.advance_millis(900);
        let sealed = h.seal(TICKET, &ticket(h.ticket_expiry(clock.now_millis())), &OsEntropy);
        let taken: Ticket = h.open(TICKET, &sealed).expect("a ticket opens");
        clock.advance_millis(1999);
        assert!(!taken.expired_at(clock.now_millis()), "valid at 1.999 s");
        clock.advance_millis(2);
        assert!(taken.expired_at(clock.now_millis()), "refused at 2.001 s");
    }

    #[test]
    fn a_request_lives_login_lifetime_to_the_millisecond() {
        let h = handoff("login_lifetime = \"1500ms\"");
        let request = HandoffRequest {
            host: "mall.test".into(),
            return_to: "http://mall.test/".into(),
            nonce: "N1".into(),
            scope: Scope::Base,
            expires_ms: h.request_expiry(1_000_000),
        };
        let opened: HandoffRequest = h.open(REQUEST, &h.seal(REQUEST, &request, &OsEntropy)).unwrap();
        assert!(!opened.expired_at(1_001_499) && opened.expired_at(1_001_500));
    }

    #[test]
    fn the_first_formats_do_not_open() {
        let h = handoff("");
        // Format 1: bound to the names without `-v2`, expiry in seconds (`e`).
        let v1_ticket = br#"{"h":"mall.test","n":"N1","r":"http://mall.test/","e":4000000000,"j":"J1","s":{"o":"oA","a":"wx1","i":1,"e":4000000000}}"#;
        let sealed = h.sealer.seal("ogw-ticket", v1_ticket, &OsEntropy);
        assert!(h.open::<Ticket>(TICKET, &sealed).is_none());
        let v1_request = br#"{"h":"mall.test","r":"http://mall.test/","n":"N1","s":"snsapi_base","e":4000000000}"#;
        let sealed = h.sealer.seal("ogw-handoff-request", v1_request, &OsEntropy);
        assert!(h.open::<HandoffRequest>(REQUEST, &sealed).is_none());
        // Positive control: the current format opens.
        let current = h.seal(TICKET, &ticket(4_000_000_000_000), &OsEntropy);
        assert!(h.open::<Ticket>(TICKET, &current).is_some());
    }
}
