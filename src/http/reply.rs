//! A response the gateway answers by itself (redirects, pages, JSON), before it is written.

use bytes::Bytes;

/// Status, headers and body of a response the gateway writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// `302 Found` to `location`, never cached.
    pub fn redirect(location: impl Into<String>) -> Self {
        Self {
            status: 302,
            headers: vec![("location", location.into()), ("cache-control", "no-store".into())],
            body: Bytes::new(),
        }
    }

    /// An HTML page, never cached; its links send no `Referer` (its own URL may be a ticket's).
    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
                ("referrer-policy", "no-referrer".into()),
            ],
            body: Bytes::from(body),
        }
    }

    /// A JSON body, never cached.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())],
            body: Bytes::from(body),
        }
    }

    /// Adds a header (several `Set-Cookie` may be added).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}
