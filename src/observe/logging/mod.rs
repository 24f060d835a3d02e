//! Every line the process logs, pingora's own included, goes through [`redact`] before it is
//! written, at every level: cookie values, WeChat codes and states, tokens, the AppSecret and
//! keys never reach a log. Operators turn `trace` on exactly when something is wrong; the
//! logger, not their discipline, keeps secrets out.
//!
//! No body reaches a log either, nor any part of one, at any level (`wire`): pingora's lines
//! that print request or response bytes are not written, and the bytes its errors quote are
//! cut from the lines that carry them. Redaction could only remove the shapes of secrets, not
//! the phone number, address or openid an app page shows.
//!
//! Redaction knows the shapes secrets take (JWTs, sealed cookies, `code=`/`state=`/`secret=`
//! parameters, `Cookie`/`Set-Cookie`/`Authorization`/identity header values, PEM keys) and
//! the exact values of the configured secrets ([`register_secrets`]).

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use arc_swap::ArcSwapOption;

use regex::{Regex, RegexSet};
use tracing::field::{Field, Visit};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub use crate::config::LogFormat;

mod output;
mod wire;

use output::Output;

const REDACTED: &str = "[redacted]";

/// Header names whose values are always redacted, besides the configured identity header.
const SECRET_HEADERS: &str = "cookie|set-cookie|authorization|proxy-authorization|x-openid-token";

/// Query and form parameters whose values are always redacted.
const SECRET_PARAMS: &str =
    "code|state|secret|appsecret|corpsecret|access_token|refresh_token|ticket|pass_ticket|key|handoff";

struct Rules {
    any: RegexSet,
    each: Vec<(Regex, &'static str)>,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let each: Vec<(String, &'static str)> = vec![
        // PEM private keys, whole.
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)".into(), "[private key]"),
        // Header values as pingora and http print them: "cookie": "…".
        (format!(r#"(?i)"({SECRET_HEADERS}|x-openid-token[-_a-z]*)": "(?:[^"\\]|\\.)*""#), r#""$1": "[redacted]""#),
        // Header lines written as text: Cookie: … to the line's end, raw or escaped (`\r\n` in
        // a quoted head, where the name follows `\n`). Quotes belong to the value
        // (`theme="dark blue"; session=…`).
        (format!(r#"(?i)(^|\W|\\[rn])({SECRET_HEADERS}): (?:[^\\\r\n]|\\[^rn])*"#), "$1$2: [redacted]"),
        // Parameters: code=…, state=…, secret=…
        (format!(r#"(?i)\b({SECRET_PARAMS})=[^&\s"',;#)}}\]]*"#), "$1=[redacted]"),
        // JWTs anywhere.
        (r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*".into(), "[jwt]"),
        // Sealed cookie values and other long opaque tokens.
        (r"[A-Za-z0-9_-]{40,}={0,2}".into(), REDACTED),
    ];
    let patterns: Vec<&str> = each.iter().map(|(p, _)| p.as_str()).collect();
    Rules {
        any: RegexSet::new(&patterns).expect("constant patterns"),
        each: each.iter().map(|(p, r)| (Regex::new(p).expect("constant pattern"), *r)).collect(),
    }
});

/// Exact values of configured secrets (AppSecrets, session keys, signing keys), as they were
/// registered, and one expression that finds any of them (a literal set: one pass over a line).
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());
static KNOWN_ANY: ArcSwapOption<Regex> = ArcSwapOption::const_empty();

/// Adds the exact values of configured secrets to what every log line is cleaned of.
/// Values shorter than 8 bytes are ignored (they would redact ordinary words).
pub fn register_secrets<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) {
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let before = known.len();
    for s in secrets {
        let Ok(text) = std::str::from_utf8(s) else { continue };
        for part in text.lines().map(str::trim).filter(|p| p.len() >= 8 && !p.starts_with("-----")) {
            if !known.iter().any(|k| k == part) {
                known.push(part.to_string());
            }
        }
    }
    if known.len() != before {
        // Longer values first: one that holds another is replaced whole.
        let mut longest_first: Vec<&String> = known.iter().collect();
        longest_first.sort_by_key(|k| std::cmp::Reverse(k.len()));
        let any = longest_first.iter().map(|k| regex::escape(k)).collect::<Vec<_>>().join("|");
        // Escaped literals always make an expression; a set too large for one is refused, and
        // then every line is cleaned by the rules alone.
        KNOWN_ANY.store(Regex::new(&any).ok().map(Arc::new));
    }
}

/// `line` with every secret replaced; borrowed when there was nothing to replace.
pub fn redact(line: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(line);
    if may_hold_secret(line) {
        let rules = &*RULES;
        for i in rules.any.matches(line).iter() {
            let (re, with) = &rules.each[i];
            if let Cow::Owned(s) = re.replace_all(&out, *with) {
                out = Cow::Owned(s);
            }
        }
    }
    if out.len() >= 8 {
        if let Some(known) = KNOWN_ANY.load().as_deref() {
            if let Cow::Owned(s) = known.replace_all(&out, REDACTED) {
                out = Cow::Owned(s);
            }
        }
    }
    out
}

/// Whether any of [`RULES`] could match `line`: each needs a `=` or `:`, `eyJ`,
/// `-----BEGIN`, or a run of 40 token characters. Most values logged (ids, paths, numbers,
/// addresses) have none, and skip the regular expressions. One pass over the bytes.
fn may_hold_secret(line: &str) -> bool {
    let bytes = line.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'=' | b':' => return true,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => {
                run += 1;
                let rest = &bytes[i..];
                if run >= 40
                    || (b == b'e' && rest.starts_with(b"eyJ"))
                    || (b == b'-' && rest.starts_with(b"-----BEGIN"))
                {
                    return true;
                }
            }
            _ => run = 0,
        }
    }
    false
}

/// Where log lines go when not to standard error (tests read what the process logged).
pub type Sink = Box<dyn Write + Send>;

/// Starts the process's logger as text: `filter` in `RUST_LOG` syntax (`RUST_LOG` wins when
/// set), every line redacted; to standard error, or to `sink`.
pub fn init(filter: &str, sink: Option<Sink>) -> Result<(), InitError> {
    init_with(LogFormat::Text, filter, sink)
}

/// Like [`init`], in `format`: text lines or one JSON object per line.
pub fn init_with(format: LogFormat, filter: &str, sink: Option<Sink>) -> Result<(), InitError> {
    let filter = std::env::var("RUST_LOG").ok().filter(|f| !f.trim().is_empty()).unwrap_or_else(|| filter.to_string());
    let filter = EnvFilter::builder().parse(&filter).map_err(|e| InitError(e.to_string()))?;
    let out = match sink {
        Some(sink) => Arc::new(Output::direct(sink)),
        None => {
            // A panic writes out the buffered lines before its own message.
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if let Some(out) = OUTPUT.get() {
                    out.flush_if_free();
                }
                previous(info);
            }));
            Output::buffered(Box::new(std::io::stderr()))
        }
    };
    let _ = OUTPUT.set(out.clone());
    let layer = LineLayer { format, out };
    tracing_subscriber::registry().with(filter).with(layer).try_init().map_err(|e| InitError(e.to_string()))
}

