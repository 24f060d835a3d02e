//! One revocation as replicas exchange it through Redis, and the key of one user: a line of
//! words, never a plain openid.

use super::digest;

/// One revocation as replicas exchange it: a line of words, never a plain openid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Session (or login family) `sid` of `appid`, until `until`.
    Session { appid: String, sid: String, until: u64 },
    /// Every session of one user (`user` = [`user_key`]) issued up to `at`, until `until`.
    User { user: String, at: u64, until: u64 },
    /// Every session of `appid` issued up to `at`, until `until`.
    App { appid: String, at: u64, until: u64 },
}

impl Record {
    /// `s <appid> <sid> <until>`, `u <user key> <at> <until>` or `a <appid> <at> <until>`.
    pub fn line(&self) -> String {
        match self {
            Record::Session { appid, sid, until } => format!("s {appid} {sid} {until}"),
            Record::User { user, at, until } => format!("u {user} {at} {until}"),
            Record::App { appid, at, until } => format!("a {appid} {at} {until}"),
        }
    }

    /// The record of [`Record::line`]; `None` for anything else.
    pub fn parse(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| words.get(i)?.parse::<u64>().ok();
        let word = |i: usize| words.get(i).filter(|w| !w.is_empty()).map(|w| w.to_string());
        match (words.first().copied(), words.len()) {
            (Some("s"), 4) => Some(Record::Session { appid: word(1)?, sid: word(2)?, until: num(3)? }),
            (Some("u"), 4) => Some(Record::User { user: word(1)?, at: num(2)?, until: num(3)? }),
            (Some("a"), 4) => Some(Record::App { appid: word(1)?, at: num(2)?, until: num(3)? }),
            _ => None,
        }
    }

    /// When it stops mattering (seconds).
    pub fn until(&self) -> u64 {
        match self {
            Record::Session { until, .. } | Record::User { until, .. } | Record::App { until, .. } => *until,
        }
    }
}

/// The key of one user of one app: a digest, so no openid is kept or sent as such.
pub fn user_key(appid: &str, openid: &str) -> String {
    digest(&[appid, openid])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_travel_as_lines_and_nothing_else_parses() {
        for r in [
            Record::Session { appid: "wx".into(), sid: "sAbC09".into(), until: 1_800_000_000 },
            Record::User { user: user_key("wx1", "oAbc"), at: 5, until: 9 },
            Record::App { appid: "wx1".into(), at: 5, until: 9 },
        ] {
            assert_eq!(Record::parse(&r.line()), Some(r.clone()));
            assert!(!r.line().contains("oAbc"), "no openid in a record");
        }
        for bad in ["", "s wx sid", "s wx sid x", "x wx sid 5", "s  sid 5", "s wx sid 5 6", "u k 1"] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }
}
