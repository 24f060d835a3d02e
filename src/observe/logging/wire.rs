//! No body reaches a log, nor any part of one, at any level. Redaction removes the shapes of
//! secrets; it cannot tell an app page's phone number, address or openid from any other text.
//! So the lines that print the bytes of a request or a response are not written at all:
//!
//! - pingora's own `debug` and `trace` lines that print them ([`DROPPED`]: chunks as they are
//!   parsed, upstream response bodies, raw request and response heads, the proxy's body
//!   events, a request that did not parse), known by their level, their target (the module
//!   that logs them) and the start of their message: what pingora wrote, not what the bytes
//!   say. Its other `debug` and `trace` lines are written, redacted, as before.
//! - the bytes pingora's errors quote ([`without_bytes`]): a head that did not parse is quoted
//!   whole in the context `buf: …` (with whatever of the body came with it), and a broken
//!   chunk's byte in `Invalid chunked encoding: … was not CRLF`. Those errors are written at
//!   `error` and `warn`, by pingora and by the gateway, without the quoted bytes.
//!
//! The list is pingora 0.9.1's, read from its sources (every `trace!` and `debug!` of
//! `pingora-core`, `pingora-proxy` and `pingora-cache` printing a buffer, a body, a chunk, an
//! `HttpTask` or a raw head); a test fails when `Cargo.lock` names another pingora, so the list
//! is read again with every upgrade.

use std::borrow::Cow;

use tracing::Level;

/// One kind of line: its level, its target, and how its message starts (`""`: every message).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub level: Level,
    pub target: &'static str,
    pub starts: &'static str,
}

const fn shape(level: Level, target: &'static str, starts: &'static str) -> Shape {
    Shape { level, target, starts }
}

const BODY: &str = "pingora_core::protocols::http::v1::body";
const CLIENT: &str = "pingora_core::protocols::http::v1::client";
const SERVER: &str = "pingora_core::protocols::http::v1::server";
const CUSTOM: &str = "pingora_core::protocols::http::custom";
const HTTP_APP: &str = "pingora_core::apps::http_app";
const PROXY: &str = "pingora_proxy";
const PROXY_H1: &str = "pingora_proxy::proxy_h1";
const PROXY_H2: &str = "pingora_proxy::proxy_h2";
const PROXY_CUSTOM: &str = "pingora_proxy::proxy_custom";
const PROXY_PIPE: &str = "pingora_proxy::subrequest::pipe";

/// pingora's lines that print request or response bytes.
pub const DROPPED: &[Shape] = &[
    // Chunked bodies, either way, as they are parsed: the chunk bytes.
    shape(Level::TRACE, BODY, "partial chunk payload"),
    shape(Level::TRACE, BODY, "last chunk size end buf"),
    shape(Level::TRACE, BODY, "Got size "),
    shape(Level::TRACE, BODY, "Parsing chunk end for buf"),
    shape(Level::TRACE, BODY, "parse trailers end"),
    shape(Level::DEBUG, BODY, "Invalid chunked encoding"),
    // The upstream side: the request head as written, the response head as read, the body.
    shape(Level::TRACE, CLIENT, "Writing request header: "),
    shape(Level::TRACE, CLIENT, "Raw Response header: "),
    shape(Level::TRACE, CLIENT, "Response body: "),
    // A request that does not parse: its stream (with bytes put back) and its bytes.
    shape(Level::DEBUG, SERVER, "Invalid request header from "),
    shape(Level::DEBUG, PROXY, "Fail to proxy: "),
    // The proxy's events (`HttpTask`): a body event holds the body's bytes.
    shape(Level::DEBUG, PROXY_H1, "upstream event"),
    shape(Level::DEBUG, PROXY_H1, "buffered upstream event"),
    shape(Level::DEBUG, PROXY_H1, "serve_from_cache task"),
    shape(Level::DEBUG, PROXY_H2, "upstream event"),
    shape(Level::DEBUG, PROXY_H2, "buffered upstream event"),
    shape(Level::DEBUG, PROXY_H2, "serve_from_cache task"),
    shape(Level::DEBUG, PROXY_CUSTOM, "upstream event"),
    shape(Level::DEBUG, PROXY_CUSTOM, "buffered upstream event"),
    shape(Level::DEBUG, PROXY_PIPE, "upstream event"),
    // Custom protocol messages (bytes).
    shape(Level::DEBUG, CUSTOM, "write_custom_message"),
    shape(Level::DEBUG, CUSTOM, "consume_custom_messages"),
    // pingora's plain HTTP server (admin, tests): each of its trace lines prints a request
    // head or a response event with its body.
    shape(Level::TRACE, HTTP_APP, ""),
];

/// Is this line one of [`DROPPED`]? `message` is the line's message as logged.
pub fn dropped(level: Level, target: &str, message: &str) -> bool {
    level > Level::INFO
        && target.starts_with("pingora")
        && DROPPED.iter().any(|s| s.level == level && s.target == target && message.starts_with(s.starts))
}

/// How pingora's error quotes the head that did not parse: ` context: buf: <bytes>`.
const QUOTED_HEAD: &str = "context: buf: ";
/// How pingora's error quotes a broken chunk's bytes: `Invalid chunked encoding: <bytes> was
/// not CRLF` (also `CR`, `LF`); at most two bytes, escaped.
const BROKEN_CHUNK: &str = "Invalid chunked encoding: ";
const WAS_NOT: &str = " was not ";
/// Two escaped bytes are at most this long (`\u{fffd}\u{fffd}`).
const BROKEN_CHUNK_MAX: usize = 24;

