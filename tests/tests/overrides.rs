//! Manager overrides end to end, on SQLite and PostgreSQL: tom's graded session, overridden
//! by mia over real connections; the summary and the leaderboard follow at once (through
//! the EvaluationOverridden event), the audit lists the change, tom sees it, the refusals
//! change nothing, a regrade keeps the override visible as made on the earlier grade, and
//! clearing overrides restores the grader's numbers everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use salestrainer_proto::{analytics as an, grading as gr};
use salestrainer_tests::{Backend, authed};
use support::{ORG, World, member};
use tonic::Code;

async fn evaluation(w: &World, name: &str, token: &str) -> gr::Evaluation {
    w.grading()
        .get_evaluation(authed(
            gr::GetEvaluationRequest { name: name.into() },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap()
}

async fn audit(w: &World, name: &str, token: &str) -> Vec<gr::EvaluationOverride> {
    w.grading()
        .list_evaluation_overrides(authed(
            gr::ListEvaluationOverridesRequest {
                parent: name.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluation_overrides
}

async fn tom_on_leaderboard(w: &World) -> Option<f64> {
    w.analytics()
        .get_leaderboard(authed(
            an::GetLeaderboardRequest {
                organization: ORG.into(),
                metric: an::LeaderboardMetric::AverageScore as i32,
                ..Default::default()
            },
            &w.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .find(|e| e.trainee == member("tom"))
        .map(|e| e.value)
}

/// Waits until call's copy of the session (what session lists show) carries `score`.
async fn session_shows(w: &World, score: f64) {
    let started = Instant::now();
    loop {
        let s = w
            .call()
            .get_session(authed(
                salestrainer_proto::call::GetSessionRequest {
                    name: w.session.clone(),
                },
                &w.trainee,
            ))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap();
        if (s.overall_score - score).abs() < 0.01 && s.passed == (score >= 60.0) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the session shows {} (passed {}), not {score}",
            s.overall_score,
            s.passed
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the organization's average and tom's leaderboard value are `score`.
async fn analytics_shows(w: &World, score: f64) -> Duration {
    let started = Instant::now();
    loop {
        let avg = w.org_summary(&w.admin, "").await.unwrap().average_score;
        let board = tom_on_leaderboard(w).await;
        if (avg - score).abs() < 0.01 && board.is_some_and(|b| (b - score).abs() < 0.01) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "analytics shows average {avg} and leaderboard {board:?}, not {score}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A score far from the grader's: the end of the criterion's scale it is not at.
fn other_end(c: &gr::CriterionScore) -> f64 {
    if c.score >= f64::from(c.scale_max) {
        f64::from(c.scale_min)
    } else {
        f64::from(c.scale_max)
    }
}

fn overall(name: &str, score: f64, reason: &str, etag: &str) -> gr::OverrideEvaluationRequest {
    gr::OverrideEvaluationRequest {
        name: name.into(),
        overall_score: Some(score),
        criterion_overrides: Vec::new(),
        reason: reason.into(),
        etag: etag.into(),
    }
}

async fn overrides_on(backend: Backend) {
    let w = World::start(backend, false, true).await;
    let mut g = w.grading();
    let before = evaluation(&w, &w.evaluation, &w.admin).await;
    let grader = before.overall_score;
    assert_eq!(before.effective_score, grader);
    assert_eq!(before.override_revision, 0);
    assert_eq!(
        before.passing_score,
        Some(60.0),
        "the rubric's passing score"
    );
    analytics_shows(&w, grader).await;
    // Far from the grader's, and on the other side of the passing score.
    let target = if grader < 50.0 { 95.0 } else { 10.0 };

    // Refusals: tom on his own evaluation, globex's admin, a bad score, a stale etag.
    let refused = |token: &str, r: gr::OverrideEvaluationRequest| {
        let mut g = w.grading();
        let token = token.to_owned();
        async move { g.override_evaluation(authed(r, &token)).await.unwrap_err() }
    };
    let fine = overall(&w.evaluation, target, "listened well", "");
    assert_eq!(
        refused(&w.trainee, fine.clone()).await.code(),
        Code::PermissionDenied
    );
    assert_eq!(
        refused(&w.other_admin, fine.clone()).await.code(),
        Code::NotFound
    );
    let mut bad = fine.clone();
    bad.overall_score = Some(101.0);
    bad.criterion_overrides = vec![gr::CriterionOverride {
        criterion_id: "closing".into(),
        score: 99.0,
    }];
    bad.reason = String::new();
    let status = refused(&w.manager, bad).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = String::from_utf8_lossy(status.details()).into_owned();
    for field in ["overall_score", "criterion_overrides[0].score", "reason"] {
        assert!(details.contains(field), "{field} named in {details:?}");
    }
    let mut oversized = fine.clone();
    oversized.reason = "x".repeat(1001);
    assert_eq!(
        refused(&w.manager, oversized).await.code(),
        Code::InvalidArgument
    );
    let mut stale = fine.clone();
    stale.etag = "W/\"stale\"".into();
    assert_eq!(refused(&w.manager, stale).await.code(), Code::Aborted);
    let unchanged = evaluation(&w, &w.evaluation, &w.admin).await;
    assert_eq!(
        unchanged.etag, before.etag,
        "a refused override changes nothing"
    );
    assert!(audit(&w, &w.evaluation, &w.admin).await.is_empty());

    // mia overrides the overall score.
    let mut req = fine.clone();
    req.etag = before.etag.clone();
    let after = g
        .override_evaluation(authed(req, &w.manager))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(after.overall_score, grader, "the grader's score is kept");
    assert_eq!(after.effective_score, target);
    assert_eq!(after.effective_passed, target >= 60.0);
    assert_eq!(after.override_revision, 1);
    assert_ne!(after.etag, before.etag);
    let o = after.overall_override.clone().unwrap();
    assert_eq!(
        (
            o.score,
            o.grader_score,
            o.reason.as_str(),
            o.author.as_str()
        ),
        (target, grader, "listened well", member("mia").as_str())
    );
    let took = analytics_shows(&w, target).await;
    println!("{backend:?}: analytics showed the override {took:?} after the response");
    session_shows(&w, target).await;

    // The old etag is stale now; a criterion override with the new one moves nothing of the
    // overall (the overall override wins) but is audited.
    let mut again = fine.clone();
    again.etag = before.etag.clone();
    assert_eq!(refused(&w.manager, again).await.code(), Code::Aborted);
    let closing = after
        .criterion_scores
        .iter()
        .find(|c| c.criterion_id == "closing")
        .unwrap();
    let new_closing = other_end(closing);
    let second = g
        .override_evaluation(authed(
            gr::OverrideEvaluationRequest {
                name: w.evaluation.clone(),
                overall_score: None,
                criterion_overrides: vec![gr::CriterionOverride {
                    criterion_id: "closing".into(),
                    score: new_closing,
                }],
                reason: "asked for the meeting".into(),
                etag: after.etag.clone(),
            },
            &w.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(second.effective_score, target);
    let c = second
        .criterion_scores
        .iter()
        .find(|c| c.criterion_id == "closing")
        .unwrap();
    assert_eq!(
        c.score, closing.score,
        "the grader's criterion score is kept"
    );
    assert_eq!(c.r#override.as_ref().map(|o| o.score), Some(new_closing));

    // The audit, newest first; tom sees it and the overrides on his evaluation.
    let entries = audit(&w, &w.evaluation, &w.trainee).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0].criterion_id.as_str(),
            entries[0].previous_score,
            entries[0].score,
            entries[0].author.as_str(),
            entries[0].revision
        ),
        (
            "closing",
            closing.score,
            new_closing,
            member("alice").as_str(),
            2
        )
    );
    assert_eq!(
        (
            entries[1].criterion_id.as_str(),
            entries[1].previous_score,
            entries[1].score,
            entries[1].reason.as_str()
        ),
        ("", grader, target, "listened well")
    );
    let seen = evaluation(&w, &w.evaluation, &w.trainee).await;
    assert_eq!(seen.effective_score, target);
    assert_eq!(
        seen.overall_override.map(|o| o.reason),
        Some("listened well".to_owned())
    );
    assert_eq!(
        w.grading()
            .list_evaluation_overrides(authed(
                gr::ListEvaluationOverridesRequest {
                    parent: w.evaluation.clone(),
                    ..Default::default()
                },
                &w.other_admin,
            ))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // A regrade: the new evaluation shows the overrides as made on the earlier grade, and
    // its own (grader's) score counts again.
    let job = g
        .regrade_session(authed(
            gr::RegradeSessionRequest {
                session: w.session.clone(),
                rubric: String::new(),
                request_id: "override-test".into(),
            },
            &w.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .grading_job
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let regraded = loop {
        let j = g
            .get_grading_job(authed(
                gr::GetGradingJobRequest {
                    name: job.name.clone(),
                },
                &w.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .grading_job
            .unwrap();
        if !j.evaluation.is_empty() {
            break j.evaluation;
        }
        assert!(Instant::now() < deadline, "regrade not done: {j:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let new = evaluation(&w, &regraded, &w.trainee).await;
    assert_eq!(new.supersedes, w.evaluation);
    assert_eq!(new.effective_score, new.overall_score);
    assert_eq!(new.earlier_overrides.len(), 2);
    assert!(
        new.earlier_overrides
            .iter()
            .all(|o| o.on_earlier_grade && o.evaluation == w.evaluation)
    );
    analytics_shows(&w, new.overall_score).await;
    let on_old = g
        .override_evaluation(authed(
            overall(&w.evaluation, 50.0, "too late", ""),
            &w.manager,
        ))
        .await
        .unwrap_err();
    assert_eq!(on_old.code(), Code::FailedPrecondition);
    assert_eq!(audit(&w, &w.evaluation, &w.admin).await.len(), 2);

    clear_restores_the_graders_score(&w, &regraded).await;
    w.stop().await;
}

fn clear(
    name: &str,
    criteria: &[&str],
    overall: bool,
    reason: &str,
) -> gr::ClearEvaluationOverrideRequest {
    gr::ClearEvaluationOverrideRequest {
        name: name.into(),
        criterion_ids: criteria.iter().map(|c| (*c).to_owned()).collect(),
        overall,
        reason: reason.into(),
        etag: String::new(),
    }
}

/// On the current evaluation `name` (no overrides yet): overrides of the overall score and
/// of "closing", then ClearEvaluationOverride puts the grader's numbers back, audited, and
/// analytics and the session follow; the refusals change nothing.
async fn clear_restores_the_graders_score(w: &World, name: &str) {
    let mut g = w.grading();
    let graded = evaluation(w, name, &w.admin).await;
    let grader = graded.overall_score;
    let closing = graded
        .criterion_scores
        .iter()
        .find(|c| c.criterion_id == "closing")
        .unwrap()
        .clone();
    let new_closing = other_end(&closing);
    let target = if grader < 50.0 { 95.0 } else { 10.0 };
    let mut req = overall(name, target, "strong close", "");
    req.criterion_overrides = vec![gr::CriterionOverride {
        criterion_id: "closing".into(),
        score: new_closing,
    }];
    let set = g
        .override_evaluation(authed(req, &w.manager))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(set.effective_score, target);
    analytics_shows(w, target).await;

    // Refusals: tom, globex's admin, a criterion the evaluation lacks, nothing named, no
    // reason, and a criterion without an override (nothing to clear).
    let refused = |token: &str, r: gr::ClearEvaluationOverrideRequest| {
        let mut g = w.grading();
        let token = token.to_owned();
        async move {
            g.clear_evaluation_override(authed(r, &token))
                .await
                .unwrap_err()
        }
    };
    let fine = clear(name, &["closing"], true, "the grader was right");
    assert_eq!(
        refused(&w.trainee, fine.clone()).await.code(),
        Code::PermissionDenied
    );
    assert_eq!(
        refused(&w.other_admin, fine.clone()).await.code(),
        Code::NotFound
    );
    let status = refused(&w.manager, clear(name, &["no-such"], false, "")).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = String::from_utf8_lossy(status.details()).into_owned();
    for field in ["criterion_ids[0]", "reason"] {
        assert!(details.contains(field), "{field} named in {details:?}");
    }
    assert_eq!(
        refused(&w.manager, clear(name, &[], false, "why"))
            .await
            .code(),
        Code::InvalidArgument
    );
    let bare = refused(
        &w.manager,
        clear(name, &["closing", "discovery"], false, "why"),
    )
    .await;
    assert_eq!(bare.code(), Code::FailedPrecondition, "{bare:?}");
    let mut stale = fine.clone();
    stale.etag = graded.etag.clone();
    assert_eq!(refused(&w.manager, stale).await.code(), Code::Aborted);
    let unchanged = evaluation(w, name, &w.admin).await;
    assert_eq!(unchanged.etag, set.etag, "a refused clear changes nothing");
    assert_eq!(audit(w, name, &w.admin).await.len(), 2);

    // The overall override goes first: the effective score follows the closing override.
    let mut first = clear(name, &[], true, "overall was too generous");
    first.etag = set.etag.clone();
    let half = g
        .clear_evaluation_override(authed(first, &w.admin))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert!(half.overall_override.is_none());
    assert_eq!(half.override_revision, set.override_revision + 1);
    let moved = half.effective_score;
    assert_ne!(moved, target);
    assert_ne!(moved, grader, "the closing override still moves it");
    analytics_shows(w, moved).await;

    // Then closing: the grader's numbers are back everywhere.
    let done = g
        .clear_evaluation_override(authed(
            clear(name, &["closing"], false, "closing as graded"),
            &w.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(done.effective_score, grader);
    assert_eq!(done.effective_passed, grader >= 60.0);
    assert_eq!(done.effective_skill_scores, done.skill_scores);
    assert!(done.criterion_scores.iter().all(|c| c.r#override.is_none()));
    analytics_shows(w, grader).await;
    session_shows(w, grader).await;
    let again = refused(&w.manager, clear(name, &["closing"], false, "twice")).await;
    assert_eq!(again.code(), Code::FailedPrecondition);

    // The audit: who restored what, from the override to the grader's score.
    let entries = audit(w, name, &w.trainee).await;
    assert_eq!(entries.len(), 4);
    let e = &entries[0];
    assert_eq!(
        (
            e.criterion_id.as_str(),
            e.previous_score,
            e.score,
            e.cleared,
            e.author.as_str(),
            e.effective_score
        ),
        (
            "closing",
            new_closing,
            closing.score,
            true,
            member("mia").as_str(),
            grader
        )
    );
    let e = &entries[1];
    assert_eq!(
        (
            e.criterion_id.as_str(),
            e.previous_score,
            e.score,
            e.cleared,
            e.author.as_str(),
            e.reason.as_str()
        ),
        (
            "",
            target,
            moved,
            true,
            member("alice").as_str(),
            "overall was too generous"
        )
    );
    assert!(entries[2..].iter().all(|e| !e.cleared));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overrides_count_at_once_are_audited_survive_a_regrade_and_clear() {
    for backend in Backend::ALL {
        overrides_on(backend).await;
    }
}
