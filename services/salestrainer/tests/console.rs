//! The console in real headless Chromium: starts the real `salestrainer up` binary on a free
//! port with a fresh data directory and runs `services/console/e2e/console.mjs` (Playwright
//! driving Debian's /usr/bin/chromium) against it. Needs Node, `npm ci` in services/console and
//! `apt-get install chromium`; without them it FAILS and says so (it never skips).
//! `SALESTRAINER_CONSOLE_SCREENSHOTS=docs/screenshots` refreshes the README's screenshots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn console_in_headless_chromium() {
    let root = repo_root();
    let console = root.join("services/console");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the console test needs Chromium at {chromium}: run `apt-get install -y chromium` \
         (or set CHROMIUM to its path)"
    );
    assert!(
        console.join("node_modules/playwright-core").exists(),
        "the console test needs the console's npm packages: run `npm ci` in {}",
        console.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the console test needs Node.js (`node`) on the PATH"
    );

    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_salestrainer"));
    // Only this test's settings: a developer's SALESTRAINER_* must not leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("SALESTRAINER_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .arg("up")
        .env("SALESTRAINER_DATA_DIR", data.path())
        .env("SALESTRAINER_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SALESTRAINER_ADMIN_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("SALESTRAINER_TELEMETRY__LOG_FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start salestrainer up");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);

    // Ready once it prints the address to open (after the demo content exists).
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("[up] {line}");
            if line.contains("Salestrainer is ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("salestrainer up did not become ready within 120 s");

    let mut e2e = Command::new("node");
    e2e.arg("e2e/console.mjs")
        .current_dir(&console)
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}"))
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
