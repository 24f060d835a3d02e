//! The `openid-gateway` command: `run` (default), `check` and `mock-wechat`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use openid_gateway::config::{self, Loaded, LogFormat};
use openid_gateway::dev::mock_wechat::{CredentialRules, MockConfig, MockCorp, MockWebsite, MockWechat};
use openid_gateway::serve::run::RunOptions;
use openid_gateway::token::keys::KeyAlg;
use openid_gateway::token::verify;

/// mimalloc: the proxy allocates and frees small buffers on every request, where glibc's
/// malloc cost about a fifth of the gateway's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the gateway (the default). SIGHUP reloads the config, SIGTERM drains and exits.
    Run(RunArgs),
    /// Check a config file and print every mistake in it with its key path.
    Check,
    /// Run a strict mock of WeChat's authorize page, code exchange, access tokens and JS-SDK check.
    MockWechat(Box<MockArgs>),
    /// Write a new private key for signing tokens (PKCS#8 PEM) and print its kid.
    Keygen(KeygenArgs),
    /// Verify a token as a backend would, and say exactly why it is rejected.
    Verify(VerifyArgs),
}

#[derive(Args, Default)]
struct RunArgs {
    /// Graceful upgrade: take the listening sockets over from the running gateway (send it
    /// SIGQUIT once this one is started); no connection is refused meanwhile.
    #[arg(short, long)]
    upgrade: bool,
}

