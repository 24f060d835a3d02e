//! The gateway now serving, swapped whole when the config is reloaded. A request takes the
//! gateway current when it starts and keeps it to its end, so requests in flight finish on
//! the config they began with; a config with mistakes is refused and the old one keeps
//! serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{self, Config, ConfigError};
use crate::runtime::{BuildError, Deps, Gateway};

/// Why a reload was refused; the gateway keeps serving the config it had.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the config has mistakes:{}", list(.0))]
    Config(Vec<ConfigError>),
    #[error(transparent)]
    Build(#[from] BuildError),
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}

/// What a successful reload changed nothing about: settings only a restart (or a graceful
/// upgrade) applies.
#[derive(Debug, Default)]
pub struct Reloaded {
    pub warnings: Vec<String>,
}

/// The serving gateway and what is needed to build the next one.
pub struct LiveGateway {
    current: ArcSwap<Gateway>,
    deps: Deps,
    path: Option<PathBuf>,
}

impl LiveGateway {
    /// Serves `gateway`; [`LiveGateway::reload`] re-reads `path` (none: reload is refused).
    pub fn new(gateway: Gateway, path: Option<PathBuf>) -> Arc<Self> {
        let deps = gateway.deps().clone();
        Arc::new(Self { current: ArcSwap::from_pointee(gateway), deps, path })
    }

    /// A gateway that is never reloaded (tests, embedding).
    pub fn fixed(gateway: Arc<Gateway>) -> Arc<Self> {
        let deps = gateway.deps().clone();
        Arc::new(Self { current: ArcSwap::new(gateway), deps, path: None })
    }

    /// The gateway serving now.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Re-reads the config file and swaps it in whole; on any mistake nothing changes.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let result = self.reload_from_file();
        let label = if result.is_ok() { "ok" } else { "refused" };
        self.deps.metrics.reloads.with_label_values(&[label]).inc();
        result
    }

    fn reload_from_file(&self) -> Result<Reloaded, ReloadError> {
        let Some(path) = &self.path else {
            return Err(ReloadError::Config(vec![ConfigError {
                path: String::new(),
                message: "this gateway was not started from a config file".into(),
            }]));
        };
        let loaded = config::load_file(path).map_err(ReloadError::Config)?;
        self.swap(loaded.config, loaded.warnings)
    }

    /// Swaps in a gateway built from `config`.
    pub fn swap(&self, config: Config, mut warnings: Vec<String>) -> Result<Reloaded, ReloadError> {
        let old = self.current();
        warnings.extend(restart_only(&old.config, &config));
        let next = Gateway::new(config, self.deps.clone())?;
        self.current.store(Arc::new(next));
        Ok(Reloaded { warnings })
    }

    /// The config file reloads read, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Settings that a reload reads but cannot apply to listeners already open.
fn restart_only(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut differs = |key: &str, changed: bool| {
        if changed {
            out.push(format!("{key} changed: it applies at the next restart or graceful upgrade, not on reload"));
        }
    };
    differs("listen", old.listen != new.listen);
    differs("threads", old.threads != new.threads);
    differs("admin.listen", old.admin.listen != new.admin.listen);
    differs("tls.listen", old.tls.as_ref().map(|t| t.listen) != new.tls.as_ref().map(|t| t.listen));
    differs("tls.http2", old.tls.as_ref().map(|t| t.http2) != new.tls.as_ref().map(|t| t.http2));
    differs("log", old.log != new.log);
    differs("demo", old.demo.is_some() != new.demo.is_some());
    differs("state", format!("{:?}", old.state) != format!("{:?}", new.state));
    out
}