/// What replaces quoted bytes.
const NOT_LOGGED: &str = "[bytes not logged]";

/// `text` without the request or response bytes a pingora error quotes: everything after
/// `context: buf: ` (the bytes run to the end of the context, and a body may hold anything,
/// so the rest of the text goes with them), and the bytes of `Invalid chunked encoding: …
/// was not CRLF`. Borrowed when there is none.
pub fn without_bytes(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    // Both quotes end in `: `; most values have no colon at all.
    if !text.as_bytes().contains(&b':') {
        return out;
    }
    if let Some(at) = out.find(QUOTED_HEAD) {
        let kept = at + QUOTED_HEAD.len();
        out = Cow::Owned(format!("{}{NOT_LOGGED}", &out[..kept]));
    }
    let mut from = 0;
    while let Some(found) = out[from..].find(BROKEN_CHUNK) {
        let start = from + found + BROKEN_CHUNK.len();
        let end = out[start..].find(WAS_NOT).filter(|len| *len <= BROKEN_CHUNK_MAX).map(|len| start + len);
        match end {
            Some(end) => {
                out = Cow::Owned(format!("{}{NOT_LOGGED}{}", &out[..start], &out[end..]));
                from = start + NOT_LOGGED.len();
            }
            None => from = start,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pingora version [`DROPPED`] was read from.
    const PINGORA_READ: &str = "0.9.1";

    #[test]
    fn the_list_was_read_from_the_pingora_in_use() {
        let lock = include_str!("../../../Cargo.lock");
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"pingora-core\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'));
        assert_eq!(
            version,
            Some(PINGORA_READ),
            "pingora changed: read its trace!/debug! lines again for any that print bytes, update DROPPED, then PINGORA_READ"
        );
    }

    #[test]
    fn body_lines_are_dropped_and_their_neighbours_kept() {
        let dropped_ones = [
            (Level::TRACE, CLIENT, "Response body: b\"<p>13800138000</p>\", upgraded: false"),
            (Level::TRACE, BODY, "Got size 24, payload_index: 5, chunk: \"<p>13800138000</p>\""),
            (Level::DEBUG, PROXY_H1, "upstream event: Body(Some(b\"13800138000\"), false)"),
            (Level::DEBUG, PROXY_H1, "upstream event now: Some(Body(Some(b\"13800138000\"), true))"),
            (Level::DEBUG, PROXY, "Fail to proxy: Downstream InvalidHTTPHeader context: buf: POST"),
            (Level::TRACE, HTTP_APP, "Body(Some(b\"13800138000\"), true)"),
        ];
        for (level, target, message) in dropped_ones {
            assert!(dropped(level, target, message), "{level} {target} {message}");
        }
        let kept = [
            // The size of a body, not its bytes.
            (Level::DEBUG, CLIENT, "Response body: 24 bytes, end: false"),
            (Level::TRACE, BODY, "Writing Body, size: 24"),
            // The same words at another level or from another module.
            (Level::INFO, PROXY, "Fail to proxy: Upstream ConnectRefused"),
            (Level::TRACE, PROXY, "Request header: RequestHeader { .. }"),
            (Level::DEBUG, "openid_gateway::proxy", "upstream event: x"),
            (Level::DEBUG, PROXY_H1, "finished sending body to downstream"),
        ];
        for (level, target, message) in kept {
            assert!(!dropped(level, target, message), "{level} {target} {message}");
        }
    }

    #[test]
    fn every_shape_survives_the_cleaning_of_its_own_message() {
        // The check runs on the message as cleaned and redacted: its start must come through.
        for s in DROPPED {
            let message = format!("{}x", s.starts);
            let cleaned = super::super::redact(&without_bytes(&message)).into_owned();
            assert!(cleaned.starts_with(s.starts), "{s:?} became {cleaned}");
            assert!(dropped(s.level, s.target, &cleaned), "{s:?}");
        }
    }

    #[test]
    fn quoted_bytes_leave_pingora_errors() {
        let head = "Fail to proxy: Upstream InvalidHTTPHeader context: buf: HTTP/1.1 200 OK\\r\\nBad Line\\r\\n\\r\\nphone 13800138000 cause: invalid header name, status: 502";
        let out = without_bytes(head);
        assert_eq!(out, "Fail to proxy: Upstream InvalidHTTPHeader context: buf: [bytes not logged]");
        let chunk =
            "Fail to proxy: Upstream InvalidChunk context: Invalid chunked encoding: 13 was not CRLF, status: 502";
        assert_eq!(
            without_bytes(chunk),
            "Fail to proxy: Upstream InvalidChunk context: Invalid chunked encoding: [bytes not logged] was not CRLF, status: 502"
        );
        let two = "Invalid chunked encoding: \\u{fffd}\\u{fffd} was not CRLF; Invalid chunked encoding: a was not LF";
        assert_eq!(
            without_bytes(two),
            "Invalid chunked encoding: [bytes not logged] was not CRLF; Invalid chunked encoding: [bytes not logged] was not LF"
        );
        // No bytes quoted: the text as it was, borrowed.
        for plain in [
            "Fail to proxy: Upstream ConnectRefused context: Peer: addr: 127.0.0.1:1",
            "Invalid chunked encoding: InvalidChunkSize",
            "abc123 GET /shop/cart 200",
        ] {
            assert!(matches!(without_bytes(plain), Cow::Borrowed(_)), "{plain}");
        }
    }
}
