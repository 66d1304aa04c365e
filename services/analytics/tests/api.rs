//! The RPCs over real connections: cache invalidation on ingest, authorization, bad input,
//! idempotent ingest, and the bus path. SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use salestrainer_proto::analytics as pb;
use salestrainer_runtime::Role;
use tonic::Code;

fn org_summary(org: &str) -> pb::GetOrganizationSummaryRequest {
    pb::GetOrganizationSummaryRequest {
        name: format!("organizations/{org}"),
        start_time: Some(ts(BASE_US)),
        end_time: Some(ts(BASE_US + 30 * DAY_US)),
        ..Default::default()
    }
}

async fn summary(
    h: &Harness,
    token: &str,
    req: pb::GetOrganizationSummaryRequest,
) -> pb::SummaryStats {
    h.client()
        .get_organization_summary(authed(req, token))
        .await
        .expect("summary")
        .into_inner()
        .summary
        .unwrap_or_default()
}

async fn cache_shows_a_new_grade_at_once(backend: Backend) {
    let h = spawn(backend).await;
    let boss = h.token(Role::Manager, "boss", "acme").await;
    h.ingest(vec![graded(
        "e1",
        "acme",
        "s1",
        "ann",
        BASE_US + DAY_US,
        60.0,
        "v1",
        "",
        BASE_US + DAY_US + 1,
    )])
    .await;
    let first = summary(&h, &boss, org_summary("acme")).await;
    assert_eq!(first.graded_sessions, 1);
    // Served from the cache now; a second read agrees.
    assert_eq!(summary(&h, &boss, org_summary("acme")).await, first);

    h.ingest(vec![graded(
        "e2",
        "acme",
        "s2",
        "ann",
        BASE_US + 2 * DAY_US,
        100.0,
        "v1",
        "",
        BASE_US + 2 * DAY_US + 1,
    )])
    .await;
    let second = summary(&h, &boss, org_summary("acme")).await;
    assert_eq!(second.graded_sessions, 2, "a new grade shows at once");
    assert!((second.average_score - 80.0).abs() < 1e-9);

    // A regrade replaces (60 -> 90), visible at once and not counted twice.
    h.ingest(vec![graded(
        "e3",
        "acme",
        "s1",
        "ann",
        BASE_US + DAY_US,
        90.0,
        "v2",
        "v1",
        BASE_US + 3 * DAY_US,
    )])
    .await;
    let third = summary(&h, &boss, org_summary("acme")).await;
    assert_eq!(third.graded_sessions, 2);
    assert!((third.average_score - 95.0).abs() < 1e-9);

    // The trainee summary and leaderboard are cached the same way.
    let trainee = pb::GetTraineeSummaryRequest {
        trainee: "organizations/acme/members/ann".into(),
        start_time: Some(ts(BASE_US)),
        end_time: Some(ts(BASE_US + 30 * DAY_US)),
        ..Default::default()
    };
    let t1 = h
        .client()
        .get_trainee_summary(authed(trainee.clone(), &boss))
        .await
        .expect("t1")
        .into_inner();
    assert_eq!(t1.summary.as_ref().map(|s| s.graded_sessions), Some(2));
    h.ingest(vec![graded(
        "e4",
        "acme",
        "s3",
        "ann",
        BASE_US + 4 * DAY_US,
        10.0,
        "v1",
        "",
        BASE_US + 4 * DAY_US,
    )])
    .await;
    let t2 = h
        .client()
        .get_trainee_summary(authed(trainee, &boss))
        .await
        .expect("t2")
        .into_inner();
    assert_eq!(t2.summary.as_ref().map(|s| s.graded_sessions), Some(3));
    assert_eq!(t2.recent_evaluations.len(), 3);
    assert_eq!(
        t2.recent_evaluations[0].session,
        "organizations/acme/sessions/s3"
    );
    assert_eq!(
        t2.weakest_skills.first().map(|s| s.skill.as_str()),
        Some("discovery")
    );
    h.finish().await;
}

