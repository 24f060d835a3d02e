//! Test harness: the real gateway, the mock WeChat and a recording upstream, each started
//! in-process on its own `127.0.0.1:0` listener, and a cookie-keeping browser that does not
//! follow redirects.
#![allow(dead_code)]

mod browser;
pub mod go;
pub mod node;
pub mod prepare;
pub mod process;
mod providers;
pub mod python;
pub mod redis_server;
pub mod replicas;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::{HeaderMap, Response};
use openid_gateway::config::{self, Config};
use openid_gateway::dev::mock_wechat::{CredentialRules, MockConfig, MockCorp, MockWebsite, MockWechat};
use openid_gateway::runtime::live::LiveGateway;
use openid_gateway::runtime::{Deps, Gateway};
use openid_gateway::serve::server::{proxy_service, server_conf, start_on, Running};
use openid_gateway::util::clock::{Clock, ManualClock, SystemClock};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service as ListeningService;
use reqwest::cookie::Jar;

pub const APPID: &str = "wx1234567890abcdef";
pub const WECHAT_SECRET: &str = "wechat-app-secret-for-tests";
pub const HS256_KEY: &str = "hs256-test-key-0123456789abcdef0123456789";
pub const SESSION_KEY: &str = "session-test-key-0123456789abcdef0123456789";
pub const PUBLIC_HOST: &str = "gw.test";
pub const NAV_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
pub const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";

/// The token settings of the standard setup (HS256 with [`HS256_KEY`]).
pub fn hs256_token_config() -> openid_gateway::config::TokenConfig {
    openid_gateway::config::TokenConfig {
        header: http::HeaderName::from_static("x-openid-token"),
        algorithm: openid_gateway::config::TokenAlgorithm::HS256,
        keys: vec![openid_gateway::util::secret::Secret::new(HS256_KEY.as_bytes().to_vec())],
        issuer: "https://issuer.test".into(),
        lifetime: std::time::Duration::from_secs(300),
        reuse: 0.5,
        cache_size: 1000,
    }
}

/// Everything a logger wrote (`logging::init_with(.., Some(Box::new(capture.clone())))`).
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

/// An upstream that records every request and answers `200 upstream saw <path>`.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    pub fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream received no request")
    }
}

#[async_trait]
impl ServeHttp for Recorder {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path_and_query().map_or("/".into(), |p| p.to_string());
        self.0.lock().unwrap().push(Seen { path: path.clone(), headers: req.headers.clone() });
        let mut r = Response::new(format!("upstream saw {path}").into_bytes());
        let len = r.body().len();
        r.headers_mut().insert(http::header::CONTENT_LENGTH, len.into());
        r
    }
}

/// What a test may change about the standard setup.
pub struct Setup {
    /// Extra TOML for `[token]` (must set `algorithm` and `key`).
    pub token: String,
    /// Extra TOML lines for `[wechat]`; `MOCK` is the harness's mock.
    pub wechat: String,
    /// The `[[routes]]` tables; `UPSTREAM` is replaced by the recorder's URL.
    pub routes: String,
    /// The secret the mock expects (defaults to the gateway's).
    pub mock_secret: String,
    /// WeChat refuses ports; so does the mock unless told (the gateway's URL has none).
    pub mock_allow_port: bool,
    /// Point the gateway at another WeChat (its base URL) instead of the harness's mock.
    pub wechat_base: Option<String>,
    /// Top-level keys (before any table), such as `trusted_proxies = [...]`.
    pub top: String,
    /// Tables added after `[session]`, such as `[login_limit]`.
    pub tables: String,
    /// `[[apps]]` tables replacing `public_url` and `[wechat]`; `MOCK` is the harness's mock,
    /// `GWPORT` the gateway's port.
    pub apps: Option<String>,
    /// The host (and port) of the public URL, when not `gw.test`; `GWPORT` is the gateway's port.
    pub public_authority: Option<String>,
    /// The upstream every route goes to (`UPSTREAM`), when not the harness's recorder.
    pub upstream_url: Option<String>,
    /// The WeCom corp the mock plays (see [`wecom_setup`]).
    pub corp: Option<MockCorp>,
    /// The open platform website app the mock plays (desktop sign-in).
    pub website: Option<MockWebsite>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            token: "algorithm = \"HS256\"\nkey = { file = \"hs256.key\" }\n".to_string(),
            wechat: String::new(),
            routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"required\"\n\n\
                     [[routes]]\npath = \"/public\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n"
                .into(),
            mock_secret: WECHAT_SECRET.into(),
            mock_allow_port: false,
            wechat_base: None,
            top: String::new(),
            tables: String::new(),
            apps: None,
            public_authority: None,
            upstream_url: None,
            corp: None,
            website: None,
        }
    }
}

