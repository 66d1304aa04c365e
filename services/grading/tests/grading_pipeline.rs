//! The pipeline end to end against a local fake OpenAI-compatible server and the built-in
//! grader, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use crate::common::testkit::{Behaviour, FakeProvider};
use common::*;
use salestrainer_grading::app::pipeline::Checkpoint;
use salestrainer_grading::store::{self, usage};
use salestrainer_proto::grading::{DeadReason, GraderKind, JobState};
use salestrainer_runtime::time::now_us;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

const T: Duration = Duration::from_secs(20);

async fn deterministic_end_to_end(backend: Backend) {
    let d = database(backend).await;
    let h = engine(&d.db, fast_config(), None, None, None);
    let id = session_ended(&h, "s1").await.expect("job created");
    // A redelivered SessionEnded (same event id) and a new event for the same session create
    // nothing.
    let event = crate::common::testkit::session_ended("organizations/acme", "s1");
    assert!(
        salestrainer_grading::app::session_events::handle_session_ended(&d.db, &event, 5)
            .await
            .unwrap()
            .is_none()
    );
    let j = wait_state(&d.db, &id, JobState::Succeeded, T).await;
    assert_eq!(j.attempts, 1);
    let evals = evaluations_of(&d.db, &session("s1")).await;
    assert_eq!(evals.len(), 1);
    let e = salestrainer_grading::api::convert::evaluation_pb(&evals[0]);
    assert_eq!(e.grader, GraderKind::Deterministic as i32);
    assert_eq!(e.criterion_scores.len(), 4);
    assert!(e.closed, "the strong call books a meeting");
    assert!(e.metrics.as_ref().unwrap().next_step_set);
    assert!(e.criterion_scores.iter().any(|c| !c.evidence.is_empty()));
    let types = outbox_types(&d.db).await;
    assert_eq!(types.iter().filter(|t| *t == "grading.started").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "session.graded").count(), 1);
    // SessionGraded carries each criterion's normalized score, as the evaluation has it.
    let graded = graded_events(&d.db).await;
    let sent: Vec<(String, f64)> = graded[0]
        .criterion_scores
        .iter()
        .map(|c| (c.criterion.clone(), c.score))
        .collect();
    let scored: Vec<(String, f64)> = e
        .criterion_scores
        .iter()
        .map(|c| (c.criterion_id.clone(), c.normalized_score))
        .collect();
    assert_eq!(sent, scored);
    let jobs = store::due_job_ids(&d.db, i64::MAX, 10).await.unwrap();
    assert!(jobs.is_empty());
    h.stop.cancel();
}

/// The SessionGraded events in the outbox, in order.
async fn graded_events(
    db: &sea_orm::DatabaseConnection,
) -> Vec<salestrainer_proto::events::SessionGraded> {
    use prost::Message;
    use salestrainer_bus::outbox::entity;
    use salestrainer_proto::events as ev;
    entity::Entity::find()
        .order_by_asc(entity::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event_type == "session.graded")
        .filter_map(
            |r| match ev::Event::decode(r.payload.as_slice()).unwrap().payload {
                Some(ev::event::Payload::SessionGraded(g)) => Some(g),
                _ => None,
            },
        )
        .collect()
}

#[tokio::test]
async fn deterministic_end_to_end_sqlite() {
    deterministic_end_to_end(Backend::Sqlite).await;
}

#[tokio::test]
async fn deterministic_end_to_end_postgres() {
    deterministic_end_to_end(Backend::Postgres).await;
}

/// Runs one session with the fake provider after `script`; returns the final job.
async fn llm_run(
    backend: Backend,
    script: Vec<Behaviour>,
    cfg: salestrainer_grading::app::EngineConfig,
    want: JobState,
) -> (store::job::Model, FakeProvider, common::Db) {
    let fake = FakeProvider::start(None).await.unwrap();
    fake.script(script);
    let d = database(backend).await;
    let h = engine(&d.db, cfg, Some(fake.credential(0, 0)), None, None);
    let id = session_ended(&h, "llm").await.unwrap();
    let j = wait_state(&d.db, &id, want, T).await;
    h.stop.cancel();
    (j, fake, d)
}

