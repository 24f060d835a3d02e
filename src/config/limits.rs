//! Readers for `[paths]` (how request paths are made canonical), `[limits]` (client
//! timeouts and request size caps) and `[rate_limit]` (per-address login and callback rates).

use super::reader::Table;
use super::values::parse_size;
use super::{Limits, RateLimitConfig};
use crate::util::duration;

/// What to do with `%2F` and `%5C` (encoded slash and backslash) in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// Refuse the path with [`crate::http::canonical::Refusal::EncodedSlash`] (the safe default).
    Reject,
    /// Keep them encoded (as upper-case `%2F` / `%5C`) as ordinary text inside a segment, never as a separator.
    Keep,
    /// Decode both to `/`, a real segment separator (so they take part in dot-segment removal).
    Unescape,
}

/// The choices an operator can make (Envoy's normalize_path / merge_slashes / path_with_escaped_slashes_action are
/// the model). Dot segments are always removed; the default is the safest setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// Drop empty segments (`/a//b` becomes `/a/b`), keeping a trailing slash. When off, `//` is kept.
    pub merge_slashes: bool,
    /// Treatment of `%2F` and `%5C`.
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathRules {
    /// `merge_slashes: true`, `escaped_slashes: Reject`.
    fn default() -> Self {
        PathRules { merge_slashes: true, escaped_slashes: EscapedSlashes::Reject }
    }
}

pub(super) fn paths_section(mut t: Table) -> PathRules {
    let d = PathRules::default();
    let merge_slashes = t.opt::<bool>("merge_slashes").unwrap_or(d.merge_slashes);
    let escaped_slashes = t
        .parsed("escaped_slashes", |s| match s {
            "reject" => Ok(EscapedSlashes::Reject),
            "keep" => Ok(EscapedSlashes::Keep),
            "unescape" => Ok(EscapedSlashes::Unescape),
            _ => Err(format!(
                "{s:?} must be \"reject\" (400, the safe default), \"keep\" (forward %2F and %5C as they are; \
                 only for backends that never decode them before routing) or \"unescape\" (treat them as /)"
            )),
        })
        .unwrap_or(d.escaped_slashes);
    t.finish();
    PathRules { merge_slashes, escaped_slashes }
}

pub(super) fn limits_section(mut t: Table) -> Limits {
    let d = Limits::default();
    let positive = |t: &Table, key: &str, v: usize| {
        if v == 0 {
            t.error(key, "must be at least 1");
        }
        v.max(1)
    };
    let header_timeout = t.parsed("header_timeout", duration::parse).unwrap_or(d.header_timeout);
    let keepalive_timeout = t.parsed("keepalive_timeout", duration::parse).unwrap_or(d.keepalive_timeout);
    let max_header_bytes = t.parsed("max_header_bytes", parse_size).unwrap_or(d.max_header_bytes);
    let max_header_bytes = positive(&t, "max_header_bytes", max_header_bytes);
    let max_headers = t.opt::<usize>("max_headers").unwrap_or(d.max_headers);
    let max_headers = positive(&t, "max_headers", max_headers);
    if max_headers > 256 {
        t.error("max_headers", "must be at most 256 (pingora refuses more headers with a plain 400)");
    }
    let max_url_bytes = t.parsed("max_url_bytes", parse_size).unwrap_or(d.max_url_bytes);
    let max_url_bytes = positive(&t, "max_url_bytes", max_url_bytes);
    for (key, v) in [("header_timeout", header_timeout), ("keepalive_timeout", keepalive_timeout)] {
        if v.is_zero() {
            t.error(key, "must be longer than 0s");
        }
    }
    t.finish();
    Limits { header_timeout, keepalive_timeout, max_header_bytes, max_headers, max_url_bytes }
}

pub(super) fn rate_limit_section(mut t: Table) -> RateLimitConfig {
    let d = RateLimitConfig::default();
    let cfg = RateLimitConfig {
        login_per_minute: t.opt::<u32>("login_per_minute").unwrap_or(d.login_per_minute),
        callback_per_minute: t.opt::<u32>("callback_per_minute").unwrap_or(d.callback_per_minute),
        burst: t.opt::<u32>("burst").unwrap_or(d.burst),
    };
    t.finish();
    cfg
}
