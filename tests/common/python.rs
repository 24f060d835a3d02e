//! A Python with PyJWT for tests that check the gateway against another ecosystem: a venv
//! under cargo's target folder, made once on first use, under a lock ([`super::prepare`]).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Requirements of the Python-side checks.
const REQUIREMENTS: &str = "pyjwt[crypto]==2.*";

/// The venv's `python`, with PyJWT importable.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv");
        let py = venv.join("bin/python");
        let ready = |py: &PathBuf| {
            Command::new(py).args(["-c", "import jwt, cryptography"]).status().is_ok_and(|s| s.success())
        };
        super::prepare::once(
            "pyenv",
            || ready(&py),
            || {
                run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
                run(Command::new(&py).args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    REQUIREMENTS,
                ]));
            },
        );
        py
    })
    .clone()
}

fn run(cmd: &mut Command) {
    super::prepare::run(cmd, "is python3 with venv installed?");
}

/// The script at `tests/e2e/<name>`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e").join(name)
}
