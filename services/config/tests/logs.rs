//! Captures every log line of a whole run (trace level, all targets) and finds no API key.
//! A test binary of its own: the subscriber is process-global.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use common::req;
use salestrainer_proto::config as pb;

// Split so the source holds nothing that looks like a real key.
const KEY: &str = concat!("sk-", "logtest-9f8e7d6c5b4a39281706LEAKCHECK");

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> Buffer {
    static BUF: OnceLock<Buffer> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Buffer::default();
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        buf
    })
    .clone()
}

async fn whole_run(backend: common::Backend) {
    let logs = capture();
    let mut app = common::spawn_app(backend).await;
    let url = {
        use axum::{Router, http::StatusCode, routing::get};
        let router = Router::new().route(
            "/v1/models",
            get(|| async { (StatusCode::UNAUTHORIZED, "no") }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}/v1")
    };
    let c = app
        .client
        .create_provider_credential(req(
            pb::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(pb::ProviderCredential {
                    kind: pb::ProviderKind::OpenaiCompatible as i32,
                    base_url: url,
                    api_key: KEY.into(),
                    ..Default::default()
                }),
                provider_credential_id: "c".into(),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .provider_credential
        .unwrap();
    let r = app
        .client
        .test_provider_credential(req(
            pb::TestProviderCredentialRequest {
                name: c.name.clone(),
                timeout: None,
            },
            &app.admin,
        ))
        .await
        .unwrap();
    assert_eq!(
        r.into_inner().result.unwrap().outcome,
        pb::TestOutcome::Unauthorized as i32
    );
    let svc = app.service.clone();
    let resolved = app
        .client
        .resolve_provider_credential(req(
            pb::ResolveProviderCredentialRequest {
                name: c.name.clone(),
                ..Default::default()
            },
            &svc,
        ))
        .await
        .unwrap();
    assert_eq!(resolved.into_inner().api_key, KEY);
    // Failing paths log too: a bad update and a forbidden resolve.
    let _ = app
        .client
        .update_provider_credential(req(
            pb::UpdateProviderCredentialRequest {
                provider_credential: Some(pb::ProviderCredential {
                    name: c.name.clone(),
                    api_key: format!("{KEY}\u{7}"),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["api_key".into()],
                }),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    let admin = app.admin.clone();
    let _ = app
        .client
        .resolve_provider_credential(req(
            pb::ResolveProviderCredentialRequest {
                name: c.name.clone(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap_err();
    drop(app);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.len() > 1000,
        "logs were captured ({} bytes)",
        text.len()
    );
    assert!(!text.contains(KEY), "the API key appeared in the logs");
    assert!(
        !text.contains("LEAKCHECK"),
        "part of the API key appeared in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_in_the_logs_of_a_whole_run() {
    whole_run(common::Backend::Sqlite).await;
    whole_run(common::Backend::Postgres).await;
}
