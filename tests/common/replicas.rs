//! Replicas of the gateway in this process, sharing one mock WeChat, one upstream and the
//! `[state]` the test gives (a real Redis for most).

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use openid_gateway::config;
use openid_gateway::observe::metrics::Metrics;
use openid_gateway::runtime::live::LiveGateway;
use openid_gateway::runtime::{Deps, Gateway};
use openid_gateway::serve::admin::AdminApp;
use openid_gateway::serve::server::{proxy_service, server_conf, start_on, Running};
use openid_gateway::shared::SharedState;
use openid_gateway::util::clock::{Clock, ManualClock, SystemClock};
use pingora::services::listening::Service as ListeningService;

/// One replica: its public listener, its admin listener and its state.
pub struct Replica {
    pub addr: SocketAddr,
    pub admin: String,
    pub state: Arc<SharedState>,
    _servers: Vec<Running>,
}

/// Replicas sharing one mock WeChat, one upstream and one Redis.
pub struct Cluster {
    pub clock: ManualClock,
    pub mock: openid_gateway::dev::mock_wechat::MockWechat,
    pub upstream: Recorder,
    /// The mock WeChat's base URL.
    pub mock_url: String,
    pub replicas: Vec<Replica>,
    _mock: Running,
    _up: Running,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` replicas; `state` is the `[state]` table, `extra` more tables.
    pub async fn start(n: usize, state: &str, extra: &str) -> Self {
        let clock = ManualClock::new(SystemClock.now());
        let mock = strict_mock(APPID, WECHAT_SECRET, PUBLIC_HOST, false, &clock);
        let mock_srv = serve_mock(&mock);
        let upstream = Recorder::default();
        let up_srv = start_on(ListeningService::new("upstream".into(), upstream.clone()), listener()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in [("wechat.secret", WECHAT_SECRET), ("session.key", SESSION_KEY), ("hs256.key", HS256_KEY)]
        {
            std::fs::write(dir.path().join(name), value).unwrap();
        }
        let mut replicas = Vec::new();
        for _ in 0..n {
            let l = listener();
            let addr = l.local_addr().unwrap();
            let mock_url = mock_srv.url();
            let text = format!(
                "listen = \"{addr}\"\npublic_url = \"http://{PUBLIC_HOST}\"\n\
                 [wechat]\nappid = \"{APPID}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
                 authorize_url = \"{mock_url}/connect/oauth2/authorize\"\napi_base = \"{mock_url}\"\n\
                 [session]\nkeys = [{{ file = \"session.key\" }}]\n\
                 [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"hs256.key\" }}\nissuer = \"https://issuer.test\"\n\
                 {state}\n{extra}\n\
                 [[routes]]\npath = \"/\"\nupstream = \"{}\"\naudience = \"shop\"\nkeep_fragment = false\n",
                up_srv.url()
            );
            let loaded = config::parse_str(&text, dir.path()).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            let metrics = Arc::new(Metrics::new());
            let state = Arc::new(SharedState::new(&loaded.config.state, metrics.clone()).unwrap());
            let deps = Deps { clock: Arc::new(clock.clone()), metrics, state: state.clone(), ..Deps::default() };
            let live = LiveGateway::fixed(Arc::new(Gateway::new(loaded.config, deps).unwrap()));
            let conf = Arc::new(server_conf(1));
            let gw = start_on(proxy_service(live.clone(), &conf), l).unwrap();
            let admin =
                start_on(ListeningService::new("admin".into(), AdminApp::new(live.clone())), listener()).unwrap();
            replicas.push(Replica { addr, admin: admin.url(), state, _servers: vec![gw, admin] });
        }
        Cluster { clock, mock, upstream, mock_url: mock_srv.url(), replicas, _mock: mock_srv, _up: up_srv, _dir: dir }
    }

    pub fn browser(&self, replica: usize) -> Browser {
        browser(WECHAT_UA, PUBLIC_HOST, self.replicas[replica].addr)
    }

    /// A logged-in session cookie (`ogw_session=…`), logging in through `replica`.
    pub async fn login(&self, replica: usize) -> String {
        let b = self.browser(replica);
        let pages = b.walk(&url("/shop")).await;
        assert_eq!(pages.last().unwrap().status, 200, "{pages:?}");
        format!("ogw_session={}", cookie_value(&b.cookies("/"), "ogw_session").expect("a session"))
    }

    /// GET `path` on `replica` with `cookie`: forwarded to the app (with a token), or not.
    pub async fn forwarded(&self, replica: usize, path: &str, cookie: &str) -> bool {
        let before = self.upstream.seen().len();
        let page = self.browser(replica).get_with(&url(path), &[("cookie", cookie)]).await;
        page.status == 200 && self.upstream.seen().len() == before + 1
    }

    pub fn exchanges(&self) -> u64 {
        self.mock.stats().exchanges
    }
}

pub fn url(path: &str) -> String {
    format!("http://{PUBLIC_HOST}{path}")
}

pub fn redis_state(url: &str) -> String {
    format!("[state]\nbackend = \"redis\"\nurl = \"{url}\"\nrevocation_cache = \"100ms\"\n")
}

/// Polls `check` until it holds, failing with `what` after `within`: what another replica
/// learns, it learns within its `revocation_cache` or its next sync.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    within: std::time::Duration,
    check: impl Fn() -> F,
) {
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what}: never");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
