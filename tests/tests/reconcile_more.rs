//! Issue 13, the reconcilers' other lost events, over the embedded suite (SQLite and
//! PostgreSQL):
//!
//! - call: a manager's override whose EvaluationOverridden never reached call. The event is
//!   made lost after the fact: call's copy of the score is put back as it was before it and
//!   call's inbox forgets the event (what a lost event leaves behind). Within its bound call's
//!   reconciler asks grading (BatchGetSessionOutcomes) and GetSession shows the override's
//!   score; `reconciler_repaired_total{kind="evaluation_overridden"}` moves by exactly one;
//!   the real event, sent again by grading's relay and handled by call, changes nothing. The
//!   same for a regrade whose SessionGraded was lost (`kind="session_regraded"`).
//! - analytics: a session whose SessionEnded and SessionGraded never reached analytics (it
//!   hears only SessionStarted): after `reconcile_unended_after_secs` the reconciler asks
//!   grading, and the session counts once, graded, ended, with call's duration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use salestrainer_proto::{analytics as an, call, events as ev, grading as gr};
use salestrainer_tests::{Backend, authed};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use support::{World, repaired, sql};

async fn get_session(w: &World) -> call::Session {
    w.call()
        .get_session(authed(
            call::GetSessionRequest {
                name: w.session.clone(),
            },
            &w.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

/// Waits (`secs` at most) until call's copy of the session satisfies `done`.
async fn session_until(
    w: &World,
    secs: u64,
    what: &str,
    done: impl Fn(&call::Session) -> bool,
) -> call::Session {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = get_session(w).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}: {what} within {secs} s: {s:?}",
            w.backend
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Grading's relay sends `event_id` again (its outbox row unsent) and call handles it.
async fn send_again_to_call(
    grading: &DatabaseConnection,
    calls: &DatabaseConnection,
    event_id: &str,
    what: &str,
    backend: Backend,
) {
    grading
        .execute_raw(sql(
            grading,
            "UPDATE bus_outbox SET sent_at = NULL WHERE event_id = $1",
            vec![event_id.to_owned().into()],
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !inbox_has(calls, event_id).await {
        assert!(
            Instant::now() < deadline,
            "{backend:?}: {what} never reached call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes `event_id` out of `consumer`'s inbox: as if the event had never come.
async fn forget(db: &DatabaseConnection, consumer: &str, event_id: &str) {
    db.execute_raw(sql(
        db,
        "DELETE FROM bus_inbox WHERE consumer = $1 AND event_id = $2",
        vec![consumer.into(), event_id.into()],
    ))
    .await
    .unwrap();
}

async fn inbox_has(db: &DatabaseConnection, event_id: &str) -> bool {
    db.query_one_raw(sql(
        db,
        "SELECT event_id FROM bus_inbox WHERE consumer = $1 AND event_id = $2",
        vec!["call".into(), event_id.into()],
    ))
    .await
    .unwrap()
    .is_some()
}

async fn call_repairs_a_lost_override(backend: Backend) {
    // Call's bound (3 s) is longer than the override takes to reach call after the grade:
    // the re-check cannot meet the override on its way.
    let mut w = World::start_with(backend, false, |s| {
        s.set_section("call", serde_json::json!({ "reconcile_after_secs": 3 }));
    })
    .await;
    w.end_and_grade().await;
    let graded = get_session(&w).await;
    let before = repaired("evaluation_overridden");
    let regraded_before = repaired("session_regraded");
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
    session_until(&w, 15, "the override reaches call", |s| {
        s.overall_score == 37.5
    })
    .await;
    // The event is lost: call's copy as it was before it, and its inbox without it.
    let overridden: Vec<ev::Event> = w
        .outbox("grading", &w.session)
        .await
        .into_iter()
        .filter(|e| matches!(e.payload, Some(ev::event::Payload::EvaluationOverridden(_))))
        .collect();
    assert_eq!(overridden.len(), 1, "{backend:?}");
    let event_id = overridden[0].event_id.clone();
    let calls = w.db_of("call").await;
    let id = w.session.rsplit('/').next().unwrap().to_owned();
    calls
        .execute_raw(sql(
            &calls,
            "UPDATE call_sessions SET overall_score = $1, passed = $2, score_revision = 0 \
             WHERE id = $3",
            vec![
                graded.overall_score.into(),
                graded.passed.into(),
                id.clone().into(),
            ],
        ))
        .await
        .unwrap();
    forget(&calls, "call", &event_id).await;
    assert_eq!(get_session(&w).await.overall_score, graded.overall_score);

    // Within its bound (3 s, a round a second) the reconciler applies grading's override.
    let repaired_session = session_until(&w, 15, "the reconciler applies the override", |s| {
        s.overall_score == 37.5
    })
    .await;
    assert!(!repaired_session.passed, "{backend:?}: 37.5 does not pass");
    assert_eq!(repaired_session.evaluation, w.evaluation);
    assert_eq!(repaired("evaluation_overridden"), before + 1, "{backend:?}");
    assert_eq!(repaired("session_regraded"), regraded_before, "{backend:?}");

    // The real event comes late: grading's relay sends it again, call handles it.
    let grading = w.db_of("grading").await;
    send_again_to_call(&grading, &calls, &event_id, "the late event", backend).await;
    // Rounds after it: nothing changes, nothing more is repaired.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        get_session(&w).await,
        repaired_session,
        "{backend:?}: the late event changed the session"
    );
    assert_eq!(repaired("evaluation_overridden"), before + 1, "{backend:?}");
    assert_eq!(repaired("session_regraded"), regraded_before, "{backend:?}");

    // A regrade whose SessionGraded is lost likewise: call's copy goes back to the
    // overridden first grade, its inbox forgets the event.
    let held = "SELECT evaluation, overall_score, passed, closed, score_revision \
                FROM call_sessions WHERE id = $1";
    let row = calls
        .query_one_raw(sql(&calls, held, vec![id.clone().into()]))
        .await
        .unwrap()
        .unwrap();
    let first: (String, f64, bool, bool, i64) = (
        row.try_get("", "evaluation").unwrap(),
        row.try_get("", "overall_score").unwrap(),
        row.try_get("", "passed").unwrap(),
        row.try_get("", "closed").unwrap(),
        row.try_get("", "score_revision").unwrap(),
    );
    assert_eq!((first.1, first.4), (37.5, 1), "{backend:?}");
    w.grading()
        .regrade_session(authed(
            gr::RegradeSessionRequest {
                session: w.session.clone(),
                rubric: String::new(),
                request_id: "reconcile-more".into(),
            },
            &w.manager,
        ))
        .await
        .unwrap();
    let regraded = session_until(&w, 30, "the regrade reaches call", |s| {
        s.evaluation != w.evaluation
    })
    .await;
    let new = w
        .grading()
        .get_evaluation(authed(
            gr::GetEvaluationRequest {
                name: regraded.evaluation.clone(),
            },
            &w.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(new.supersedes, w.evaluation, "{backend:?}");
    let regrade_event = w
        .outbox("grading", &w.session)
        .await
        .into_iter()
        .find(|e| {
            matches!(&e.payload,
                Some(ev::event::Payload::SessionGraded(g)) if g.evaluation == new.name)
        })
        .expect("the regrade's SessionGraded")
        .event_id;
    calls
        .execute_raw(sql(
            &calls,
            "UPDATE call_sessions SET evaluation = $1, overall_score = $2, passed = $3, \
             closed = $4, score_revision = $5 WHERE id = $6",
            vec![
                first.0.clone().into(),
                first.1.into(),
                first.2.into(),
                first.3.into(),
                first.4.into(),
                id.clone().into(),
            ],
        ))
        .await
        .unwrap();
    forget(&calls, "call", &regrade_event).await;
    assert_eq!(get_session(&w).await.evaluation, w.evaluation);
    let repaired_regrade = session_until(&w, 15, "the reconciler applies the regrade", |s| {
        s.evaluation == new.name
    })
    .await;
    assert_eq!(
        (repaired_regrade.overall_score, repaired_regrade.passed),
        (new.effective_score, new.effective_passed),
        "{backend:?}: the regrade's own score"
    );
    assert_eq!(
        repaired("session_regraded"),
        regraded_before + 1,
        "{backend:?}"
    );
    assert_eq!(repaired("evaluation_overridden"), before + 1, "{backend:?}");
    // Its real SessionGraded, late, holds no newer revision of the grade call has: nothing.
    send_again_to_call(
        &grading,
        &calls,
        &regrade_event,
        "the late regrade",
        backend,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        get_session(&w).await,
        repaired_regrade,
        "{backend:?}: the late regrade changed the session"
    );
    assert_eq!(
        repaired("session_regraded"),
        regraded_before + 1,
        "{backend:?}"
    );
    assert_eq!(repaired("evaluation_overridden"), before + 1, "{backend:?}");
    w.stop().await;
}

async fn analytics_repairs_a_session_never_ended(backend: Backend) {
    let mut w = World::start_with(backend, false, |s| {
        s.set_section(
            "analytics",
            serde_json::json!({
                "consume_bus": false,
                "reconcile_after_secs": 1,
                "reconcile_unended_after_secs": 2,
                "cache_ttl_ms": 0
            }),
        );
    })
    .await;
    let graded_before = repaired("session_graded");
    w.end_and_grade().await;
    let session = w.session.clone();
    // Analytics hears only that the session started.
    let from_call = w.outbox("call", &session).await;
    let ended = from_call
        .iter()
        .find_map(|e| match &e.payload {
            Some(ev::event::Payload::SessionEnded(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("call's SessionEnded");
    let length = ended.duration.expect("the session's duration");
    let length_ms = length.seconds * 1000 + i64::from(length.nanos) / 1_000_000;
    let started: Vec<ev::Event> = from_call
        .into_iter()
        .filter(|e| matches!(e.payload, Some(ev::event::Payload::SessionStarted(_))))
        .collect();
    assert_eq!(started.len(), 1, "{backend:?}");
    let accepted = w
        .analytics()
        .ingest_events(authed(
            an::IngestEventsRequest { events: started },
            &w.app.service_token("call"),
        ))
        .await
        .unwrap()
        .into_inner()
        .accepted;
    assert_eq!(accepted, 1);
    let evaluation = w.evaluation_now().await;
    let score = (evaluation.overall_score * 1000.0).round() / 1000.0;

    let deadline = Instant::now() + Duration::from_secs(15);
    let counted = loop {
        let s = w.org_summary(&w.admin, "").await.unwrap();
        if s.graded_sessions == 1 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?}: the never-ended session not graded in analytics within 15 s: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counted.sessions, 1, "{backend:?}: {counted:?}");
    assert!(
        (counted.average_score - score).abs() < 1e-9,
        "{backend:?}: average {} for a score of {score}",
        counted.average_score
    );
    let average = counted.average_duration.expect("an average duration");
    assert_eq!(
        average.seconds * 1000 + i64::from(average.nanos) / 1_000_000,
        length_ms,
        "{backend:?}: the duration call measured"
    );
    let analytics = w.db_of("analytics").await;
    let row = analytics
        .query_one_raw(sql(
            &analytics,
            "SELECT ended, duration_ms FROM analytics_facts WHERE session = $1",
            vec![session.clone().into()],
        ))
        .await
        .unwrap()
        .expect("the fact");
    assert_eq!(
        (
            row.try_get::<i64>("", "ended").unwrap(),
            row.try_get::<Option<i64>>("", "duration_ms").unwrap()
        ),
        (1, Some(length_ms)),
        "{backend:?}"
    );
    assert_eq!(repaired("session_graded"), graded_before + 1, "{backend:?}");
    // Later rounds change nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(w.org_summary(&w.admin, "").await.unwrap(), counted);
    assert_eq!(repaired("session_graded"), graded_before + 1, "{backend:?}");
    w.stop().await;
}

/// One test for both backends, one after the other: the metric is the process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_override_and_lost_end_are_repaired_once() {
    for backend in Backend::ALL {
        call_repairs_a_lost_override(backend).await;
        analytics_repairs_a_session_never_ended(backend).await;
    }
}
