//! Real calls (ImportCall) and drills (StartSession with `drill`), end to end over a real
//! connection on SQLite and PostgreSQL: the whole suite in-process, graded by the built-in
//! grader, counted by analytics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, RESTRICTED, SCENARIO, Suite, suite_with};
use salestrainer_proto::{analytics as an, call as pb, config as cfg, grading as gr};
use salestrainer_tests::authed;
use tokio::time::Instant;
use tonic::Code;
use tonic_types::StatusExt;

const RUBRIC: &str = "organizations/acme/rubrics/two";

async fn suite(backend: Backend) -> Suite {
    let s = suite_with(backend, |s| {
        s.set_section(
            "call",
            serde_json::json!({
                "max_import_bytes": 4096,
                "max_segments_per_session": 40,
                "drill_max_turns": 2,
            }),
        )
    })
    .await;
    // A rubric of two criteria, so the weakest one is a choice.
    s.config
        .clone()
        .create_rubric(authed(
            cfg::CreateRubricRequest {
                parent: "organizations/acme".into(),
                rubric: Some(cfg::Rubric {
                    display_name: "Two".into(),
                    criteria: vec![
                        cfg::Criterion {
                            id: "discovery".into(),
                            skill: "discovery".into(),
                            weight: 1.0,
                            ..Default::default()
                        },
                        cfg::Criterion {
                            id: "objections".into(),
                            skill: "objection_handling".into(),
                            weight: 1.0,
                            ..Default::default()
                        },
                    ],
                    passing_score: 70.0,
                    ..Default::default()
                }),
                rubric_id: "two".into(),
            },
            &s.admin,
        ))
        .await
        .expect("create rubric");
    s
}

fn analytics(
    s: &Suite,
) -> an::analytics_service_client::AnalyticsServiceClient<tonic::transport::Channel> {
    an::analytics_service_client::AnalyticsServiceClient::new(s.app.channel.clone())
}

fn grading(
    s: &Suite,
) -> gr::grading_service_client::GradingServiceClient<tonic::transport::Channel> {
    gr::grading_service_client::GradingServiceClient::new(s.app.channel.clone())
}

const VTT: &str = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Tom>Hi Dana, Tom from RouteWise. How do you plan your routes today?\n\n00:00:04.500 --> 00:00:09.000\n<v Dana>By hand, in spreadsheets. And honestly your price is too high for us.\n\n00:00:09.500 --> 00:00:14.000\n<v Tom>What do late deliveries cost you each month?\n\n00:00:14.500 --> 00:00:18.000\n<v Dana>About 20k in penalties.\n\n00:00:18.500 --> 00:00:22.000\n<v Tom>Could we book 30 minutes on Tuesday to walk through the numbers?\n";

fn import(trainee: &str, content: &str, format: pb::TranscriptFormat) -> pb::ImportCallRequest {
    pb::ImportCallRequest {
        parent: "organizations/acme".into(),
        trainee: format!("organizations/acme/members/{trainee}"),
        scenario: SCENARIO.into(),
        rubric: RUBRIC.into(),
        format: format as i32,
        content: content.into(),
        rep_speaker: "tom".into(),
        title: "Northwind discovery call".into(),
        ..Default::default()
    }
}

