//! `[config] serve_console`: the browser console at `/` beside the gRPC API (distributed mode,
//! behind the gateway), public and with its headers; off by default, where `/` stays closed.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use salestrainer_config::app::{ConfigApp, settings::ConfigSettings};
use salestrainer_tests::{spawn_service_with, wait_serving};

async fn get(addr: std::net::SocketAddr, path: &str) -> reqwest::Response {
    salestrainer_runtime::install_crypto_provider();
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap()
}

/// The gRPC status of an answer (the auth layer answers a path needing a token with 16,
/// UNAUTHENTICATED).
fn grpc_status(r: &reqwest::Response) -> Option<&str> {
    r.headers().get("grpc-status")?.to_str().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_only_when_turned_on() {
    let on = ConfigSettings {
        serve_console: true,
        ..ConfigSettings::default()
    };
    let app = spawn_service_with::<ConfigApp>(|_| {}, on.clone()).await;
    wait_serving(&app, "", Duration::from_secs(30)).await;
    let page = get(app.addr, "/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let info = get(app.addr, "/console/info").await;
    assert_eq!(info.status(), 200);
    assert_eq!(
        info.text().await.unwrap(),
        r#"{"dev_sign_in":false,"organization":"","oidc":null}"#
    );
    // Only the console's own paths are public: development sign-in is not here.
    let dev = get(app.addr, "/console/dev/users").await;
    assert_eq!(grpc_status(&dev), Some("16"));
    app.stop().await;

    // With an identity provider: the app learns it (nothing secret) and may reach its origin.
    let oidc = spawn_service_with::<ConfigApp>(
        |s| {
            s.set_section(
                "console",
                serde_json::json!({
                    "oidc_issuer": "https://idp.example.com/realms/acme",
                    "oidc_client_id": "console",
                    "oidc_audience": "salestrainer",
                }),
            )
        },
        on.clone(),
    )
    .await;
    wait_serving(&oidc, "", Duration::from_secs(30)).await;
    let info: serde_json::Value = get(oidc.addr, "/console/info").await.json().await.unwrap();
    assert_eq!(
        info["oidc"],
        serde_json::json!({
            "issuer": "https://idp.example.com/realms/acme",
            "client_id": "console",
            "scopes": "openid profile",
            "audience": "salestrainer",
        })
    );
    let page = get(oidc.addr, "/").await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("connect-src 'self' https://idp.example.com https://api.vapi.ai"),
        "{csp}"
    );
    oidc.stop().await;

    let off = spawn_service_with::<ConfigApp>(|_| {}, ConfigSettings::default()).await;
    wait_serving(&off, "", Duration::from_secs(30)).await;
    let page = get(off.addr, "/").await;
    assert!(page.headers().get("content-security-policy").is_none());
    assert_eq!(grpc_status(&page), Some("16"));
    off.stop().await;
}
