//! The `openid-gateway` command: `run` (default), `check` and `mock-wechat`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use openid_gateway::config::{self, Loaded};
use openid_gateway::mock_wechat::{MockConfig, MockWechat};

#[derive(Parser)]
#[command(name = "openid-gateway", version, about = "WeChat silent login in front of any H5 app")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// The config file.
    #[arg(short, long, global = true, default_value = "gateway.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Check a config file and print every mistake in it with its key path.
    Check,
    /// Run a strict mock of WeChat's authorize page and code exchange.
    MockWechat(MockArgs),
}

#[derive(Args)]
struct MockArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    #[arg(long, default_value = "wx0000000000demo0")]
    appid: String,
    /// The environment variable holding the app secret the mock expects.
    #[arg(long, default_value = "MOCK_WECHAT_SECRET")]
    secret_env: String,
    /// A registered 网页授权域名 (repeat for a second one).
    #[arg(long = "domain", default_value = "localhost")]
    domains: Vec<String>,
    /// Accept a port in redirect_uri (real WeChat refuses it with error 10003).
    #[arg(long)]
    allow_port: bool,
    /// Accept browsers without MicroMessenger in their User-Agent.
    #[arg(long)]
    any_browser: bool,
    /// The simulated user when the browser names none.
    #[arg(long, default_value = "demo-user")]
    user: String,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config.config),
        Command::Check => return check(&cli.config.config),
        Command::MockWechat(args) => mock_wechat(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openid-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> Result<Loaded, ExitCode> {
    config::load_file(path).map_err(|errors| {
        eprintln!("{}: {} mistake(s):", path.display(), errors.len());
        for e in &errors {
            eprintln!("  {e}");
        }
        ExitCode::FAILURE
    })
}

fn check(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok ({} route(s))", path.display(), loaded.config.routes.len());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: &std::path::Path) -> anyhow::Result<()> {
    let Ok(loaded) = load(path) else { anyhow::bail!("{} has mistakes; nothing started", path.display()) };
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    let c = &loaded.config;
    if c.demo.is_some() {
        let url = format!("{}/", c.apps[0].public_origin());
        println!(
            "openid-gateway demo: open {url} in a browser and watch the silent WeChat login (mock WeChat, demo app)."
        );
    }
    log::info!("listening on {} for {}", c.listen, c.apps[0].public_origin());
    openid_gateway::run::run(loaded.config).context("starting the gateway")?;
    Ok(())
}

fn mock_wechat(a: MockArgs) -> anyhow::Result<()> {
    let secret = std::env::var(&a.secret_env)
        .with_context(|| format!("set {} to the app secret the mock should expect", a.secret_env))?;
    let mock = MockWechat::new(MockConfig {
        appid: a.appid,
        secret,
        domains: a.domains,
        allow_port: a.allow_port,
        any_browser: a.any_browser,
        default_user: a.user,
    });
    let listener = std::net::TcpListener::bind(a.listen).with_context(|| format!("binding {}", a.listen))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let svc = pingora::services::listening::Service::new("mock-wechat".into(), mock);
        let running = openid_gateway::server::start_on(svc, listener)?;
        // The actual address, also when --listen asked for port 0.
        println!("mock WeChat on {}", running.url());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        running.stop().await;
        Ok(())
    })
}