async fn import_call(
    s: &Suite,
    token: &str,
    req: pb::ImportCallRequest,
) -> Result<pb::ImportCallResponse, tonic::Status> {
    s.call
        .clone()
        .import_call(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

async fn wait_graded(s: &Suite, name: &str) -> pb::Session {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = s.session(name).await;
        if got.state == pb::SessionState::Graded as i32 {
            return got;
        }
        assert_ne!(got.state, pb::SessionState::Failed as i32, "{got:?}");
        assert!(Instant::now() < deadline, "not graded within 30 s: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `check` holds (analytics reads its events asynchronously).
async fn eventually<T, F, Fut>(what: &str, mut get: F, check: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
    T: std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = get().await;
        if check(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what} within 30 s: {got:?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn list(s: &Suite, source: pb::SessionSource, filter: &str) -> Vec<pb::Session> {
    s.call
        .clone()
        .list_sessions(authed(
            pb::ListSessionsRequest {
                parent: "organizations/acme".into(),
                source: source as i32,
                filter: filter.into(),
                ..Default::default()
            },
            &s.mia,
        ))
        .await
        .expect("list")
        .into_inner()
        .sessions
}

async fn evaluation(s: &Suite, token: &str, name: &str) -> Result<gr::Evaluation, tonic::Status> {
    grading(s)
        .get_evaluation(authed(
            gr::GetEvaluationRequest { name: name.into() },
            token,
        ))
        .await
        .map(|r| r.into_inner().evaluation.expect("evaluation"))
}

/// The organization's numbers (as mia, a manager) of one source, within one scenario or all.
async fn summary(s: &Suite, source: an::SessionSource, scenario: &str) -> an::SummaryStats {
    analytics(s)
        .get_organization_summary(authed(
            an::GetOrganizationSummaryRequest {
                name: "organizations/acme".into(),
                scenario: scenario.into(),
                source: source as i32,
                ..Default::default()
            },
            &s.mia,
        ))
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap()
}

/// Tom's own trainee summary of his real calls.
async fn tom_real_calls(s: &Suite) -> an::GetTraineeSummaryResponse {
    analytics(s)
        .get_trainee_summary(authed(
            an::GetTraineeSummaryRequest {
                trainee: "organizations/acme/members/tom".into(),
                source: an::SessionSource::RealCall as i32,
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The real calls' leaderboard, within one scenario or all.
async fn leaderboard(s: &Suite, scenario: &str) -> Vec<an::LeaderboardEntry> {
    analytics(s)
        .get_leaderboard(authed(
            an::GetLeaderboardRequest {
                organization: "organizations/acme".into(),
                scenario: scenario.into(),
                source: an::SessionSource::RealCall as i32,
                ..Default::default()
            },
            &s.mia,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries
}

/// A graded TEXT practice session of tom's on `scenario`.
async fn practise(s: &Suite) -> pb::Session {
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let mut c = s.converse(&s.tom, &session.name).await;
    let _started = c.next().await.unwrap();
    c.reply().await.unwrap();
    c.say("Hi Dana, how do you plan your routes today?", "t1")
        .await
        .unwrap();
    c.say("Ok. Well, thanks anyway, bye.", "t2").await.unwrap();
    c.end().await;
    wait_graded(s, &session.name).await
}

async fn real_call_is_graded_and_counted_apart(backend: Backend) {
    let s = suite(backend).await;
    let started = Instant::now();
    let out = import_call(
        &s,
        &s.mia,
        import("tom", VTT, pb::TranscriptFormat::Unspecified),
    )
    .await
    .expect("import");
    let imported = started.elapsed();
    assert_eq!(out.format, pb::TranscriptFormat::Webvtt as i32, "detected");
    assert_eq!(out.segment_count, 5);
    let session = out.session.unwrap();
    assert_eq!(session.source, pb::SessionSource::RealCall as i32);
    assert_eq!(session.state, pb::SessionState::Ended as i32);
    assert_eq!(session.trainee, "organizations/acme/members/tom");
    assert_eq!(session.rubric, RUBRIC);
    assert_eq!(session.title, "Northwind discovery call");
    assert_eq!(session.duration.unwrap().seconds, 22);
    let t = s.transcript(&session.name).await;
    assert!(t.r#final);
    let who: Vec<i32> = t.segments.iter().map(|x| x.speaker).collect();
    let (tr, pe) = (pb::Speaker::Trainee as i32, pb::Speaker::Persona as i32);
    assert_eq!(who, [tr, pe, tr, pe, tr]);
    assert!(
        t.segments
            .iter()
            .all(|x| x.source == pb::TranscriptSource::Import as i32)
    );
    assert_eq!(t.segments[1].start_offset.unwrap().seconds, 4);

    // Graded like a practice call, with the rubric it was uploaded with.
    let graded = wait_graded(&s, &session.name).await;
    eprintln!(
        "{backend:?}: ImportCall answered in {imported:?}, GRADED {:?} after the upload",
        started.elapsed()
    );
    let eval = evaluation(&s, &s.tom, &graded.evaluation).await.unwrap();
    assert_eq!(eval.rubric, RUBRIC);
    let ids: Vec<&str> = eval
        .criterion_scores
        .iter()
        .map(|c| c.criterion_id.as_str())
        .collect();
    assert_eq!(ids, ["discovery", "objections"]);

    // A practice call beside it; the two are listed and counted apart.
    let practice = practise(&s).await;
    let names = |v: Vec<pb::Session>| v.into_iter().map(|x| x.name).collect::<Vec<_>>();
    assert_eq!(
        names(list(&s, pb::SessionSource::RealCall, "").await),
        [session.name.as_str()]
    );
    assert_eq!(
        names(list(&s, pb::SessionSource::Unspecified, "source = PRACTICE").await),
        [practice.name.as_str()]
    );
    assert_eq!(list(&s, pb::SessionSource::Unspecified, "").await.len(), 2);

    let real = eventually(
        "the real call counted",
        || summary(&s, an::SessionSource::RealCall, ""),
        |x| x.graded_sessions == 1,
    )
    .await;
    assert_eq!(real.sessions, 1);
    assert!((real.average_score - graded.overall_score).abs() < 0.01);
    let practice_summary = eventually(
        "the practice call counted",
        || summary(&s, an::SessionSource::Unspecified, ""),
        |x| x.graded_sessions == 1,
    )
    .await;
    assert_eq!(practice_summary.sessions, 1, "the real call stays out");
    assert!((practice_summary.average_score - practice.overall_score).abs() < 0.01);
    // The trainee's own summary and the leaderboard take the same filter.
    let trainee_real = tom_real_calls(&s).await;
    assert_eq!(trainee_real.summary.unwrap().sessions, 1);
    assert_eq!(trainee_real.recent_evaluations.len(), 1);
    assert_eq!(trainee_real.recent_evaluations[0].session, session.name);
    let board = leaderboard(&s, "").await;
    assert_eq!(board.len(), 1);
    assert_eq!(board[0].sessions, 1);
}

/// A real customer has no persona: a call uploaded with a rubric and no scenario is graded on
/// that rubric, counted as a real call (under no scenario), and drilled on a scenario named then.
async fn real_call_without_scenario_is_graded_and_counted(backend: Backend) {
    let s = suite(backend).await;
    let mut req = import("tom", VTT, pb::TranscriptFormat::Webvtt);
    req.scenario.clear();
    let session = import_call(&s, &s.mia, req)
        .await
        .expect("import without a scenario")
        .session
        .unwrap();
    assert_eq!(session.scenario, "");
    assert_eq!(session.rubric, RUBRIC);
    assert_eq!(session.source, pb::SessionSource::RealCall as i32);

    let graded = wait_graded(&s, &session.name).await;
    let eval = evaluation(&s, &s.tom, &graded.evaluation).await.unwrap();
    assert_eq!(eval.rubric, RUBRIC);
    assert_eq!(eval.scenario, "");
    let ids: Vec<&str> = eval
        .criterion_scores
        .iter()
        .map(|c| c.criterion_id.as_str())
        .collect();
    assert_eq!(ids, ["discovery", "objections"]);

    let real = eventually(
        "the real call counted",
        || summary(&s, an::SessionSource::RealCall, ""),
        |x| x.graded_sessions == 1,
    )
    .await;
    assert_eq!(real.sessions, 1);
    assert_eq!(real.average_duration.unwrap().seconds, 22, "{real:?}");
    assert!((real.average_score - graded.overall_score).abs() < 0.01);
    // Not practice, and under no scenario.
    assert_eq!(
        summary(&s, an::SessionSource::Unspecified, "")
            .await
            .sessions,
        0
    );
    assert_eq!(
        summary(&s, an::SessionSource::RealCall, SCENARIO)
            .await
            .sessions,
        0
    );
    let all = leaderboard(&s, "").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].sessions, 1);
    assert!(leaderboard(&s, SCENARIO).await.is_empty());
    let trainee_real = tom_real_calls(&s).await;
    assert_eq!(trainee_real.summary.unwrap().graded_sessions, 1);
    assert_eq!(trainee_real.recent_evaluations[0].session, session.name);

    // A drill of it needs a scenario to play the customer: one the trainee may practise.
    let drill_req = |scenario: &str| pb::StartSessionRequest {
        parent: "organizations/acme".into(),
        scenario: scenario.into(),
        drill: graded.evaluation.clone(),
        ..Default::default()
    };
    let start = |req: pb::StartSessionRequest| {
        let mut c = s.call.clone();
        let token = s.tom.clone();
        async move { c.start_session(authed(req, &token)).await }
    };
    let err = start(drill_req("")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violation(&err).0, "scenario");
    let err = start(drill_req(RESTRICTED)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let drill = start(drill_req(SCENARIO))
        .await
        .expect("drill on a named scenario")
        .into_inner()
        .session
        .unwrap();
    assert_eq!(drill.scenario, SCENARIO);
    assert_eq!(drill.rubric, RUBRIC);
    assert_eq!(drill.drill_of.unwrap().evaluation, graded.evaluation);
}

fn violation(status: &tonic::Status) -> (String, String) {
    let br = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no field violations: {status:?}"));
    let v = &br.field_violations[0];
    (v.field.clone(), v.description.clone())
}

async fn bad_files_and_callers_are_refused_and_change_nothing(backend: Backend) {
    let s = suite(backend).await;
    let cases = [
        (
            pb::TranscriptFormat::Plain,
            "tom: Hi Dana.\nDana: Hello.\nno speaker on this line\n",
            3,
        ),
        (
            pb::TranscriptFormat::Webvtt,
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\ntom: Hi.\n\n00:00:03.000 -> 00:00:04.000\nDana: Hello.\n",
            6,
        ),
        (
            pb::TranscriptFormat::Srt,
            "1\n00:00:01,000 --> 00:00:02,000\ntom: Hi.\n\n2\n00:00:03,000 --> 00:00:04,000\nHello there.\n",
            7,
        ),
        (
            pb::TranscriptFormat::Json,
            "[\n  {\"speaker\": \"tom\", \"text\": \"Hi\"},\n  {\"speaker\": \"Dana\"}\n]\n",
            3,
        ),
    ];
    for (format, content, line) in cases {
        let err = import_call(&s, &s.mia, import("tom", content, format))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{format:?}: {err:?}");
        let (field, description) = violation(&err);
        assert_eq!(field, "content");
        assert!(
            description.starts_with(&format!("line {line}:")),
            "{format:?}: {description}"
        );
    }
    // The rep must speak in the file.
    let mut req = import(
        "tom",
        "Dana: Hello.\nBob: Hi.\n",
        pb::TranscriptFormat::Plain,
    );
    req.rep_speaker = "Tom".into();
    let err = import_call(&s, &s.mia, req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let (field, description) = violation(&err);
    assert_eq!(field, "rep_speaker");
    assert!(description.contains("Dana, Bob"), "{description}");

    // Size limits: the file (max_import_bytes) and the transcript limits.
    let big = "tom: hello there, this is a long line of a call\n".repeat(100);
    let err = import_call(&s, &s.mia, import("tom", &big, pb::TranscriptFormat::Plain))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("max_import_bytes"), "{err:?}");
    let many = "tom: hi\n".repeat(41);
    let err = import_call(
        &s,
        &s.mia,
        import("tom", &many, pb::TranscriptFormat::Plain),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("max_segments_per_session"),
        "{err:?}"
    );

    // Who: a trainee only for themself; another organization does not see acme; a member
    // that does not exist is NOT_FOUND.
    let err = import_call(
        &s,
        &s.tom,
        import("tina", VTT, pb::TranscriptFormat::Webvtt),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let outsider = s.outsider().await;
    let err = import_call(
        &s,
        &outsider,
        import("tom", VTT, pb::TranscriptFormat::Webvtt),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = import_call(
        &s,
        &s.mia,
        import("ghost", VTT, pb::TranscriptFormat::Webvtt),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = import_call(
        &s,
        &s.service,
        import("tom", VTT, pb::TranscriptFormat::Webvtt),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // The rubric is required (a real call may have no scenario to take one from), and must
    // exist.
    let mut no_rubric = import("tom", VTT, pb::TranscriptFormat::Webvtt);
    no_rubric.rubric.clear();
    let err = import_call(&s, &s.mia, no_rubric).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(violation(&err).0, "rubric");
    let mut unknown = import("tom", VTT, pb::TranscriptFormat::Webvtt);
    unknown.rubric = "organizations/acme/rubrics/nonesuch".into();
    let err = import_call(&s, &s.mia, unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let mut unknown = import("tom", VTT, pb::TranscriptFormat::Webvtt);
    unknown.scenario = "organizations/acme/scenarios/nonesuch".into();
    let err = import_call(&s, &s.mia, unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(
        list(&s, pb::SessionSource::Unspecified, "")
            .await
            .is_empty(),
        "a refused import writes nothing"
    );

    // Tom's own call is his to upload; a retry with its request id is the same session.
    let mut own = import("tom", VTT, pb::TranscriptFormat::Webvtt);
    own.request_id = "upload-1".into();
    let first = import_call(&s, &s.tom, own.clone()).await.unwrap();
    let again = import_call(&s, &s.tom, own).await.unwrap();
    assert_eq!(first.session.unwrap().name, again.session.unwrap().name);
    assert_eq!(list(&s, pb::SessionSource::RealCall, "").await.len(), 1);
}

async fn drill_reopens_the_weakest_moment(backend: Backend) {
    let s = suite(backend).await;
    // The practice scenario grades with the two-criterion rubric.
    let mut cc = s.config.clone();
    let mut scenario = cc
        .get_scenario(authed(
            cfg::GetScenarioRequest {
                name: SCENARIO.into(),
            },
            &s.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .scenario
        .unwrap();
    scenario.rubric = RUBRIC.into();
    cc.update_scenario(authed(
        cfg::UpdateScenarioRequest {
            scenario: Some(scenario),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["rubric".into()],
            }),
        },
        &s.admin,
    ))
    .await
    .expect("update scenario");

    let practice = practise(&s).await;
    let drilled = evaluation(&s, &s.tom, &practice.evaluation).await.unwrap();
    let weakest = drilled
        .criterion_scores
        .iter()
        .fold(None::<&gr::CriterionScore>, |best, c| match best {
            Some(b) if b.normalized_score <= c.normalized_score => Some(b),
            _ => Some(c),
        })
        .unwrap();
    let customer_lines: Vec<String> = s
        .transcript(&practice.name)
        .await
        .segments
        .into_iter()
        .filter(|x| x.speaker == pb::Speaker::Persona as i32)
        .map(|x| x.text)
        .collect();

    let drill_req = |token_scenario: &str| pb::StartSessionRequest {
        parent: "organizations/acme".into(),
        scenario: token_scenario.into(),
        drill: practice.evaluation.clone(),
        ..Default::default()
    };
    // Another member's evaluation does not exist for the caller, staff included; another
    // organization's neither.
    for token in [s.tina.clone(), s.mia.clone(), s.outsider().await] {
        let err = s
            .call
            .clone()
            .start_session(authed(drill_req(""), &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }
    // A drill runs on the drilled scenario, as TEXT.
    let err = s
        .call
        .clone()
        .start_session(authed(
            drill_req("organizations/acme/scenarios/restricted"),
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let drill = s
        .call
        .clone()
        .start_session(authed(drill_req(""), &s.tom))
        .await
        .expect("start drill")
        .into_inner()
        .session
        .unwrap();
    assert_eq!(drill.scenario, SCENARIO);
    assert_eq!(drill.rubric, drilled.rubric);
    assert_eq!(drill.mode, pb::SessionMode::Text as i32);
    assert_eq!(drill.source, pb::SessionSource::Practice as i32);
    let of = drill.drill_of.clone().unwrap();
    assert_eq!(of.evaluation, practice.evaluation);
    assert_eq!(of.criterion, weakest.criterion_id);
    assert_eq!(of.skill, weakest.skill);
    assert!((of.score - weakest.normalized_score).abs() < 1e-9);
    assert!(
        salestrainer_call::domain::drill::is_objection(&of.objection),
        "a drill reopens pushback: {:?}",
        of.objection
    );
    assert!(
        customer_lines.contains(&of.objection),
        "the customer's own words: {:?} in {customer_lines:?}",
        of.objection
    );

    // The persona's first words are that objection; the drill ends after drill_max_turns.
    let mut c = s.converse(&s.tom, &drill.name).await;
    let _started = c.next().await.unwrap();
    let opening = c.reply().await.unwrap();
    assert_eq!(opening.text(), of.objection);
    c.say("I hear you. What would make it worth it for you?", "d1")
        .await
        .unwrap();
    c.say("Fair. Could we look at your numbers on Tuesday?", "d2")
        .await
        .unwrap();
    let ended = match c.next().await.unwrap() {
        pb::converse_response::Payload::Ended(e) => e,
        other => panic!("expected the drill to end, got {other:?}"),
    };
    assert_eq!(ended.end_reason, pb::EndReason::PersonaEnded as i32);
    let graded = wait_graded(&s, &drill.name).await;
    let after = evaluation(&s, &s.tom, &graded.evaluation).await.unwrap();
    let in_drill = |e: &gr::Evaluation| {
        e.criterion_scores
            .iter()
            .find(|c| c.criterion_id == of.criterion)
            .unwrap()
            .clone()
    };
    let drilled_criterion = in_drill(&after);
    // tom's next practice session of the scenario, after the drill.
    let next = practise(&s).await;
    let next_eval = evaluation(&s, &s.tom, &next.evaluation).await.unwrap();
    let next_score = in_drill(&next_eval).normalized_score;
    let before = weakest.normalized_score;

    // Drill impact by the criterion itself: before = the drilled evaluation, in the drill,
    // and in the next practice session.
    let impact = |token: String, trainee: &str| {
        let mut c = analytics(&s);
        let trainee = trainee.to_owned();
        async move {
            c.get_drill_impact(authed(
                an::GetDrillImpactRequest {
                    organization: "organizations/acme".into(),
                    trainee,
                    ..Default::default()
                },
                &token,
            ))
            .await
        }
    };
    let got = eventually(
        "the drill and the next practice counted",
        || async { impact(s.tom.clone(), "").await.unwrap().into_inner() },
        |r| {
            r.criteria
                .first()
                .is_some_and(|c| c.next_practice_sessions == 1)
        },
    )
    .await;
    assert_eq!(got.criteria.len(), 1);
    let row = &got.criteria[0];
    assert_eq!(
        (row.criterion.as_str(), row.drills, row.basis),
        (
            of.criterion.as_str(),
            1,
            an::DrillImpactBasis::Criterion as i32
        )
    );
    let near = |a: f64, b: f64| (a - b).abs() < 0.01;
    assert!(near(row.mean_score_before, before), "{row:?}");
    assert!(
        near(row.mean_score_after, drilled_criterion.normalized_score),
        "{row:?}"
    );
    assert!(near(row.lift, drilled_criterion.normalized_score - before));
    assert!(near(row.mean_score_next_practice, next_score), "{row:?}");
    assert!(near(row.next_practice_lift, next_score - before), "{row:?}");

    // A manager's override of the criterion in the drill counts at once; clearing it
    // restores the grader's score.
    let to = if drilled_criterion.score >= f64::from(drilled_criterion.scale_max) {
        drilled_criterion.scale_min
    } else {
        drilled_criterion.scale_max
    };
    let to_normalized = if to == drilled_criterion.scale_max {
        100.0
    } else {
        0.0
    };
    grading(&s)
        .override_evaluation(authed(
            gr::OverrideEvaluationRequest {
                name: graded.evaluation.clone(),
                criterion_overrides: vec![gr::CriterionOverride {
                    criterion_id: of.criterion.clone(),
                    score: f64::from(to),
                }],
                reason: "handled it well".into(),
                ..Default::default()
            },
            &s.mia,
        ))
        .await
        .expect("override");
    eventually(
        "the override counted in drill impact",
        || async { impact(s.mia.clone(), "").await.unwrap().into_inner() },
        |r| r.criteria.len() == 1 && near(r.criteria[0].mean_score_after, to_normalized),
    )
    .await;
    grading(&s)
        .clear_evaluation_override(authed(
            gr::ClearEvaluationOverrideRequest {
                name: graded.evaluation.clone(),
                criterion_ids: vec![of.criterion.clone()],
                reason: "the grader was right".into(),
                ..Default::default()
            },
            &s.mia,
        ))
        .await
        .expect("clear");
    let got = eventually(
        "the cleared override restored drill impact",
        || async { impact(s.tom.clone(), "").await.unwrap().into_inner() },
        |r| {
            r.criteria.len() == 1
                && near(
                    r.criteria[0].mean_score_after,
                    drilled_criterion.normalized_score,
                )
        },
    )
    .await;
    // Staff see everyone's; a trainee not another's.
    let staff = impact(s.mia.clone(), "").await.unwrap().into_inner();
    assert_eq!(staff.criteria, got.criteria);
    let tina = impact(s.tina.clone(), "").await.unwrap().into_inner();
    assert!(tina.criteria.is_empty());
    let err = impact(s.tina.clone(), "organizations/acme/members/tom")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn sqlite_real_call_is_graded_and_counted_apart() {
    real_call_is_graded_and_counted_apart(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_real_call_is_graded_and_counted_apart() {
    real_call_is_graded_and_counted_apart(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_real_call_without_scenario_is_graded_and_counted() {
    real_call_without_scenario_is_graded_and_counted(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_real_call_without_scenario_is_graded_and_counted() {
    real_call_without_scenario_is_graded_and_counted(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_bad_files_and_callers_are_refused_and_change_nothing() {
    bad_files_and_callers_are_refused_and_change_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_bad_files_and_callers_are_refused_and_change_nothing() {
    bad_files_and_callers_are_refused_and_change_nothing(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_drill_reopens_the_weakest_moment() {
    drill_reopens_the_weakest_moment(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_drill_reopens_the_weakest_moment() {
    drill_reopens_the_weakest_moment(Backend::Postgres).await;
}
