//! Issue 11, tried as an attacker would, over real connections on SQLite and PostgreSQL:
//! a manager demoted to trainee, or removed, keeps an old token and tries to read another
//! trainee's transcript, every evaluation and the organization's analytics; a subject that
//! was never a member lists sessions; a user token claims the service role; a token is used
//! before its `nbf`. Each is refused. And how fast a demotion and a removal take effect in
//! each service, measured (printed) and held to 1 s — on SQLite with the in-process bus, and
//! on PostgreSQL with Redis as the bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use salestrainer_proto::{analytics as an, call, config as cfg, events as ev, grading as gr};
use salestrainer_runtime::{Role, auth::TokenMinter};
use salestrainer_tests::{Backend, TEST_SECRET, authed};
use support::{ORG, World, code, forge, member, now_secs};
use tonic::Code;

/// Long enough for a membership change to reach every service (the contract: 1 s).
const PROPAGATION: Duration = Duration::from_millis(1_000);

fn transcript(session: &str) -> String {
    format!("{session}/transcript")
}

/// What a caller whose stored role is trainee (not tom) must not get of tom's: each line a
/// failure.
async fn reads_of_toms_data(w: &World, token: &str, removed: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut refused = |what: &str, got: Code, allowed: &[Code]| {
        if !allowed.contains(&got) {
            wrong.push(format!("{what}: {got:?}, expected one of {allowed:?}"));
        }
    };
    let pd = [Code::PermissionDenied];
    // A trainee may be told another trainee's job or evaluation does not exist.
    let hidden: &[Code] = if removed {
        &pd
    } else {
        &[Code::PermissionDenied, Code::NotFound]
    };
    let mut calls = w.call();
    let mut grading = w.grading();
    let mut analytics = w.analytics();
    refused(
        "call GetTranscript (tom's)",
        code(
            calls
                .get_transcript(authed(
                    call::GetTranscriptRequest {
                        name: transcript(&w.session),
                    },
                    token,
                ))
                .await,
        ),
        &pd,
    );
    refused(
        "call GetSession (tom's)",
        code(
            calls
                .get_session(authed(
                    call::GetSessionRequest {
                        name: w.session.clone(),
                    },
                    token,
                ))
                .await,
        ),
        &pd,
    );
    refused(
        "call ListSessions (trainee = tom)",
        code(
            calls
                .list_sessions(authed(
                    call::ListSessionsRequest {
                        parent: ORG.into(),
                        trainee: member("tom"),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        &pd,
    );
    refused(
        "grading GetEvaluation (tom's)",
        code(
            grading
                .get_evaluation(authed(
                    gr::GetEvaluationRequest {
                        name: w.evaluation.clone(),
                    },
                    token,
                ))
                .await,
        ),
        hidden,
    );
    refused(
        "grading GetGradingJob (tom's)",
        code(
            grading
                .get_grading_job(authed(
                    gr::GetGradingJobRequest {
                        name: w.job.clone(),
                    },
                    token,
                ))
                .await,
        ),
        hidden,
    );
    refused(
        "analytics GetOrganizationSummary (trainee = tom)",
        w.org_summary(token, &member("tom"))
            .await
            .err()
            .map_or(Code::Ok, |s| s.code()),
        &pd,
    );
    refused(
        "analytics GetTraineeSummary (tom)",
        code(
            analytics
                .get_trainee_summary(authed(
                    an::GetTraineeSummaryRequest {
                        trainee: member("tom"),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        &pd,
    );
    refused(
        "analytics GetLeaderboard",
        code(
            analytics
                .get_leaderboard(authed(
                    an::GetLeaderboardRequest {
                        organization: ORG.into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        &pd,
    );
    refused(
        "analytics GetUsage",
        code(
            analytics
                .get_usage(authed(
                    an::GetUsageRequest {
                        organization: ORG.into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        &pd,
    );

    // The unfiltered lists and the organization summary: refused outright for a removed
    // member; narrowed to the caller's own (none of tom's) for a demoted one.
    let sessions = calls
        .list_sessions(authed(
            call::ListSessionsRequest {
                parent: ORG.into(),
                ..Default::default()
            },
            token,
        ))
        .await;
    let evaluations = grading
        .list_evaluations(authed(
            gr::ListEvaluationsRequest {
                parent: ORG.into(),
                ..Default::default()
            },
            token,
        ))
        .await;
    let toms_evaluations = grading
        .list_evaluations(authed(
            gr::ListEvaluationsRequest {
                parent: ORG.into(),
                trainee: member("tom"),
                ..Default::default()
            },
            token,
        ))
        .await;
    let jobs = grading
        .list_grading_jobs(authed(
            gr::ListGradingJobsRequest {
                parent: ORG.into(),
                ..Default::default()
            },
            token,
        ))
        .await;
    let summary = w.org_summary(token, "").await;
    if removed {
        for (what, got) in [
            ("call ListSessions", sessions.err().map(|s| s.code())),
            (
                "grading ListEvaluations",
                evaluations.err().map(|s| s.code()),
            ),
            (
                "grading ListEvaluations (trainee = tom)",
                toms_evaluations.err().map(|s| s.code()),
            ),
            ("grading ListGradingJobs", jobs.err().map(|s| s.code())),
            (
                "analytics GetOrganizationSummary",
                summary.err().map(|s| s.code()),
            ),
        ] {
            refused(what, got.unwrap_or(Code::Ok), &pd);
        }
    } else {
        let toms = member("tom");
        match sessions {
            Ok(r) if r.get_ref().sessions.iter().all(|s| s.trainee != toms) => {}
            other => wrong.push(format!("call ListSessions shows tom's: {other:?}")),
        }
        match evaluations {
            Ok(r) if r.get_ref().evaluations.iter().all(|e| e.trainee != toms) => {}
            other => wrong.push(format!("grading ListEvaluations shows tom's: {other:?}")),
        }
        match toms_evaluations {
            Ok(r) if r.get_ref().evaluations.is_empty() => {}
            Err(s) if s.code() == Code::PermissionDenied => {}
            other => wrong.push(format!(
                "grading ListEvaluations (trainee = tom) shows tom's: {other:?}"
            )),
        }
        match jobs {
            Ok(r)
                if r.get_ref()
                    .grading_jobs
                    .iter()
                    .all(|j| j.session != w.session) => {}
            other => wrong.push(format!("grading ListGradingJobs shows tom's: {other:?}")),
        }
        // Narrowed to the caller, who never took a call: nothing of tom's graded session.
        match summary {
            Ok(s) if s.sessions == 0 && s.graded_sessions == 0 => {}
            other => wrong.push(format!(
                "analytics GetOrganizationSummary is not narrowed to the caller: {other:?}"
            )),
        }
    }
    wrong
}

/// Before the change: the manager's token reads all of it (so the refusals after are the
/// change's doing, not a broken fixture).
async fn manager_reads_toms_data(w: &World, token: &str) {
    let mut calls = w.call();
    calls
        .get_transcript(authed(
            call::GetTranscriptRequest {
                name: transcript(&w.session),
            },
            token,
        ))
        .await
        .expect("as manager: GetTranscript");
    let evaluations = w
        .grading()
        .list_evaluations(authed(
            gr::ListEvaluationsRequest {
                parent: ORG.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("as manager: ListEvaluations")
        .into_inner()
        .evaluations;
    assert!(
        evaluations.iter().any(|e| e.name == w.evaluation),
        "as manager: tom's evaluation is listed"
    );
    let summary = w.org_summary(token, "").await.expect("as manager: summary");
    assert!(summary.graded_sessions >= 1, "as manager: {summary:?}");
}

async fn demoted_or_removed_manager_reads_nothing_of_other_trainees(backend: Backend) {
    let w = World::start(backend, false, true).await;
    manager_reads_toms_data(&w, &w.dan).await;
    manager_reads_toms_data(&w, &w.rex).await;
    w.demote("dan").await;
    w.remove("rex").await;
    tokio::time::sleep(PROPAGATION).await;
    let mut wrong: Vec<String> = reads_of_toms_data(&w, &w.dan, false)
        .await
        .into_iter()
        .map(|l| format!("demoted manager: {l}"))
        .collect();
    wrong.extend(
        reads_of_toms_data(&w, &w.rex, true)
            .await
            .into_iter()
            .map(|l| format!("removed manager: {l}")),
    );
    w.stop().await;
    assert!(wrong.is_empty(), "{backend:?}:\n{}", wrong.join("\n"));
}

/// One public RPC of each service, read-only, as `token`.
async fn one_public_rpc_per_service(w: &World, token: &str) -> Vec<(&'static str, Code)> {
    vec![
        (
            "config GetOrganization",
            code(
                w.config()
                    .get_organization(authed(
                        cfg::GetOrganizationRequest { name: ORG.into() },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "call ListSessions",
            code(
                w.call()
                    .list_sessions(authed(
                        call::ListSessionsRequest {
                            parent: ORG.into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "grading ListEvaluations",
            code(
                w.grading()
                    .list_evaluations(authed(
                        gr::ListEvaluationsRequest {
                            parent: ORG.into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "analytics GetOrganizationSummary",
            w.org_summary(token, "")
                .await
                .err()
                .map_or(Code::Ok, |s| s.code()),
        ),
    ]
}

/// Each service's internal RPC (call has none in the contract), as `token`.
async fn internal_rpcs(w: &World, token: &str) -> Vec<(&'static str, Code)> {
    vec![
        (
            "config ResolveProviderCredential",
            code(
                w.config()
                    .resolve_provider_credential(authed(
                        cfg::ResolveProviderCredentialRequest {
                            parent: ORG.into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "grading SubmitSession",
            code(
                w.grading()
                    .submit_session(authed(
                        gr::SubmitSessionRequest {
                            session: w.session.clone(),
                            organization: ORG.into(),
                            scenario: w.scenario.clone(),
                            rubric: String::new(),
                            trainee: member("tom"),
                            assignment: String::new(),
                            request_id: "attacker".into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "analytics IngestEvents",
            code(
                w.analytics()
                    .ingest_events(authed(
                        an::IngestEventsRequest {
                            events: vec![ev::Event::default()],
                        },
                        token,
                    ))
                    .await,
            ),
        ),
    ]
}

async fn a_never_member_is_refused_everywhere(backend: Backend) {
    let w = World::start(backend, false, false).await;
    let got = one_public_rpc_per_service(&w, &w.stranger).await;
    w.stop().await;
    let wrong: Vec<String> = got
        .into_iter()
        .filter(|(_, c)| *c != Code::PermissionDenied)
        .map(|(what, c)| format!("{what}: {c:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "a token whose subject was never a member (expected PERMISSION_DENIED):\n{}",
        wrong.join("\n")
    );
}

async fn forged_and_early_tokens_are_unauthenticated(backend: Backend) {
    let w = World::start(backend, false, false).await;
    let now = now_secs();
    let claims = |role: &str, org: &str, aud: Option<&str>, nbf: Option<u64>| {
        let mut c = serde_json::json!({
            "sub": "alice", "org": org, "role": role, "iat": now, "exp": now + 600,
        });
        if let Some(aud) = aud {
            c["aud"] = aud.into();
        }
        if let Some(nbf) = nbf {
            c["nbf"] = nbf.into();
        }
        c
    };
    // The forger is right: the same claims as admin alice, signed the same way, pass.
    let control = forge(&claims("admin", "acme", None, None));
    let mut wrong = Vec::new();
    for (what, got) in one_public_rpc_per_service(&w, &control).await {
        if got != Code::Ok {
            wrong.push(format!("control (forged admin, no nbf) on {what}: {got:?}"));
        }
    }
    let attempts = [
        (
            "role=service (user secret)",
            forge(&claims("service", "acme", None, None)),
        ),
        (
            "role=service, aud=salestrainer-services, no organization (user secret)",
            forge(&claims(
                "service",
                "",
                Some(salestrainer_runtime::auth::SERVICE_AUDIENCE),
                None,
            )),
        ),
        (
            "nbf 10 minutes ahead",
            forge(&claims("admin", "acme", None, Some(now + 600))),
        ),
    ];
    for (attempt, token) in &attempts {
        let mut got = one_public_rpc_per_service(&w, token).await;
        got.extend(internal_rpcs(&w, token).await);
        for (what, code) in got {
            if code != Code::Unauthenticated {
                wrong.push(format!(
                    "{attempt} on {what}: {code:?}, expected Unauthenticated"
                ));
            }
        }
    }
    w.stop().await;
    assert!(wrong.is_empty(), "{backend:?}:\n{}", wrong.join("\n"));
}

#[test]
fn the_token_minter_will_not_mint_the_service_role() {
    let minter = TokenMinter::new(TEST_SECRET, "");
    assert!(
        minter.mint("mallory", "acme", Role::Service, 600).is_err(),
        "`salestrainer token --role service` must not mint a service identity"
    );
    assert!(minter.mint("mallory", "acme", Role::Admin, 600).is_ok());
}

// ---- how fast a demotion and a removal take effect, per service ----

const SERVICES: [&str; 4] = ["config", "call", "grading", "analytics"];

/// A staff-only, read-only (or refused-before-writing) probe of `service` as `token`: allowed
/// for a manager, PERMISSION_DENIED for a trainee or a non-member.
async fn probe(w: &World, service: &str, token: &str) -> Code {
    match service {
        "config" => code(
            w.config()
                .get_member(authed(
                    cfg::GetMemberRequest {
                        name: member("tom"),
                    },
                    token,
                ))
                .await,
        ),
        "call" => code(
            w.call()
                .get_transcript(authed(
                    call::GetTranscriptRequest {
                        name: transcript(&w.session),
                    },
                    token,
                ))
                .await,
        ),
        // A session never graded: NOT_FOUND for staff, nothing created.
        "grading" => code(
            w.grading()
                .regrade_session(authed(
                    gr::RegradeSessionRequest {
                        session: format!("{ORG}/sessions/never-graded"),
                        rubric: String::new(),
                        request_id: String::new(),
                    },
                    token,
                ))
                .await,
        ),
        _ => code(
            w.analytics()
                .get_usage(authed(
                    an::GetUsageRequest {
                        organization: ORG.into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
    }
}

/// Polls `service` with `token` until refused; the milliseconds since `since`, or `None` if
/// still allowed after 3 s.
async fn refused_after(w: &World, service: &str, token: &str, since: Instant) -> Option<u128> {
    loop {
        if probe(w, service, token).await == Code::PermissionDenied {
            return Some(since.elapsed().as_millis());
        }
        if since.elapsed() > Duration::from_secs(3) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn revocation_latency(backend: Backend, redis: bool) {
    let w = World::start(backend, redis, false).await;
    let bus = if redis { "Redis bus" } else { "in-process bus" };
    let mut late = Vec::new();
    for (change, token) in [("demotion", &w.dan), ("removal", &w.rex)] {
        // Warm every service's view of the member as a manager (so a cached role must be
        // dropped, not merely never fetched).
        for service in SERVICES {
            for _ in 0..2 {
                let got = probe(&w, service, token).await;
                assert!(
                    got != Code::PermissionDenied && got != Code::Unauthenticated,
                    "{change}: {service} refuses the manager before the change: {got:?}"
                );
            }
        }
        let sent = Instant::now();
        if change == "demotion" {
            w.demote("dan").await;
        } else {
            w.remove("rex").await;
        }
        let committed = Instant::now();
        let (a, b, c, d) = tokio::join!(
            refused_after(&w, "config", token, committed),
            refused_after(&w, "call", token, committed),
            refused_after(&w, "grading", token, committed),
            refused_after(&w, "analytics", token, committed),
        );
        let rpc_ms = committed.duration_since(sent).as_millis();
        for (service, ms) in SERVICES.into_iter().zip([a, b, c, d]) {
            match ms {
                Some(ms) => println!(
                    "{backend:?} ({bus}): {change} refused by {service} {ms} ms after the \
                     {} returned (the RPC took {rpc_ms} ms)",
                    if change == "demotion" {
                        "UpdateMember"
                    } else {
                        "DeleteMember"
                    }
                ),
                None => println!("{backend:?} ({bus}): {change} NOT refused by {service} in 3 s"),
            }
            if ms.is_none_or(|ms| ms > 1_000) {
                late.push(format!("{change} in {service}: {ms:?} ms"));
            }
        }
    }
    w.stop().await;
    assert!(
        late.is_empty(),
        "{backend:?} ({bus}): not within 1 s:\n{}",
        late.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_demoted_or_removed_manager_reads_nothing_of_other_trainees() {
    demoted_or_removed_manager_reads_nothing_of_other_trainees(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_demoted_or_removed_manager_reads_nothing_of_other_trainees() {
    demoted_or_removed_manager_reads_nothing_of_other_trainees(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_never_member_is_refused_everywhere() {
    a_never_member_is_refused_everywhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_never_member_is_refused_everywhere() {
    a_never_member_is_refused_everywhere(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_forged_and_early_tokens_are_unauthenticated() {
    forged_and_early_tokens_are_unauthenticated(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forged_and_early_tokens_are_unauthenticated() {
    forged_and_early_tokens_are_unauthenticated(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_process_bus_revocation_takes_effect_within_a_second() {
    revocation_latency(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redis_bus_revocation_takes_effect_within_a_second() {
    revocation_latency(Backend::Postgres, true).await;
}
