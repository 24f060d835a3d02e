//! A response the gateway answers by itself (redirects, pages, JSON), before it is written.

use bytes::Bytes;

/// The headers the gateway's own answers carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    SetCookie,
    ContentType,
    CacheControl,
    Location,
    ReferrerPolicy,
    RetryAfter,
    /// `Access-Control-Allow-Origin`.
    AllowOrigin,
    /// `Strict-Transport-Security`.
    Hsts,
    /// `X-Request-Id`: the id a page names, for support.
    RequestId,
    /// `X-Login-Url`: where a script sends the user to log in.
    LoginUrl,
    /// A header named in the config (the token header of a forward-auth answer) or for a
    /// front proxy (`X-Openid`).
    Named(http::HeaderName),
}

impl Header {
    /// Its name, for writing.
    pub fn into_name(self) -> http::HeaderName {
        match self {
            Header::Named(name) => name,
            other => http::HeaderName::from_static(other.static_name()),
        }
    }

    /// Its name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Header::Named(name) => name.as_str(),
            other => other.static_name(),
        }
    }

    fn static_name(&self) -> &'static str {
        match self {
            Header::SetCookie => "set-cookie",
            Header::ContentType => "content-type",
            Header::CacheControl => "cache-control",
            Header::Location => "location",
            Header::ReferrerPolicy => "referrer-policy",
            Header::RetryAfter => "retry-after",
            Header::AllowOrigin => "access-control-allow-origin",
            Header::Hsts => "strict-transport-security",
            Header::RequestId => "x-request-id",
            Header::LoginUrl => "x-login-url",
            Header::Named(_) => "x-named",
        }
    }
}

/// Status, headers and body of a response the gateway writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(Header, String)>,
    pub body: Bytes,
}

impl Reply {
    /// `302 Found` to `location`, never cached.
    pub fn redirect(location: impl Into<String>) -> Self {
        Self {
            status: 302,
            headers: vec![(Header::Location, location.into()), (Header::CacheControl, "no-store".into())],
            body: Bytes::new(),
        }
    }

    /// An HTML page, never cached; its links send no `Referer` (its own URL may be a ticket's).
    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![
                (Header::ContentType, "text/html; charset=utf-8".into()),
                (Header::CacheControl, "no-store".into()),
                (Header::ReferrerPolicy, "no-referrer".into()),
            ],
            body: Bytes::from(body),
        }
    }

    /// A JSON body, never cached.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![(Header::ContentType, "application/json".into()), (Header::CacheControl, "no-store".into())],
            body: Bytes::from(body),
        }
    }

    /// Adds a header (several `Set-Cookie` may be added).
    pub fn with_header(mut self, name: Header, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}
