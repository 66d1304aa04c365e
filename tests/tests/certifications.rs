//! Certifications end to end, on SQLite and PostgreSQL: admin alice defines one over tom's
//! scenario; tom's graded session does not reach it until mia overrides the score, loses it
//! when the override goes down, earns it again, is revoked and earns it back only with a new
//! attempt; a trainee whose award is older than its validity holds an EXPIRED one. Graded
//! attempts other than tom's real session come through IngestEvents as the grading service
//! would send them (a service identity), so they follow the same ingest path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use salestrainer_proto::{analytics as an, config as cfg, events as ev, grading as gr};
use salestrainer_tests::{Backend, authed};
use support::{ORG, World, member};
use tonic::Code;

const CERT: &str = "organizations/acme/certifications/demo-booker";

async fn progress(w: &World, token: &str) -> an::GetCertificationProgressResponse {
    w.analytics()
        .get_certification_progress(authed(
            an::GetCertificationProgressRequest {
                certification: CERT.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
}

fn standing_of(p: &an::GetCertificationProgressResponse, who: &str) -> an::CertificationStanding {
    p.standings
        .iter()
        .find(|s| s.trainee == member(who))
        .cloned()
        .unwrap_or_else(|| panic!("{who} has no standing in {p:?}"))
}

/// Waits until tom's state is `state` (the override's event reaches analytics).
async fn tom_becomes(w: &World, state: an::CertificationState) -> an::CertificationStanding {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = standing_of(&progress(w, &w.manager).await, "tom");
        if s.state == state as i32 {
            return s;
        }
        assert!(Instant::now() < deadline, "tom is {s:?}, not {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn override_to(w: &World, score: f64) {
    w.grading()
        .override_evaluation(authed(
            gr::OverrideEvaluationRequest {
                name: w.evaluation.clone(),
                overall_score: Some(score),
                reason: format!("set to {score}"),
                ..Default::default()
            },
            &w.manager,
        ))
        .await
        .unwrap();
}

/// A graded attempt of `trainee` on the scenario, started `ago` before now.
async fn ingest_attempt(w: &World, trainee: &str, id: &str, ago: Duration, score: f64) {
    let start = std::time::SystemTime::now() - ago;
    let start = prost_types::Timestamp::from(start);
    let graded = ev::SessionGraded {
        session: format!("{ORG}/sessions/{id}"),
        evaluation: format!("{ORG}/evaluations/{id}"),
        trainee: member(trainee),
        scenario: w.scenario.clone(),
        session_start_time: Some(start),
        overall_score: score,
        passed: score >= 60.0,
        ..Default::default()
    };
    let event = ev::Event {
        event_id: format!("cert-test-{id}"),
        occur_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        organization: ORG.into(),
        producer: "grading".into(),
        payload: Some(ev::event::Payload::SessionGraded(graded)),
        ..Default::default()
    };
    w.analytics()
        .ingest_events(authed(
            an::IngestEventsRequest {
                events: vec![event],
            },
            &w.app.service_token("grading"),
        ))
        .await
        .unwrap();
}

async fn certifications_on(backend: Backend) {
    let w = World::start(backend, false, true).await;
    let mut c = w.config();
    let grader = w
        .grading()
        .get_evaluation(authed(
            gr::GetEvaluationRequest {
                name: w.evaluation.clone(),
            },
            &w.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap()
        .overall_score;
    // Out of reach of the grader's score, within reach of an override.
    let passing = (grader + 1.0).min(90.0);
    let definition = cfg::Certification {
        display_name: "Demo booker".into(),
        requirements: vec![cfg::CertificationRequirement {
            scenario: w.scenario.clone(),
            passing_score: passing,
        }],
        max_attempts: 3,
        attempt_window: Some(prost_types::Duration {
            seconds: 30 * 86_400,
            nanos: 0,
        }),
        validity: Some(prost_types::Duration {
            seconds: 86_400,
            nanos: 0,
        }),
        ..Default::default()
    };
    let create = |token: &str, cert: cfg::Certification| {
        let mut c = w.config();
        let token = token.to_owned();
        async move {
            c.create_certification(authed(
                cfg::CreateCertificationRequest {
                    parent: ORG.into(),
                    certification: Some(cert),
                    certification_id: "demo-booker".into(),
                },
                &token,
            ))
            .await
        }
    };
    assert_eq!(
        create(&w.manager, definition.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut bad = definition.clone();
    bad.requirements[0].passing_score = 101.0;
    bad.requirements[0].scenario = format!("{ORG}/scenarios/missing");
    let status = create(&w.admin, bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = String::from_utf8_lossy(status.details()).into_owned();
    assert!(details.contains("certification.requirements[0].passing_score"));
    assert!(details.contains("certification.requirements[0].scenario"));
    create(&w.admin, definition.clone()).await.unwrap();
    // Every member reads it; globex does not see it.
    let got = c
        .get_certification(authed(
            cfg::GetCertificationRequest { name: CERT.into() },
            &w.trainee,
        ))
        .await
        .unwrap()
        .into_inner()
        .certification
        .unwrap();
    assert_eq!(got.requirements, definition.requirements);
    assert_eq!(
        c.get_certification(authed(
            cfg::GetCertificationRequest { name: CERT.into() },
            &w.other_admin,
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );

    // tom's graded attempt is below the passing score.
    let s = standing_of(&progress(&w, &w.manager).await, "tom");
    assert_eq!(s.state, an::CertificationState::NotEarned as i32);
    assert_eq!(
        (
            s.requirements_met,
            s.requirements[0].attempts,
            s.requirements[0].best_score
        ),
        (0, 1, grader)
    );

    // An override above it earns the certification, once.
    override_to(&w, 95.0).await;
    let held = tom_becomes(&w, an::CertificationState::Held).await;
    assert!(held.earn_time.is_some() && held.expire_time.is_some());
    let again = progress(&w, &w.manager).await;
    assert_eq!(again.holder_count, 1);
    assert_eq!(
        again
            .standings
            .iter()
            .filter(|s| s.trainee == member("tom"))
            .count(),
        1
    );
    assert_eq!(standing_of(&again, "tom").earn_time, held.earn_time);
    // tom sees it on his own page, and only his own standing on the certification.
    let mine = w
        .analytics()
        .list_trainee_certifications(authed(
            an::ListTraineeCertificationsRequest {
                trainee: member("tom"),
            },
            &w.trainee,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.standings.len(), 1);
    assert_eq!(mine.standings[0].state, an::CertificationState::Held as i32);
    assert_eq!(mine.standings[0].certification_display_name, "Demo booker");

    // An override below it loses it; above again earns it again.
    override_to(&w, 10.0).await;
    tom_becomes(&w, an::CertificationState::NotEarned).await;
    override_to(&w, 95.0).await;
    tom_becomes(&w, an::CertificationState::Held).await;

    // Revocation: staff only, with a reason; it sticks until a new attempt earns it.
    let revoke = |token: &str, reason: &str| {
        let mut a = w.analytics();
        let token = token.to_owned();
        let reason = reason.to_owned();
        async move {
            a.revoke_certification_award(authed(
                an::RevokeCertificationAwardRequest {
                    certification: CERT.into(),
                    trainee: member("tom"),
                    reason,
                },
                &token,
            ))
            .await
        }
    };
    assert_eq!(
        revoke(&w.trainee, "no").await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        revoke(&w.other_admin, "no").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        revoke(&w.manager, " ").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let revoked = revoke(&w.manager, "shared the script")
        .await
        .unwrap()
        .into_inner()
        .standing
        .unwrap();
    assert_eq!(revoked.state, an::CertificationState::Revoked as i32);
    assert_eq!(revoked.revoke_reason, "shared the script");
    assert_eq!(revoked.revoked_by, member("mia"));
    assert_eq!(
        revoke(&w.manager, "twice").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // The old attempt's overrides no longer bring it back...
    override_to(&w, 96.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        standing_of(&progress(&w, &w.manager).await, "tom").state,
        an::CertificationState::Revoked as i32
    );
    // ...a new passing attempt does.
    tokio::time::sleep(Duration::from_millis(5)).await;
    ingest_attempt(&w, "tom", "tom-2", Duration::ZERO, 97.0).await;
    let back = tom_becomes(&w, an::CertificationState::Held).await;
    let secs = |s: &an::CertificationStanding| s.earn_time.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(secs(&back) > secs(&held), "earned again by the new attempt");

    // Expiry: dan passed 3 days ago, the award is valid for one day.
    ingest_attempt(&w, "dan", "dan-1", Duration::from_secs(3 * 86_400), 99.0).await;
    let p = progress(&w, &w.admin).await;
    let dan = standing_of(&p, "dan");
    assert_eq!(dan.state, an::CertificationState::Expired as i32);
    assert_eq!(p.holder_count, 1, "only tom holds it now");
    // tom asking sees only his own standing.
    let own = progress(&w, &w.trainee).await;
    assert_eq!(own.standings.len(), 1);
    assert_eq!(own.standings[0].trainee, member("tom"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certifications_follow_grades_overrides_revocation_and_expiry() {
    for backend in Backend::ALL {
        certifications_on(backend).await;
    }
}
