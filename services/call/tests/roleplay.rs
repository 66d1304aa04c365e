//! Text roleplay end to end: StartSession, Converse against the scripted persona over a real
//! gRPC stream, EndConversation, SessionEnded on the bus, WatchSession, ListSessions, and the
//! bad-input cases. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, RESTRICTED, SCENARIO, Suite, await_event, suite};
use salestrainer_bus::SubscribeOptions;
use salestrainer_proto::{call as pb, events as ev};
use salestrainer_runtime::events::{TOPIC_GRADING, TOPIC_SESSIONS, new_event, to_envelope};
use salestrainer_tests::authed;
use tonic::Code;

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::suite(super::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::suite(super::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

both_backends!(
    full_text_roleplay_through_session_ended,
    bad_input_changes_nothing,
    list_sessions_scopes_and_paginates,
    watch_session_pushes_grading_states,
);

async fn full_text_roleplay_through_session_ended(s: Suite) {
    let mut sub = s
        .app
        .ctx
        .bus
        .subscribe(
            TOPIC_SESSIONS,
            "call-test",
            "t",
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let started = s.start(&s.tom, pb::SessionMode::Text).await;
    let session = started.session.unwrap();
    assert_eq!(session.state, pb::SessionState::Active as i32);
    assert_eq!(session.trainee, "organizations/acme/members/tom");
    assert!(started.voice_assistant.is_none());
    await_event(&mut sub, &session.name, "started").await;

    let mut c = s.converse(&s.tom, &session.name).await;
    match c.next().await.unwrap() {
        pb::converse_response::Payload::Started(st) => {
            assert_eq!(st.session.unwrap().name, session.name)
        }
        other => panic!("{other:?}"),
    }
    let greeting = c.reply().await.unwrap();
    assert!(
        greeting.text().starts_with("Hi, this is Dana Reyes"),
        "{}",
        greeting.text()
    );
    assert!(greeting.chunks.len() > 3, "streamed in chunks");
    assert_eq!(greeting.done.as_ref().unwrap().client_turn_id, "");

    let r = c
        .say("How do you plan your routes today?", "t1")
        .await
        .unwrap();
    assert!(r.text().contains("spreadsheets"), "{}", r.text());
    assert_eq!(r.text(), r.done.as_ref().unwrap().full_text);
    let r = c
        .say(
            "RouteWise plans the routes automatically every morning and sends them to a driver app.",
            "t2",
        )
        .await
        .unwrap();
    assert!(
        r.text().contains("price is too high"),
        "objection raised: {}",
        r.text()
    );
    let r = c
        .say(
            "I understand, price matters. Most customers your size recover the cost within three months from fewer late-delivery penalties.",
            "t3",
        )
        .await
        .unwrap();
    assert!(!r.done.as_ref().unwrap().agreed_next_step);
    let r = c
        .say("Can we schedule a 30 minute demo next week?", "t4")
        .await
        .unwrap();
    let done = r.done.unwrap();
    assert!(done.agreed_next_step, "{}", done.full_text);
    assert_eq!(done.client_turn_id, "t4");

    // A resent turn id is not stored twice; the stored answer comes back.
    let again = c
        .say("Can we schedule a 30 minute demo next week?", "t4")
        .await
        .unwrap();
    assert!(again.chunks.is_empty());
    assert_eq!(again.done.unwrap().full_text, done.full_text);

    let ended = c.end().await;
    assert_eq!(ended.end_reason, pb::EndReason::TraineeEnded as i32);
    assert_eq!(ended.session.unwrap().state, pb::SessionState::Ended as i32);

    let event = await_event(&mut sub, &session.name, "ended").await;
    let Some(ev::event::Payload::SessionEnded(e)) = event.payload else {
        unreachable!()
    };
    assert_eq!(e.trainee, "organizations/acme/members/tom");
    assert_eq!(e.scenario, SCENARIO);
    assert_eq!(e.end_reason, ev::EndReason::TraineeEnded as i32);
    assert!(e.usage.is_none(), "scripted persona uses no LLM");

    let t = s.transcript(&session.name).await;
    assert!(t.r#final);
    assert_eq!(t.segments.len(), 9, "greeting + 4 turns x 2");
    let speakers: Vec<i32> = t.segments.iter().map(|x| x.speaker).collect();
    assert_eq!(speakers[0], pb::Speaker::Persona as i32);
    assert_eq!(speakers[1], pb::Speaker::Trainee as i32);
    assert!(t.segments.iter().all(|x| x.r#final));

    // EndSession on an ended session returns it unchanged.
    let again = s
        .call
        .clone()
        .end_session(authed(
            pb::EndSessionRequest {
                name: session.name.clone(),
                etag: String::new(),
            },
            &s.tom,
        ))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    // Unchanged by us; the grader may already have moved it on.
    assert!(
        [
            pb::SessionState::Ended,
            pb::SessionState::Grading,
            pb::SessionState::Graded,
            pb::SessionState::Failed
        ]
        .iter()
        .any(|x| *x as i32 == again.state),
        "{again:?}"
    );
    assert_eq!(again.end_reason, pb::EndReason::TraineeEnded as i32);
}

async fn bad_input_changes_nothing(s: Suite) {
    let mut call = s.call.clone();
    // Unknown scenario.
    let err = call
        .start_session(authed(
            pb::StartSessionRequest {
                parent: "organizations/acme".into(),
                scenario: "organizations/acme/scenarios/nope".into(),
                mode: pb::SessionMode::Text as i32,
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // Malformed scenario, missing mode.
    let err = call
        .start_session(authed(
            pb::StartSessionRequest {
                parent: "organizations/acme".into(),
                scenario: "scenarios/x".into(),
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A scenario that needs an assignment.
    let err = call
        .start_session(authed(
            pb::StartSessionRequest {
                parent: "organizations/acme".into(),
                scenario: RESTRICTED.into(),
                mode: pb::SessionMode::Text as i32,
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let listed = call
        .list_sessions(authed(
            pb::ListSessionsRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &s.mia,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sessions.len(), 0, "nothing written");

    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    // Another trainee may not converse in it.
    let err = common::Conversation::open(call.clone(), &s.tina, &session.name)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut c = s.converse(&s.tom, &session.name).await;
    c.next().await.unwrap();
    c.reply().await.unwrap();
    // Oversized turn.
    c.send_turn(&"x".repeat(4_001), "big").await;
    let err = c.next().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        s.transcript(&session.name).await.segments.len(),
        1,
        "only the greeting"
    );

    // Stream cap per trainee (default 4).
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(s.converse(&s.tom, &session.name).await);
    }
    let err = common::Conversation::open(call.clone(), &s.tom, &session.name)
        .await
        .err()
        .expect("over the cap");
    assert_eq!(err.code(), Code::ResourceExhausted);
    drop(open);

    // End, then a turn on the ended session.
    call.end_session(authed(
        pb::EndSessionRequest {
            name: session.name.clone(),
            etag: String::new(),
        },
        &s.tom,
    ))
    .await
    .unwrap();
    let err = common::Conversation::open(call.clone(), &s.tom, &session.name)
        .await
        .err()
        .expect("ended");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let segs = s.transcript(&session.name).await.segments.len();
    assert_eq!(segs, 1, "nothing written");
    // Cancelling an ended session is refused; a stale etag is ABORTED.
    let err = call
        .cancel_session(authed(
            pb::CancelSessionRequest {
                name: session.name.clone(),
                etag: String::new(),
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let other = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let err = call
        .cancel_session(authed(
            pb::CancelSessionRequest {
                name: other.name.clone(),
                etag: "999".into(),
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let cancelled = call
        .cancel_session(authed(
            pb::CancelSessionRequest {
                name: other.name.clone(),
                etag: other.etag.clone(),
            },
            &s.tom,
        ))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(cancelled.state, pb::SessionState::Cancelled as i32);
    assert_eq!(cancelled.end_reason, pb::EndReason::Cancelled as i32);
}

async fn list_sessions_scopes_and_paginates(s: Suite) {
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(
            s.start(&s.tom, pb::SessionMode::Text)
                .await
                .session
                .unwrap()
                .name,
        );
    }
    let tina = s
        .start(&s.tina, pb::SessionMode::Voice)
        .await
        .session
        .unwrap();
    let mut call = s.call.clone();
    let list = |token: &str, page_token: String, filter: &str| {
        authed(
            pb::ListSessionsRequest {
                parent: "organizations/acme".into(),
                page_size: 2,
                page_token,
                filter: filter.into(),
                ..Default::default()
            },
            token,
        )
    };
    // Trainee: only own, newest first, two pages.
    let p1 = call
        .list_sessions(list(&s.tom, String::new(), ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p1.sessions.len(), 2);
    assert_eq!(p1.total_size, 3);
    assert_eq!(p1.sessions[0].name, names[2]);
    let p2 = call
        .list_sessions(list(&s.tom, p1.next_page_token.clone(), ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p2.sessions.len(), 1);
    assert_eq!(p2.sessions[0].name, names[0]);
    assert!(p2.next_page_token.is_empty());
    // Manager sees everyone's; filters.
    let all = call
        .list_sessions(list(&s.mia, String::new(), "mode = VOICE"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 1);
    assert_eq!(all.sessions[0].name, tina.name);
    // Trainee asking for someone else's: refused; reading someone else's session: refused.
    let mut req = list(&s.tom, String::new(), "");
    req.get_mut().trainee = "organizations/acme/members/tina".into();
    assert_eq!(
        call.list_sessions(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let err = call
        .get_session(authed(
            pb::GetSessionRequest {
                name: tina.name.clone(),
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let bad = call
        .list_sessions(list(&s.mia, "zz".into(), ""))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    // A page token belongs to its query: other filters refuse it.
    let replayed = call
        .list_sessions(list(&s.tom, p1.next_page_token.clone(), "mode = VOICE"))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::InvalidArgument);
    let mut negative = list(&s.mia, String::new(), "");
    negative.get_mut().page_size = -1;
    assert_eq!(
        call.list_sessions(negative).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // Another organization's sessions do not exist for its members, even its admin.
    let outsider = s.outsider().await;
    let err = call
        .get_session(authed(
            pb::GetSessionRequest {
                name: tina.name.clone(),
            },
            &outsider,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = call
        .list_sessions(list(&outsider, String::new(), ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = call
        .get_transcript(authed(
            pb::GetTranscriptRequest {
                name: format!("{}/transcript", tina.name),
            },
            &outsider,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn watch_session_pushes_grading_states(s: Suite) {
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let mut watch = s
        .call
        .clone()
        .watch_session(authed(
            pb::WatchSessionRequest {
                name: session.name.clone(),
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut watch).await.unwrap();
    assert_eq!(first.state, pb::SessionState::Active as i32);
    s.call
        .clone()
        .end_session(authed(
            pb::EndSessionRequest {
                name: session.name.clone(),
                etag: String::new(),
            },
            &s.tom,
        ))
        .await
        .unwrap();
    assert_eq!(
        next(&mut watch).await.unwrap().state,
        pb::SessionState::Ended as i32
    );
    // Grading's events (published here as the grading service would; the real grader may
    // also be running, so the terminal state may come from either).
    let org = "organizations/acme";
    let started = new_event(
        org,
        "grading",
        ev::event::Payload::GradingStarted(ev::GradingStarted {
            session: session.name.clone(),
            grading_job: "j1".into(),
            regrade: false,
        }),
    );
    let graded = new_event(
        org,
        "grading",
        ev::event::Payload::SessionGraded(ev::SessionGraded {
            session: session.name.clone(),
            evaluation: format!("{}/evaluations/e1", session.name),
            overall_score: 81.5,
            passed: true,
            closed: true,
            ..Default::default()
        }),
    );
    let bus = s.app.ctx.bus.clone();
    bus.publish(&to_envelope(&started)).await.unwrap();
    bus.publish(&to_envelope(&started)).await.unwrap(); // a redelivery changes nothing
    bus.publish(&to_envelope(&graded)).await.unwrap();
    assert_eq!(TOPIC_GRADING, to_envelope(&graded).topic);
    let mut states = Vec::new();
    while let Some(m) = next(&mut watch).await {
        states.push(m.state);
    }
    let last = *states.last().expect("a terminal state");
    assert!(
        last == pb::SessionState::Graded as i32 || last == pb::SessionState::Failed as i32,
        "{states:?}"
    );
    // Two producers (these events and the real grader) race: the stored state may move on
    // after the stream ended, but only between terminal grading states.
    let got = s.session(&session.name).await;
    assert!(
        got.state == pb::SessionState::Graded as i32
            || got.state == pb::SessionState::Failed as i32,
        "{got:?}"
    );
    if got.state == pb::SessionState::Graded as i32 {
        assert!(!got.evaluation.is_empty());
    }
}

async fn next(
    w: &mut tonic::Streaming<pb::WatchSessionResponse>,
) -> Option<pb::WatchSessionResponse> {
    tokio::time::timeout(Duration::from_secs(20), w.message())
        .await
        .expect("state within 20 s")
        .expect("ok")
}