/// Writes out every line still buffered (at exit).
pub fn flush() {
    if let Some(out) = OUTPUT.get() {
        out.flush();
    }
}

/// The process's log output, for [`flush`].
static OUTPUT: OnceLock<Arc<Output>> = OnceLock::new();

/// The logger could not be started (another is already set, or the filter is wrong).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the logger: {0}")]
pub struct InitError(String);

/// Writes each event as one redacted line, unless it is one of pingora's lines that print
/// request or response bytes. Every value is cleaned of quoted bytes and redacted before it is
/// encoded, so a JSON-escaped quote never hides a secret from the rules.
struct LineLayer {
    format: LogFormat,
    out: Arc<Output>,
}

impl<S: tracing::Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.normalized_metadata();
        let meta = meta.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = Fields { format: self.format, message: String::new(), rest: Vec::with_capacity(256) };
        event.record(&mut fields);
        if wire::dropped(*meta.level(), meta.target(), &fields.message) {
            return;
        }
        let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let mut line = Vec::with_capacity(64 + fields.message.len() + fields.rest.len());
        // Writing into a Vec cannot fail.
        match self.format {
            LogFormat::Json => {
                let _ = write!(line, "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"target\":", meta.level().as_str());
                let _ = serde_json::to_writer(&mut line, meta.target());
                if !fields.message.is_empty() {
                    line.extend_from_slice(b",\"message\":");
                    let _ = serde_json::to_writer(&mut line, &fields.message);
                }
                line.extend_from_slice(&fields.rest);
                line.push(b'}');
            }
            LogFormat::Text => {
                let _ = write!(line, "{ts} {:5} {} {}", meta.level(), meta.target(), fields.message);
                line.extend_from_slice(&fields.rest);
            }
        }
        line.push(b'\n');
        self.out.write(&line, *meta.level() <= tracing::Level::WARN);
    }
}

