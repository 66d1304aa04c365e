//! Analytics' reconciler over the embedded suite (SQLite and PostgreSQL): analytics consumes
//! nothing from the bus here, the test hands it call's own SessionStarted and SessionEnded
//! (IngestEvents, the same ingest as the bus's), and grading's SessionGraded and
//! EvaluationOverridden are lost: never delivered. Within its bound (1 s) the reconciler asks
//! grading (BatchGetSessionOutcomes) and analytics counts the session once, with its score,
//! then the override's score; the real events delivered late change nothing; the metric
//! `reconciler_repaired_total{kind}` moves by exactly one per repair, though a second
//! analytics replica on the same database reconciles too. Plus the refusals of
//! BatchGetSessionOutcomes and what it answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use salestrainer_analytics::app::{AnalyticsApp, settings::AnalyticsSettings};
use salestrainer_proto::{analytics as an, call, events as ev, grading as gr};
use salestrainer_tests::{Backend, authed, spawn_service_with, wait_serving};
use sea_orm::ConnectionTrait;
use support::{World, repaired};
use tonic::Code;

/// Hands `events` to analytics as the call service would (IngestEvents).
async fn deliver(w: &World, events: Vec<ev::Event>) -> (i32, i32) {
    let r = w
        .analytics()
        .ingest_events(authed(
            an::IngestEventsRequest { events },
            &w.app.service_token("call"),
        ))
        .await
        .unwrap()
        .into_inner();
    (r.accepted, r.duplicates)
}

/// Waits (15 s at most) until the organization's summary satisfies `done`.
async fn summary_until(
    w: &World,
    what: &str,
    done: impl Fn(&an::SummaryStats) -> bool,
) -> an::SummaryStats {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = w.org_summary(&w.admin, "").await.unwrap();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}: {what} within 15 s: {} sessions, {} graded, average {}",
            w.backend,
            s.sessions,
            s.graded_sessions,
            s.average_score
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_type(e: &ev::Event, f: fn(&ev::event::Payload) -> bool) -> bool {
    e.payload.as_ref().is_some_and(f)
}