#[tokio::test]
async fn cache_invalidation_sqlite() {
    cache_shows_a_new_grade_at_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn cache_invalidation_postgres() {
    cache_shows_a_new_grade_at_once(Backend::Postgres).await;
}

async fn authorization_and_bad_input(backend: Backend) {
    let h = spawn(backend).await;
    h.ingest(vec![
        graded(
            "a1",
            "acme",
            "s1",
            "ann",
            BASE_US + DAY_US,
            60.0,
            "v1",
            "",
            BASE_US + DAY_US,
        ),
        graded(
            "a2",
            "acme",
            "s2",
            "bob",
            BASE_US + DAY_US,
            70.0,
            "v1",
            "",
            BASE_US + DAY_US,
        ),
    ])
    .await;
    let mut c = h.client();
    let ann = h.token(Role::Trainee, "ann", "acme").await;
    let boss = h.token(Role::Manager, "boss", "acme").await;
    let admin = h.token(Role::Admin, "root", "acme").await;
    let stranger = h.token(Role::Admin, "eve", "other").await;

    // A trainee sees herself (no filter means "me"), not her colleague.
    let mine = summary(&h, &ann, org_summary("acme")).await;
    assert_eq!(mine.sessions, 1);
    let mut req = org_summary("acme");
    req.trainee = "organizations/acme/members/bob".into();
    let err = c
        .get_organization_summary(authed(req.clone(), &ann))
        .await
        .expect_err("must be refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        summary(&h, &boss, req).await.sessions,
        1,
        "managers see anyone"
    );
    let err = c
        .get_trainee_summary(authed(
            pb::GetTraineeSummaryRequest {
                trainee: "organizations/acme/members/bob".into(),
                ..Default::default()
            },
            &ann,
        ))
        .await
        .expect_err("must be refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Usage is for managers and admins.
    let usage = pb::GetUsageRequest {
        organization: "organizations/acme".into(),
        ..Default::default()
    };
    assert_eq!(
        c.get_usage(authed(usage.clone(), &ann))
            .await
            .expect_err("must be refused")
            .code(),
        Code::PermissionDenied
    );
    assert!(c.get_usage(authed(usage.clone(), &admin)).await.is_ok());
    // The leaderboard fails closed: unless config says the organization shows it (it does
    // not by default; and when config cannot answer, UNAVAILABLE), a trainee does not see
    // it, while managers and admins are unaffected.
    let board_req = pb::GetLeaderboardRequest {
        organization: "organizations/acme".into(),
        start_time: Some(ts(BASE_US)),
        end_time: Some(ts(BASE_US + 30 * DAY_US)),
        page_size: 1,
        ..Default::default()
    };
    let err = c
        .get_leaderboard(authed(board_req.clone(), &ann))
        .await
        .expect_err("a trainee must not see the leaderboard unless config says so");
    assert!(
        matches!(err.code(), Code::Unavailable | Code::PermissionDenied),
        "{err:?}"
    );
    for token in [&boss, &admin] {
        let board = c
            .get_leaderboard(authed(board_req.clone(), token))
            .await
            .expect("leaderboard")
            .into_inner();
        assert_eq!(board.total_size, 2);
        assert_eq!(board.entries[0].trainee, "organizations/acme/members/bob");
        assert!(!board.next_page_token.is_empty());
    }

    // Another organization does not exist for the caller.
    for code in [
        c.get_organization_summary(authed(org_summary("acme"), &stranger))
            .await
            .expect_err("must be refused")
            .code(),
        c.get_usage(authed(usage, &stranger))
            .await
            .expect_err("must be refused")
            .code(),
        c.get_assignment_progress(authed(
            pb::GetAssignmentProgressRequest {
                assignment: "organizations/acme/assignments/a".into(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .expect_err("must be refused")
        .code(),
    ] {
        assert_eq!(code, Code::NotFound);
    }
    // Ingest is internal.
    let err = c
        .ingest_events(authed(pb::IngestEventsRequest { events: vec![] }, &admin))
        .await
        .expect_err("must be refused");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Bad input.
    let mut inverted = org_summary("acme");
    inverted.start_time = Some(ts(BASE_US + 5 * DAY_US));
    inverted.end_time = Some(ts(BASE_US));
    let mut too_long = org_summary("acme");
    too_long.start_time = Some(ts(BASE_US - 400 * DAY_US));
    let mut tz = org_summary("acme");
    tz.time_zone = "Europe/Berlin".into();
    let mut bad_filter = org_summary("acme");
    bad_filter.scenario = "organizations/other/scenarios/x".into();
    for req in [inverted, too_long, tz, bad_filter] {
        let err = c
            .get_organization_summary(authed(req, &boss))
            .await
            .expect_err("must be refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let mut unknown = org_summary("acme");
    unknown.trainee = "organizations/acme/members/ghost".into();
    assert_eq!(
        c.get_organization_summary(authed(unknown, &boss))
            .await
            .expect_err("must be refused")
            .code(),
        Code::NotFound
    );
    let err = c
        .get_trainee_summary(authed(
            pb::GetTraineeSummaryRequest {
                trainee: "organizations/acme/members/ghost".into(),
                ..Default::default()
            },
            &boss,
        ))
        .await
        .expect_err("must be refused");
    assert_eq!(err.code(), Code::NotFound);
    // A bad event refuses the whole batch and changes nothing.
    let mut bad = graded("b1", "acme", "s9", "ann", BASE_US, 50.0, "v1", "", BASE_US);
    bad.organization = "organizations/other".into();
    let err = c
        .ingest_events(authed(
            pb::IngestEventsRequest {
                events: vec![
                    graded("b0", "acme", "s8", "ann", BASE_US, 50.0, "v1", "", BASE_US),
                    bad,
                ],
            },
            &h.service(),
        ))
        .await
        .expect_err("must be refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(summary(&h, &boss, org_summary("acme")).await.sessions, 2);
    // Redelivery is a duplicate.
    let again = h
        .ingest(vec![graded(
            "a1",
            "acme",
            "s1",
            "ann",
            BASE_US + DAY_US,
            60.0,
            "v1",
            "",
            BASE_US + DAY_US,
        )])
        .await;
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    h.finish().await;
}

#[tokio::test]
async fn authorization_and_bad_input_sqlite() {
    authorization_and_bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn authorization_and_bad_input_postgres() {
    authorization_and_bad_input(Backend::Postgres).await;
}

/// Events published on the bus (as the producers' relays do) reach the read model.
#[tokio::test]
async fn bus_events_are_consumed() {
    let h = spawn(Backend::Sqlite).await;
    let boss = h.token(Role::Manager, "boss", "acme").await;
    let e = graded(
        "bus1",
        "acme",
        "s1",
        "ann",
        BASE_US + DAY_US,
        75.0,
        "v1",
        "",
        BASE_US + DAY_US,
    );
    let env = salestrainer_runtime::events::to_envelope(&e);
    h.ctx.bus.publish(&env).await.expect("publish");
    h.ctx.bus.publish(&env).await.expect("publish again");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = summary(&h, &boss, org_summary("acme")).await;
        if s.graded_sessions == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bus event not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        summary(&h, &boss, org_summary("acme"))
            .await
            .graded_sessions,
        1
    );
}

/// Timestamps that overflow (or leave the protobuf range) are INVALID_ARGUMENT in every
/// request field, never a panic, and an event carrying one is refused without a write.
async fn overflowing_timestamps_are_invalid(backend: Backend) {
    let h = spawn(backend).await;
    h.ingest(vec![graded(
        "a1",
        "acme",
        "s1",
        "ann",
        BASE_US + DAY_US,
        60.0,
        "v1",
        "",
        BASE_US + DAY_US,
    )])
    .await;
    let mut c = h.client();
    let boss = h.token(Role::Manager, "boss", "acme").await;
    let bad = [
        prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        },
        prost_types::Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        },
        prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 999_999_999,
        },
        prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        },
        prost_types::Timestamp {
            seconds: 253_402_300_800, // year 10000
            nanos: 0,
        },
    ];
    for t in bad {
        for (start, end) in [(Some(t), None), (None, Some(t)), (Some(t), Some(t))] {
            let codes = [
                c.get_organization_summary(authed(
                    pb::GetOrganizationSummaryRequest {
                        name: "organizations/acme".into(),
                        start_time: start,
                        end_time: end,
                        ..Default::default()
                    },
                    &boss,
                ))
                .await
                .map(|_| ()),
                c.get_trainee_summary(authed(
                    pb::GetTraineeSummaryRequest {
                        trainee: "organizations/acme/members/ann".into(),
                        start_time: start,
                        end_time: end,
                        ..Default::default()
                    },
                    &boss,
                ))
                .await
                .map(|_| ()),
                c.get_leaderboard(authed(
                    pb::GetLeaderboardRequest {
                        organization: "organizations/acme".into(),
                        start_time: start,
                        end_time: end,
                        ..Default::default()
                    },
                    &boss,
                ))
                .await
                .map(|_| ()),
                c.get_usage(authed(
                    pb::GetUsageRequest {
                        organization: "organizations/acme".into(),
                        start_time: start,
                        end_time: end,
                        ..Default::default()
                    },
                    &boss,
                ))
                .await
                .map(|_| ()),
            ];
            for (i, r) in codes.into_iter().enumerate() {
                let err = r.expect_err("an overflowing timestamp must be refused");
                assert_eq!(err.code(), Code::InvalidArgument, "rpc {i} {t:?}: {err:?}");
            }
        }
        // Events: the occur time and the session's start time.
        let mut e = graded("o1", "acme", "s7", "ann", BASE_US, 50.0, "v1", "", BASE_US);
        e.occur_time = Some(t);
        let mut f = graded("o2", "acme", "s8", "ann", BASE_US, 50.0, "v1", "", BASE_US);
        if let Some(salestrainer_proto::events::event::Payload::SessionGraded(g)) = &mut f.payload {
            g.session_start_time = Some(t);
            g.session_duration = Some(prost_types::Duration {
                seconds: i64::MAX,
                nanos: 999_999_999,
            });
        }
        // A duration that overflows alone is refused too.
        let mut g = graded("o3", "acme", "s9", "ann", BASE_US, 50.0, "v1", "", BASE_US);
        if let Some(salestrainer_proto::events::event::Payload::SessionGraded(x)) = &mut g.payload {
            x.session_duration = Some(prost_types::Duration {
                seconds: i64::MAX,
                nanos: 0,
            });
        }
        for ev in [e, f, g] {
            let err = c
                .ingest_events(authed(
                    pb::IngestEventsRequest { events: vec![ev] },
                    &h.service(),
                ))
                .await
                .expect_err("must be refused");
            assert_eq!(err.code(), Code::InvalidArgument, "{t:?}: {err:?}");
        }
    }
    // Nothing was written.
    assert_eq!(summary(&h, &boss, org_summary("acme")).await.sessions, 1);
    h.finish().await;
}

#[tokio::test]
async fn overflowing_timestamps_are_invalid_sqlite() {
    overflowing_timestamps_are_invalid(Backend::Sqlite).await;
}

#[tokio::test]
async fn overflowing_timestamps_are_invalid_postgres() {
    overflowing_timestamps_are_invalid(Backend::Postgres).await;
}
