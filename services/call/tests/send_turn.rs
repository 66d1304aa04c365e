//! SendTurn, the per-turn server stream browsers use through gRPC-Web: the opening message,
//! streamed replies from the same scripted persona as Converse, client_turn_id idempotence,
//! who may call it, and bad input. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Suite, suite};
use salestrainer_proto::call as pb;
use salestrainer_tests::authed;
use tokio_stream::StreamExt;
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
    send_turn_streams_the_same_persona_as_converse,
    send_turn_authorization_and_bad_input,
);

/// Everything one SendTurn streamed, or the status it ended with.
async fn send(
    s: &Suite,
    token: &str,
    session: &str,
    text: &str,
    id: &str,
) -> Result<Vec<pb::send_turn_response::Payload>, tonic::Status> {
    let mut stream = s
        .call
        .clone()
        .send_turn(authed(
            pb::SendTurnRequest {
                session: session.into(),
                text: text.into(),
                client_turn_id: id.into(),
            },
            token,
        ))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.next().await {
        out.push(m?.payload.expect("payload"));
    }
    Ok(out)
}

fn chunks(msgs: &[pb::send_turn_response::Payload]) -> String {
    msgs.iter()
        .filter_map(|m| match m {
            pb::send_turn_response::Payload::Chunk(c) => Some(c.text.as_str()),
            _ => None,
        })
        .collect()
}

fn done(msgs: &[pb::send_turn_response::Payload]) -> pb::PersonaReplyDone {
    match msgs.last() {
        Some(pb::send_turn_response::Payload::Done(d)) => d.clone(),
        other => panic!("the stream must end with done: {other:?}"),
    }
}

fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn send_turn_streams_the_same_persona_as_converse(s: Suite) {
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;

    // Empty text: only the opening message, streamed in chunks.
    let greeting = send(&s, &s.tom, &session, "", "").await.unwrap();
    let g = done(&greeting);
    assert!(g.full_text.starts_with("Hi, this is Dana Reyes"), "{g:?}");
    assert_eq!(chunks(&greeting), g.full_text);
    assert!(greeting.len() > 4, "streamed in chunks");
    assert_eq!(g.client_turn_id, "");
    // Asked again, the opening message is not repeated.
    assert!(send(&s, &s.tom, &session, "", "").await.unwrap().is_empty());

    let r = send(
        &s,
        &s.tom,
        &session,
        "How do you plan your routes today?",
        "t1",
    )
    .await
    .unwrap();
    match &r[0] {
        pb::send_turn_response::Payload::Accepted(a) => assert_eq!(a.client_turn_id, "t1"),
        other => panic!("first the turn is accepted: {other:?}"),
    }
    let d = done(&r);
    assert!(d.full_text.contains("spreadsheets"), "{}", d.full_text);
    assert_eq!(chunks(&r), d.full_text);
    assert_eq!(d.client_turn_id, "t1");

    // A resent client_turn_id: the stored answer, nothing stored twice.
    let again = send(
        &s,
        &s.tom,
        &session,
        "How do you plan your routes today?",
        "t1",
    )
    .await
    .unwrap();
    assert_eq!(chunks(&again), "");
    assert_eq!(done(&again).full_text, d.full_text);

    let r = send(
        &s,
        &s.tom,
        &session,
        "Can we schedule a 30 minute demo next week?",
        "t2",
    )
    .await
    .unwrap();
    // The scripted persona raises its objection before agreeing to anything.
    assert!(
        done(&r).full_text.contains("price is too high"),
        "{:?}",
        done(&r)
    );

    let t = s.transcript(&session).await;
    assert_eq!(t.segments.len(), 5, "greeting + 2 turns x 2");

    // Once ended, no more turns.
    s.call
        .clone()
        .end_session(authed(
            pb::EndSessionRequest {
                name: session.clone(),
                etag: String::new(),
            },
            &s.tom,
        ))
        .await
        .unwrap();
    let err = send(&s, &s.tom, &session, "Hello?", "t3")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

async fn send_turn_authorization_and_bad_input(s: Suite) {
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;
    // Another trainee, the manager, an admin: only the session's trainee converses.
    for (who, token) in [("tina", &s.tina), ("mia", &s.mia), ("alice", &s.admin)] {
        let err = send(&s, token, &session, "Hi", "x").await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    // No token.
    let err = s
        .call
        .clone()
        .send_turn(pb::SendTurnRequest {
            session: session.clone(),
            text: "Hi".into(),
            client_turn_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Another organization's session.
    let err = send(&s, &s.tom, "organizations/other/sessions/x", "Hi", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::PermissionDenied | Code::NotFound),
        "{err:?}"
    );
    // Bad input names its field and stores nothing.
    let err = send(&s, &s.tom, "sessions/x", "Hi", "x").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["session"]);
    let long = "a".repeat(100_000);
    let err = send(&s, &s.tom, &session, &long, "x").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["text"]);
    let err = send(&s, &s.tom, &session, "Hi", &"i".repeat(129))
        .await
        .unwrap_err();
    assert_eq!(violations(&err), ["client_turn_id"]);
    let err = send(&s, &s.tom, &session, "   ", "x").await.unwrap_err();
    assert_eq!(violations(&err), ["text"]);
    assert_eq!(s.transcript(&session).await.segments.len(), 0);
    // A voice session is not for text turns.
    let voice = s
        .start(&s.tom, pb::SessionMode::Voice)
        .await
        .session
        .unwrap()
        .name;
    let err = send(&s, &s.tom, &voice, "Hi", "x").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}
