//! The console in real headless Chromium: starts the real `salestrainer up` binary on a free
//! port with a fresh data directory and runs `services/console/e2e/console.mjs` (Playwright
//! driving Debian's /usr/bin/chromium) against it. Needs Node, `npm ci` in services/console and
//! `apt-get install chromium`; without them it FAILS and says so (it never skips).
//! `SALESTRAINER_CONSOLE_SCREENSHOTS=docs/screenshots` refreshes the README's screenshots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::{Up, repo_root, require_browser};

#[test]
fn console_in_headless_chromium() {
    let root = repo_root();
    let chromium = require_browser();
    let data = tempfile::tempdir().expect("temp dir");
    let server = Up::start(data.path(), &[]);

    let mut e2e = Command::new("node");
    e2e.arg("e2e/console.mjs")
        .current_dir(root.join("services/console"))
        .env("CONSOLE_URL", server.url())
        .env("CHROMIUM", &chromium);
    if let Ok(dir) = std::env::var("SALESTRAINER_CONSOLE_SCREENSHOTS") {
        e2e.env("SCREENSHOTS", root.join(dir));
    }
    let status = e2e.status().expect("run node e2e/console.mjs");
    drop(server);
    assert!(
        status.success(),
        "the console's browser test failed (its output is above)"
    );
}