#[tokio::test]
async fn llm_success_sqlite() {
    let (j, fake, d) = llm_run(Backend::Sqlite, vec![], fast_config(), JobState::Succeeded).await;
    assert_eq!(fake.requests(), 1);
    let evals = evaluations_of(&d.db, &session("llm")).await;
    assert_eq!(evals.len(), 1);
    let e = salestrainer_grading::api::convert::evaluation_pb(&evals[0]);
    assert_eq!(e.grader, GraderKind::Llm as i32);
    assert_eq!(e.model, "fake-grader-1");
    let u = e.usage.unwrap();
    assert_eq!(u.requests, 1);
    assert!(u.prompt_tokens > 0 && u.completion_tokens == 150);
    let rows = usage::Entity::find()
        .filter(usage::Column::JobId.eq(j.id.as_str()))
        .all(&d.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn llm_success_postgres() {
    let (_, fake, _) = llm_run(
        Backend::Postgres,
        vec![],
        fast_config(),
        JobState::Succeeded,
    )
    .await;
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn rate_limited_429_honours_retry_after() {
    let started = std::time::Instant::now();
    let (j, fake, _) = llm_run(
        Backend::Sqlite,
        vec![Behaviour::status(
            429,
            &[("retry-after", "1")],
            serde_json::json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}),
        )],
        fast_config(),
        JobState::Succeeded,
    )
    .await;
    assert_eq!(fake.requests(), 2);
    assert_eq!(j.attempts, 2);
    // The backoff cap is 200 ms; only the server's hint explains a 1 s wait.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let log = store::attempt_log(&j.attempt_log);
    assert!(log[1].retryable && log[1].error.contains("429"));
}

#[tokio::test]
async fn server_errors_are_retried() {
    let e500 = || Behaviour::status(500, &[], serde_json::json!({"error": {"message": "boom"}}));
    let (j, fake, _) = llm_run(
        Backend::Sqlite,
        vec![e500(), e500()],
        fast_config(),
        JobState::Succeeded,
    )
    .await;
    assert_eq!(fake.requests(), 3);
    assert_eq!(j.attempts, 3);
}

#[tokio::test]
async fn server_errors_exhaust_max_attempts() {
    let e500 = || Behaviour::status(503, &[], serde_json::json!({"error": {"message": "down"}}));
    let cfg = salestrainer_grading::app::EngineConfig {
        max_attempts: 3,
        ..fast_config()
    };
    let (j, fake, d) = llm_run(
        Backend::Sqlite,
        vec![e500(), e500(), e500()],
        cfg,
        JobState::Dead,
    )
    .await;
    assert_eq!(fake.requests(), 3);
    assert_eq!(j.dead_reason, DeadReason::MaxAttemptsExceeded as i32);
    assert!(
        outbox_types(&d.db)
            .await
            .contains(&"grading.failed".to_owned())
    );
}

#[tokio::test]
async fn timeout_is_retried() {
    let cfg = salestrainer_grading::app::EngineConfig {
        llm_timeout: Duration::from_millis(300),
        ..fast_config()
    };
    let (j, fake, _) = llm_run(
        Backend::Sqlite,
        vec![Behaviour::Hang(Duration::from_secs(3))],
        cfg,
        JobState::Succeeded,
    )
    .await;
    assert_eq!(fake.requests(), 2);
    assert!(
        store::attempt_log(&j.attempt_log)[1]
            .error
            .contains("timed out")
    );
}

#[tokio::test]
async fn schema_breaking_answer_is_a_failed_attempt() {
    let (j, fake, _) = llm_run(
        Backend::Sqlite,
        vec![Behaviour::BreakSchema],
        fast_config(),
        JobState::Succeeded,
    )
    .await;
    assert_eq!(fake.requests(), 2);
    assert!(
        store::attempt_log(&j.attempt_log)[1]
            .error
            .contains("schema")
    );
    // With one attempt allowed it is a dead letter for invalid model output.
    let cfg = salestrainer_grading::app::EngineConfig {
        max_attempts: 1,
        ..fast_config()
    };
    let (j, _, _) = llm_run(
        Backend::Sqlite,
        vec![Behaviour::BreakSchema],
        cfg,
        JobState::Dead,
    )
    .await;
    assert_eq!(j.dead_reason, DeadReason::InvalidModelOutput as i32);
}

#[tokio::test]
async fn quote_not_in_transcript_is_a_failed_attempt() {
    let (j, fake, _) = llm_run(
        Backend::Sqlite,
        vec![Behaviour::BadQuote],
        fast_config(),
        JobState::Succeeded,
    )
    .await;
    assert_eq!(fake.requests(), 2);
    assert!(
        store::attempt_log(&j.attempt_log)[1]
            .error
            .contains("not in the transcript")
    );
}

#[tokio::test]
async fn insufficient_quota_is_dead_at_once() {
    let (j, fake, d) = llm_run(
        Backend::Sqlite,
        vec![Behaviour::insufficient_quota()],
        fast_config(),
        JobState::Dead,
    )
    .await;
    assert_eq!(fake.requests(), 1);
    assert_eq!(j.attempts, 1);
    assert_eq!(j.dead_reason, DeadReason::ProviderRejected as i32);
    assert!(
        j.last_error
            .unwrap_or_default()
            .contains("insufficient_quota")
    );
    assert!(
        outbox_types(&d.db)
            .await
            .contains(&"grading.failed".to_owned())
    );
}

#[tokio::test]
async fn bad_api_key_is_dead_at_once() {
    let fake = FakeProvider::start(None).await.unwrap();
    let d = database(Backend::Sqlite).await;
    let mut cred = fake.credential(0, 0);
    cred.api_key = "sk-wrong".into();
    let h = engine(&d.db, fast_config(), Some(cred), None, None);
    let id = session_ended(&h, "key").await.unwrap();
    let j = wait_state(&d.db, &id, JobState::Dead, T).await;
    assert_eq!(fake.requests(), 1);
    assert_eq!(j.dead_reason, DeadReason::ProviderRejected as i32);
    // The key never shows up in what we store.
    assert!(!j.last_error.unwrap_or_default().contains("sk-wrong"));
    h.stop.cancel();
}

/// A worker killed while its LLM call is in flight: another takes the job over after the
/// lease and the session ends with exactly one evaluation.
async fn kill_worker_mid_job(backend: Backend) {
    let fake = FakeProvider::start(None).await.unwrap();
    fake.script([Behaviour::Hang(Duration::from_secs(30))]);
    let d = database(backend).await;
    let cfg = salestrainer_grading::app::EngineConfig {
        lease: Duration::from_millis(600),
        llm_timeout: Duration::from_secs(60),
        ..fast_config()
    };
    let first = engine(&d.db, cfg.clone(), Some(fake.credential(0, 0)), None, None);
    let id = session_ended(&first, "kill").await.unwrap();
    wait_state(&d.db, &id, JobState::Running, T).await;
    let deadline = tokio::time::Instant::now() + T;
    while fake.requests() == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The transcript step was checkpointed before the LLM call.
    let cp: Checkpoint = serde_json::from_str(&job(&d.db, &id).await.checkpoint).unwrap();
    assert!(cp.turns.is_some());
    first.kill();
    let second = engine(&d.db, cfg, Some(fake.credential(0, 0)), None, None);
    let j = wait_state(&d.db, &id, JobState::Succeeded, T).await;
    assert_eq!(j.attempts, 2);
    assert_eq!(evaluations_of(&d.db, &session("kill")).await.len(), 1);
    // Resumed from the checkpoint: the transcript was not fetched again.
    assert_eq!(
        second
            .transcripts
            .fetches
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    second.stop.cancel();
}

#[tokio::test]
async fn kill_worker_mid_job_sqlite() {
    kill_worker_mid_job(Backend::Sqlite).await;
}

#[tokio::test]
async fn kill_worker_mid_job_postgres() {
    kill_worker_mid_job(Backend::Postgres).await;
}

/// A live worker keeps its job for as long as its attempt runs: its heartbeat renews a lease
/// four times shorter than the attempt, so a second replica claiming from the same table never
/// takes the job over, and one attempt (one LLM request) grades the session.
async fn live_worker_keeps_its_job(backend: Backend) {
    let fake = FakeProvider::start(None).await.unwrap();
    fake.script([Behaviour::Hang(Duration::from_millis(2400))]);
    let d = database(backend).await;
    let cfg = salestrainer_grading::app::EngineConfig {
        lease: Duration::from_millis(600),
        heartbeat: Duration::from_millis(100),
        llm_timeout: Duration::from_secs(10),
        ..fast_config()
    };
    let first = engine(&d.db, cfg.clone(), Some(fake.credential(0, 0)), None, None);
    let id = session_ended(&first, "live").await.unwrap();
    wait_state(&d.db, &id, JobState::Running, T).await;
    let second = engine(&d.db, cfg, Some(fake.credential(0, 0)), None, None);
    let j = wait_state(&d.db, &id, JobState::Succeeded, T).await;
    assert_eq!(j.attempts, 1, "the job was taken from a live worker");
    assert_eq!(fake.requests(), 1);
    assert_eq!(evaluations_of(&d.db, &session("live")).await.len(), 1);
    first.stop.cancel();
    second.stop.cancel();
}

#[tokio::test]
async fn live_worker_keeps_its_job_sqlite() {
    live_worker_keeps_its_job(Backend::Sqlite).await;
}

#[tokio::test]
async fn live_worker_keeps_its_job_postgres() {
    live_worker_keeps_its_job(Backend::Postgres).await;
}

/// A retry after the LLM answer was accepted and checkpointed does not call the LLM again.
#[tokio::test]
async fn accepted_llm_answer_is_never_paid_twice() {
    let fake = FakeProvider::start(None).await.unwrap();
    let d = database(Backend::Sqlite).await;
    let h = engine(
        &d.db,
        fast_config(),
        Some(fake.credential(0, 0)),
        None,
        None,
    );
    let a = session_ended(&h, "paid-a").await.unwrap();
    let done = wait_state(&d.db, &a, JobState::Succeeded, T).await;
    assert_eq!(fake.requests(), 1);
    h.stop.cancel();
    h.kill();
    // A second job whose grade step is already checkpointed (as after a crash past step 3).
    let event = crate::common::testkit::session_ended("organizations/acme", "paid-b");
    let b = salestrainer_grading::app::session_events::handle_session_ended(&d.db, &event, 5)
        .await
        .unwrap()
        .unwrap();
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let row = store::job::ActiveModel {
        id: Set(b.clone()),
        checkpoint: Set(done.checkpoint.clone()),
        ..Default::default()
    };
    row.update(&d.db).await.unwrap();
    let h2 = engine(
        &d.db,
        fast_config(),
        Some(fake.credential(0, 0)),
        None,
        None,
    );
    wait_state(&d.db, &b, JobState::Succeeded, T).await;
    assert_eq!(fake.requests(), 1, "the checkpointed answer was reused");
    let e = salestrainer_grading::api::convert::evaluation_pb(
        &evaluations_of(&d.db, &session("paid-b")).await[0],
    );
    assert_eq!(e.grader, GraderKind::Llm as i32);
    h2.stop.cancel();
}

#[tokio::test]
async fn deterministic_grader_ranks_strong_above_weak() {
    use crate::common::testkit::{sample_scenario, strong_call, weak_call};
    use salestrainer_grading::app::pipeline::grade_deterministic;
    use salestrainer_grading::domain::clean::clean;
    let sc = sample_scenario();
    let strong = grade_deterministic(&sc, &clean(&strong_call())).unwrap();
    let weak = grade_deterministic(&sc, &clean(&weak_call())).unwrap();
    for (s, w) in strong.criteria.iter().zip(&weak.criteria) {
        assert!(
            s.score > w.score,
            "{}: strong {} vs weak {}",
            s.id,
            s.score,
            w.score
        );
    }
    assert!(strong.overall > weak.overall);
    assert!(strong.passed && !weak.passed);
}

/// Many sessions at once, more than the worker slots: jobs are claimed in batches and their
/// results committed together, and still every session gets exactly one job, one attempt, one
/// evaluation, one GradingStarted and one SessionGraded.
async fn many_sessions_graded_once(backend: Backend) {
    let d = database(backend).await;
    let cfg = salestrainer_grading::app::EngineConfig {
        workers: 8,
        ..fast_config()
    };
    let h = engine(&d.db, cfg, None, None, None);
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(session_ended(&h, &format!("many-{i}")).await.unwrap());
    }
    for id in &ids {
        let j = wait_state(&d.db, id, JobState::Succeeded, T).await;
        assert_eq!(j.attempts, 1);
        assert!(j.evaluation.is_some());
    }
    for i in 0..60 {
        assert_eq!(
            evaluations_of(&d.db, &session(&format!("many-{i}")))
                .await
                .len(),
            1
        );
    }
    let types = outbox_types(&d.db).await;
    assert_eq!(types.iter().filter(|t| *t == "grading.started").count(), 60);
    assert_eq!(types.iter().filter(|t| *t == "session.graded").count(), 60);
    h.stop.cancel();
}

#[tokio::test]
async fn many_sessions_graded_once_sqlite() {
    many_sessions_graded_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn many_sessions_graded_once_postgres() {
    many_sessions_graded_once(Backend::Postgres).await;
}

/// One batched write: a regrade finishing in the same batch as the original supersedes it, and
/// an op whose lease is gone writes nothing while the rest of its batch commits.
async fn batched_write_fences_and_supersedes(backend: Backend) {
    use salestrainer_grading::store::{NewJob, Outcome, WriteOp, evaluation};
    use salestrainer_proto::events as ev;
    use salestrainer_proto::grading::PipelineStep;
    let d = database(backend).await;
    let first = crate::common::testkit::session_ended("organizations/acme", "batch");
    salestrainer_grading::app::session_events::handle_session_ended(&d.db, &first, 5)
        .await
        .unwrap()
        .unwrap();
    let other = crate::common::testkit::session_ended("organizations/acme", "other");
    salestrainer_grading::app::session_events::handle_session_ended(&d.db, &other, 5)
        .await
        .unwrap()
        .unwrap();
    let (regrade, created) = store::create_regrade_job(
        &d.db,
        &NewJob {
            organization: "organizations/acme".into(),
            session: session("batch"),
            request_id: "regrade-1".into(),
            max_attempts: 5,
            ..NewJob::default()
        },
    )
    .await
    .unwrap();
    assert!(created && regrade.generation == 1);
    let claimed = store::claim_due(&d.db, 10, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 3, "one transaction claims every due job");
    let finish = |j: &store::job::Model, token: &str, eval_id: &str| WriteOp::Finish {
        job: Box::new(j.clone()),
        token: token.to_owned(),
        attempt_start_us: now_us(),
        step: PipelineStep::Metrics,
        outcome: Outcome::Succeeded {
            evaluation: Box::new(evaluation::Model {
                id: eval_id.to_owned(),
                organization: j.organization.clone(),
                session: j.session.clone(),
                trainee: String::new(),
                scenario: String::new(),
                assignment: String::new(),
                job_id: j.id.clone(),
                overall_score: 3.0,
                passed: true,
                closed: false,
                supersedes: None,
                superseded_by: None,
                body: Vec::new(),
                create_us: now_us(),
                override_revision: 0,
            }),
            event: Box::new(salestrainer_runtime::events::new_event(
                &j.organization,
                "grading",
                ev::event::Payload::SessionGraded(ev::SessionGraded {
                    session: j.session.clone(),
                    ..Default::default()
                }),
            )),
        },
    };
    let by_session = |s: &str, generation: i32| {
        claimed
            .iter()
            .find(|(j, _)| j.session == session(s) && j.generation == generation)
            .unwrap()
    };
    let (original, t0) = by_session("batch", 0);
    let (regraded, t1) = by_session("batch", 1);
    let (lost, _) = by_session("other", 0);
    let ops = [
        finish(original, t0, "e-original"),
        finish(lost, "not-the-lease-token", "e-lost"),
        finish(regraded, t1, "e-regrade"),
    ];
    let done: Vec<bool> = store::write_batch(&d.db, &ops)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(done, [true, false, true]);
    let evals = evaluations_of(&d.db, &session("batch")).await;
    let get = |id: &str| evals.iter().find(|e| e.id == id).unwrap();
    assert_eq!(
        get("e-original").superseded_by.as_deref(),
        Some("e-regrade")
    );
    assert_eq!(get("e-regrade").supersedes.as_deref(), Some("e-original"));
    assert!(get("e-regrade").superseded_by.is_none());
    assert!(evaluations_of(&d.db, &session("other")).await.is_empty());
    assert_eq!(job(&d.db, &lost.id).await.state, JobState::Running as i32);
    let types = outbox_types(&d.db).await;
    assert_eq!(types.iter().filter(|t| *t == "session.graded").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "grading.started").count(), 3);
    // The regrade's SessionGraded names the evaluation it replaces, so consumers replace.
    let supersedes: Vec<String> = graded_events(&d.db)
        .await
        .into_iter()
        .map(|g| g.supersedes)
        .collect();
    assert_eq!(
        supersedes,
        [
            String::new(),
            salestrainer_grading::store::evaluation_name("organizations/acme", "e-original")
        ]
    );
}

#[tokio::test]
async fn batched_write_fences_and_supersedes_sqlite() {
    batched_write_fences_and_supersedes(Backend::Sqlite).await;
}

#[tokio::test]
async fn batched_write_fences_and_supersedes_postgres() {
    batched_write_fences_and_supersedes(Backend::Postgres).await;
}

/// The limiter against a provider that enforces its TPM limit (a refilling bucket, 429 past
/// it): more work than the provider's bucket holds is spread out, and nothing is refused.
#[tokio::test]
async fn limiter_keeps_a_tpm_limited_provider_from_answering_429() {
    let tpm = 12_000;
    let fake = FakeProvider::start(Some(tpm)).await.unwrap();
    let d = database(Backend::Sqlite).await;
    let cfg = salestrainer_grading::app::EngineConfig {
        workers: 16,
        ..fast_config()
    };
    let h = engine(&d.db, cfg, Some(fake.credential(0, tpm)), None, None);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(session_ended(&h, &format!("tpm-{i}")).await.unwrap());
    }
    // The work needs about half a minute of the provider's refill by design; a loaded machine
    // must not turn that into a failure.
    for id in &ids {
        let j = wait_state(&d.db, id, JobState::Succeeded, Duration::from_secs(90)).await;
        assert_eq!(j.attempts, 1, "no attempt was refused");
    }
    assert_eq!(fake.rejected_429(), 0);
    assert_eq!(fake.answered(), 12);
    // More than the provider's full bucket: sent all at once, some would have been refused.
    assert!(fake.tokens_used() > tpm, "{}", fake.tokens_used());
    h.stop.cancel();
}

