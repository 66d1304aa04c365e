//! What the console's browser tests share: the browser's prerequisites, and the real
//! `salestrainer up` binary started on a free port with a given data directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub use salestrainer_test_ports::free_port;

/// Chromium's path, after checking that Chromium, Node and the console's npm packages are
/// there: without them the test FAILS and says what to install (it never skips).
pub fn require_browser() -> String {
    let console = repo_root().join("services/console");
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
    chromium
}

/// A running `salestrainer up`, killed however the test ends.
pub struct Up {
    child: Child,
    pub port: u16,
}

impl Up {
    /// Starts `salestrainer up` on a free port with `data` as its data directory and only
    /// `env` for settings (a developer's SALESTRAINER_* must not leak in); returns once it
    /// prints the address to open (after the demo content exists).
    pub fn start(data: &Path, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_salestrainer"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SALESTRAINER_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("up")
            .env("SALESTRAINER_DATA_DIR", data)
            .env("SALESTRAINER_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "SALESTRAINER_ADMIN_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("SALESTRAINER_TELEMETRY__LOG_FILTER", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start salestrainer up");
        let stdout = child.stdout.take().expect("stdout");
        let up = Self { child, port };
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
        up
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
