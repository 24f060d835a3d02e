//! Secrets: where they come from (`{ env = "NAME" }`, `{ file = "PATH" }`, or, for the
//! embedded demo only, `{ ephemeral = true }`) and a byte type that never prints.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::util::clock::{Entropy, OsEntropy};

/// Where a secret is read from, as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env { env: String },
    File { file: PathBuf },
    Ephemeral { ephemeral: bool },
}

/// Secret bytes. `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text (WeChat app secrets are ASCII).
    pub fn expose_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

impl SecretSource {
    /// Reads the secret. Relative file paths are taken from `base` (the config file's folder).
    /// Surrounding white space (a trailing newline from `echo`) is dropped, except for
    /// ephemeral secrets, which are 32 random bytes made now.
    pub fn load(&self, base: &Path) -> Result<Secret, String> {
        match self {
            SecretSource::Env { env } => match std::env::var(env) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().as_bytes().to_vec())),
                Ok(_) => Err(format!("environment variable {env} is empty")),
                Err(_) => Err(format!("environment variable {env} is not set")),
            },
            SecretSource::File { file } => {
                let path = base.join(file);
                let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let text = trim_ascii(&bytes);
                if text.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(Secret(text.to_vec()))
            }
            SecretSource::Ephemeral { ephemeral: true } => {
                let mut b = [0u8; 32];
                OsEntropy.fill(&mut b);
                Ok(Secret(hex(&b).into_bytes()))
            }
            SecretSource::Ephemeral { ephemeral: false } => {
                Err("`ephemeral = false` names no secret: use { env = \"NAME\" } or { file = \"PATH\" }".into())
            }
        }
    }

    pub fn is_ephemeral(&self) -> bool {
        matches!(self, SecretSource::Ephemeral { .. })
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &b[start..end]
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret::new(b"hunter2hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(<14 bytes>)");
    }

    #[test]
    fn file_secret_is_trimmed_and_relative_to_base() {
        let dir = std::env::temp_dir().join(format!("ogw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s.txt"), "  abc123\n").unwrap();
        let src = SecretSource::File { file: "s.txt".into() };
        assert_eq!(src.load(&dir).unwrap().expose(), b"abc123");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_env_is_named() {
        let src = SecretSource::Env { env: "OGW_SURELY_UNSET_VAR".into() };
        assert!(src.load(Path::new(".")).unwrap_err().contains("OGW_SURELY_UNSET_VAR"));
    }
}
