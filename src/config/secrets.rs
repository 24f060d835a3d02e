//! Where secrets come from (`{ env = "..." }`, `{ file = "..." }`, `{ ephemeral = true }` with
//! `[demo]` only), loaded while the config is read, failures reported at their key path.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::reader::Errors;
use crate::util::secret::{Secret, SecretSource};

/// Loads secrets, reporting failures at the key path.
pub(super) struct SecretLoader<'a> {
    base: &'a Path,
    demo: bool,
    errors: &'a Errors,
}

impl<'a> SecretLoader<'a> {
    /// Secret files are relative to `base`; `demo`: ephemeral secrets are allowed.
    pub(super) fn new(base: &'a Path, demo: bool, errors: &'a Errors) -> Self {
        Self { base, demo, errors }
    }

    /// Whether `{ ephemeral = true }` may be used (with `[demo]` only); reports at `path` if not.
    pub(super) fn ephemeral_allowed(&self, path: &str) -> bool {
        if !self.demo {
            self.errors.push(path, "ephemeral secrets are only for the embedded demo ([demo]); use { env = \"NAME\" } or { file = \"PATH\" }");
        }
        self.demo
    }

    pub(super) fn load(&self, src: SecretSource, path: &str, min_len: usize) -> Option<Secret> {
        if src.is_ephemeral() && !self.ephemeral_allowed(path) {
            return None;
        }
        let load = || src.load(self.base).map_err(|m| self.errors.push(path, m)).ok();
        let secret = if src.is_ephemeral() { ephemeral(path, load)? } else { load()? };
        if secret.len() < min_len {
            self.errors.push(path, format!("is {} bytes; at least {min_len} are needed", secret.len()));
            return None;
        }
        Some(secret)
    }
}

/// An ephemeral secret is made once per process and key: a reload keeps the demo's sessions,
/// its signing key and the secret its embedded mock WeChat expects.
pub(super) fn ephemeral(name: &str, make: impl FnOnce() -> Option<Secret>) -> Option<Secret> {
    static MADE: OnceLock<Mutex<HashMap<String, Secret>>> = OnceLock::new();
    let mut made = MADE.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = made.get(name) {
        return Some(s.clone());
    }
    let secret = make()?;
    made.insert(name.to_string(), secret.clone());
    Some(secret)
}