#[derive(Args)]
struct KeygenArgs {
    /// ES256 (recommended), EdDSA or RS256.
    #[arg(long, default_value = "ES256")]
    alg: String,
    /// Where to write the key (mode 0600); standard output if absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The token; read from standard input if absent.
    token: Option<String>,
    /// The gateway's JWKS: a URL (http://…/.gateway/jwks.json) or a file.
    #[arg(long, conflicts_with_all = ["secret_env", "secret_file"])]
    jwks: Option<String>,
    /// The environment variable holding the HS256 secret.
    #[arg(long)]
    secret_env: Option<String>,
    /// The file holding the HS256 secret.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// The audience the token must be for.
    #[arg(long)]
    aud: Option<String>,
    /// The issuer the token must name.
    #[arg(long)]
    iss: Option<String>,
    /// Seconds of clock skew allowed.
    #[arg(long, default_value_t = 30)]
    leeway: u64,
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
    /// How long access_tokens and jsapi tickets live.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    token_lifetime: std::time::Duration,
    /// How long an earlier cgi-bin/token token keeps working after a new one is issued.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    token_grace: std::time::Duration,
    /// An address allowed to fetch access_tokens (repeat for more; none: any caller).
    #[arg(long = "allow-ip")]
    allow_ips: Vec<std::net::IpAddr>,
    /// cgi-bin/token calls allowed a (Beijing) day.
    #[arg(long, default_value_t = 2000)]
    token_daily_limit: u32,
    /// Also play this WeCom (企业微信) corp (its id, such as ww0000000000demo0).
    #[arg(long)]
    corpid: Option<String>,
    /// The corp's self-built app.
    #[arg(long, default_value = "1000002", requires = "corpid")]
    agentid: String,
    /// The environment variable holding the app's corpsecret.
    #[arg(long, default_value = "MOCK_WECOM_SECRET", requires = "corpid")]
    corp_secret_env: String,
    /// A trusted domain (可信域名) of the corp's app (repeat for more; none: the --domain ones).
    #[arg(long = "corp-domain", requires = "corpid")]
    corp_domains: Vec<String>,
    /// A user who is a corp member, their userid being their name (repeat for more).
    #[arg(long = "member", requires = "corpid")]
    members: Vec<String>,
    /// Also play this Open Platform website app (desktop QR login).
    #[arg(long)]
    website_appid: Option<String>,
    /// The environment variable holding the website app's secret.
    #[arg(long, default_value = "MOCK_WEBSITE_SECRET", requires = "website_appid")]
    website_secret_env: String,
    /// A callback domain of the website app (repeat for more; none: the --domain ones).
    #[arg(long = "website-domain", requires = "website_appid")]
    website_domains: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` logs as its config says; the other commands as text.
    if !matches!(cli.command, None | Some(Command::Run(_))) {
        start_logger(LogFormat::Text, "info");
    }
    let result = match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(&cli.config.config, args),
        Command::Check => Ok(check(&cli.config.config)),
        Command::MockWechat(args) => mock_wechat(*args).map(|()| ExitCode::SUCCESS),
        Command::Keygen(args) => keygen(args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => Ok(verify(args)),
    };
    // Log lines still buffered are written out before the process ends, whatever ended it.
    openid_gateway::observe::logging::flush();
    result.unwrap_or_else(|e| {
        eprintln!("openid-gateway: {e:#}");
        ExitCode::FAILURE
    })
}

fn start_logger(format: LogFormat, filter: &str) {
    if let Err(e) = openid_gateway::observe::logging::init_with(format, filter, None) {
        eprintln!("openid-gateway: no logger: {e}");
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

fn run(path: &std::path::Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let Ok(loaded) = load(path) else { anyhow::bail!("{} has mistakes; nothing started", path.display()) };
    start_logger(loaded.config.log.format, &loaded.config.log.level);
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    let c = &loaded.config;
    if c.demo.is_some() {
        let url = format!("{}/", c.apps[0].public_origin());
        let w = &c.apps[0].wechat;
        let how = match (w.provider.is_wecom(), w.desktop.is_some()) {
            (true, true) => "sign in to a WeCom app by scanning the mock's QR code (press its Scan button)",
            (true, false) => "watch the silent WeCom login",
            (false, _) => "watch the silent WeChat login",
        };
        println!("openid-gateway demo: open {url} in a browser and {how} (mock WeChat and WeCom, demo app).");
    }
    log::info!("serving {}", c.apps[0].public_origin());
    let options = RunOptions { config_path: Some(path.to_path_buf()), upgrade: args.upgrade };
    // One line naming what could not start (`admin.listen 127.0.0.1:9090: address in use`).
    openid_gateway::serve::run::run(loaded.config, options)?;
    Ok(ExitCode::SUCCESS)
}

fn mock_wechat(a: MockArgs) -> anyhow::Result<()> {
    let secret = std::env::var(&a.secret_env)
        .with_context(|| format!("set {} to the app secret the mock should expect", a.secret_env))?;
    let env = |name: &str, what: &str| {
        std::env::var(name).with_context(|| format!("set {name} to the {what} the mock should expect"))
    };
    let corp = match a.corpid {
        Some(corpid) => Some(MockCorp {
            corpid,
            agentid: a.agentid,
            secret: env(&a.corp_secret_env, "WeCom app's corpsecret")?,
            domains: if a.corp_domains.is_empty() { a.domains.clone() } else { a.corp_domains },
            members: a.members,
            hidden: Vec::new(),
        }),
        None => None,
    };
    let website = match a.website_appid {
        Some(appid) => Some(MockWebsite {
            appid,
            secret: env(&a.website_secret_env, "website app's secret")?,
            domains: if a.website_domains.is_empty() { a.domains.clone() } else { a.website_domains },
        }),
        None => None,
    };
    let mock = MockWechat::new(MockConfig {
        appid: a.appid,
        secret,
        domains: a.domains,
        allow_port: a.allow_port,
        any_browser: a.any_browser,
        default_user: a.user,
        rules: CredentialRules {
            token_lifetime: a.token_lifetime,
            token_grace: a.token_grace,
            token_daily_limit: a.token_daily_limit,
            allowed_ips: (!a.allow_ips.is_empty()).then_some(a.allow_ips),
            ..CredentialRules::default()
        },
        corp,
        website,
    });
    let listener = std::net::TcpListener::bind(a.listen).with_context(|| format!("binding {}", a.listen))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let svc = pingora::services::listening::Service::new("mock-wechat".into(), mock);
        let running = openid_gateway::serve::server::start_on(svc, listener)?;
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

fn keygen(a: KeygenArgs) -> anyhow::Result<()> {
    let alg = KeyAlg::parse(&a.alg).with_context(|| format!("--alg {}: use ES256, EdDSA or RS256", a.alg))?;
    let pem = openid_gateway::token::keys::generate(alg)?;
    let kid = openid_gateway::token::keys::parse_private_pem(&pem)?.kid;
    match &a.out {
        Some(path) => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(pem.as_bytes())?;
            eprintln!("wrote {} key to {} (kid {kid})", alg.name(), path.display());
        }
        None => {
            print!("{pem}");
            eprintln!("{} key, kid {kid}", alg.name());
        }
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> ExitCode {
    match verify_inner(a) {
        Ok(Ok(claims)) => {
            println!("{}", serde_json::to_string_pretty(&claims).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(Err(rejection)) => {
            println!("rejected: {rejection}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("openid-gateway verify: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn verify_inner(a: VerifyArgs) -> anyhow::Result<Result<serde_json::Value, verify::Rejection>> {
    let token = match a.token {
        Some(t) => t,
        None => std::io::read_to_string(std::io::stdin()).context("reading the token from standard input")?,
    };
    let keys = match (a.jwks, a.secret_env, a.secret_file) {
        (Some(src), _, _) => {
            let text = if src.starts_with("http://") || src.starts_with("https://") {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(async { reqwest::get(&src).await?.error_for_status()?.text().await })
                    .with_context(|| format!("fetching {src}"))?
            } else {
                std::fs::read_to_string(&src).with_context(|| format!("reading {src}"))?
            };
            verify::KeySource::Jwks(serde_json::from_str(&text).context("not a JWKS document")?)
        }
        (None, Some(var), _) => verify::KeySource::Secret(
            std::env::var(&var).with_context(|| format!("{var} is not set"))?.trim().as_bytes().to_vec(),
        ),
        (None, None, Some(path)) => verify::KeySource::Secret(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .as_bytes()
                .to_vec(),
        ),
        (None, None, None) => anyhow::bail!("give --jwks URL|FILE, --secret-env NAME or --secret-file PATH"),
    };
    let expect = verify::Expect { audience: a.aud, issuer: a.iss, leeway: a.leeway };
    let now = openid_gateway::util::clock::Clock::now(&openid_gateway::util::clock::SystemClock);
    Ok(verify::verify(&token, &keys, &expect, now))
}
