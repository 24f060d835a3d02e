//! The account's global credentials, as strict as WeChat (../shared/wechat-oauth.md §7):
//! `GET /cgi-bin/token` (every call a new token; the earlier ones die a grace period later),
//! `POST /cgi-bin/stable_token` (one shared token, renewed five minutes before it expires;
//! `force_refresh` kills the previous one at once) and `GET /cgi-bin/ticket/getticket` (a jsapi
//! ticket bound to the token that fetched it, dying with it). Each checks grant_type, appid,
//! secret, the caller's IP against the allow-list and a daily quota counted in Beijing days.
//! Errors are HTTP 200 JSON, as WeChat answers.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use super::{param, MockWechat, State};
use crate::util::clock::{base62_nonce, beijing_day};

/// The rules of the account's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRules {
    /// Lifetime of every access_token and ticket (WeChat: 7200 s).
    pub token_lifetime: Duration,
    /// After `cgi-bin/token` issues a token, each earlier one dies this much later (WeChat: 5 min).
    pub token_grace: Duration,
    /// `cgi-bin/token` calls a day (WeChat: 2,000).
    pub token_daily_limit: u32,
    /// `cgi-bin/stable_token` calls a day (WeChat: 500,000).
    pub stable_daily_limit: u32,
    /// `force_refresh` refreshes a day (WeChat: 20).
    pub force_daily_limit: u32,
    /// `getticket` calls a day.
    pub ticket_daily_limit: u32,
    /// The account's IP allow-list, checked against the TCP peer; `None` lets anyone call.
    pub allowed_ips: Option<Vec<IpAddr>>,
}

impl Default for CredentialRules {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(7200),
            token_grace: Duration::from_secs(300),
            token_daily_limit: 2000,
            stable_daily_limit: 500_000,
            force_daily_limit: 20,
            ticket_daily_limit: 1_000_000,
            allowed_ips: None,
        }
    }
}

/// WeChat renews the stable token this long before it expires.
const STABLE_RENEW_SECS: u64 = 300;
/// Forced refreshes closer together than this do not refresh.
const FORCE_SPACING_SECS: u64 = 30;
/// Dead tokens and tickets are forgotten this long after their natural expiry.
const FORGET_AFTER_SECS: u64 = 86_400;
const TOKEN_LEN: usize = 168;
const TICKET_LEN: usize = 86;

/// An errcode and its message.
pub(super) type Refusal = (i64, Cow<'static, str>);

fn refuse(errcode: i64, msg: &'static str) -> Refusal {
    (errcode, Cow::Borrowed(msg))
}

const INVALID: (i64, &str) = (40001, "invalid credential, access_token is invalid or not latest");
const EXPIRED: (i64, &str) = (42001, "access_token expired");
const QUOTA: (i64, &str) = (45009, "reach max api daily quota limit");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Classic,
    Stable,
}

struct Token {
    kind: Kind,
    expires: u64,
    /// When it dies before its natural expiry (replaced, invalidated, force-refreshed).
    killed: Option<u64>,
}

impl Token {
    fn check(&self, now: u64) -> Result<(), (i64, &'static str)> {
        match self.killed {
            Some(k) if now >= k => Err(INVALID),
            _ if now >= self.expires => Err(EXPIRED),
            _ => Ok(()),
        }
    }

    /// Dies at `at` unless it dies sooner anyway.
    fn kill_at(&mut self, at: u64) {
        if at < self.expires && self.killed.is_none_or(|k| at < k) {
            self.killed = Some(at);
        }
    }
}

struct Ticket {
    token: String,
    expires: u64,
}

/// Calls counted in the current Beijing day.
#[derive(Default)]
struct Quotas {
    day: u64,
    token: u32,
    stable: u32,
    forced: u32,
    ticket: u32,
}

impl Quotas {
    fn roll(&mut self, now: u64) {
        let day = beijing_day(now);
        if day != self.day {
            *self = Quotas { day, ..Quotas::default() };
        }
    }
}

