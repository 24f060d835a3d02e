//! `openid-gateway run`: the gateway as a pingora server, with the embedded demo services
//! when the config has `[demo]`.

use std::sync::Arc;

use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service as ListeningService;

use crate::config::{Config, DemoConfig};
use crate::dev::demo::DemoApp;
use crate::dev::mock_wechat::{MockConfig, MockWechat};
use crate::gateway::{BuildError, Deps, Gateway};
use crate::server::{proxy_service, server_conf};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("demo upstream: {0}")]
    Demo(#[from] crate::token::TokenError),
}

/// Runs until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), RunError> {
    let mut server = Server::new_with_opt_and_conf(None, server_conf(config.threads));
    let conf = server.configuration.clone();
    if let Some(demo) = &config.demo {
        add_demo_services(&mut server, &config, demo)?;
    }
    let listen = config.listen.to_string();
    let gateway = Arc::new(Gateway::new(config, Deps::default())?);
    let mut proxy = proxy_service(gateway, &conf);
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.bootstrap();
    server.run(RunArgs::default());
    Ok(())
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
        secret: app.wechat.secret.expose_str().to_string(),
        domains: vec![app.public_host().to_string()],
        allow_port: true,
        any_browser: true,
        default_user: "demo-user".into(),
    }
}
