//! GetDrillImpact over ingested events, on SQLite and PostgreSQL: a drill graded with
//! criterion scores is compared by the drilled criterion (before, in the drill, in the next
//! practice session of the scenario), an override (or its removal) of the drill's evaluation
//! replaces its criterion scores, and a drill graded without criterion scores falls back to
//! the criterion's skill on a row of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BASE_US, Backend, DAY_US, authed, event, spawn, ts};
use salestrainer_proto::{analytics as pb, events as ev};
use salestrainer_runtime::Role;

const ORG: &str = "organizations/acme";
const SCENARIO: &str = "organizations/acme/scenarios/cold-call";
const HOUR_US: i64 = 3_600_000_000;

fn eval_name(id: &str) -> String {
    format!("{ORG}/evaluations/{id}")
}

fn skill(skill: &str, score: f64) -> ev::SkillScore {
    ev::SkillScore {
        skill: skill.into(),
        score,
    }
}

fn criterion(criterion: &str, score: f64) -> ev::CriterionScore {
    ev::CriterionScore {
        criterion: criterion.into(),
        score,
    }
}

/// tom's session `session` on the scenario, started at `start_us` (a drill of `drill_of`'s
/// "objections" if set), graded as `evaluation` with these skill and criterion scores.
fn session(
    session: &str,
    start_us: i64,
    drill_of: Option<(&str, f64)>,
    evaluation: &str,
    skills: Vec<ev::SkillScore>,
    criteria: Vec<ev::CriterionScore>,
) -> Vec<ev::Event> {
    let name = format!("{ORG}/sessions/{session}");
    let trainee = format!("{ORG}/members/tom");
    vec![
        event(
            &format!("{session}-started"),
            "acme",
            start_us,
            ev::event::Payload::SessionStarted(ev::SessionStarted {
                session: name.clone(),
                trainee: trainee.clone(),
                scenario: SCENARIO.into(),
                start_time: Some(ts(start_us)),
                drill_of: drill_of.map(|(e, score)| ev::DrillOf {
                    evaluation: eval_name(e),
                    criterion: "objections".into(),
                    skill: "objection_handling".into(),
                    score,
                }),
                ..Default::default()
            }),
        ),
        event(
            &format!("{session}-graded"),
            "acme",
            start_us + 60_000_000,
            ev::event::Payload::SessionGraded(ev::SessionGraded {
                session: name,
                evaluation: eval_name(evaluation),
                trainee,
                scenario: SCENARIO.into(),
                session_start_time: Some(ts(start_us)),
                overall_score: 50.0,
                skill_scores: skills,
                criterion_scores: criteria,
                ..Default::default()
            }),
        ),
    ]
}

/// An override (or the removal of one) of the drill's evaluation `d1`.
fn overridden(id: &str, revision: i64, objections: f64) -> ev::Event {
    event(
        id,
        "acme",
        BASE_US + 5 * DAY_US + revision,
        ev::event::Payload::EvaluationOverridden(ev::EvaluationOverridden {
            session: format!("{ORG}/sessions/d1"),
            evaluation: eval_name("d1"),
            trainee: format!("{ORG}/members/tom"),
            scenario: SCENARIO.into(),
            session_start_time: Some(ts(BASE_US + DAY_US + HOUR_US)),
            overall_score: 50.0,
            skill_scores: vec![skill("objection_handling", 50.0)],
            criterion_scores: vec![criterion("objections", objections)],
            revision,
            ..Default::default()
        }),
    )
}

async fn impact(h: &common::Harness, token: &str) -> Vec<pb::DrillImpact> {
    h.client()
        .get_drill_impact(authed(
            pb::GetDrillImpactRequest {
                organization: ORG.into(),
                start_time: Some(ts(BASE_US)),
                end_time: Some(ts(BASE_US + 10 * DAY_US)),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("drill impact")
        .into_inner()
        .criteria
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn drill_impact_by_criterion(backend: Backend) {
    let h = spawn(backend).await;
    let mia = h.token(Role::Manager, "mia", "acme").await;
    let day1 = BASE_US + DAY_US;
    let mut events = Vec::new();
    // The drilled practice session: objections 20, its skill 40.
    events.extend(session(
        "p1",
        day1,
        None,
        "p1",
        vec![skill("objection_handling", 40.0)],
        vec![criterion("objections", 20.0), criterion("value", 60.0)],
    ));
    // The drill: objections 70 (the skill says 50).
    events.extend(session(
        "d1",
        day1 + HOUR_US,
        Some(("p1", 20.0)),
        "d1",
        vec![skill("objection_handling", 50.0)],
        vec![criterion("objections", 70.0), criterion("value", 30.0)],
    ));
    // A drill graded before criterion scores reached analytics: skill 55.
    events.extend(session(
        "d0",
        day1 + 2 * HOUR_US,
        Some(("p1", 20.0)),
        "d0",
        vec![skill("objection_handling", 55.0)],
        Vec::new(),
    ));
    // The next practice sessions: only the first after each drill counts.
    events.extend(session(
        "p2",
        day1 + DAY_US,
        None,
        "p2",
        vec![skill("objection_handling", 65.0)],
        vec![criterion("objections", 80.0)],
    ));
    events.extend(session(
        "p3",
        day1 + 2 * DAY_US,
        None,
        "p3",
        vec![skill("objection_handling", 0.0)],
        vec![criterion("objections", 0.0)],
    ));
    let n = events.len();
    assert_eq!(h.ingest(events).await.accepted, i32::try_from(n).unwrap());

    let rows = impact(&h, &mia).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let c = &rows[0];
    assert_eq!(
        (
            c.criterion.as_str(),
            c.basis,
            c.drills,
            c.next_practice_sessions
        ),
        ("objections", pb::DrillImpactBasis::Criterion as i32, 1, 1)
    );
    assert!(near(c.mean_score_before, 20.0), "{c:?}");
    assert!(near(c.mean_score_after, 70.0), "{c:?}");
    assert!(near(c.lift, 50.0), "{c:?}");
    assert!(near(c.mean_score_next_practice, 80.0), "{c:?}");
    assert!(near(c.next_practice_lift, 60.0), "{c:?}");
    let s = &rows[1];
    assert_eq!(
        (s.basis, s.drills, s.next_practice_sessions),
        (pb::DrillImpactBasis::Skill as i32, 1, 1)
    );
    assert!(near(s.mean_score_before, 40.0), "{s:?}");
    assert!(near(s.mean_score_after, 55.0), "{s:?}");
    assert!(near(s.mean_score_next_practice, 65.0), "{s:?}");
    assert!(near(s.next_practice_lift, 25.0), "{s:?}");

    // An override of the drill's evaluation replaces its criterion scores; its removal
    // (a higher revision, the grader's 70 again) restores them, in either order of arrival.
    h.ingest(vec![overridden("o1", 1, 95.0)]).await;
    let rows = impact(&h, &mia).await;
    assert!(near(rows[0].mean_score_after, 95.0), "{rows:?}");
    h.ingest(vec![overridden("o3", 3, 70.0), overridden("o2", 2, 10.0)])
        .await;
    let rows = impact(&h, &mia).await;
    assert!(near(rows[0].mean_score_after, 70.0), "{rows:?}");
    h.finish().await;
}

#[tokio::test]
async fn drill_impact_by_criterion_sqlite() {
    drill_impact_by_criterion(Backend::Sqlite).await;
}

#[tokio::test]
async fn drill_impact_by_criterion_postgres() {
    drill_impact_by_criterion(Backend::Postgres).await;
}