fn within(count: u32, limit: u32) -> Result<(), Refusal> {
    if count < limit {
        Ok(())
    } else {
        Err(refuse(QUOTA.0, QUOTA.1))
    }
}

/// The credentials' part of the mock's state.
#[derive(Default)]
pub(super) struct Credentials {
    tokens: HashMap<String, Token>,
    /// The current stable token.
    stable: Option<String>,
    last_forced: Option<u64>,
    tickets: HashMap<String, Ticket>,
    /// The ticket each token fetched.
    ticket_of: HashMap<String, String>,
    quotas: Quotas,
    /// Set at run time, overriding the config's allow-list.
    allowed_ips: Option<Option<Vec<IpAddr>>>,
    /// Errcodes the next credential calls answer.
    faults: VecDeque<i64>,
    /// Faults for `getcallbackip` only.
    check_faults: VecDeque<i64>,
}

impl Credentials {
    fn check_token(&self, token: &str, now: u64) -> Result<(), (i64, &'static str)> {
        if token.is_empty() {
            return Err((41001, "access_token missing"));
        }
        self.tokens.get(token).map_or(Err(INVALID), |t| t.check(now))
    }

    fn ticket_alive(&self, ticket: &str, now: u64) -> bool {
        self.tickets.get(ticket).is_some_and(|t| now < t.expires && self.check_token(&t.token, now).is_ok())
    }

    /// The tickets a page may sign with now.
    pub(super) fn valid_tickets(&self, now: u64) -> Vec<String> {
        self.tickets.keys().filter(|t| self.ticket_alive(t, now)).cloned().collect()
    }

    /// Kills every living token of `kind` (all kinds when `None`) at `at`.
    fn kill(&mut self, kind: Option<Kind>, at: u64) {
        for t in self.tokens.values_mut().filter(|t| kind.is_none_or(|k| t.kind == k)) {
            t.kill_at(at);
        }
    }

    fn forget_old(&mut self, now: u64) {
        self.tokens.retain(|_, t| now < t.expires.saturating_add(FORGET_AFTER_SECS));
        self.tickets.retain(|_, t| now < t.expires.saturating_add(FORGET_AFTER_SECS));
        let tickets = &self.tickets;
        self.ticket_of.retain(|_, t| tickets.contains_key(t));
    }
}

/// What a token call asks: grant_type, appid, secret, and the caller's address.
struct Ask<'a> {
    grant_type: Option<&'a str>,
    appid: Option<&'a str>,
    secret: Option<&'a str>,
    peer: Option<IpAddr>,
}

impl MockWechat {
    /// The next `getcallbackip` answers `errcode` (a token WeChat refuses on use while
    /// `stable_token` still answers it: what a forced refresh is for).
    pub fn inject_check_fault(&self, errcode: i64) {
        self.lock().creds.check_faults.push_back(errcode);
    }

    /// The next credential call (token, stable_token, getticket or getcallbackip) answers `errcode` and does
    /// nothing else (faults queue up).
    pub fn inject_credential_fault(&self, errcode: i64) {
        self.lock().creds.faults.push_back(errcode);
    }

    /// Replaces the configured IP allow-list (`None`: any caller).
    pub fn set_allowed_ips(&self, ips: Option<Vec<IpAddr>>) {
        self.lock().creds.allowed_ips = Some(ips);
    }

    /// Every token of the account, classic and stable, dies now (as when another server
    /// force-refreshed or the secret was reset); their tickets die with them.
    pub fn invalidate_tokens(&self) {
        let now = self.clock.now();
        self.lock().creds.kill(None, now);
    }

    /// Whether `token` may be used now: 41001 when empty, 40001 when unknown or killed,
    /// 42001 when past its natural expiry.
    pub fn use_token(&self, token: &str) -> Result<(), (i64, &'static str)> {
        let now = self.clock.now();
        self.lock().creds.check_token(token, now)
    }

    /// Whether `token` is a living access_token.
    pub fn token_valid(&self, token: &str) -> bool {
        self.use_token(token).is_ok()
    }

