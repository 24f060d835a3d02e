//! A Python with PyJWT for tests that check the gateway against another ecosystem: a venv
//! under cargo's target folder, made on first use (`.ci/run` makes it ahead of time).

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
        if !ready(&py) {
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            run(Command::new(&py).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                REQUIREMENTS,
            ]));
        }
        assert!(ready(&py), "PyJWT is not importable from {}", py.display());
        py
    })
    .clone()
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: install python3-venv, or run `bash .ci/run` once");
}

/// The script at `tests/e2e/<name>`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e").join(name)
}
