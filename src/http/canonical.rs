//! The canonical request path: the one spelling of a path that the gateway matches routes and policies on, and
//! forwards unchanged to the backend.
//!
//! Backends disagree on `..`, `%2e%2e`, `%2f`, `..;` (Tomcat) and `\` (IIS). If the gateway decided on the raw path,
//! `/pub/%2e%2e/secret` would pass as public while the backend serves `/secret`. [`canonical_path`] therefore
//! decodes exactly once, removes dot segments (refusing to climb above the root), and refuses outright the
//! spellings that backends resolve differently. Already canonical paths come back borrowed, without allocating.

use std::borrow::Cow;
use std::fmt;

pub use crate::config::{EscapedSlashes, PathRules};

/// Why a path was refused. The gateway answers 400 for every one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The path does not start with `/` (empty, `*`, `a/b`).
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    BadPercent,
    /// A control byte (0x00-0x1F, 0x7F), raw or percent-encoded.
    ControlCharacter,
    /// A raw `\`.
    Backslash,
    /// `%2F` or `%5C` while [`EscapedSlashes::Reject`] is in force.
    EncodedSlash,
    /// A segment that is `.` or `..` followed by `;` parameters (`..;`, `.;x`).
    DotSemicolon,
    /// A `..` segment with no previous segment left to remove.
    AboveRoot,
}

impl Refusal {
    /// A stable snake_case code for logs and metrics (`"not_absolute"`, `"bad_percent"`, ...); never changes.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotAbsolute => "not_absolute",
            Refusal::BadPercent => "bad_percent",
            Refusal::ControlCharacter => "control_character",
            Refusal::Backslash => "backslash",
            Refusal::EncodedSlash => "encoded_slash",
            Refusal::DotSemicolon => "dot_semicolon",
            Refusal::AboveRoot => "above_root",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAbsolute => "the path does not start with '/'",
            Refusal::BadPercent => "a '%' in the path is not followed by two hex digits",
            Refusal::ControlCharacter => "the path contains a control character",
            Refusal::Backslash => "the path contains a backslash",
            Refusal::EncodedSlash => "the path contains an encoded slash or backslash",
            Refusal::DotSemicolon => "a path segment is '.' or '..' followed by ';'",
            Refusal::AboveRoot => "a '..' segment climbs above the root",
        })
    }
}

impl std::error::Error for Refusal {}

/// The canonical form of `raw`, the path component of a request target (no query, no fragment).
///
/// Contract: on `Ok(c)`, `c` starts with `/`, has no `.`/`..` segment, no `\`, no control byte, every `%` is followed
/// by two upper-case hex digits that do not encode an unreserved character, and `canonical_path(c) == Ok(c)`.
/// Percent-decoding happens once (`%252e` stays `%252e`, not a dot). Returns `Cow::Borrowed(raw)` when `raw` has no `%`, `\`,
/// control byte, dot segment, `.;`/`..;` segment, nor (when merging) `//`; any other input is rebuilt.
pub fn canonical_path<'a>(raw: &'a str, rules: &PathRules) -> Result<Cow<'a, str>, Refusal> {
    if !raw.starts_with('/') {
        return Err(Refusal::NotAbsolute);
    }
    if is_canonical(raw, rules) {
        return Ok(Cow::Borrowed(raw));
    }
    canonicalize(raw, rules).map(Cow::Owned)
}

/// One pass over `raw` (which starts with `/`): true when the slow path would return `raw` itself.
fn is_canonical(raw: &str, rules: &PathRules) -> bool {
    let bytes = raw.as_bytes();
    let mut start = 1; // first byte of the current segment
    for i in 1..=bytes.len() {
        match bytes.get(i) {
            Some(b'/') | None => {
                let segment = &bytes[start..i];
                let inner_empty = segment.is_empty() && i < bytes.len();
                if (inner_empty && rules.merge_slashes) || is_dot_like(segment) {
                    return false;
                }
                start = i + 1;
            }
            Some(&b) if b == b'%' || b == b'\\' || is_control(b) => return false,
            Some(_) => {}
        }
    }
    true
}