/// A job whose worker was lost on every allowed attempt (its lease expired each time) is not
/// handed out forever: the next claim ends it DEAD with GradingFailed, and nothing is graded.
#[tokio::test]
async fn job_that_keeps_losing_its_worker_goes_dead() {
    use sea_orm::sea_query::Expr;
    let d = database(Backend::Sqlite).await;
    let event = crate::common::testkit::session_ended("organizations/acme", "poison");
    let id = salestrainer_grading::app::session_events::handle_session_ended(&d.db, &event, 3)
        .await
        .unwrap()
        .unwrap();
    // As after three claims whose workers all died mid-job. (An UPDATE without RETURNING, as
    // the store writes jobs: read back through RETURNING on SQLite, the column the latest
    // migration added comes back missing.)
    store::job::Entity::update_many()
        .col_expr(
            store::job::Column::State,
            Expr::value(JobState::Running as i32),
        )
        .col_expr(store::job::Column::Attempts, Expr::value(3))
        .col_expr(store::job::Column::LeaseToken, Expr::value("a-lost-worker"))
        .col_expr(store::job::Column::LeaseUntilUs, Expr::value(now_us() - 1))
        .filter(store::job::Column::Id.eq(id.as_str()))
        .exec(&d.db)
        .await
        .unwrap();
    let h = engine(&d.db, fast_config(), None, None, None);
    let j = wait_state(&d.db, &id, JobState::Dead, T).await;
    assert_eq!(j.dead_reason, DeadReason::MaxAttemptsExceeded as i32);
    assert!(j.last_error.unwrap().contains("lost"));
    assert_eq!(
        h.transcripts
            .fetches
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(evaluations_of(&d.db, &session("poison")).await.is_empty());
    let types = outbox_types(&d.db).await;
    assert_eq!(types.iter().filter(|t| *t == "grading.failed").count(), 1);
    h.stop.cancel();
}
