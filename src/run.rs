//! `openid-gateway run`: the gateway as a pingora server, with the embedded demo services
//! when the config has `[demo]`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::configuration::Opt;
use pingora::server::{RunArgs, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service as ListeningService;
use tokio::signal::unix::{signal, SignalKind};

use crate::admin::AdminApp;
use crate::config::{Config, DemoConfig};
use crate::dev::demo::DemoApp;
use crate::dev::mock_wechat::{MockConfig, MockWechat};
use crate::gateway::{BuildError, Deps, Gateway};
use crate::live::LiveGateway;
use crate::server::{listener, proxy_service, server_conf};
use crate::state::SharedState;
use crate::tls::listener_settings;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("demo upstream: {0}")]
    Demo(#[from] crate::token::TokenError),
    #[error(transparent)]
    State(#[from] crate::state::remote::SetupError),
}

/// How the process was started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file, re-read on SIGHUP.
    pub config_path: Option<PathBuf>,
    /// Take the listening sockets over from a running gateway (graceful upgrade): the old
    /// process hands them over on SIGQUIT through `upgrade_sock`.
    pub upgrade: bool,
}

/// Runs until SIGINT or SIGTERM (drain, then exit) or SIGQUIT (hand the listeners to an
/// upgrading process, drain, exit). SIGHUP reloads the config.
pub fn run(config: Config, options: RunOptions) -> Result<(), RunError> {
    let opt = Opt { upgrade: options.upgrade, ..Opt::default() };
    let mut conf = server_conf(config.threads);
    conf.upgrade_sock = config.upgrade_sock.clone();
    // Listening stops at once; requests in flight get the drain time, then what remains is cut.
    conf.grace_period_seconds = Some(config.drain_timeout.as_secs().max(1));
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    let conf = server.configuration.clone();
    if let Some(demo) = &config.demo {
        add_demo_services(&mut server, &config, demo)?;
    }
    let (listen, admin, tls) = (config.listen.to_string(), config.admin.listen, config.tls.clone());
    let mut deps = Deps::default();
    deps.state = Arc::new(SharedState::new(&config.state, deps.metrics.clone())?);
    let live = LiveGateway::new(Gateway::new(config, deps.clone())?, deps, options.config_path);
    let mut proxy = proxy_service(live.clone(), &conf);
    proxy.add_listener(listener(&listen, None));
    server.add_service(proxy);
    if let Some(tls) = tls {
        let mut secure = proxy_service(live.clone(), &conf);
        let settings = listener_settings(live.clone(), tls.http2);
        secure.add_listener(listener(&tls.listen.to_string(), Some(settings)));
        server.add_service(secure);
    }
    if let Some(admin) = admin {
        let mut service = ListeningService::new("admin".into(), AdminApp::new(live.clone()));
        service.add_tcp(&admin.to_string());
        server.add_service(service);
    }
    server.add_service(background_service("reload on SIGHUP", ReloadOnHangup(live)));
    server.bootstrap();
    server.run(RunArgs::default());
    Ok(())
}

/// Reloads the config on every SIGHUP, logging what changed or why nothing did.
struct ReloadOnHangup(Arc<LiveGateway>);

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            log::error!("cannot listen for SIGHUP: reload by restarting");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            let file = self.0.path().map_or_else(String::new, |p| p.display().to_string());
            match self.0.reload() {
                Ok(done) => {
                    for w in &done.warnings {
                        log::warn!("reload: {w}");
                    }
                    log::info!("reload: {file} is now serving");
                }
                Err(e) => log::error!("reload refused, the previous config keeps serving: {file}: {e}"),
            }
        }
    }
}

/// The mock WeChat and the demo upstream, on the addresses of `[demo]`.
fn add_demo_services(server: &mut Server, config: &Config, demo: &DemoConfig) -> Result<(), RunError> {
    let (mut mock, mut app) = demo_services(config)?;
    mock.add_tcp(&demo.mock_wechat_listen.to_string());
    app.add_tcp(&demo.upstream_listen.to_string());
    server.add_service(mock);
    server.add_service(app);
    Ok(())
}

/// The embedded demo's two services, not yet listening: the mock WeChat and the demo app
/// (which verifies tokens for the first route's audience).
pub fn demo_services(config: &Config) -> Result<(ListeningService<MockWechat>, ListeningService<DemoApp>), RunError> {
    let mock = MockWechat::new(demo_mock_config(config));
    let audience = config.routes.first().map_or(String::new(), |r| r.audience.clone());
    let app = DemoApp::new(&config.token, &audience)?;
    Ok((ListeningService::new("mock-wechat".into(), mock), ListeningService::new("demo-upstream".into(), app)))
}

/// The embedded mock accepts this gateway's appid and secret, the public host (port
/// tolerated) and any browser, so a desktop browser can watch the flow.
pub fn demo_mock_config(config: &Config) -> MockConfig {
    let app = &config.apps[0];
    MockConfig {
        appid: app.wechat.appid.clone(),
        secret: app.wechat.secret.as_ref().map(|s| s.expose_str().to_string()).unwrap_or_default(),
        domains: vec![app.public_host().to_string()],
        allow_port: true,
        any_browser: true,
        default_user: "demo-user".into(),
    }
}
