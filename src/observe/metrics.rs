//! Prometheus metrics, served on the admin listener at `/metrics`. One [`Metrics`] lives for
//! the whole process: a reload swaps the gateway, never the counters.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::wechat::errcode::ErrClass;
use crate::wechat::ExchangeError;

/// Upstream and WeChat latencies, in seconds.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status class (`2xx`, ...).
    pub requests: IntCounterVec,
    /// Time from sending the request upstream to the upstream's response header, by route.
    pub upstream_seconds: HistogramVec,
    /// Logins started (redirects to WeChat), by app.
    pub login_starts: IntCounterVec,
    /// Callbacks from WeChat, by app.
    pub callbacks: IntCounterVec,
    /// Code exchanges by app and result (`ok`, or the failure class).
    pub exchanges: IntCounterVec,
    /// Browsers stopped by the loop breaker, by app.
    pub loop_breaker: IntCounterVec,
    /// "Open in WeChat" QR pages shown, by app.
    pub qr_pages: IntCounterVec,
    /// Logins of app hosts through a login host, by app and step (`requested`, `issued`,
    /// `redeemed`) or refusal.
    pub tickets: IntCounterVec,
    /// Duration of code exchanges with WeChat, by app.
    pub wechat_seconds: HistogramVec,
    /// Token cache lookups by result (`hit`, `miss`).
    pub token_cache: IntCounterVec,
    /// Tokens signed.
    pub signatures: IntCounter,
    /// Client connections open now.
    pub connections: IntGauge,
    /// Config reloads by result (`ok`, `refused`).
    pub reloads: IntCounterVec,
    /// 1 while the shared state (Redis) is unreachable and each replica uses its own.
    pub state_degraded: IntGauge,
    /// Shared-state commands that failed or timed out.
    pub state_errors: IntCounter,
    /// Calls to WeChat for an account's credentials, by appid, credential and result (`ok`,
    /// an errcode, or `unreachable`).
    pub credential_fetches: IntCounterVec,
    /// Tokens a use found bad, by appid and result (`refreshed`, `unchanged`, `too_soon`).
    pub credential_heals: IntCounterVec,
    /// 1 while an account's credentials cannot be fetched, by appid.
    pub credential_degraded: IntGaugeVec,
    /// When each credential held ends (Unix seconds), by appid and credential.
    pub credential_expiry: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("metric registered once");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
            let h = HistogramVec::new(opts, labels).expect("valid metric");
            registry.register(Box::new(h.clone())).expect("metric registered once");
            h
        };
        let requests = counter(
            "ogw_requests_total",
            "Requests by route, method and status class.",
            &["route", "method", "status"],
        );
        let upstream_seconds =
            histogram("ogw_upstream_duration_seconds", "Time to the upstream's response header.", &["route"]);
        let login_starts = counter("ogw_login_starts_total", "Logins started (redirects to WeChat).", &["app"]);
        let callbacks = counter("ogw_login_callbacks_total", "Callbacks from WeChat.", &["app"]);
        let exchanges = counter("ogw_code_exchanges_total", "Code exchanges by result.", &["app", "result"]);
        let loop_breaker =
            counter("ogw_loop_breaker_hits_total", "Browsers stopped by the login loop breaker.", &["app"]);
        let qr_pages = counter("ogw_qr_pages_total", "Open-in-WeChat QR pages shown.", &["app"]);
        let tickets = counter(
            "ogw_tickets_total",
            "App-host logins through the login host, by step or refusal.",
            &["app", "result"],
        );
        let wechat_seconds = histogram("ogw_wechat_api_duration_seconds", "Code exchanges with WeChat.", &["app"]);
        let token_cache = counter("ogw_token_cache_total", "Token cache lookups by result.", &["result"]);
        let reloads = counter("ogw_config_reloads_total", "Config reloads by result.", &["result"]);
        let signatures = IntCounter::new("ogw_token_signatures_total", "Tokens signed.").expect("valid metric");
        registry.register(Box::new(signatures.clone())).expect("metric registered once");
        let connections = IntGauge::new("ogw_connections_open", "Client connections open.").expect("valid metric");
        registry.register(Box::new(connections.clone())).expect("metric registered once");
        let state_degraded =
            IntGauge::new("ogw_state_degraded", "1 while Redis is unreachable (each replica on its own state).")
                .expect("valid metric");
        registry.register(Box::new(state_degraded.clone())).expect("metric registered once");
        let state_errors = IntCounter::new("ogw_state_errors_total", "Shared-state commands that failed or timed out.")
            .expect("valid metric");
        registry.register(Box::new(state_errors.clone())).expect("metric registered once");
        let credential_fetches = counter(
            "ogw_wechat_credential_fetches_total",
            "Calls to WeChat for an account's access_token or jsapi_ticket, by result.",
            &["appid", "credential", "result"],
        );
        let credential_heals = counter(
            "ogw_wechat_token_heals_total",
            "Tokens a use found bad (40001/42001/40014), by what was done.",
            &["appid", "result"],
        );
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("metric registered once");
            g
        };
        let credential_degraded =
            gauge("ogw_wechat_credential_degraded", "1 while an account's credentials cannot be fetched.", &["appid"]);
        let credential_expiry = gauge(
            "ogw_wechat_credential_expiry_seconds",
            "When the credential held ends (Unix seconds).",
            &["appid", "credential"],
        );
        Self {
            registry,
            requests,
            upstream_seconds,
            login_starts,
            callbacks,
            exchanges,
            loop_breaker,
            qr_pages,
            tickets,
            wechat_seconds,
            token_cache,
            signatures,
            connections,
            reloads,
            state_degraded,
            state_errors,
            credential_fetches,
            credential_heals,
            credential_degraded,
            credential_expiry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail; a metric that could not be encoded is left out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// Records one code exchange with WeChat for `app`.
    pub fn exchange<T>(&self, app: &str, took: Duration, result: &Result<T, ExchangeError>) {
        self.wechat_seconds.with_label_values(&[app]).observe(took.as_secs_f64());
        let label = match result {
            Ok(_) => "ok",
            Err(ExchangeError::Timeout) => "timeout",
            Err(ExchangeError::Network(_)) => "network",
            Err(e) => match e.class() {
                ErrClass::CodeRejected => "code_rejected",
                ErrClass::Transient => "busy",
                ErrClass::Misconfigured => "misconfigured",
                ErrClass::MissingCode => "missing_code",
                ErrClass::Unknown => "unknown",
            },
        };
        self.exchanges.with_label_values(&[app, label]).inc();
    }
}