    /// Whether `ticket` is a living jsapi ticket (unexpired, and its token alive).
    pub fn ticket_valid(&self, ticket: &str) -> bool {
        let now = self.clock.now();
        self.lock().creds.ticket_alive(ticket, now)
    }

    /// `GET /cgi-bin/token`: a new token; the earlier ones die `token_grace` later.
    pub(super) fn classic_token(&self, query: &str, peer: Option<IpAddr>) -> Result<(String, u64), Refusal> {
        let get = |k: &str| param(query, k);
        let (grant_type, appid, secret) = (get("grant_type"), get("appid"), get("secret"));
        let ask = Ask { grant_type: grant_type.as_deref(), appid: appid.as_deref(), secret: secret.as_deref(), peer };
        let now = self.clock.now();
        let rules = &self.cfg.rules;
        let mut st = self.lock();
        st.stats.token_calls += 1;
        fault(&mut st)?;
        self.check_account(&ask, &st.creds)?;
        st.creds.quotas.roll(now);
        within(st.creds.quotas.token, rules.token_daily_limit)?;
        st.creds.quotas.token += 1;
        st.creds.kill(Some(Kind::Classic), now.saturating_add(rules.token_grace.as_secs()));
        Ok(self.issue(&mut st, Kind::Classic, now))
    }

    /// `POST /cgi-bin/stable_token` with a JSON `body`.
    pub(super) fn stable_token(&self, body: &[u8], peer: Option<IpAddr>) -> Result<(String, u64), Refusal> {
        let now = self.clock.now();
        let rules = &self.cfg.rules;
        let mut st = self.lock();
        st.stats.stable_calls += 1;
        fault(&mut st)?;
        let req: serde_json::Value = serde_json::from_slice(body).map_err(|_| refuse(47001, "data format error"))?;
        let field = |k: &str| req.get(k).and_then(serde_json::Value::as_str);
        let ask = Ask { grant_type: field("grant_type"), appid: field("appid"), secret: field("secret"), peer };
        self.check_account(&ask, &st.creds)?;
        let force = match req.get("force_refresh") {
            None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(refuse(47001, "data format error: force_refresh must be true or false")),
        };
        let spaced = st.creds.last_forced.is_none_or(|t| now >= t.saturating_add(FORCE_SPACING_SECS));
        let force = force && spaced;
        st.creds.quotas.roll(now);
        within(st.creds.quotas.stable, rules.stable_daily_limit)?;
        if force {
            within(st.creds.quotas.forced, rules.force_daily_limit)?;
            st.creds.quotas.forced += 1;
        }
        st.creds.quotas.stable += 1;
        if force {
            st.creds.kill(Some(Kind::Stable), now);
            st.creds.last_forced = Some(now);
            st.stats.forced_refreshes += 1;
        } else {
            // WeChat renews five minutes before expiry, so `expires_in` is always >= 300.
            let window = if rules.token_lifetime.as_secs() > STABLE_RENEW_SECS { STABLE_RENEW_SECS } else { 0 };
            let current = st.creds.stable.as_ref().and_then(|s| st.creds.tokens.get(s).map(|t| (s, t)));
            if let Some((s, t)) = current.filter(|(_, t)| t.check(now).is_ok() && t.expires - now >= window) {
                return Ok((s.clone(), t.expires - now));
            }
        }
        let (token, expires_in) = self.issue(&mut st, Kind::Stable, now);
        st.creds.stable = Some(token.clone());
        Ok((token, expires_in))
    }

