//! What an operator sees of the gateway: its log lines ([`logging`]) and its Prometheus
//! metrics ([`metrics`]).

pub mod logging;
pub mod metrics;
