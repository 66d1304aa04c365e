//! Provider error text is scrubbed before it is stored or shown (issue 11): a provider that
//! quotes the key it was sent leaves no key or key fragment in the job row, its attempt log,
//! the GradingFailed event or any API answer; a trainee sees the category (state, dead reason)
//! only, a manager the scrubbed detail. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use crate::common::testkit::{Behaviour, FakeProvider};
use common::*;
use salestrainer_grading::api::GradingServiceApi;
use salestrainer_grading::app::jobs::Grading;
use salestrainer_proto::grading::{self as pb, grading_service_server::GradingService};
use salestrainer_runtime::{Principal, Ready, Role};
use serde_json::json;
use tonic::Request;

/// The fake provider's key (`FakeProvider::credential`).
const KEY: &str = "sk-test-secret";

fn as_who<T>(msg: T, role: Role, subject: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.extensions_mut().insert(Principal {
        subject: subject.into(),
        organization: "acme".into(),
        role,
        member_id: None,
    });
    r
}

fn leaks(text: &str) -> bool {
    text.contains(KEY) || text.contains("test-secret") || text.contains("secret")
}

async fn provider_text_is_scrubbed(backend: Backend) {
    let fake = FakeProvider::start(None).await.unwrap();
    // A 500 quoting the key as a bearer token (retried), then a 401 quoting it whole and
    // masked (dead at once).
    fake.script([
        Behaviour::status(
            500,
            &[],
            json!({"error": {"message": format!("upstream refused Authorization: Bearer {KEY}"), "type": "server_error"}}),
        ),
        Behaviour::status(
            401,
            &[],
            json!({"error": {"message": format!("Incorrect API key provided: {KEY}. You can find your key at https://x.test/keys?key={KEY}; sk-tes****cret"), "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ),
    ]);
    let d = database(backend).await;
    let h = engine(
        &d.db,
        fast_config(),
        Some(fake.credential(0, 0)),
        None,
        None,
    );
    let id = session_ended(&h, "scrub").await.unwrap();
    let row = wait_state(&d.db, &id, pb::JobState::Dead, Duration::from_secs(20)).await;
    assert_eq!(fake.requests(), 2);
    assert_eq!(row.dead_reason, pb::DeadReason::ProviderRejected as i32);

    // Stored: the row, its attempt log and the GradingFailed event hold no key.
    let stored = row.last_error.clone().unwrap_or_default();
    assert!(stored.contains("invalid_api_key"), "{stored}");
    assert!(stored.contains("[redacted]"), "{stored}");
    assert!(!leaks(&stored), "stored error leaks: {stored}");
    assert!(
        !leaks(&row.attempt_log),
        "attempt log leaks: {}",
        row.attempt_log
    );
    assert!(
        row.attempt_log.contains("[redacted]"),
        "{}",
        row.attempt_log
    );
    {
        use salestrainer_bus::outbox::entity;
        use sea_orm::EntityTrait;
        let events = entity::Entity::find().all(&d.db).await.unwrap();
        assert!(events.iter().any(|e| e.event_type == "grading.failed"));
        for e in events {
            assert!(
                !e.payload.windows(6).any(|w| w == b"secret"),
                "{} leaks the key",
                e.event_type
            );
        }
    }

    // Shown: a manager sees the scrubbed detail; the trainee whose job it is, the category.
    let db = Ready::new();
    db.set(d.db.clone());
    let engine_ready = Ready::new();
    engine_ready.set(h.engine.clone());
    let api = GradingServiceApi::new(Grading::new(db, engine_ready));
    let name = format!("organizations/acme/gradingJobs/{id}");
    let get = |role, subject: &str| {
        as_who(
            pb::GetGradingJobRequest { name: name.clone() },
            role,
            subject,
        )
    };
    let seen = api
        .get_grading_job(get(Role::Manager, "boss"))
        .await
        .unwrap()
        .into_inner()
        .grading_job
        .unwrap();
    assert!(!seen.last_error.is_empty());
    assert!(!leaks(&seen.last_error), "{}", seen.last_error);
    assert_eq!(seen.recent_attempts.len(), 2);
    assert!(
        seen.recent_attempts
            .iter()
            .all(|a| !a.error.is_empty() && !leaks(&a.error)),
        "{:?}",
        seen.recent_attempts
    );

    // The trainee (`session_ended` grades trainee-1's session).
    let trainee = || Role::Trainee;
    let mine = api
        .get_grading_job(get(trainee(), "trainee-1"))
        .await
        .unwrap()
        .into_inner()
        .grading_job
        .unwrap();
    assert_eq!(mine.state, pb::JobState::Dead as i32);
    assert_eq!(mine.dead_reason, pb::DeadReason::ProviderRejected as i32);
    assert!(mine.last_error.is_empty(), "{}", mine.last_error);
    assert_eq!(mine.recent_attempts.len(), 2);
    assert!(mine.recent_attempts.iter().all(|a| a.error.is_empty()));
    let listed = api
        .list_grading_jobs(as_who(
            pb::ListGradingJobsRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            trainee(),
            "trainee-1",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.grading_jobs.len(), 1);
    assert!(
        listed.grading_jobs.iter().all(
            |j| j.last_error.is_empty() && j.recent_attempts.iter().all(|a| a.error.is_empty())
        )
    );
    // The manager's list shows the scrubbed detail.
    let listed = api
        .list_grading_jobs(as_who(
            pb::ListGradingJobsRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            Role::Manager,
            "boss",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .grading_jobs
            .iter()
            .all(|j| !j.last_error.is_empty() && !leaks(&j.last_error))
    );
    h.stop.cancel();
}

#[tokio::test]
async fn provider_text_is_scrubbed_sqlite() {
    provider_text_is_scrubbed(Backend::Sqlite).await;
}

#[tokio::test]
async fn provider_text_is_scrubbed_postgres() {
    provider_text_is_scrubbed(Backend::Postgres).await;
}