    /// `GET /cgi-bin/ticket/getticket`: the ticket of the asking token, new when it has none.
    pub(super) fn ticket(&self, query: &str) -> Result<(String, u64), Refusal> {
        let now = self.clock.now();
        let mut st = self.lock();
        st.stats.ticket_calls += 1;
        fault(&mut st)?;
        let token = param(query, "access_token").unwrap_or_default();
        st.creds.check_token(&token, now).map_err(|(c, m)| refuse(c, m))?;
        if param(query, "type").as_deref() != Some("jsapi") {
            return Err(refuse(40097, "invalid args"));
        }
        st.creds.quotas.roll(now);
        within(st.creds.quotas.ticket, self.cfg.rules.ticket_daily_limit)?;
        st.creds.quotas.ticket += 1;
        let held = st.creds.ticket_of.get(&token).and_then(|k| st.creds.tickets.get(k).map(|t| (k, t.expires)));
        if let Some((ticket, expires)) = held.filter(|(_, e)| now < *e) {
            return Ok((ticket.clone(), expires - now));
        }
        let ticket = base62_nonce(self.entropy.as_ref(), TICKET_LEN);
        let lifetime = self.cfg.rules.token_lifetime.as_secs();
        let expires = now.saturating_add(lifetime);
        st.creds.tickets.insert(ticket.clone(), Ticket { token: token.clone(), expires });
        st.creds.ticket_of.insert(token, ticket.clone());
        st.stats.tickets_issued += 1;
        Ok((ticket, lifetime))
    }

    /// `GET /cgi-bin/getcallbackip?access_token=`: WeChat's server addresses, for a living
    /// token (the cheapest call that needs one). Counted in `token_checks`.
    pub(super) fn callback_ip(&self, query: &str) -> Result<(), Refusal> {
        let now = self.clock.now();
        let mut st = self.lock();
        st.stats.token_checks += 1;
        if let Some(c) = st.creds.check_faults.pop_front() {
            return Err(refuse(c, "invalid credential, access_token is invalid or not latest"));
        }
        fault(&mut st)?;
        let token = param(query, "access_token").unwrap_or_default();
        st.creds.check_token(&token, now).map_err(|(c, m)| refuse(c, m))
    }

    /// grant_type, appid, secret and the caller's IP, in WeChat's order.
    fn check_account(&self, ask: &Ask<'_>, creds: &Credentials) -> Result<(), Refusal> {
        if ask.grant_type != Some("client_credential") {
            return Err(refuse(40002, "invalid grant_type"));
        }
        let present = |v: Option<&str>| v.filter(|s| !s.is_empty()).is_some();
        if !present(ask.appid) {
            return Err(refuse(41002, "appid missing"));
        }
        if ask.appid != Some(self.cfg.appid.as_str()) {
            return Err(refuse(40013, "invalid appid"));
        }
        if !present(ask.secret) {
            return Err(refuse(41004, "appsecret missing"));
        }
        if ask.secret != Some(self.cfg.secret.as_str()) {
            return Err(refuse(40125, "invalid appsecret"));
        }
        let allowed = creds.allowed_ips.as_ref().unwrap_or(&self.cfg.rules.allowed_ips);
        let peer = ask.peer.map(|p| p.to_canonical());
        match (allowed, peer) {
            (None, _) => Ok(()),
            (Some(list), Some(ip)) if list.iter().any(|a| a.to_canonical() == ip) => Ok(()),
            (Some(_), Some(IpAddr::V4(ip))) => {
                Err((40164, format!("invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist").into()))
            }
            (Some(_), Some(ip)) => Err((40164, format!("invalid ip {ip} ipv6 {ip}, not in whitelist").into())),
            (Some(_), None) => Err(refuse(40164, "invalid ip unknown, not in whitelist")),
        }
    }

    /// A new token of `kind`, living `token_lifetime` from `now`.
    fn issue(&self, st: &mut State, kind: Kind, now: u64) -> (String, u64) {
        st.creds.forget_old(now);
        let token = base62_nonce(self.entropy.as_ref(), TOKEN_LEN);
        let lifetime = self.cfg.rules.token_lifetime.as_secs();
        st.creds.tokens.insert(token.clone(), Token { kind, expires: now.saturating_add(lifetime), killed: None });
        st.stats.tokens_issued += 1;
        (token, lifetime)
    }
}

/// Takes the next queued fault, if any.
fn fault(st: &mut State) -> Result<(), Refusal> {
    match st.creds.faults.pop_front() {
        Some(c) => Err(refuse(c, "system error")),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(super) mod tests;
