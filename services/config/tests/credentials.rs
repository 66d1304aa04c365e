//! Provider credentials: encryption at rest, masking, Test against a fake OpenAI-compatible
//! server (ok, 401, never answers), Resolve for services only.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{App, code, req};
use salestrainer_proto::config as pb;
use tonic::Code;

// Split so the source holds nothing that looks like a real key.
const KEY: &str = concat!("sk-", "test-0123456789abcdefSECRETabcd");

both_backends!(
    credential_lifecycle_and_provider_test,
    database_holds_no_plaintext_key
);

/// A fake OpenAI-compatible API: `/v1/models` answers 200 for KEY and 401 otherwise.
pub async fn fake_openai() -> String {
    use axum::{Router, http::HeaderMap, http::StatusCode, routing::get};
    let app = Router::new().route(
        "/v1/models",
        get(|headers: HeaderMap| async move {
            let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {KEY}"));
            if ok {
                (StatusCode::OK, r#"{"object":"list","data":[]}"#)
            } else {
                (StatusCode::UNAUTHORIZED, r#"{"error":"bad key"}"#)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

/// Accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}/v1")
}

async fn create(app: &mut App, id: &str, base_url: &str, key: &str) -> pb::ProviderCredential {
    app.client
        .create_provider_credential(req(
            pb::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(pb::ProviderCredential {
                    kind: pb::ProviderKind::OpenaiCompatible as i32,
                    display_name: id.into(),
                    base_url: base_url.into(),
                    model: "gpt-4o-mini".into(),
                    api_key: key.into(),
                    ..Default::default()
                }),
                provider_credential_id: id.into(),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .provider_credential
        .unwrap()
}

async fn test_it(app: &mut App, name: &str) -> pb::CredentialTestResult {
    app.client
        .test_provider_credential(req(
            pb::TestProviderCredentialRequest {
                name: name.into(),
                timeout: None,
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap()
}

async fn credential_lifecycle_and_provider_test(mut app: App) {
    let url = fake_openai().await;
    let c = create(&mut app, "openai", &url, KEY).await;
    assert_eq!(c.masked_api_key, "sk-…abcd");
    assert!(c.api_key.is_empty());
    assert!(!format!("{c:?}").contains(KEY));

    // Invalid input: every bad field, and the key never echoed.
    let err = app
        .client
        .create_provider_credential(req(
            pb::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(pb::ProviderCredential {
                    base_url: "ftp://x".into(),
                    webhook_secret: "s".into(),
                    ..Default::default()
                }),
                provider_credential_id: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    let v = common::violations(&err);
    for f in [
        "provider_credential.kind",
        "provider_credential.base_url",
        "provider_credential.api_key",
    ] {
        assert!(v.contains(&f.to_string()), "{f} in {v:?}");
    }

    let ok = test_it(&mut app, &c.name).await;
    assert_eq!(ok.outcome, pb::TestOutcome::Ok as i32);
    assert_eq!(ok.http_status, 200);
    let got = app
        .client
        .get_provider_credential(req(
            pb::GetProviderCredentialRequest {
                name: c.name.clone(),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .provider_credential
        .unwrap();
    assert_eq!(
        got.last_test_result.as_ref().map(|r| r.outcome),
        Some(pb::TestOutcome::Ok as i32)
    );
    assert!(got.last_test_result.unwrap().test_time.is_some());

    let wrong = create(
        &mut app,
        "wrong",
        &url,
        concat!("sk-", "wrong-key-000000000000"),
    )
    .await;
    let r = test_it(&mut app, &wrong.name).await;
    assert_eq!(r.outcome, pb::TestOutcome::Unauthorized as i32);
    assert_eq!(r.http_status, 401);

    let closed = create(&mut app, "closed", "http://127.0.0.1:1/v1", KEY).await;
    assert_eq!(
        test_it(&mut app, &closed.name).await.outcome,
        pb::TestOutcome::Unreachable as i32
    );

    // A provider that never answers: the call returns at the hard 10 s limit.
    let hole = create(&mut app, "hole", &black_hole().await, KEY).await;
    let started = Instant::now();
    let r = test_it(&mut app, &hole.name).await;
    let took = started.elapsed();
    assert_eq!(r.outcome, pb::TestOutcome::Timeout as i32);
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(13),
        "took {took:?}"
    );

    // Rotation through update_mask; "*" never blanks the key.
    let rotated = app
        .client
        .update_provider_credential(req(
            pb::UpdateProviderCredentialRequest {
                provider_credential: Some(pb::ProviderCredential {
                    name: wrong.name.clone(),
                    api_key: KEY.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["api_key".into()],
                }),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .provider_credential
        .unwrap();
    assert!(rotated.last_test_result.is_none(), "a new key is untested");
    assert_eq!(
        test_it(&mut app, &wrong.name).await.outcome,
        pb::TestOutcome::Ok as i32
    );
    let renamed = app
        .client
        .update_provider_credential(req(
            pb::UpdateProviderCredentialRequest {
                provider_credential: Some(pb::ProviderCredential {
                    name: wrong.name.clone(),
                    display_name: "renamed".into(),
                    base_url: url.clone(),
                    model: "m".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .provider_credential
        .unwrap();
    assert_eq!(renamed.masked_api_key, "sk-…abcd");

    // Resolve: the decrypted key, for service identities only.
    let svc = app.service.clone();
    let resolved = app
        .client
        .resolve_provider_credential(req(
            pb::ResolveProviderCredentialRequest {
                parent: "organizations/acme".into(),
                kind: pb::ProviderKind::OpenaiCompatible as i32,
                ..Default::default()
            },
            &svc,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resolved.name, c.name,
        "the earliest-created credential of the kind"
    );
    assert_eq!(resolved.api_key, KEY);
    let admin = app.admin.clone();
    assert_eq!(
        code(
            app.client
                .resolve_provider_credential(req(
                    pb::ResolveProviderCredentialRequest {
                        name: c.name.clone(),
                        ..Default::default()
                    },
                    &admin
                ))
                .await
        ),
        Code::PermissionDenied
    );
    // Managers and trainees cannot even test.
    let m = app.manager.clone();
    assert_eq!(
        code(
            app.client
                .test_provider_credential(req(
                    pb::TestProviderCredentialRequest {
                        name: c.name.clone(),
                        timeout: None
                    },
                    &m
                ))
                .await
        ),
        Code::PermissionDenied
    );

    app.client
        .delete_provider_credential(req(
            pb::DeleteProviderCredentialRequest {
                name: c.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap();
}

async fn database_holds_no_plaintext_key(mut app: App) {
    use sea_orm::{ConnectionTrait, EntityTrait, Statement};
    let c = create(&mut app, "openai", "https://api.openai.com/v1", KEY).await;
    let db = app.raw_db().await;
    let rows = salestrainer_config::store::entities::provider_credential::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(
        !row.api_key_ciphertext
            .windows(KEY.len())
            .any(|w| w == KEY.as_bytes())
    );
    assert!(!row.masked_api_key.contains("0123456789"));
    // Every column of every table, as text.
    let dump = match app.backend {
        common::Backend::Postgres => {
            let mut all = String::new();
            for table in [
                "provider_credentials",
                "bus_outbox",
                "resources",
                "organizations",
                "members",
            ] {
                let rows = db
                    .query_all_raw(Statement::from_string(
                        db.get_database_backend(),
                        format!("SELECT row_to_json(t)::text AS j FROM {table} t"),
                    ))
                    .await
                    .unwrap();
                for r in rows {
                    all.push_str(&r.try_get::<String>("", "j").unwrap());
                }
            }
            all.into_bytes()
        }
        common::Backend::Sqlite => {
            // The database file and its write-ahead log, byte for byte.
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(&app.dir).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("config.db")
                {
                    bytes.extend(std::fs::read(path).unwrap());
                }
            }
            assert!(bytes.len() > 1000);
            bytes
        }
    };
    assert!(
        !dump.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "plaintext key found in the database"
    );

    // Re-encryption under a new key-encryption key keeps the secret readable.
    let old = salestrainer_config::app::keys::kek_from_file(&app.dir).unwrap();
    let new = salestrainer_config::domain::crypto::Kek::generate();
    let n = salestrainer_config::store::reencrypt_credentials(&db, &old, &new)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let row = salestrainer_config::store::entities::provider_credential::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.key_id, new.id());
    assert_eq!(
        new.open(
            &row.api_key_ciphertext,
            &salestrainer_config::domain::crypto::aad(&c.name, "api_key")
        )
        .unwrap(),
        KEY
    );
    assert_eq!(
        salestrainer_config::store::reencrypt_credentials(&db, &old, &new)
            .await
            .unwrap(),
        0,
        "rerun is a no-op"
    );
}
