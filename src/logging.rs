//! Every line the process logs, pingora's own included, goes through [`redact`] before it is
//! written, at every level: cookie values, WeChat codes and states, tokens, the AppSecret and
//! keys never reach a log. Operators turn `trace` on exactly when something is wrong; the
//! logger, not their discipline, keeps secrets out.
//!
//! Redaction knows the shapes secrets take (JWTs, sealed cookies, `code=`/`state=`/`secret=`
//! parameters, `Cookie`/`Set-Cookie`/`Authorization`/identity header values, PEM keys) and
//! the exact values of the configured secrets ([`register_secrets`]).

use std::borrow::Cow;
use std::io::Write;
use std::sync::{LazyLock, RwLock};

use regex::{Regex, RegexSet};

const REDACTED: &str = "[redacted]";

/// Header names whose values are always redacted, besides the configured identity header.
const SECRET_HEADERS: &str = "cookie|set-cookie|authorization|proxy-authorization|x-openid-token";

/// Query and form parameters whose values are always redacted.
const SECRET_PARAMS: &str = "code|state|secret|appsecret|corpsecret|access_token|refresh_token|ticket|pass_ticket|key";

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
        // Header lines written as text: Cookie: …
        (format!(r#"(?i)\b({SECRET_HEADERS}): [^"\r\n]*"#), "$1: [redacted]"),
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

/// Exact values of configured secrets (AppSecrets, session keys, signing keys).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds the exact values of configured secrets to what every log line is cleaned of.
/// Values shorter than 8 bytes are ignored (they would redact ordinary words).
pub fn register_secrets<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) {
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    for s in secrets {
        let Ok(text) = std::str::from_utf8(s) else { continue };
        for part in text.lines().map(str::trim).filter(|p| p.len() >= 8 && !p.starts_with("-----")) {
            if !known.iter().any(|k| k == part) {
                known.push(part.to_string());
            }
        }
    }
}

/// `line` with every secret replaced; borrowed when there was nothing to replace.
pub fn redact(line: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(line);
    let rules = &*RULES;
    let matched = rules.any.matches(line);
    for i in matched.iter() {
        let (re, with) = &rules.each[i];
        if let Cow::Owned(s) = re.replace_all(&out, *with) {
            out = Cow::Owned(s);
        }
    }
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    for k in known.iter() {
        if out.contains(k.as_str()) {
            out = Cow::Owned(out.replace(k.as_str(), REDACTED));
        }
    }
    out
}

/// Starts the process's logger: `filter` in `RUST_LOG` syntax (`RUST_LOG` wins when set),
/// every line redacted; to standard error, or to `sink` (tests read what the process logged).
pub fn init(filter: &str, sink: Option<Box<dyn Write + Send>>) -> Result<(), log::SetLoggerError> {
    let mut b = env_logger::Builder::new();
    b.parse_filters(filter);
    if let Ok(env) = std::env::var("RUST_LOG") {
        b.parse_filters(&env);
    }
    b.format(|buf, record| {
        let message = record.args().to_string();
        let ts = buf.timestamp_millis();
        writeln!(buf, "{ts} {:5} {} {}", record.level(), record.target(), redact(&message))
    });
    if let Some(sink) = sink {
        b.target(env_logger::Target::Pipe(sink));
    }
    b.try_init()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        register_secrets([b"wechat-app-secret-value".as_slice()]);
        assert_eq!(redact("error: wechat-app-secret-value rejected"), "error: [redacted] rejected");
    }
}
