//! Request size caps, checked before anything else is done with a request: header fields
//! (count and bytes, 431), and a route's body cap (413) from `Content-Length` up front, then
//! counted as a body without one streams through.

use pingora::http::RequestHeader;

use crate::config::Limits;
use crate::http::error::GatewayError;

/// `Err(HeadersTooLarge)` when `req` has more header fields, or more bytes of names and
/// values together, than `limits` allow.
pub fn check_headers(req: &RequestHeader, limits: &Limits) -> Result<(), GatewayError> {
    if req.headers.len() > limits.max_headers {
        return Err(GatewayError::HeadersTooLarge);
    }
    let bytes: usize = req.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if bytes > limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    Ok(())
}

/// `Err(BodyTooLarge)` when `Content-Length` announces more than `max_body`.
pub fn check_declared_body(req: &RequestHeader, max_body: Option<usize>) -> Result<(), GatewayError> {
    let Some(max) = max_body else { return Ok(()) };
    let declared =
        req.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max as u64 => Err(GatewayError::BodyTooLarge),
        _ => Ok(()),
    }
}

/// Adds `chunk` bytes to `seen`; `Err(BodyTooLarge)` once past `max_body`.
pub fn count_body(seen: &mut usize, chunk: usize, max_body: Option<usize>) -> Result<(), GatewayError> {
    *seen = seen.saturating_add(chunk);
    match max_body {
        Some(max) if *seen > max => Err(GatewayError::BodyTooLarge),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, String)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), v.as_str()).unwrap();
        }
        r
    }

    #[test]
    fn header_count_and_bytes() {
        let limits = Limits { max_headers: 3, max_header_bytes: 100, ..Limits::default() };
        let ok = req(&[("a", "1".into()), ("b", "2".into()), ("c", "3".into())]);
        assert!(check_headers(&ok, &limits).is_ok());
        let many = req(&[("a", "1".into()), ("b", "2".into()), ("c", "3".into()), ("d", "4".into())]);
        assert!(matches!(check_headers(&many, &limits), Err(GatewayError::HeadersTooLarge)));
        let big = req(&[("cookie", "x".repeat(100))]);
        assert!(matches!(check_headers(&big, &limits), Err(GatewayError::HeadersTooLarge)));
    }

    #[test]
    fn body_caps() {
        let r = req(&[("content-length", "11".into())]);
        assert!(check_declared_body(&r, Some(10)).is_err() && check_declared_body(&r, Some(11)).is_ok());
        assert!(check_declared_body(&r, None).is_ok());
        let mut seen = 0;
        assert!(count_body(&mut seen, 6, Some(10)).is_ok());
        assert!(count_body(&mut seen, 5, Some(10)).is_err());
    }
}
