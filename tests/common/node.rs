//! Node and headless Chromium for the real-browser suite: `npm ci` in tests/browser and
//! Debian's chromium with a CJK font, each prepared once under a lock ([`super::prepare`]).

use std::path::PathBuf;

use super::prepare;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The folder `dir` (relative to the crate) with its node_modules installed.
pub fn npm_ready(dir: &str) -> PathBuf {
    prepare::npm_ci(dir)
}

/// The folder of the browser suite, with its node_modules installed and Chromium present.
pub fn browser_suite() -> PathBuf {
    prepare::apt(
        "chromium",
        &["chromium", "fonts-wqy-zenhei"],
        &[CHROMIUM, "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"],
    );
    npm_ready("tests/browser")
}