/// Methods outside the common set share one label, so clients cannot grow the series.
/// The method's label and its index in [`RequestCounters`].
fn method_label(m: &http::Method) -> (usize, &'static str) {
    match m.as_str() {
        "GET" => (0, "GET"),
        "HEAD" => (1, "HEAD"),
        "POST" => (2, "POST"),
        "PUT" => (3, "PUT"),
        "PATCH" => (4, "PATCH"),
        "DELETE" => (5, "DELETE"),
        "OPTIONS" => (6, "OPTIONS"),
        _ => (7, "other"),
    }
}

/// The status class label and its index in [`RequestCounters`].
fn status_class(status: u16) -> (usize, &'static str) {
    match status {
        100..=199 => (0, "1xx"),
        200..=299 => (1, "2xx"),
        300..=399 => (2, "3xx"),
        400..=499 => (3, "4xx"),
        500..=599 => (4, "5xx"),
        _ => (5, "none"),
    }
}

/// One app's series, resolved by its name once when the gateway is built.
pub struct AppMetrics {
    pub login_starts: IntCounter,
    pub callbacks: IntCounter,
    pub loop_breaker: IntCounter,
    pub qr_pages: IntCounter,
    tickets: IntCounterVec,
    app: String,
}

impl AppMetrics {
    /// Counts a step of a login through the login host, or a refusal (its code).
    pub fn ticket(&self, outcome: &str) {
        self.tickets.with_label_values(&[&self.app, outcome]).inc();
    }
}

impl Metrics {
    /// The series of app `app` (its name).
    pub fn for_app(&self, app: &str) -> AppMetrics {
        AppMetrics {
            login_starts: self.login_starts.with_label_values(&[app]),
            callbacks: self.callbacks.with_label_values(&[app]),
            loop_breaker: self.loop_breaker.with_label_values(&[app]),
            qr_pages: self.qr_pages.with_label_values(&[app]),
            tickets: self.tickets.clone(),
            app: app.to_string(),
        }
    }
}

/// One route's series of `ogw_requests_total`, each looked up by its labels once (when first
/// counted) and then kept, so counting a request hashes no label.
#[derive(Default)]
pub struct RequestCounters {
    cells: [[std::sync::OnceLock<IntCounter>; 6]; 8],
}

impl RequestCounters {
    /// Counts one finished request of route `route` (its label) in `metrics`.
    pub fn count(&self, metrics: &Metrics, route: &str, method: &http::Method, status: u16) {
        let (m, method) = method_label(method);
        let (c, class) = status_class(status);
        self.cells[m][c].get_or_init(|| metrics.requests.with_label_values(&[route, method, class])).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counted_requests_in_text_format() {
        let m = Metrics::new();
        let shop = RequestCounters::default();
        shop.count(&m, "shop", &http::Method::GET, 204);
        shop.count(&m, "shop", &http::Method::from_bytes(b"BREW").unwrap(), 404);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("ogw_requests_total{method=\"GET\",route=\"shop\",status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("ogw_requests_total{method=\"other\",route=\"shop\",status=\"4xx\"} 1"), "{text}");
    }

    #[test]
    fn exchanges_are_labelled_by_failure_class() {
        let m = Metrics::new();
        let rejected: Result<(), _> = Err(ExchangeError::Rejected { errcode: 40029, errmsg: "invalid code".into() });
        m.exchange("shop", Duration::from_millis(20), &rejected);
        m.exchange("shop", Duration::from_millis(20), &Ok::<(), ExchangeError>(()));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("ogw_code_exchanges_total{app=\"shop\",result=\"code_rejected\"} 1"), "{text}");
        assert!(text.contains("ogw_code_exchanges_total{app=\"shop\",result=\"ok\"} 1"), "{text}");
        assert!(text.contains("ogw_wechat_api_duration_seconds_count{app=\"shop\"} 2"), "{text}");
    }
}