/// True for `.`, `..`, and either followed by `;...`.
fn is_dot_like(segment: &[u8]) -> bool {
    let head = segment.iter().position(|&b| b == b';').map_or(segment, |end| &segment[..end]);
    head == b"." || head == b".."
}

/// The full algorithm (rules 2-7), whatever the input looks like; `raw` starts with `/`.
fn canonicalize(raw: &str, rules: &PathRules) -> Result<String, Refusal> {
    let decoded = decode(raw, rules.escaped_slashes)?;
    resolve(&decoded, rules.merge_slashes)
}

/// Rule 2: decode once. In the result every `/` is a real separator (a kept `%2F` is spelled as such).
fn decode(raw: &str, escaped_slashes: EscapedSlashes) -> Result<String, Refusal> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let (mut run, mut i) = (0, 0); // `raw[run..i]` is a pending run of bytes copied as they are
    while let Some(&b) = bytes.get(i) {
        if b != b'%' && b != b'\\' && !is_control(b) {
            i += 1;
            continue;
        }
        out.push_str(&raw[run..i]); // `i` is at an ASCII byte, hence a char boundary
        match b {
            b'%' => {
                let value = match (bytes.get(i + 1).and_then(hex_value), bytes.get(i + 2).and_then(hex_value)) {
                    (Some(high), Some(low)) => high << 4 | low,
                    _ => return Err(Refusal::BadPercent),
                };
                push_decoded(&mut out, value, escaped_slashes)?;
                i += 3;
            }
            b'\\' => return Err(Refusal::Backslash),
            _ => return Err(Refusal::ControlCharacter),
        }
        run = i;
    }
    out.push_str(&raw[run..]);
    Ok(out)
}

/// Emit the byte a `%XY` stood for: as itself if unreserved, else per the rules, else re-encoded upper-case.
fn push_decoded(out: &mut String, value: u8, escaped_slashes: EscapedSlashes) -> Result<(), Refusal> {
    match value {
        b'/' | b'\\' => match escaped_slashes {
            EscapedSlashes::Reject => return Err(Refusal::EncodedSlash),
            EscapedSlashes::Keep => push_encoded(out, value),
            EscapedSlashes::Unescape => out.push('/'),
        },
        _ if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') => out.push(char::from(value)),
        _ if is_control(value) => return Err(Refusal::ControlCharacter),
        _ => push_encoded(out, value),
    }
    Ok(())
}

fn push_encoded(out: &mut String, value: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(value >> 4)]));
    out.push(char::from(HEX[usize::from(value & 0xF)]));
}