/// An event's message, and its other fields written out as they are visited (` name=value`
/// or `,"name":value`), each string already redacted.
struct Fields {
    format: LogFormat,
    message: String,
    rest: Vec<u8>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_str(field, &redact(&wire::without_bytes(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.put(field, value);
        } else {
            self.put_str(field, &value.to_string());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put_str(field, &redact(&wire::without_bytes(&format!("{value:?}"))));
    }
}

impl Fields {
    /// Where `name`'s value goes: `None` for the message, and for the origin fields (`log.*`)
    /// that `log` records bridged into tracing carry.
    fn start(&mut self, name: &str) -> Option<&mut Vec<u8>> {
        if name == "message" || name.starts_with("log.") {
            return None;
        }
        match self.format {
            LogFormat::Json => {
                self.rest.push(b',');
                let _ = serde_json::to_writer(&mut self.rest, name);
                self.rest.push(b':');
            }
            LogFormat::Text => {
                let _ = write!(self.rest, " {name}=");
            }
        }
        Some(&mut self.rest)
    }

    fn put_str(&mut self, field: &Field, value: &str) {
        let format = self.format;
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else if let Some(out) = self.start(field.name()) {
            match format {
                LogFormat::Json => {
                    let _ = serde_json::to_writer(out, value);
                }
                LogFormat::Text => out.extend_from_slice(value.as_bytes()),
            }
        }
    }

    fn put(&mut self, field: &Field, value: impl fmt::Display) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else if let Some(out) = self.start(field.name()) {
            let _ = write!(out, "{value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut past the regular expressions never skips a line one of them matches.
        #[test]
        fn the_prefilter_misses_nothing(
            line in r#"((code|state|cookie|Set-Cookie|ticket|key|eyJ|-----BEGIN PRIVATE KEY-----|[A-Za-z0-9_.-]{1,45})[=: "./]{0,3}){0,6}|[ -~]{0,80}"#
        ) {
            if !may_hold_secret(&line) {
                proptest::prop_assert!(RULES.any.matches(&line).iter().next().is_none(), "{line}");
            }
        }
    }

    #[test]
    fn json_lines_keep_every_field_and_lose_secrets() {
        let captured = output::tests::Shared::default();
        let layer = LineLayer { format: LogFormat::Json, out: Arc::new(Output::direct(Box::new(captured.clone()))) };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "access", path = "/a\"b", status = 200u64, ok = true, ms = 1.5f64, code = "code=S3CRET", "done \"{}\"", 1);
        });
        let text = captured.text();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["target"], "access");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "done \"1\"");
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["status"], 200);
        assert_eq!(v["ok"], true);
        assert_eq!(v["ms"], 1.5);
        assert_eq!(v["code"], "code=[redacted]");
    }

    #[test]
    fn ordinary_lines_are_untouched() {
        let line = "abc123 GET /shop/cart 200 o-alice 3ms; connection reused for 127.0.0.1:8082";
        assert!(matches!(redact(line), Cow::Borrowed(_)));
    }

    #[test]
    fn pingora_debug_lines_lose_their_secrets() {
        let line = r#"Request header: RequestHeader { base: Parts { method: GET, uri: /.gateway/callback?code=071aBcD&state=Zx9Q2&uin=1, headers: {"host": "gw.test", "cookie": "ogw_login=AQx_long; a=1", "x-openid-token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvIn0.sig"} } }"#;
        let out = redact(line);
        for secret in ["071aBcD", "Zx9Q2", "ogw_login=AQx_long", "eyJhbGci", ".sig"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("uin=1") && out.contains(r#""host": "gw.test""#), "{out}");
    }

    #[test]
    fn whole_cookie_and_authorization_values_leave_header_dumps() {
        // As pingora prints a parsed head (`Request header: {:?}`), quoted values included.
        let mut head = pingora::http::RequestHeader::build("GET", b"/shop", None).unwrap();
        head.insert_header("host", "gw.test").unwrap();
        head.insert_header("cookie", "theme=\"dark blue\"; ogw_session=S3ssionValue1; cart=C4rtValue2").unwrap();
        head.insert_header("authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ").unwrap();
        let parsed = format!("Request header: {head:?}");
        // As a head is printed raw (`{:?}` of its bytes, or escaped): `\r\n` and `\"` escaped.
        let raw = "b\"GET /shop HTTP/1.1\\r\\nCookie: theme=\\\"dark blue\\\"; ogw_session=S3ssionValue1; cart=C4rtValue2\\r\\nAuthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ\\r\\nHost: gw.test\\r\\n\\r\\n\"";
        let text = "Cookie: theme=\"dark blue\"; ogw_session=S3ssionValue1; cart=C4rtValue2\nHost: gw.test";
        for line in [parsed.as_str(), raw, text] {
            let out = redact(line);
            for value in ["dark blue", "S3ssionValue1", "C4rtValue2", "QWxhZGRpbjpvcGVuIHNlc2FtZQ"] {
                assert!(!out.contains(value), "{value} in {out}");
            }
            assert!(out.contains("gw.test"), "the other headers stay: {out}");
        }
    }

    #[test]
    fn set_cookie_jwt_sealed_values_pem_and_known_secrets() {
        let sealed = "A".repeat(120);
        let line = format!("set-cookie: ogw_session={sealed}; Path=/");
        let out = redact(&line);
        assert!(!out.contains(&sealed), "{out}");
        assert!(!redact(&format!("value {sealed}")).contains(&sealed));
        assert!(!redact("x eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.abc y").contains("eyJ0"));
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----";
        assert_eq!(redact(&format!("key {pem} end")), "key [private key] end");
        assert!(!redact("GET /sns/oauth2/access_token?appid=wx1&secret=s3cr3t&code=C").contains("s3cr3t"));
        for short in ["GET /.gateway/ticket?ticket=Tk1&x=1", "GET /.gateway/login?handoff=Hq1 HTTP/1.1"] {
            let out = redact(short);
            assert!(!out.contains("Tk1") && !out.contains("Hq1") && out.contains("=[redacted]"), "{out}");
        }
        register_secrets([b"wechat-app-secret-value".as_slice()]);
        assert_eq!(redact("error: wechat-app-secret-value rejected"), "error: [redacted] rejected");
    }
}
