//! What an operator sees of the gateway: its log lines ([`logging`], users named as
//! [`access`] says) and its Prometheus metrics ([`metrics`]).

pub mod access;
pub mod logging;
pub mod metrics;
