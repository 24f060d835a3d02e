//! `openid-gateway run`: the gateway as a pingora server, with the embedded demo services
//! when the config has `[demo]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pingora::server::ShutdownWatch;
use pingora::services::listening::Service as ListeningService;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::{Config, Provider};
use crate::dev::demo::DemoApp;
use crate::dev::mock_wechat::{CredentialRules, MockConfig, MockCorp, MockWebsite, MockWechat};
use crate::proxy::conn::Activity;
use crate::runtime::live::LiveGateway;
use crate::runtime::{BuildError, Deps, Gateway};
use crate::serve::admin::AdminApp;
use crate::serve::server::{listener, proxy_service_counted, server_conf};
use crate::serve::tls::listener_settings;
use crate::serve::{self, listeners, BoxedService, ListenError, Listeners, Signals};
use crate::shared::SharedState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("demo upstream: {0}")]
    Demo(#[from] crate::token::TokenError),
    #[error(transparent)]
    State(#[from] crate::shared::remote::SetupError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("upgrade: stopped by a signal while waiting for the running gateway's sockets; it keeps them")]
    Interrupted,
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

/// What the services of the last phase of a shutdown get before the runtime stops under them.
const RUNTIME_STOP: Duration = Duration::from_millis(100);

/// Runs until SIGINT or SIGTERM (drain, then exit) or SIGQUIT (hand the listeners to an
/// upgrading process, drain, exit); SIGHUP reloads the config ([`crate::serve`]). Every
/// listener is bound before anything starts: a socket that cannot be had ends the start with
/// an error naming its key and address.
pub fn run(config: Config, options: RunOptions) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .thread_name("openid-gateway")
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let result = runtime.block_on(start(config, options));
    runtime.shutdown_timeout(RUNTIME_STOP);
    result
}

async fn start(config: Config, options: RunOptions) -> Result<(), RunError> {
    let mut signals = Signals::register().map_err(RunError::Runtime)?;
    // Before any socket is had: a SIGHUP from then on reloads, never kills.
    let hangups = signal(SignalKind::hangup()).map_err(RunError::Runtime)?;
    let mut deps = Deps::default();
    deps.state = Arc::new(SharedState::new(&config.state, deps.metrics.clone())?);
    let wanted = sockets(&config);
    let demo = match &config.demo {
        Some(_) => Some(demo_services(&config)?),
        None => None,
    };
    let conf = Arc::new(server_conf(config.threads));
    let (upgrade_sock, tls) = (config.upgrade_sock.clone(), config.tls.clone());
    let live = LiveGateway::new(Gateway::new(config, deps)?, options.config_path);
    // Everything that can fail slowly is built before the sockets are taken over: the
    // process being upgraded stops accepting the moment it has handed them over.
    let inherited = if options.upgrade {
        let path = upgrade_sock.clone();
        let receiving = tokio::task::spawn_blocking(move || listeners::receive(&path));
        // Stopped while waiting: it never takes the sockets, and the old process keeps them.
        let received = tokio::select! {
            received = receiving => received,
            () = signals.stopped() => return Err(RunError::Interrupted),
        };
        Some(received.map_err(|e| RunError::Runtime(std::io::Error::other(e)))??)
    } else {
        None
    };
    let listeners = Listeners::open(&wanted, inherited)?;
    let list: Vec<String> = listeners.bound().iter().map(|b| format!("{}={}", b.key, b.addr)).collect();
    log::info!("listening: {}", list.join(" "));

    let mut services: Vec<BoxedService> = Vec::new();
    let at = |key: &str| listeners.get(key).map(|b| b.addr.to_string()).unwrap_or_default();
    let activity = Arc::new(Activity::default());
    let mut proxy = proxy_service_counted(live.clone(), &conf, activity.clone());
    proxy.add_listener(listener(&at("listen"), None));
    services.push(Box::new(proxy));
    if let Some(tls) = tls {
        let mut secure = proxy_service_counted(live.clone(), &conf, activity.clone());
        secure.add_listener(listener(&at("tls.listen"), Some(listener_settings(live.clone(), tls.http2))));
        services.push(Box::new(secure));
    }
    if listeners.get("admin.listen").is_some() {
        let mut admin = ListeningService::new("admin".into(), AdminApp::new(live.clone()));
        admin.add_tcp(&at("admin.listen"));
        services.push(Box::new(admin));
    }
    if let Some((mut mock, mut app)) = demo {
        mock.add_tcp(&at("demo.mock_wechat_listen"));
        app.add_tcp(&at("demo.upstream_listen"));
        services.push(Box::new(mock));
        services.push(Box::new(app));
    }
    let reloading = live.clone();
    let background: Vec<serve::Background> = vec![Box::new(move |watch| {
        tokio::spawn(reload_on_hangup(reloading, hangups, watch));
    })];
    serve::serve(signals, services, listeners, activity, live, upgrade_sock, background).await;
    Ok(())
}

/// The sockets `config` asks for, by config key.
fn sockets(config: &Config) -> Vec<(&'static str, SocketAddr)> {
    let mut wanted = vec![("listen", config.listen)];
    if let Some(tls) = &config.tls {
        wanted.push(("tls.listen", tls.listen));
    }
    if let Some(admin) = config.admin.listen {
        wanted.push(("admin.listen", admin));
    }
    if let Some(demo) = &config.demo {
        wanted.push(("demo.mock_wechat_listen", demo.mock_wechat_listen));
        wanted.push(("demo.upstream_listen", demo.upstream_listen));
    }
    wanted
}

/// Reloads the config on every SIGHUP, logging what changed or why nothing did, until the
/// shutdown watch turns true.
async fn reload_on_hangup(live: Arc<LiveGateway>, mut hangups: Signal, mut shutdown: ShutdownWatch) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            got = hangups.recv() => if got.is_none() { return },
        }
        let file = live.path().map_or_else(String::new, |p| p.display().to_string());
        match live.reload() {
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

/// The embedded demo's two services, not yet listening: the mock WeChat and the demo app
/// (which verifies tokens for the first route's audience).
pub fn demo_services(config: &Config) -> Result<(ListeningService<MockWechat>, ListeningService<DemoApp>), RunError> {
    let mock = MockWechat::new(demo_mock_config(config));
    let audience = config.routes.first().map_or(String::new(), |r| r.audience.clone());
    let app = DemoApp::new(&config.token, &audience)?;
    Ok((ListeningService::new("mock-wechat".into(), mock), ListeningService::new("demo-upstream".into(), app)))
}

/// The embedded mock accepts this gateway's appid and secret (or for a WeCom app, its corp,
/// where `demo-user` is a member and anyone else an outsider), the website app of its desktop
/// sign-in, the public host (port tolerated) and any browser, so a desktop browser can watch
/// the flow.
pub fn demo_mock_config(config: &Config) -> MockConfig {
    let app = &config.apps[0];
    let w = &app.wechat;
    let secret = w.secret.as_ref().map(|s| s.expose_str().to_string()).unwrap_or_default();
    let domains = vec![app.public_host().to_string()];
    let corp = match &w.provider {
        Provider::Wecom { agentid } => Some(MockCorp {
            corpid: w.appid.clone(),
            agentid: agentid.clone(),
            secret: secret.clone(),
            domains: domains.clone(),
            members: vec!["demo-user".into()],
            hidden: Vec::new(),
        }),
        Provider::Wechat => None,
    };
    let website = w.desktop.as_ref().and_then(|d| d.website.as_ref()).map(|site| MockWebsite {
        appid: site.appid.clone(),
        secret: site.secret.expose_str().to_string(),
        domains: domains.clone(),
    });
    MockConfig {
        // A WeCom demo has no Official Account: the mock's is one nobody uses.
        appid: if corp.is_some() { "wx0000000000unused".into() } else { w.appid.clone() },
        secret,
        domains,
        allow_port: true,
        any_browser: true,
        default_user: "demo-user".into(),
        rules: CredentialRules::default(),
        corp,
        website,
    }
}
