//! Debian's Go with its packaged golang-jwt and go-jose, for the Go recipe of deploy/backends/go:
//! the packages are installed with apt-get when missing, and the recipe's command is built in
//! GOPATH mode (nothing downloaded) into `target/test-deps/go`, each once, under a lock
//! ([`super::prepare`]). The command is built again when a file of the recipe is newer.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::prepare;

/// Debian's `go`, as the packages install it.
const GO: &str = "/usr/bin/go";
/// Debian's Go and the JWT and JOSE libraries the recipe imports.
const PACKAGES: [&str; 3] = ["golang-go", "golang-github-golang-jwt-jwt-dev", "golang-gopkg-square-go-jose.v2-dev"];
/// Where Debian puts the libraries' sources (GOPATH mode).
const GOCODE: &str = "/usr/share/gocode";
/// One file of each package: all present, nothing to install.
const PRESENT: [&str; 3] = [
    GO,
    "/usr/share/gocode/src/github.com/golang-jwt/jwt/parser.go",
    "/usr/share/gocode/src/gopkg.in/square/go-jose.v2/jwk.go",
];
/// The recipe's folder is the package `openidtoken`; its command is under it.
const PACKAGE: &str = "openidtoken";
const COMMAND: &str = "openidtoken/cmd/verify-openid-token";

/// The recipe's `verify-openid-token` command, built from the current sources.
pub fn verify_openid_token() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        prepare::apt("golang", &PACKAGES, &PRESENT);
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let recipe = root.join("deploy/backends/go");
        let work = root.join("target/test-deps/go");
        let bin = work.join("bin/verify-openid-token");
        let ready = || modified(&bin).is_some_and(|built| newest(&recipe).is_some_and(|src| built >= src));
        prepare::once("go-recipe", ready, || build(&recipe, &work, &bin));
        bin
    })
    .clone()
}

/// `go build` of the command with `recipe` linked in as `GOPATH/src/openidtoken`; the binary is
/// written beside `bin` and renamed, so a reader never sees half of it.
fn build(recipe: &Path, work: &Path, bin: &Path) {
    let gopath = work.join("gopath");
    let link = gopath.join("src").join(PACKAGE);
    std::fs::create_dir_all(link.parent().unwrap()).expect("creating the GOPATH");
    std::fs::create_dir_all(bin.parent().unwrap()).expect("creating the command's folder");
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != ErrorKind::NotFound => panic!("removing {link:?}: {e}"),
        _ => {}
    }
    std::os::unix::fs::symlink(recipe, &link).expect("linking the recipe into the GOPATH");
    let partial = bin.with_extension("partial");
    prepare::run(
        Command::new(GO)
            .args(["build", "-o"])
            .arg(&partial)
            .arg(COMMAND)
            .env("GO111MODULE", "off")
            .env("GOPATH", format!("{}:{GOCODE}", gopath.display()))
            .env("GOCACHE", work.join("cache"))
            .env("CGO_ENABLED", "0")
            .env_remove("GOFLAGS"),
        "building the Go recipe with Debian's packages",
    );
    std::fs::rename(&partial, bin).expect("moving the built command in place");
}

/// The latest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<SystemTime> {
    let mut latest = modified(dir);
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() { newest(&path) } else { modified(&path) };
        latest = latest.max(time);
    }
    latest
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