/// Everything a test talks to.
pub struct Harness {
    pub mock: MockWechat,
    pub clock: ManualClock,
    pub upstream: Recorder,
    pub config: Config,
    pub dir: tempfile::TempDir,
    pub gateway_addr: SocketAddr,
    pub mock_addr: SocketAddr,
    /// The serving gateway (metrics, swapping configs).
    pub live: Arc<LiveGateway>,
    _servers: Vec<Running>,
}

/// A mock WeChat as strict as WeChat (no port, WeChat browsers only), default user alice.
pub fn strict_mock(appid: &str, secret: &str, domain: &str, allow_port: bool, clock: &ManualClock) -> MockWechat {
    MockWechat::with_clock(strict_mock_config(appid, secret, domain, allow_port), Arc::new(clock.clone()))
}

/// What [`strict_mock`] accepts.
pub fn strict_mock_config(appid: &str, secret: &str, domain: &str, allow_port: bool) -> MockConfig {
    MockConfig {
        appid: appid.into(),
        secret: secret.into(),
        domains: vec![domain.into()],
        allow_port,
        any_browser: false,
        default_user: "alice".into(),
        rules: CredentialRules::default(),
        corp: None,
        website: None,
    }
}

/// Starts `mock` on its own listener.
pub fn serve_mock(mock: &MockWechat) -> Running {
    start_on(ListeningService::new("mock".into(), mock.clone()), listener()).unwrap()
}

pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(Setup::default()).await
    }

    pub async fn with(setup: Setup) -> Self {
        Self::with_files(setup, &[]).await
    }

    /// Like [`Harness::with`], with extra files (such as keys) beside the config.
    pub async fn with_files(setup: Setup, files: &[(&str, &str)]) -> Self {
        let clock = ManualClock::new(SystemClock.now());
        let mut cfg = strict_mock_config(APPID, &setup.mock_secret, PUBLIC_HOST, setup.mock_allow_port);
        (cfg.corp, cfg.website) = (setup.corp.clone(), setup.website.clone());
        let mock = MockWechat::with_clock(cfg, Arc::new(clock.clone()));
        let upstream = Recorder::default();
        let conf = Arc::new(server_conf(1));
        let mock_srv = start_on(ListeningService::new("mock".into(), mock.clone()), listener()).unwrap();
        let up_srv = start_on(ListeningService::new("upstream".into(), upstream.clone()), listener()).unwrap();

        let gw_listener = listener();
        let gateway_addr = gw_listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wechat.secret"), WECHAT_SECRET).unwrap();
        std::fs::write(dir.path().join("corp.secret"), CORP_SECRET).unwrap();
        std::fs::write(dir.path().join("website.secret"), WEBSITE_SECRET).unwrap();
        std::fs::write(dir.path().join("hs256.key"), HS256_KEY).unwrap();
        std::fs::write(dir.path().join("session.key"), SESSION_KEY).unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let mock_url = setup.wechat_base.clone().unwrap_or_else(|| mock_srv.url());
        let (single, apps) = match &setup.apps {
            None => (
                format!(
                    "public_url = \"http://{public}\"\n{top}\n\
                     [wechat]\nappid = \"{APPID}\"\nsecret = {{ file = \"wechat.secret\" }}\n\
                     authorize_url = \"{mock_url}/connect/oauth2/authorize\"\napi_base = \"{mock_url}\"\n{wechat}\n",
                    top = setup.top,
                    wechat = setup.wechat.replace("MOCK", &mock_url),
                    public = setup
                        .public_authority
                        .as_deref()
                        .unwrap_or(PUBLIC_HOST)
                        .replace("GWPORT", &gateway_addr.port().to_string()),
                ),
                String::new(),
            ),
            Some(apps) => {
                (setup.top.clone(), apps.replace("MOCK", &mock_url).replace("GWPORT", &gateway_addr.port().to_string()))
            }
        };
        let toml = format!(
            "listen = \"{gateway_addr}\"\n{single}\n\
             [session]\nkeys = [{{ file = \"session.key\" }}]\n\n{tables}\n\
             [token]\nissuer = \"https://issuer.test\"\n{token}\n{apps}\n{routes}",
            tables = setup.tables,
            token = setup.token,
            routes = setup.routes.replace("UPSTREAM", setup.upstream_url.as_deref().unwrap_or(&up_srv.url())),
        );
        std::fs::write(dir.path().join("gateway.toml"), &toml).unwrap();
        let loaded = config::load_file(&dir.path().join("gateway.toml"))
            .unwrap_or_else(|e| panic!("test config has mistakes: {e:?}\n{toml}"));
        let deps = Deps { clock: Arc::new(clock.clone()), ..Deps::default() };
        let gateway = Arc::new(Gateway::new(loaded.config.clone(), deps).unwrap());
        let live = LiveGateway::fixed(gateway);
        let gw_srv = start_on(proxy_service(live.clone(), &conf), gw_listener).unwrap();
        Harness {
            mock,
            clock,
            upstream,
            config: loaded.config,
            dir,
            gateway_addr,
            mock_addr: mock_srv.addr,
            live,
            _servers: vec![gw_srv, mock_srv, up_srv],
        }
    }

    /// `http://gw.test<path>`: the browser's resolver sends gw.test to the gateway's port.
    pub fn url(&self, path: &str) -> String {
        format!("http://{PUBLIC_HOST}{path}")
    }

    pub fn mock_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.mock_addr)
    }

    /// A WeChat in-app browser with an empty cookie jar.
    pub fn browser(&self) -> Browser {
        self.browser_with_ua(WECHAT_UA)
    }

    pub fn browser_with_ua(&self, ua: &str) -> Browser {
        browser(ua, PUBLIC_HOST, self.gateway_addr)
    }
}

impl Harness {
    /// A WeChat browser that drops the cookies named in `drop` (`"*"`: all of them).
    pub fn browser_dropping(&self, drop: &[&str]) -> Browser {
        let store = Arc::new(Dropping { jar: Jar::default(), drop: drop.iter().map(|d| d.to_string()).collect() });
        let client = nav_client(WECHAT_UA, PUBLIC_HOST, self.gateway_addr, store);
        Browser { client, jar: Arc::new(Jar::default()), origin: format!("http://{PUBLIC_HOST}") }
    }
}

pub use browser::*;
pub use providers::*;

impl Harness {
    /// The identity token of the last request the upstream received.
    pub fn last_token(&self) -> String {
        self.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string()
    }
}

/// A gateway signing with `alg`, in verifier test mode, after alice's login: the gateway, her
/// real token, and one deliberately invalid token of each kind (for the backend recipes).
pub async fn signed_tokens(
    alg: openid_gateway::token::keys::KeyAlg,
) -> (Harness, String, Vec<(openid_gateway::token::InvalidKind, String)>) {
    let pem = openid_gateway::token::keys::generate(alg).unwrap();
    let setup = Setup {
        token: format!("algorithm = \"{}\"\nkey = {{ file = \"k.pem\" }}\n", alg.name()),
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\nproduction = false\nverifier_test = true\n"
            .into(),
        ..Setup::default()
    };
    let h = Harness::with_files(setup, &[("k.pem", &pem)]).await;
    let b = h.browser();
    assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
    let valid = h.last_token();
    let mut invalid = Vec::new();
    for kind in openid_gateway::token::InvalidKind::ALL {
        b.get_with(&h.url("/x"), &[("X-Openid-Token-Test", kind.name())]).await;
        invalid.push((kind, h.last_token()));
    }
    (h, valid, invalid)
}

