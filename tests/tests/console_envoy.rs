//! The console through the gateway (distributed mode): four service processes and Envoy, the
//! console served by the config service at Envoy's `/` with its cache headers and
//! content-security policy, and the same headless-Chromium journey as on `salestrainer up`
//! (services/console/e2e/console.mjs), signing in by pasting bearer tokens since development
//! sign-in exists only on `up`. Needs Envoy, Node.js, Chromium and the console's npm packages;
//! without them it FAILS and says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

use salestrainer_runtime::Role;
use salestrainer_tests::cluster::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_through_envoy_in_headless_chromium() {
    let console = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/console");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the console test needs Chromium at {chromium}: run `apt-get install -y chromium`"
    );
    assert!(
        console.join("node_modules/playwright-core").exists(),
        "the console test needs the console's npm packages: run `npm ci` in {}",
        console.display()
    );

    let cluster = Cluster::start().await;
    let base = format!("http://{}", cluster.gateway);

    // The page is never cached, its hashed assets are cached for good, both under the CSP.
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(header(&page, "content-security-policy").contains("default-src 'self'"));
    let html = page.text().await.expect("index.html");
    let asset = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("index.html names its script");
    let js = http
        .get(format!("{base}{asset}"))
        .send()
        .await
        .expect("GET asset");
    assert_eq!(js.status(), 200, "{asset}");
    assert!(header(&js, "cache-control").contains("immutable"));
    // Anything else still needs a token.
    let other = http
        .get(format!("{base}/console/dev/users"))
        .send()
        .await
        .expect("GET /console/dev/users");
    assert_eq!(
        other.status(),
        401,
        "no development sign-in behind the gateway"
    );

    // The demo content, created through the gateway like any client would.
    salestrainer::demo::ensure_demo_content(&base, &cluster.minter)
        .await
        .expect("demo content through the gateway");
    let tokens = serde_json::json!({
        "demo-admin": cluster.token("demo-admin", Role::Admin),
        "maria": cluster.token("maria", Role::Manager),
        "tom": cluster.token("tom", Role::Trainee),
        "tina": cluster.token("tina", Role::Trainee),
    });
    let status = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("e2e/console.mjs")
            .current_dir(&console)
            .env("CONSOLE_URL", &base)
            .env("CONSOLE_TOKENS", tokens.to_string())
            .env("CHROMIUM", &chromium)
            .status()
    })
    .await
    .expect("join")
    .expect("run node e2e/console.mjs (is Node.js installed?)");
    if !status.success() {
        cluster.print_logs();
    }
    assert!(
        status.success(),
        "the console's browser test through Envoy failed (its output is above)"
    );
}
