//! What every call to WeChat's API shares: an HTTP client that never follows a redirect and
//! ends on time, and its answers read `errcode` first, whatever their HTTP status and
//! Content-Type (WeChat answers errors with HTTP 200).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::ExchangeError;

/// A client for WeChat's API: `connect` to connect, `total` for a whole call.
pub fn client(connect: Duration, total: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client with rustls and timeouts always builds")
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(flatten)]
    body: T,
}

/// The answer's fields: `Rejected` when it has a non-zero `errcode`; `Malformed` when a 2xx
/// answer is not the JSON expected, `Http` when another status is not.
pub fn read<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ExchangeError> {
    match serde_json::from_slice::<Envelope<T>>(body) {
        Ok(e) if e.errcode != 0 => Err(ExchangeError::Rejected { errcode: e.errcode, errmsg: e.errmsg }),
        Ok(e) => Ok(e.body),
        Err(e) if (200..300).contains(&status) => Err(ExchangeError::Malformed(e.to_string())),
        Err(_) => Err(ExchangeError::Http(status)),
    }
}

/// A failure to reach WeChat, said without the URL: it carries the app secret or a token.
pub fn transport_error(e: reqwest::Error) -> ExchangeError {
    if e.is_timeout() {
        ExchangeError::Timeout
    } else {
        ExchangeError::Network(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcode_first_whatever_the_status() {
        let any = |s, b: &[u8]| read::<serde::de::IgnoredAny>(s, b).map(|_| ());
        assert_eq!(any(200, br#"{"ip_list":["101.226.103.0/25"]}"#), Ok(()));
        assert_eq!(
            any(200, br#"{"errcode":40001,"errmsg":"invalid credential"}"#),
            Err(ExchangeError::Rejected { errcode: 40001, errmsg: "invalid credential".into() })
        );
        assert!(matches!(any(200, b"<html>"), Err(ExchangeError::Malformed(_))));
        assert_eq!(any(502, b"bad gateway"), Err(ExchangeError::Http(502)));
    }
}