/// A desktop browser (Chrome on Windows): not WeChat.
pub const DESKTOP_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// A browser of the standard setup that has walked into a session on the public host.
pub async fn logged_in(h: &Harness) -> Browser {
    let b = h.browser();
    assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
    b
}

/// `json` sealed as the gateway seals the value of `name` (its cookie, request or ticket), with `key`.
pub fn seal(name: &str, key: &str, json: &str) -> String {
    use openid_gateway::session::seal::Sealer;
    use openid_gateway::util::clock::OsEntropy;
    use openid_gateway::util::secret::Secret;
    Sealer::new(&[Secret::new(key.as_bytes().to_vec())]).seal(name, json.as_bytes(), &OsEntropy)
}

/// The claims of an HS256 token of the standard setup, audience unchecked.
pub fn claims(token: &str) -> openid_gateway::token::Claims {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    jsonwebtoken::decode(token, &jsonwebtoken::DecodingKey::from_secret(HS256_KEY.as_bytes()), &v).unwrap().claims
}

/// The app hosts of the many-domains setup: each logs in through the login host gw.test.
pub const APP_HOSTS: [&str; 4] = ["mall.test", "spring.campaign.test", "autumn.campaign.test", "members.test"];

/// One login host (gw.test, the only domain the strict mock accepts) and three `[[app_hosts]]`
/// entries: mall.test, *.campaign.test and members.test (with a cookie name of its own), each
/// with its own audience, routed to the recorder.
pub fn many_domains_setup() -> Setup {
    Setup {
        routes: "[[app_hosts]]\nhost = \"mall.test\"\naudience = \"mall\"\n\n\
                 [[app_hosts]]\nhost = \"*.campaign.test\"\naudience = \"campaign\"\n\n\
                 [[app_hosts]]\nhost = \"members.test\"\naudience = \"members\"\ncookie_name = \"members_session\"\n\n\
                 [[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"login-host\"\n\n\
                 [[routes]]\nhost = \"mall.test\"\nupstream = \"UPSTREAM\"\n\n\
                 [[routes]]\nhost = \"*.campaign.test\"\nupstream = \"UPSTREAM\"\n\n\
                 [[routes]]\nhost = \"members.test\"\nupstream = \"UPSTREAM\"\n"
            .into(),
        ..Setup::default()
    }
}

impl Harness {
    /// A WeChat browser that reaches the login host and every app host through this gateway.
    pub fn many_domains_browser(&self) -> Browser {
        let mut hosts = vec![(PUBLIC_HOST, self.gateway_addr)];
        hosts.extend(APP_HOSTS.iter().map(|h| (*h, self.gateway_addr)));
        hosts.push(("evil.test", self.gateway_addr));
        browser_on(&hosts)
    }
}

/// What the mock WeChat at `mock` (its base URL) says of the `wx.config` values `c` for the page
/// `page`, checked as the JS-SDK checks them: `config:ok`, or why not.
pub async fn jssdk_verdict(mock: &str, c: &serde_json::Value, page: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let check = format!(
        "{mock}/mock/jssdk/check?appId={}&timestamp={}&nonceStr={}&signature={}&url={}",
        enc(c["appId"].as_str().unwrap_or_default()),
        c["timestamp"],
        enc(c["nonceStr"].as_str().unwrap_or_default()),
        enc(c["signature"].as_str().unwrap_or_default()),
        enc(page)
    );
    let body: serde_json::Value = reqwest::get(check).await.unwrap().json().await.unwrap();
    body["errMsg"].as_str().unwrap_or_default().to_string()
}

/// Polls every future together, in this task; their outputs in order.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, d) in pinned.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *d = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().map(|d| d.expect("every future is done")).collect()
}
