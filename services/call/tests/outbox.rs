//! Crash after commit: EndSession's transaction commits with no relay running (the process
//! "dies" before publishing); a relay started later publishes the event. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use salestrainer_bus::{
    CancellationToken, InProcessOptions, InProcessTransport, Relay, RelayOptions, SubscribeOptions,
    Transport,
};
use salestrainer_call::store::{self, Ending, Migrator, session};
use salestrainer_proto::{call as pb, events as ev};
use salestrainer_runtime::{
    db::begin_write,
    events::{TOPIC_SESSIONS, decode},
    time::now_us,
};
use salestrainer_tests::Backend;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

fn model(id: &str, now: i64) -> session::Model {
    session::Model {
        id: id.into(),
        organization: "acme".into(),
        trainee: "organizations/acme/members/tom".into(),
        scenario: "organizations/acme/scenarios/cold-call".into(),
        assignment: String::new(),
        mode: pb::SessionMode::Text as i32,
        state: pb::SessionState::Active as i32,
        request_id: None,
        start_us: now,
        end_us: None,
        duration_ms: None,
        deadline_us: None,
        last_activity_us: now,
        end_reason: 0,
        end_reason_detail: String::new(),
        voice_provider: 0,
        provider_call_id: String::new(),
        recording_uri: String::new(),
        evaluation: String::new(),
        overall_score: 0.0,
        passed: false,
        closed: false,
        transcript_final: false,
        transcript_version: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
        llm_requests: 0,
        llm_model: String::new(),
        version: 1,
        create_us: now,
        update_us: now,
        segment_count: 0,
        transcript_bytes: 0,
        failure_reason: String::new(),
        source: pb::SessionSource::Practice as i32,
        rubric: String::new(),
        title: String::new(),
        drill_evaluation: String::new(),
        drill_criterion: String::new(),
        drill_skill: String::new(),
        drill_score: 0.0,
        drill_objection: String::new(),
        score_revision: 0,
    }
}

/// Ends a session in a write transaction of its own, as the service does.
async fn end(db: &sea_orm::DatabaseConnection, id: &str, ending: Ending) -> store::Ended {
    let txn = begin_write(db).await.unwrap();
    let ended = store::end_session(&txn, id, ending).await.unwrap();
    txn.commit().await.unwrap();
    ended
}

async fn crash_after_commit_then_resend(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // Fails (does not skip) when the database is down.
    let db = backend.fresh_database::<Migrator>("call", dir.path()).await;
    let now = now_us();
    store::insert_session(&db, model("s1", now)).await.unwrap();
    // An idle one for the sweeper query, and a fresh one it must leave alone.
    store::insert_session(&db, model("idle", now - 3_600_000_000))
        .await
        .unwrap();
    let ended = end(
        &db,
        "s1",
        Ending {
            state: pb::SessionState::Ended as i32,
            reason: pb::EndReason::TraineeEnded as i32,
            ..Default::default()
        },
    )
    .await;
    assert!(ended.changed);
    // Ending twice writes nothing more.
    let again = end(&db, "s1", Ending::default()).await;
    assert!(!again.changed);
    use salestrainer_bus::outbox::entity as outbox;
    let unsent = outbox::Entity::find()
        .filter(outbox::Column::SentAt.is_null())
        .count(&db)
        .await
        .unwrap();
    assert_eq!(unsent, 3, "2 started + 1 ended, none published yet");

    let expired = store::expired_sessions(&db, now - 1_800_000_000, now, 10)
        .await
        .unwrap();
    assert_eq!(
        expired.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["idle"]
    );

    // "Restart": a relay on the same database publishes what was committed.
    let bus = Arc::new(InProcessTransport::new(InProcessOptions::default()));
    let mut sub = bus
        .subscribe(
            TOPIC_SESSIONS,
            "analytics",
            "c",
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let (_notifier, _handle) = Relay::start(
        db.clone(),
        bus.clone(),
        RelayOptions::default(),
        stop.clone(),
    );
    let mut seen_end = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen_end {
        let d = tokio::time::timeout_at(deadline, sub.next())
            .await
            .expect("event published after restart")
            .unwrap();
        let e = decode(&d.envelope).unwrap();
        if let Some(ev::event::Payload::SessionEnded(x)) = e.payload {
            assert_eq!(x.session, "organizations/acme/sessions/s1");
            assert_eq!(x.end_reason, ev::EndReason::TraineeEnded as i32);
            seen_end = true;
        }
        d.ack().await.unwrap();
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_after_commit_then_resend() {
    crash_after_commit_then_resend(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_after_commit_then_resend() {
    crash_after_commit_then_resend(Backend::Postgres).await;
}
