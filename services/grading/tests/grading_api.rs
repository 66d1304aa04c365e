//! The gRPC API over a running engine: authorization (other organization → NOT_FOUND,
//! trainees see only their own), dead letters, retry, regrade keeping the earlier evaluation,
//! and the watch stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use crate::common::testkit::{Behaviour, FakeProvider};
use common::*;
use salestrainer_grading::api::GradingServiceApi;
use salestrainer_grading::app::jobs::Grading;
use salestrainer_proto::grading::{self as pb, grading_service_server::GradingService};
use salestrainer_runtime::{Principal, Ready, Role};
use tokio_stream::StreamExt;
use tonic::{Code, Request};

fn as_who<T>(msg: T, role: Role, subject: &str, org: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.extensions_mut().insert(Principal {
        subject: subject.into(),
        organization: org.into(),
        role,
        member_id: None,
    });
    r
}

fn manager<T>(msg: T) -> Request<T> {
    as_who(msg, Role::Manager, "boss", "acme")
}

#[tokio::test]
async fn api_authorization_dead_letters_retry_regrade_watch() {
    let fake = FakeProvider::start(None).await.unwrap();
    fake.script([Behaviour::insufficient_quota()]);
    let d = database(Backend::Sqlite).await;
    let h = engine(
        &d.db,
        fast_config(),
        Some(fake.credential(0, 0)),
        None,
        None,
    );
    let db = Ready::new();
    db.set(d.db.clone());
    let engine_ready = Ready::new();
    engine_ready.set(h.engine.clone());
    let api = GradingServiceApi::new(Grading::new(db, engine_ready));

    // SubmitSession is for services only, and idempotent.
    let submit = pb::SubmitSessionRequest {
        session: session("api"),
        organization: "organizations/acme".into(),
        scenario: "organizations/acme/scenarios/discovery".into(),
        rubric: String::new(),
        trainee: "organizations/acme/members/trainee-1".into(),
        assignment: String::new(),
        request_id: "evt-1".into(),
        ..Default::default()
    };
    let denied = api
        .submit_session(manager(submit.clone()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let first = api
        .submit_session(as_who(submit.clone(), Role::Service, "call", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.already_submitted);
    let job = first.grading_job.unwrap();
    let again = api
        .submit_session(as_who(submit, Role::Service, "call", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_submitted);
    assert_eq!(again.grading_job.unwrap().name, job.name);

    // insufficient_quota: a dead letter at once.
    let id = job.name.rsplit('/').next().unwrap().to_owned();
    wait_state(&d.db, &id, pb::JobState::Dead, Duration::from_secs(10)).await;
    let dead = api
        .list_grading_jobs(manager(pb::ListGradingJobsRequest {
            parent: "organizations/acme".into(),
            state: pb::JobState::Dead as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dead.grading_jobs.len(), 1);
    assert_eq!(
        dead.grading_jobs[0].dead_reason,
        pb::DeadReason::ProviderRejected as i32
    );

    // Another organization sees nothing, by NOT_FOUND.
    let other = api
        .get_grading_job(as_who(
            pb::GetGradingJobRequest {
                name: job.name.clone(),
            },
            Role::Admin,
            "x",
            "globex",
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let trainee_retry = api
        .retry_grading_job(as_who(
            pb::RetryGradingJobRequest {
                name: job.name.clone(),
                etag: String::new(),
            },
            Role::Trainee,
            "trainee-1",
            "acme",
        ))
        .await
        .unwrap_err();
    assert_eq!(trainee_retry.code(), Code::PermissionDenied);

    // Watching a dead job: its state, then the stream ends.
    let mut watch = api
        .watch_grading_job(manager(pb::WatchGradingJobRequest {
            name: job.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let firstw = watch.next().await.unwrap().unwrap();
    assert_eq!(firstw.grading_job.unwrap().state, pb::JobState::Dead as i32);
    assert!(watch.next().await.is_none());
    let retried = api
        .retry_grading_job(manager(pb::RetryGradingJobRequest {
            name: job.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .grading_job
        .unwrap();
    assert_eq!(retried.state, pb::JobState::Queued as i32);
    assert_eq!(retried.attempts, 0);
    let mut watch = api
        .watch_grading_job(manager(pb::WatchGradingJobRequest {
            name: job.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut last = pb::JobState::Unspecified as i32;
    while let Some(Ok(m)) = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
    {
        last = m.grading_job.unwrap().state;
    }
    assert_eq!(last, pb::JobState::Succeeded as i32);
    let not_dead = api
        .retry_grading_job(manager(pb::RetryGradingJobRequest {
            name: job.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(not_dead.code(), Code::FailedPrecondition);

    // Evaluations: the trainee sees their own; another trainee sees none.
    let own = api
        .list_evaluations(as_who(
            pb::ListEvaluationsRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            Role::Trainee,
            "trainee-1",
            "acme",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.evaluations.len(), 1);
    let eval_name = own.evaluations[0].name.clone();
    let stranger = api
        .get_evaluation(as_who(
            pb::GetEvaluationRequest {
                name: eval_name.clone(),
            },
            Role::Trainee,
            "trainee-2",
            "acme",
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
    let none = api
        .list_evaluations(as_who(
            pb::ListEvaluationsRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            Role::Trainee,
            "trainee-2",
            "acme",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(none.evaluations.is_empty());

    // Regrade: a new job; the earlier evaluation is kept and superseded.
    let regrade = api
        .regrade_session(manager(pb::RegradeSessionRequest {
            session: session("api"),
            rubric: String::new(),
            request_id: "rg-1".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .grading_job
        .unwrap();
    assert!(regrade.regrade);
    let same = api
        .regrade_session(manager(pb::RegradeSessionRequest {
            session: session("api"),
            rubric: String::new(),
            request_id: "rg-1".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .grading_job
        .unwrap();
    assert_eq!(same.name, regrade.name);
    let rid = regrade.name.rsplit('/').next().unwrap().to_owned();
    wait_state(
        &d.db,
        &rid,
        pb::JobState::Succeeded,
        Duration::from_secs(10),
    )
    .await;
    let all = api
        .list_evaluations(manager(pb::ListEvaluationsRequest {
            parent: "organizations/acme".into(),
            session: session("api"),
            show_superseded: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.evaluations.len(), 2);
    let newest = &all.evaluations[0];
    assert_eq!(newest.supersedes, eval_name);
    let current = api
        .list_evaluations(manager(pb::ListEvaluationsRequest {
            parent: "organizations/acme".into(),
            session: session("api"),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.evaluations.len(), 1);
    assert_eq!(current.evaluations[0].name, newest.name);
    let old = api
        .get_evaluation(manager(pb::GetEvaluationRequest { name: eval_name }))
        .await
        .unwrap()
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(old.superseded_by, newest.name);

    // Bad input: a clear INVALID_ARGUMENT.
    let bad = api
        .get_grading_job(manager(pb::GetGradingJobRequest {
            name: "nope".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    h.stop.cancel();
}

/// SubmitSession is how the call service's reconciler hands on a session whose SessionEnded
/// was lost: a session without a scenario (a real call) needs a rubric, and the job keeps what
/// SessionEnded would have carried, so its SessionGraded dates, times and sources the session.
async fn submit_keeps_what_session_ended_carries(backend: Backend) {
    use prost::Message;
    use salestrainer_bus::outbox::entity;
    use salestrainer_proto::events as ev;
    use salestrainer_runtime::{ApiError, time};
    use sea_orm::EntityTrait;

    let d = database(backend).await;
    let h = engine(&d.db, fast_config(), None, None, None);
    let db = Ready::new();
    db.set(d.db.clone());
    let engine_ready = Ready::new();
    engine_ready.set(h.engine.clone());
    let grading = Grading::new(db, engine_ready);
    let call = Principal {
        subject: "call".into(),
        organization: String::new(),
        role: Role::Service,
        member_id: None,
    };
    let base = pb::SubmitSessionRequest {
        session: session("real"),
        organization: "organizations/acme".into(),
        trainee: "organizations/acme/members/trainee-1".into(),
        request_id: "reconcile-real".into(),
        ..Default::default()
    };
    let refused = |req: pb::SubmitSessionRequest| {
        let grading = &grading;
        let call = &call;
        async move {
            match grading.submit(call, &req).await {
                Err(ApiError::InvalidArgument(v)) => v[0].field.clone(),
                other => panic!(
                    "{backend:?}: expected INVALID_ARGUMENT, got {:?}",
                    other.map(|(j, _)| j)
                ),
            }
        }
    };
    assert_eq!(refused(base.clone()).await, "rubric");
    let with_rubric = pb::SubmitSessionRequest {
        rubric: "organizations/acme/rubrics/discovery".into(),
        ..base.clone()
    };
    assert_eq!(
        refused(pb::SubmitSessionRequest {
            source: 9,
            ..with_rubric.clone()
        })
        .await,
        "source"
    );
    assert_eq!(
        refused(pb::SubmitSessionRequest {
            session_duration: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0
            }),
            ..with_rubric.clone()
        })
        .await,
        "session_duration"
    );
    assert!(
        outbox_types(&d.db).await.is_empty(),
        "{backend:?}: a refusal creates nothing"
    );

    let start_us = time::now_us() - 3 * 86_400_000_000;
    let (created, new) = grading
        .submit(
            &call,
            &pb::SubmitSessionRequest {
                session_start_time: Some(time::timestamp(start_us)),
                session_duration: Some(time::duration(95_000)),
                source: pb::SessionSource::RealCall as i32,
                ..with_rubric
            },
        )
        .await
        .unwrap();
    assert!(new);
    assert_eq!(created.scenario, "");
    assert_eq!(created.rubric, "organizations/acme/rubrics/discovery");
    assert_eq!(created.session_start_us, Some(start_us));
    assert_eq!(created.session_duration_ms, Some(95_000));
    assert_eq!(created.session_source, pb::SessionSource::RealCall as i32);

    wait_state(
        &d.db,
        &created.id,
        pb::JobState::Succeeded,
        Duration::from_secs(10),
    )
    .await;
    let graded: Vec<ev::SessionGraded> = entity::Entity::find()
        .all(&d.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(
            |r| match ev::Event::decode(r.payload.as_slice()).unwrap().payload {
                Some(ev::event::Payload::SessionGraded(g)) => Some(g),
                _ => None,
            },
        )
        .collect();
    assert_eq!(graded.len(), 1, "{backend:?}");
    let g = &graded[0];
    assert_eq!(g.session_start_time, Some(time::timestamp(start_us)));
    assert_eq!(g.session_duration, Some(time::duration(95_000)));
    assert_eq!(g.source, ev::SessionSource::RealCall as i32);
    h.stop.cancel();
}

#[tokio::test]
async fn sqlite_submit_keeps_what_session_ended_carries() {
    submit_keeps_what_session_ended_carries(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_submit_keeps_what_session_ended_carries() {
    submit_keeps_what_session_ended_carries(Backend::Postgres).await;
}