fn hex_value(b: &u8) -> Option<u8> {
    char::from(*b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// Rules 3-7 on a decoded path that starts with `/`.
fn resolve(decoded: &str, merge_slashes: bool) -> Result<String, Refusal> {
    let tail = decoded.strip_prefix('/').unwrap_or(decoded);
    if tail.split('/').any(|segment| segment.contains(';') && is_dot_like(segment.as_bytes())) {
        return Err(Refusal::DotSemicolon);
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = tail.split('/').peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        match segment {
            "." | ".." => {
                if segment == ".." && kept.pop().is_none() {
                    return Err(Refusal::AboveRoot);
                }
                if is_last {
                    kept.push(""); // `/a/b/..` is `/a/`
                }
            }
            "" if merge_slashes && !is_last => {}
            _ => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::EscapedSlashes::{Keep, Reject, Unescape};
    use super::Refusal::*;
    use super::*;
    use proptest::prelude::*;

    type Case = (&'static str, Result<&'static str, Refusal>);

    const fn rules(merge_slashes: bool, escaped_slashes: EscapedSlashes) -> PathRules {
        PathRules { merge_slashes, escaped_slashes }
    }

    fn check(rules: PathRules, cases: &[Case]) {
        for (raw, expected) in cases {
            let got = canonical_path(raw, &rules).map(Cow::into_owned);
            assert_eq!(got, expected.map(String::from), "{raw:?} with {rules:?}");
        }
    }

    #[rustfmt::skip]
    const ATTACKS: &[Case] = &[
        ("/static/../admin",            Ok("/admin")),
        ("/pub/%2e%2e/secret",          Ok("/secret")),
        ("/pub/%2E%2e/secret",          Ok("/secret")),
        ("/pub/.%2e/secret",            Ok("/secret")),
        ("/pub/%2e/secret",             Ok("/pub/secret")),
        ("/pub/..%2fsecret",            Err(EncodedSlash)),
        ("/pub/..%5csecret",            Err(EncodedSlash)),
        ("/pub\\..\\secret",            Err(Backslash)),
        ("/pub/..;/secret",             Err(DotSemicolon)),
        ("/pub/%2e%2e;/secret",         Err(DotSemicolon)),
        ("/pub/..;jsessionid=x/secret", Err(DotSemicolon)),
        ("/pub/.;/secret",              Err(DotSemicolon)),
        ("/a/../..;",                   Err(DotSemicolon)), // rule 4 comes before rule 6
        ("/..",                         Err(AboveRoot)),
        ("/%2e%2e/x",                   Err(AboveRoot)),
        ("/a/../../b",                  Err(AboveRoot)),
    ];

    #[rustfmt::skip]
    const PERCENT_AND_RAW_BYTES: &[Case] = &[
        ("/a%00b",        Err(ControlCharacter)),
        ("/a%7f",         Err(ControlCharacter)),
        ("/a\tb",         Err(ControlCharacter)),
        ("/a\u{7f}",      Err(ControlCharacter)),
        ("/a%zz",         Err(BadPercent)),
        ("/%",            Err(BadPercent)),
        ("/%4",           Err(BadPercent)),
        ("/%%41",         Err(BadPercent)),
        ("/%zz%2f",       Err(BadPercent)), // the first problem from the left wins
        ("/a\\b",         Err(Backslash)),
        ("",              Err(NotAbsolute)),
        ("*",             Err(NotAbsolute)),
        ("a/b",           Err(NotAbsolute)),
        ("%2Fa",          Err(NotAbsolute)),
        ("/%41%7e%2D",    Ok("/A~-")),
        ("/x/%e4%b8%ad",  Ok("/x/%E4%B8%AD")),
        ("/%252e",        Ok("/%252e")), // decoded once: %25 stays, "2e" is literal text
        ("/%3f%3b%25%20", Ok("/%3F%3B%25%20")),
        ("/中/x",         Ok("/中/x")),
    ];

    #[rustfmt::skip]
    const DOTS: &[Case] = &[
        ("/",                 Ok("/")),
        ("/a/./b/.",          Ok("/a/b/")),
        ("/a/b/..",           Ok("/a/")),
        ("/a/.",              Ok("/a/")),
        ("/a/..",             Ok("/")),
        ("/./",               Ok("/")),
        ("/a;jsessionid=1/b", Ok("/a;jsessionid=1/b")),
        ("/.a/..b/.../x;..",  Ok("/.a/..b/.../x;..")),
    ];

    #[test]
    fn attack_spellings_with_default_rules() {
        check(PathRules::default(), ATTACKS);
    }

    #[test]
    fn percent_escapes_and_raw_bytes() {
        check(PathRules::default(), PERCENT_AND_RAW_BYTES);
    }

    /// Outcomes under `Reject`, `Keep`, `Unescape`, merging slashes.
    #[rustfmt::skip]
    const ESCAPED_SLASHES: &[(&str, [Result<&str, Refusal>; 3])] = &[
        ("/pub/..%2fsecret", [Err(EncodedSlash), Ok("/pub/..%2Fsecret"), Ok("/secret")]),
        ("/pub/..%5csecret", [Err(EncodedSlash), Ok("/pub/..%5Csecret"), Ok("/secret")]),
        ("/a%2F..",          [Err(EncodedSlash), Ok("/a%2F.."),          Ok("/")]),
        ("/a%2f%5cb",        [Err(EncodedSlash), Ok("/a%2F%5Cb"),        Ok("/a/b")]),
        ("/%2f..",           [Err(EncodedSlash), Ok("/%2F.."),           Err(AboveRoot)]),
    ];

    #[test]
    fn escaped_slashes_by_rule() {
        for (raw, outcomes) in ESCAPED_SLASHES {
            for (escaped_slashes, expected) in [Reject, Keep, Unescape].into_iter().zip(outcomes) {
                check(rules(true, escaped_slashes), &[(raw, *expected)]);
            }
        }
        check(rules(false, Unescape), &[("/a%2f%2fb", Ok("/a//b")), ("/%2f..", Ok("/"))]);
    }

    #[test]
    fn dots_and_slashes() {
        check(rules(true, Reject), DOTS);
        check(rules(false, Reject), DOTS);
        check(rules(true, Reject), &[("/a//b", Ok("/a/b")), ("/a//b//", Ok("/a/b/")), ("//", Ok("/"))]);
        check(rules(false, Reject), &[("/a//b", Ok("/a//b")), ("/a//..", Ok("/a/")), ("//", Ok("//"))]);
    }

    #[test]
    fn canonical_input_is_borrowed() {
        for raw in ["/", "/a/b", "/a/b/", "/a;v=1/b", "/中文/x", "/.well-known/x", "/a/..."] {
            for merge_slashes in [true, false] {
                let result = canonical_path(raw, &rules(merge_slashes, Reject));
                assert!(matches!(result, Ok(Cow::Borrowed(_))), "{raw:?}: {result:?}");
            }
        }
        assert!(matches!(canonical_path("/a//b", &rules(false, Reject)), Ok(Cow::Borrowed(_))));
        assert!(matches!(canonical_path("/a//b", &rules(true, Reject)), Ok(Cow::Owned(_))));
    }

    #[test]
    fn refusal_codes_and_defaults() {
        let all = [NotAbsolute, BadPercent, ControlCharacter, Backslash, EncodedSlash, DotSemicolon, AboveRoot];
        let codes: std::collections::HashSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|r| r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert!(all.iter().all(|r| !r.to_string().is_empty()));
        assert_eq!(NotAbsolute.as_str(), "not_absolute");
        assert_eq!(PathRules::default(), rules(true, Reject));
    }

    #[rustfmt::skip]
    const ALL_RULES: [PathRules; 6] = [
        rules(true, Reject), rules(true, Keep), rules(true, Unescape),
        rules(false, Reject), rules(false, Keep), rules(false, Unescape),
    ];

    #[rustfmt::skip]
    const VOCABULARY: &[&str] = &[
        "pub", "static", "admin", "secret", "a", "b", "", ".", "..", "%2e", "%2E", ".%2e", "%2e%2e", "..;", ".;x",
        "%2f", "%2F", "%5c", "\\", "%00", "%41", "%e4%b8%ad", "%25", "%252e", ";v=1", "x;y", "~", "%",
    ];

    /// Vocabulary segments each preceded by `/` or `//`, or an arbitrary printable string after a `/`.
    fn path() -> impl Strategy<Value = String> {
        let part = (prop::sample::select(VOCABULARY), prop_oneof![Just("/"), Just("//")]);
        let tricky = prop::collection::vec(part, 1..8)
            .prop_map(|parts| parts.iter().map(|(segment, slash)| format!("{slash}{segment}")).collect::<String>());
        prop_oneof![3 => tricky, 1 => "\\PC*".prop_map(|s| format!("/{s}"))]
    }

    /// The output contract of `canonical_path`, checked on the string alone.
    fn assert_shape(c: &str, rules: &PathRules) {
        assert!(c.starts_with('/'), "{c:?}");
        assert!(!c[1..].split('/').any(|s| is_dot_like(s.as_bytes())), "{c:?}");
        assert!(!c.contains('\\') && !c.bytes().any(is_control), "{c:?}");
        assert!(!(rules.merge_slashes && c.contains("//")), "{c:?}");
        for (i, _) in c.match_indices('%') {
            let hex = c.get(i + 1..i + 3).unwrap_or("");
            assert!(hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)), "{c:?}");
            let value = u8::from_str_radix(hex, 16).unwrap();
            assert!(!(value.is_ascii_alphanumeric() || b"-._~".contains(&value)), "{c:?}");
            assert!(!(rules.escaped_slashes == Reject && (value == b'/' || value == b'\\')), "{c:?}");
        }
    }

    /// The naive model (no encoded slashes): decode char by char, refuse dot-semicolons, merge by `replace`, then
    /// the string algorithm of RFC 3986 §5.2.4, refusing where the RFC would clamp at the root.
    fn reference(raw: &str, merge_slashes: bool) -> Result<String, Refusal> {
        let (mut chars, mut decoded) = (raw.strip_prefix('/').ok_or(NotAbsolute)?.chars(), String::from("/"));
        while let Some(c) = chars.next() {
            if c == '%' {
                let hex: String = chars.by_ref().take(2).collect();
                if hex.len() != 2 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    return Err(BadPercent);
                }
                match char::from(u8::from_str_radix(&hex, 16).unwrap()) {
                    d if d.is_ascii_control() => return Err(ControlCharacter),
                    d if d.is_ascii_alphanumeric() || "-._~".contains(d) => decoded.push(d),
                    _ => decoded.push_str(&format!("%{}", hex.to_uppercase())),
                }
            } else if c == '\\' {
                return Err(Backslash);
            } else if c.is_ascii_control() {
                return Err(ControlCharacter);
            } else {
                decoded.push(c);
            }
        }
        if decoded.split('/').any(|segment| segment.starts_with(".;") || segment.starts_with("..;")) {
            return Err(DotSemicolon);
        }
        while merge_slashes && decoded.contains("//") {
            decoded = decoded.replace("//", "/");
        }
        let (mut input, mut output) = (decoded.as_str(), String::new());
        while !input.is_empty() {
            if input.starts_with("/./") || input == "/." {
                input = if input == "/." { "/" } else { &input[2..] };
            } else if input.starts_with("/../") || input == "/.." {
                input = if input == "/.." { "/" } else { &input[3..] };
                output.truncate(output.rfind('/').ok_or(AboveRoot)?);
            } else {
                let end = input[1..].find('/').map_or(input.len(), |p| p + 1);
                output.push_str(&input[..end]);
                input = &input[end..];
            }
        }
        Ok(output)
    }

    proptest! {
        #[test]
        fn idempotent_and_well_shaped(raw in path()) {
            for rules in &ALL_RULES {
                if let Ok(c) = canonical_path(&raw, rules) {
                    assert_shape(&c, rules);
                    let again = canonical_path(&c, rules);
                    prop_assert_eq!(again.as_deref(), Ok(&*c), "{:?} with {:?}", raw, rules);
                    prop_assert!(matches!(again, Ok(Cow::Borrowed(_))) || c.contains('%'), "{:?}", c);
                }
            }
        }

        #[test]
        fn agrees_with_reference_model(raw in path()) {
            let lower = raw.to_ascii_lowercase();
            if !lower.contains("%2f") && !lower.contains("%5c") {
                for rules in &ALL_RULES {
                    let got = canonical_path(&raw, rules).map(Cow::into_owned);
                    prop_assert_eq!(got, reference(&raw, rules.merge_slashes), "{:?} with {:?}", raw, rules);
                }
            }
        }

        #[test]
        fn fast_path_agrees_with_slow_path(raw in path()) {
            for rules in &ALL_RULES {
                let (got, slow) = (canonical_path(&raw, rules), canonicalize(&raw, rules));
                prop_assert_eq!(got.as_deref(), slow.as_deref(), "{:?} with {:?}", raw, rules);
                // Borrowed exactly when the slow path gives `raw` back, for inputs without `%`.
                let unchanged = slow.as_deref() == Ok(raw.as_str());
                if !raw.contains('%') {
                    prop_assert_eq!(matches!(got, Ok(Cow::Borrowed(_))), unchanged, "{:?} with {:?}", raw, rules);
                }
            }
        }
    }
}
