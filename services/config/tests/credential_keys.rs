//! Provider keys go only where the admin who saved them meant them to go (issue 11). The
//! attack: an admin points an LLM credential's base URL at a server of their own and presses
//! Test, hoping to receive the stored key in the Authorization header. A fake provider that
//! records every Authorization header it receives shows the key never reaches it. Also: a
//! credential without a key answers FAILED_PRECONDITION to Test and Resolve, bad input changes
//! nothing, and provider text that quotes the key is scrubbed before it is stored or shown.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};

use common::{App, req};
use salestrainer_proto::config as pb;
use tonic::Code;
use tonic_types::StatusExt;

// Split so the source holds nothing that looks like a real key.
const KEY: &str = concat!("sk-", "test-0123456789abcdefSECRETabcd");
const NEW_KEY: &str = concat!("sk-", "test-NEWNEWNEW9876543210zyxw");

both_backends!(
    changing_the_base_url_never_sends_the_stored_key,
    a_webhook_secret_that_signs_like_a_key_follows_the_url,
    provider_text_quoting_the_key_is_scrubbed,
    test_timeout_that_overflows_is_invalid
);

/// A provider under the attacker's control: records the Authorization header of every request
/// and answers 401 quoting that header back (as real providers quote the key they were sent).
async fn recording_provider() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::{Router, http::HeaderMap, http::StatusCode, routing::get};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(get(move |headers: HeaderMap| {
        let log = log.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            log.lock().unwrap().push(auth.clone());
            let key = auth.trim_start_matches("Bearer ");
            let body = serde_json::json!({
                "error": {
                    "message": format!(
                        "Incorrect API key provided: {key}. Also seen: {auth}, ?key={key}, {}****{}",
                        key.get(..7).unwrap_or_default(),
                        key.get(key.len().saturating_sub(4)..).unwrap_or_default()
                    ),
                    "type": "invalid_request_error",
                }
            });
            (StatusCode::UNAUTHORIZED, body.to_string())
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

/// A well-behaved provider: 200 for any request.
async fn honest_provider() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::{Router, http::HeaderMap, routing::get};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(get(move |headers: HeaderMap| {
        let log = log.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            log.lock().unwrap().push(auth);
            r#"{"object":"list","data":[]}"#
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

async fn create(
    app: &mut App,
    id: &str,
    kind: pb::ProviderKind,
    base_url: &str,
    key: &str,
    webhook_secret: &str,
) -> pb::ProviderCredential {
    app.client
        .create_provider_credential(req(
            pb::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(pb::ProviderCredential {
                    kind: kind as i32,
                    display_name: id.into(),
                    base_url: base_url.into(),
                    model: "gpt-4o-mini".into(),
                    api_key: key.into(),
                    webhook_secret: webhook_secret.into(),
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

async fn get(app: &mut App, name: &str) -> pb::ProviderCredential {
    app.client
        .get_provider_credential(req(
            pb::GetProviderCredentialRequest { name: name.into() },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .provider_credential
        .unwrap()
}

async fn update(
    app: &mut App,
    patch: pb::ProviderCredential,
    paths: Option<&[&str]>,
) -> Result<pb::ProviderCredential, tonic::Status> {
    app.client
        .update_provider_credential(req(
            pb::UpdateProviderCredentialRequest {
                provider_credential: Some(patch),
                update_mask: paths.map(|p| prost_types::FieldMask {
                    paths: p.iter().map(|s| (*s).to_owned()).collect(),
                }),
            },
            &app.admin,
        ))
        .await
        .map(|r| r.into_inner().provider_credential.unwrap())
}

async fn test_it(app: &mut App, name: &str) -> Result<pb::CredentialTestResult, tonic::Status> {
    app.client
        .test_provider_credential(req(
            pb::TestProviderCredentialRequest {
                name: name.into(),
                timeout: None,
            },
            &app.admin,
        ))
        .await
        .map(|r| r.into_inner().result.unwrap())
}

fn assert_no_key(status: &tonic::Status) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.get_details_error_info().map(|i| i.reason),
        Some("CREDENTIAL_HAS_NO_KEY".to_owned()),
        "{status:?}"
    );
}

/// Whether `text` holds the key or any 6-character piece of its secret part.
fn leaks(text: &str, key: &str) -> bool {
    let secret = &key[3..];
    text.contains(key)
        || secret
            .as_bytes()
            .windows(6)
            .any(|w| text.contains(std::str::from_utf8(w).unwrap()))
}

async fn changing_the_base_url_never_sends_the_stored_key(mut app: App) {
    let (honest, honest_seen) = honest_provider().await;
    let (evil, evil_seen) = recording_provider().await;
    let c = create(
        &mut app,
        "llm",
        pb::ProviderKind::OpenaiCompatible,
        &honest,
        KEY,
        "",
    )
    .await;
    let ok = test_it(&mut app, &c.name).await.unwrap();
    assert_eq!(ok.outcome, pb::TestOutcome::Ok as i32);
    assert_eq!(
        honest_seen.lock().unwrap().as_slice(),
        [format!("Bearer {KEY}")],
        "the key goes where the admin sent it"
    );

    // Bad input changes nothing: a stale etag, then an invalid field, each with the new URL.
    let err = update(
        &mut app,
        pb::ProviderCredential {
            name: c.name.clone(),
            base_url: evil.clone(),
            etag: "\"stale\"".into(),
            ..Default::default()
        },
        Some(&["base_url"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let err = update(
        &mut app,
        pb::ProviderCredential {
            name: c.name.clone(),
            base_url: evil.clone(),
            api_key: String::new(),
            ..Default::default()
        },
        // A named but empty key is refused.
        Some(&["base_url", "api_key"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let unchanged = get(&mut app, &c.name).await;
    assert_eq!(unchanged.base_url, honest);
    assert_eq!(unchanged.masked_api_key, c.masked_api_key);
    assert_eq!(unchanged.etag, c.etag);

    // The attack: point the URL at our own server, then press Test.
    let moved = update(
        &mut app,
        pb::ProviderCredential {
            name: c.name.clone(),
            base_url: evil.clone(),
            etag: c.etag.clone(),
            ..Default::default()
        },
        Some(&["base_url"]),
    )
    .await
    .unwrap();
    assert_eq!(moved.base_url, evil);
    assert!(moved.masked_api_key.is_empty(), "the key was cleared");
    assert!(
        moved.last_test_result.is_none(),
        "a test of the old endpoint says nothing about the new one"
    );
    assert_no_key(&test_it(&mut app, &c.name).await.unwrap_err());

    // Every use of the credential refuses too: Resolve by name and by organization and kind.
    let svc = app.service.clone();
    for r in [
        pb::ResolveProviderCredentialRequest {
            name: c.name.clone(),
            ..Default::default()
        },
        pb::ResolveProviderCredentialRequest {
            parent: "organizations/acme".into(),
            kind: pb::ProviderKind::OpenaiCompatible as i32,
            ..Default::default()
        },
    ] {
        let err = app
            .client
            .resolve_provider_credential(req(r, &svc))
            .await
            .unwrap_err();
        assert_no_key(&err);
    }

    // "*" and a full replacement (no mask) never bring the key back either.
    let again = update(
        &mut app,
        pb::ProviderCredential {
            name: c.name.clone(),
            display_name: "renamed".into(),
            base_url: evil.clone(),
            model: "m".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert!(again.masked_api_key.is_empty());
    assert_no_key(&test_it(&mut app, &c.name).await.unwrap_err());
    assert!(
        evil_seen.lock().unwrap().is_empty(),
        "the attacker's server received a request: {:?}",
        evil_seen.lock().unwrap()
    );

    // The database holds no key for this credential any more (not even sealed).
    {
        use sea_orm::EntityTrait;
        let db = app.raw_db().await;
        let row = salestrainer_config::store::entities::provider_credential::Entity::find()
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert!(row.api_key_ciphertext.is_empty());
        // Re-encryption skips the cleared key instead of failing on it.
        let old = salestrainer_config::app::keys::kek_from_file(&app.dir).unwrap();
        let new = salestrainer_config::domain::crypto::Kek::generate();
        let n = salestrainer_config::store::reencrypt_credentials(&db, &old, &new)
            .await
            .unwrap();
        assert_eq!(n, 1);
        salestrainer_config::store::reencrypt_credentials(&db, &new, &old)
            .await
            .unwrap();
    }

    // A key sent together with the new URL goes there: the admin meant it.
    let rekeyed = update(
        &mut app,
        pb::ProviderCredential {
            name: c.name.clone(),
            base_url: honest.clone(),
            api_key: NEW_KEY.into(),
            ..Default::default()
        },
        Some(&["base_url", "api_key"]),
    )
    .await
    .unwrap();
    assert_eq!(rekeyed.masked_api_key, "sk-…zyxw");
    assert_eq!(
        test_it(&mut app, &c.name).await.unwrap().outcome,
        pb::TestOutcome::Ok as i32
    );
    assert_eq!(
        honest_seen.lock().unwrap().last().cloned(),
        Some(format!("Bearer {NEW_KEY}"))
    );
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
        .unwrap()
        .into_inner();
    assert_eq!(resolved.api_key, NEW_KEY);
    // Changing other fields keeps the key.
    let renamed = update(
        &mut app,
        pb::ProviderCredential {
            name: c.name.clone(),
            display_name: "again".into(),
            ..Default::default()
        },
        Some(&["display_name"]),
    )
    .await
    .unwrap();
    assert_eq!(renamed.masked_api_key, "sk-…zyxw");
    for seen in evil_seen.lock().unwrap().iter() {
        assert!(!leaks(seen, KEY) && !leaks(seen, NEW_KEY), "{seen}");
    }
    assert!(evil_seen.lock().unwrap().is_empty());
}

async fn a_webhook_secret_that_signs_like_a_key_follows_the_url(mut app: App) {
    let retell = create(
        &mut app,
        "retell",
        pb::ProviderKind::Retell,
        "https://api.retellai.com",
        "key_0123456789retell",
        "retell-signing-secret-1",
    )
    .await;
    let vapi = create(
        &mut app,
        "vapi",
        pb::ProviderKind::Vapi,
        "https://api.vapi.ai",
        "d3b07384-d9a0-4c9f-8e2a-6f1b2c3d4e5f",
        "vapi-shared-secret-1",
    )
    .await;
    assert!(retell.has_webhook_secret && vapi.has_webhook_secret);
    for (c, keeps_secret) in [(&retell, false), (&vapi, true)] {
        let moved = update(
            &mut app,
            pb::ProviderCredential {
                name: c.name.clone(),
                base_url: "https://example.test".into(),
                ..Default::default()
            },
            Some(&["base_url"]),
        )
        .await
        .unwrap();
        assert!(moved.masked_api_key.is_empty(), "{}", c.name);
        assert_eq!(moved.has_webhook_secret, keeps_secret, "{}", c.name);
        assert_no_key(&test_it(&mut app, &c.name).await.unwrap_err());
    }
    // A secret sent with the URL stays.
    let moved = update(
        &mut app,
        pb::ProviderCredential {
            name: retell.name.clone(),
            base_url: "https://api.retellai.com".into(),
            api_key: "key_fresh0123456789".into(),
            webhook_secret: "retell-signing-secret-2".into(),
            ..Default::default()
        },
        Some(&["base_url", "api_key", "webhook_secret"]),
    )
    .await
    .unwrap();
    assert!(moved.has_webhook_secret && !moved.masked_api_key.is_empty());
}

async fn provider_text_quoting_the_key_is_scrubbed(mut app: App) {
    let (evil, evil_seen) = recording_provider().await;
    // The admin saves the key for this endpoint: the provider receives it (by design) and
    // quotes it back in its error text, which must not be stored or shown.
    let c = create(
        &mut app,
        "quoting",
        pb::ProviderKind::OpenaiCompatible,
        &evil,
        KEY,
        "",
    )
    .await;
    let r = test_it(&mut app, &c.name).await.unwrap();
    assert_eq!(r.outcome, pb::TestOutcome::Unauthorized as i32);
    assert_eq!(evil_seen.lock().unwrap().len(), 1);
    assert!(
        r.detail
            .starts_with("the provider rejected the key: Incorrect API key provided"),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("[redacted]"), "{}", r.detail);
    assert!(
        !leaks(&r.detail, KEY),
        "returned detail leaks: {}",
        r.detail
    );
    let shown = get(&mut app, &c.name).await;
    let detail = shown.last_test_result.unwrap().detail;
    assert!(!leaks(&detail, KEY), "shown detail leaks: {detail}");
    // Nor is it stored anywhere: every credential row, and the outbox, as text.
    use sea_orm::{ConnectionTrait, EntityTrait, Statement};
    let db = app.raw_db().await;
    let row = salestrainer_config::store::entities::provider_credential::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let stored = row.last_test_detail.unwrap();
    assert!(!leaks(&stored, KEY), "stored detail leaks: {stored}");
    // A detail stored before scrubbing existed is scrubbed when shown.
    let legacy = format!("old text with {KEY} and Bearer {KEY}");
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        match app.backend {
            common::Backend::Postgres => {
                "UPDATE provider_credentials SET last_test_detail = $1 WHERE id = $2"
            }
            common::Backend::Sqlite => {
                "UPDATE provider_credentials SET last_test_detail = ? WHERE id = ?"
            }
        },
        [legacy.into(), "quoting".into()],
    ))
    .await
    .unwrap();
    let shown = get(&mut app, &c.name).await;
    let detail = shown.last_test_result.unwrap().detail;
    assert!(detail.starts_with("old text with"), "{detail}");
    assert!(!leaks(&detail, KEY), "legacy detail leaks: {detail}");
}

async fn test_timeout_that_overflows_is_invalid(mut app: App) {
    let c = create(
        &mut app,
        "t",
        pb::ProviderKind::OpenaiCompatible,
        "http://127.0.0.1:1/v1",
        KEY,
        "",
    )
    .await;
    for (seconds, nanos) in [(i64::MAX, 0), (i64::MAX, 999_999_999), (1, 1_000_000_000)] {
        let r = app
            .client
            .test_provider_credential(req(
                pb::TestProviderCredentialRequest {
                    name: c.name.clone(),
                    timeout: Some(prost_types::Duration { seconds, nanos }),
                },
                &app.admin,
            ))
            .await;
        match (seconds, r) {
            // A huge timeout is cut to the hard limit, never an overflow.
            (i64::MAX, Ok(r)) => assert_eq!(
                r.into_inner().result.unwrap().outcome,
                pb::TestOutcome::Unreachable as i32
            ),
            (_, Err(e)) => assert_eq!(e.code(), Code::InvalidArgument, "{e:?}"),
            (_, Ok(r)) => panic!("accepted {seconds} s {nanos} ns: {r:?}"),
        }
    }
    // An assignment due time that overflows is INVALID_ARGUMENT and writes nothing.
    for seconds in [i64::MAX, i64::MIN, 253_402_300_800] {
        let err = app
            .client
            .create_assignment(req(
                pb::CreateAssignmentRequest {
                    parent: "organizations/acme".into(),
                    assignment: Some(pb::Assignment {
                        scenario: "organizations/acme/scenarios/overflow".into(),
                        due_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                &app.admin,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            common::violations(&err).contains(&"assignment.due_time".to_owned()),
            "{err:?}"
        );
    }
    let listed = app
        .client
        .list_assignments(req(
            pb::ListAssignmentsRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .assignments
            .iter()
            .all(|a| !a.scenario.ends_with("/overflow"))
    );
}