async fn lost_grade_and_override_are_repaired(backend: Backend) {
    let mut w = World::start_with(backend, false, |s| {
        s.set_section(
            "analytics",
            // No summary cache: without Redis each replica's cache is its own.
            serde_json::json!({
                "consume_bus": false,
                "reconcile_after_secs": 1,
                "cache_ttl_ms": 0
            }),
        );
    })
    .await;
    // A second analytics replica on the same database, reconciling with the same grading.
    let peer = format!("http://{}", w.app.addr);
    let replica = spawn_service_with::<AnalyticsApp>(
        |s| {
            s.database_url = w.app.settings.database_url_for("analytics");
            s.endpoints.config = peer.clone();
            s.endpoints.call = peer.clone();
            s.endpoints.grading = peer.clone();
        },
        AnalyticsSettings {
            consume_bus: false,
            reconcile_after_secs: 1,
            cache_ttl_ms: 0,
            ..AnalyticsSettings::default()
        },
    )
    .await;
    wait_serving(&replica, "", Duration::from_secs(30)).await;
    let graded_before = repaired("session_graded");
    let overridden_before = repaired("evaluation_overridden");
    w.end_and_grade().await;
    let session = w.session.clone();

    // Analytics hears what call said of the session: started, ended.
    let from_call = w.outbox("call", &session).await;
    assert_eq!(from_call.len(), 2, "{backend:?}: {from_call:?}");
    assert_eq!(deliver(&w, from_call).await, (2, 0));
    // Grading's SessionGraded is lost; the reconciler asks grading.
    let evaluation = w.evaluation_now().await;
    let score = (evaluation.overall_score * 1000.0).round() / 1000.0;
    let counted = summary_until(&w, "the reconciler counts the graded session", |s| {
        s.graded_sessions == 1
    })
    .await;
    assert_eq!(counted.sessions, 1, "{backend:?}: {counted:?}");
    assert!(
        (counted.average_score - score).abs() < 1e-9,
        "{backend:?}: average {} for a score of {score}",
        counted.average_score
    );
    assert_eq!(repaired("session_graded"), graded_before + 1, "{backend:?}");

    // The real SessionGraded, arriving late, is accepted and changes nothing.
    let graded: Vec<ev::Event> = w
        .outbox("grading", &session)
        .await
        .into_iter()
        .filter(|e| is_type(e, |p| matches!(p, ev::event::Payload::SessionGraded(_))))
        .collect();
    assert_eq!(graded.len(), 1, "{backend:?}");
    assert_eq!(deliver(&w, graded).await, (1, 0));
    let after = w.org_summary(&w.admin, "").await.unwrap();
    assert_eq!(
        after, counted,
        "{backend:?}: the late SessionGraded changed the numbers"
    );

    // A manager's override whose EvaluationOverridden is lost.
    w.grading()
        .override_evaluation(authed(
            gr::OverrideEvaluationRequest {
                name: w.evaluation.clone(),
                overall_score: Some(37.5),
                criterion_overrides: Vec::new(),
                reason: "misheard the close".into(),
                etag: String::new(),
            },
            &w.admin,
        ))
        .await
        .unwrap();
    let overridden = summary_until(&w, "the reconciler applies the lost override", |s| {
        (s.average_score - 37.5).abs() < 1e-9
    })
    .await;
    assert_eq!(
        (overridden.sessions, overridden.graded_sessions),
        (1, 1),
        "{backend:?}: {overridden:?}"
    );
    assert_eq!(overridden.pass_rate, 0.0, "{backend:?}: 37.5 does not pass");
    assert_eq!(
        repaired("evaluation_overridden"),
        overridden_before + 1,
        "{backend:?}"
    );
    let late: Vec<ev::Event> = w
        .outbox("grading", &session)
        .await
        .into_iter()
        .filter(|e| {
            is_type(e, |p| {
                matches!(p, ev::event::Payload::EvaluationOverridden(_))
            })
        })
        .collect();
    assert_eq!(late.len(), 1, "{backend:?}");
    assert_eq!(deliver(&w, late).await, (1, 0));
    // Rounds after the repairs (and the late events) change nothing and repair nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let last = w.org_summary(&w.admin, "").await.unwrap();
    assert_eq!(
        last, overridden,
        "{backend:?}: the late override changed the numbers"
    );
    assert_eq!(repaired("session_graded"), graded_before + 1, "{backend:?}");
    assert_eq!(
        repaired("evaluation_overridden"),
        overridden_before + 1,
        "{backend:?}"
    );

    // A session ended without a word from the trainee: grading's job dies, and its
    // GradingFailed is lost too.
    let failed_before = repaired("grading_failed");
    let mut calls = w.call();
    let silent = calls
        .start_session(authed(
            call::StartSessionRequest {
                parent: support::ORG.into(),
                scenario: w.scenario.clone(),
                mode: call::SessionMode::Text as i32,
                request_id: "silent".into(),
                ..Default::default()
            },
            &w.trainee,
        ))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
        .name;
    calls
        .end_session(authed(
            call::EndSessionRequest {
                name: silent.clone(),
                etag: String::new(),
            },
            &w.trainee,
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w
        .outbox("grading", &silent)
        .await
        .iter()
        .any(|e| is_type(e, |p| matches!(p, ev::event::Payload::GradingFailed(_))))
    {
        assert!(
            Instant::now() < deadline,
            "{backend:?}: grading never gave up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deliver(&w, w.outbox("call", &silent).await).await, (2, 0));
    let analytics = w.db_of("analytics").await;
    let failed_flag = || async {
        analytics
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                analytics.get_database_backend(),
                "SELECT grading_failed FROM analytics_facts WHERE session = $1",
                [silent.clone().into()],
            ))
            .await
            .unwrap()
            .map(|r| r.try_get::<i64>("", "grading_failed").unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while failed_flag().await != Some(1) {
        assert!(
            Instant::now() < deadline,
            "{backend:?}: the reconciler did not apply the lost GradingFailed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(repaired("grading_failed"), failed_before + 1, "{backend:?}");
    let late: Vec<ev::Event> = w
        .outbox("grading", &silent)
        .await
        .into_iter()
        .filter(|e| is_type(e, |p| matches!(p, ev::event::Payload::GradingFailed(_))))
        .collect();
    assert_eq!(deliver(&w, late).await, (1, 0));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let both = w.org_summary(&w.admin, "").await.unwrap();
    assert_eq!(
        (both.sessions, both.graded_sessions, both.average_score),
        (2, 1, 37.5),
        "{backend:?}: the failed session counts, ungraded"
    );
    assert_eq!(repaired("grading_failed"), failed_before + 1, "{backend:?}");
    replica.stop().await;
    w.stop().await;
}

/// One test for both backends, one after the other: the metric is the process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_grade_and_override_are_repaired_once() {
    for backend in Backend::ALL {
        lost_grade_and_override_are_repaired(backend).await;
    }
}

async fn outcomes(
    w: &World,
    token: &str,
    sessions: Vec<String>,
) -> Result<Vec<gr::SessionOutcome>, tonic::Status> {
    w.grading()
        .batch_get_session_outcomes(authed(
            gr::BatchGetSessionOutcomesRequest { sessions },
            token,
        ))
        .await
        .map(|r| r.into_inner().outcomes)
}

async fn outcomes_answer_services_only(backend: Backend) {
    let w = World::start(backend, false, true).await;
    let service = w.app.service_token("analytics");
    let missing = format!("{}/sessions/never-held", support::ORG);
    let asked = vec![w.session.clone(), missing.clone(), w.session.clone()];
    let answer = outcomes(&w, &service, asked.clone()).await.unwrap();
    assert_eq!(
        answer.len(),
        2,
        "{backend:?}: a repeated name is answered once"
    );
    let o = &answer[0];
    assert_eq!(o.session, w.session);
    assert_eq!(o.job_state, gr::JobState::Succeeded as i32);
    assert_eq!(o.grading_job, w.job);
    let graded = o.graded.as_ref().expect("the current evaluation");
    assert_eq!(graded.evaluation, w.evaluation);
    assert!(o.overridden.is_none() && o.failed.is_none());
    // What the real SessionGraded said, LLM usage included (none paid here: zeros).
    let real = w
        .outbox("grading", &w.session)
        .await
        .into_iter()
        .find_map(|e| match e.payload {
            Some(ev::event::Payload::SessionGraded(g)) => Some(g),
            _ => None,
        })
        .expect("grading's SessionGraded");
    assert_eq!(graded.usage, real.usage, "{backend:?}");
    assert!(graded.usage.is_some(), "{backend:?}");
    assert_eq!(
        (
            &graded.skill_scores,
            graded.overall_score,
            &graded.criterion_scores
        ),
        (
            &real.skill_scores,
            real.overall_score,
            &real.criterion_scores
        ),
        "{backend:?}"
    );
    assert_eq!(answer[1].session, missing);
    assert_eq!(answer[1].job_state, gr::JobState::Unspecified as i32);
    assert!(answer[1].graded.is_none());
    // Call's reconciler asks too, as the call service: the same answer.
    let as_call = outcomes(&w, &w.app.service_token("call"), asked.clone()).await;
    assert_eq!(as_call.unwrap(), answer, "{backend:?}");

    for token in [&w.admin, &w.manager, &w.trainee] {
        let refused = outcomes(&w, token, vec![w.session.clone()])
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{backend:?}");
    }
    let too_many = (0..101)
        .map(|i| format!("{}/sessions/s{i}", support::ORG))
        .collect();
    for bad in [too_many, Vec::new(), vec!["sessions/not-a-name".to_owned()]] {
        let refused = outcomes(&w, &service, bad).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{backend:?}");
    }
    // Refusals changed nothing.
    assert_eq!(outcomes(&w, &service, asked).await.unwrap(), answer);
    w.stop().await;
}

#[tokio::test]
async fn outcomes_answer_services_only_sqlite() {
    outcomes_answer_services_only(Backend::Sqlite).await;
}

#[tokio::test]
async fn outcomes_answer_services_only_postgres() {
    outcomes_answer_services_only(Backend::Postgres).await;
}
