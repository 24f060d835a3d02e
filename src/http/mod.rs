//! What every wing reads of HTTP: the client as the gateway sees it ([`client`], [`host`]),
//! the request target in its canonical form ([`target`], [`canonical`]), cookies, the
//! gateway's own answers ([`reply`]) and the errors a request can meet ([`error`]).

pub mod canonical;
pub mod client;
pub mod cookies;
pub mod endpoint;
pub mod error;
pub mod host;
pub mod reply;
pub mod target;
