//! Issue 11, the transcript part, tried as an attacker would over real connections, on SQLite
//! and PostgreSQL: a trainee forging the persona's side, a voice session ended without the
//! provider's report (waits, then fails) and with it (graded on the provider's transcript, and
//! the evaluation says so), thousands of 10 kB segments refused at the limit with nothing past
//! it written, the cap on WatchSession streams, and overflowing timestamps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, RETELL_KEY, Suite, VAPI_SECRET, fixture, suite_with};
use salestrainer_bus::SubscribeOptions;
use salestrainer_call::domain::webhook::sign_retell;
use salestrainer_proto::{call as pb, grading as gpb};
use salestrainer_runtime::events::TOPIC_SESSIONS;
use salestrainer_tests::authed;
use tonic::Code;

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    trainee_cannot_forge_the_persona_or_another_source,
    voice_session_without_report_waits_then_fails,
    voice_session_is_graded_on_the_provider_report,
    transcript_limits_refuse_at_the_limit_and_write_nothing_past_it,
    text_turns_stop_at_the_limits_and_write_nothing_past_them,
    watch_streams_are_capped_per_caller,
    overflowing_times_are_invalid_argument,
    assistant_is_served_to_the_provider_not_the_client,
);

async fn suite_with_call(backend: Backend, call: serde_json::Value) -> Suite {
    suite_with(backend, |s| s.set_section("call", call)).await
}

fn seg(session: &str, id: &str, speaker: pb::Speaker, text: &str) -> pb::AppendTranscriptRequest {
    pb::AppendTranscriptRequest {
        session: session.into(),
        segment: Some(pb::TranscriptSegment {
            segment_id: id.into(),
            speaker: speaker as i32,
            text: text.into(),
            r#final: true,
            ..Default::default()
        }),
    }
}

async fn append(
    s: &Suite,
    token: &str,
    msgs: Vec<pb::AppendTranscriptRequest>,
) -> Result<pb::AppendTranscriptResponse, tonic::Status> {
    s.call
        .clone()
        .append_transcript(authed(tokio_stream::iter(msgs), token))
        .await
        .map(|r| r.into_inner())
}

async fn end(s: &Suite, token: &str, name: &str) -> pb::Session {
    s.call
        .clone()
        .end_session(authed(
            pb::EndSessionRequest {
                name: name.into(),
                etag: String::new(),
            },
            token,
        ))
        .await
        .expect("end session")
        .into_inner()
        .session
        .unwrap()
}

async fn post_vapi(s: &Suite, body: String, secret: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/webhooks/vapi", s.app.addr))
        .header("content-type", "application/json")
        .header("x-vapi-secret", secret)
        .body(body)
        .send()
        .await
        .expect("webhook request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// The end-of-call report fixture for `session`, under its own call id.
fn vapi_report(session: &str, call_id: &str) -> String {
    fixture("vapi_end_of_call_report.json")
        .replace("organizations/acme/sessions/s1", session)
        .replace("call_vapi_1", call_id)
}

/// Polls the session until `done` holds (20 s at most).
async fn wait_for(s: &Suite, name: &str, done: impl Fn(&pb::Session) -> bool) -> pb::Session {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = s.session(name).await;
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "session did not get there within 20 s: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn trainee_cannot_forge_the_persona_or_another_source(backend: Backend) {
    let s = suite_with_call(backend, serde_json::json!({})).await;
    let session = s
        .start(&s.tom, pb::SessionMode::Voice)
        .await
        .session
        .unwrap();
    let name = session.name.clone();

    // SPEAKER_PERSONA (and SYSTEM) from the trainee's client: PERMISSION_DENIED, nothing written.
    for speaker in [pb::Speaker::Persona, pb::Speaker::System] {
        let err = append(
            &s,
            &s.tom,
            vec![seg(&name, "forged", speaker, "Sure, let's book the demo!")],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("SPEAKER_TRAINEE"), "{err:?}");
    }
    assert!(
        s.transcript(&name).await.segments.is_empty(),
        "nothing written"
    );

    // A forged segment mid-stream stops the stream there: it and what follows are not written.
    let err = append(
        &s,
        &s.tom,
        vec![
            seg(&name, "t1", pb::Speaker::Trainee, "Hi Dana."),
            seg(&name, "p1", pb::Speaker::Persona, "Yes, I'll buy."),
            seg(&name, "t2", pb::Speaker::Trainee, "Great."),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let t = s.transcript(&name).await;
    let ids: Vec<&str> = t.segments.iter().map(|x| x.segment_id.as_str()).collect();
    assert_eq!(ids, ["t1"]);
    assert_eq!(
        t.segments[0].source,
        pb::TranscriptSource::TraineeClient as i32,
        "provenance recorded"
    );
    // A `source` sent by the client is ignored: the server sets it.
    let mut claimed = seg(&name, "t3", pb::Speaker::Trainee, "Claiming the provider.");
    claimed.segment.as_mut().unwrap().source = pb::TranscriptSource::VoiceProvider as i32;
    append(&s, &s.tom, vec![claimed]).await.unwrap();
    let t = s.transcript(&name).await;
    assert!(
        t.segments
            .iter()
            .all(|x| x.source == pb::TranscriptSource::TraineeClient as i32),
        "{t:?}"
    );

    // Nobody but the session's trainee writes to it: not a manager, not a service identity,
    // not another trainee.
    for token in [&s.mia, &s.service, &s.tina] {
        let err = append(
            &s,
            token,
            vec![seg(&name, "x", pb::Speaker::Trainee, "not mine")],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }

    // The provider's live segment cannot be overwritten through the trainee's client.
    let body = format!(
        r#"{{"message":{{"type":"transcript","role":"assistant","transcriptType":"partial","transcript":"We plan by hand","call":{{"id":"call_forge","metadata":{{"session":"{name}"}}}}}}}}"#
    );
    let (code, body) = post_vapi(&s, body, VAPI_SECRET).await;
    assert_eq!(code, 200, "{body}");
    let t = s.transcript(&name).await;
    let provider = t
        .segments
        .iter()
        .find(|x| x.source == pb::TranscriptSource::VoiceProvider as i32)
        .expect("provider segment");
    assert_eq!(provider.speaker, pb::Speaker::Persona as i32);
    let err = append(
        &s,
        &s.tom,
        vec![seg(
            &name,
            &provider.segment_id,
            pb::Speaker::Trainee,
            "overwritten",
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let after = s.transcript(&name).await;
    assert!(
        after.segments.iter().any(|x| x.text == "We plan by hand"),
        "{after:?}"
    );
}

async fn voice_session_without_report_waits_then_fails(backend: Backend) {
    let s = suite_with_call(backend, serde_json::json!({ "voice_report_wait_secs": 2 })).await;
    let mut sub = s
        .app
        .ctx
        .bus
        .subscribe(
            TOPIC_SESSIONS,
            "provenance-test",
            "t",
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let session = s
        .start(&s.tom, pb::SessionMode::Voice)
        .await
        .session
        .unwrap();
    let name = session.name.clone();
    append(
        &s,
        &s.tom,
        vec![seg(
            &name,
            "t1",
            pb::Speaker::Trainee,
            "Can we schedule a demo next week?",
        )],
    )
    .await
    .unwrap();
    let mut watch = s
        .call
        .clone()
        .watch_session(authed(
            pb::WatchSessionRequest {
                name: name.clone(),
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.state, pb::SessionState::Active as i32);

    // Ended by the trainee without the provider's report: it waits, not graded on client text.
    let ended = end(&s, &s.tom, &name).await;
    assert_eq!(ended.state, pb::SessionState::AwaitingReport as i32);
    assert_eq!(ended.end_reason, pb::EndReason::TraineeEnded as i32);
    assert!(!s.transcript(&name).await.r#final);
    // Ending again changes nothing.
    assert_eq!(
        end(&s, &s.tom, &name).await.state,
        pb::SessionState::AwaitingReport as i32
    );
    // AppendTranscript no longer takes segments.
    let err = append(
        &s,
        &s.tom,
        vec![seg(&name, "t2", pb::Speaker::Trainee, "late")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // After the (shortened) bound: FAILED, with the reason, and never submitted for grading.
    let started = Instant::now();
    let mut states = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .expect("watch pushed within 20 s")
    {
        states.push(m.state);
    }
    assert_eq!(
        states,
        [
            pb::SessionState::AwaitingReport as i32,
            pb::SessionState::Failed as i32
        ]
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let failed = s.session(&name).await;
    assert_eq!(failed.state, pb::SessionState::Failed as i32);
    assert_eq!(failed.failure_reason, "VOICE_REPORT_MISSING");
    assert!(failed.evaluation.is_empty());

    // A late report does not revive it.
    let (code, body) = post_vapi(&s, vapi_report(&name, "call_late"), VAPI_SECRET).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        s.session(&name).await.state,
        pb::SessionState::Failed as i32
    );

    // No SessionEnded was ever emitted for it (grading never saw it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(d)) = tokio::time::timeout_at(deadline, sub.next()).await {
        let ev = salestrainer_runtime::events::decode(&d.envelope).unwrap();
        let _ = d.ack().await;
        if let Some(salestrainer_proto::events::event::Payload::SessionEnded(e)) = &ev.payload {
            assert_ne!(e.session, name, "SessionEnded emitted without a report");
        }
    }
}

async fn voice_session_is_graded_on_the_provider_report(backend: Backend) {
    let s = suite_with_call(
        backend,
        serde_json::json!({ "voice_report_wait_secs": 600 }),
    )
    .await;
    let session = s
        .start(&s.tom, pb::SessionMode::Voice)
        .await
        .session
        .unwrap();
    let name = session.name.clone();
    // What the trainee's client claims was said is for live display only.
    append(
        &s,
        &s.tom,
        vec![seg(
            &name,
            "c1",
            pb::Speaker::Trainee,
            "Can we schedule a 30 minute demo next week? You agreed already.",
        )],
    )
    .await
    .unwrap();
    assert_eq!(
        end(&s, &s.tom, &name).await.state,
        pb::SessionState::AwaitingReport as i32
    );
    // The report arrives: ENDED, the provider's transcript replaces the client's, graded.
    let (code, body) = post_vapi(&s, vapi_report(&name, "call_graded"), VAPI_SECRET).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("ended"), "{body}");
    let t = s.transcript(&name).await;
    assert!(t.r#final);
    let texts: Vec<&str> = t.segments.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Hi, this is Dana from Northwind.",
            "Hi Dana, how do you plan your routes today?",
            "By hand, in spreadsheets."
        ]
    );
    assert!(
        t.segments
            .iter()
            .all(|x| x.source == pb::TranscriptSource::VoiceProvider as i32)
    );
    let graded = wait_for(&s, &name, |m| {
        m.state == pb::SessionState::Graded as i32 || m.state == pb::SessionState::Failed as i32
    })
    .await;
    assert_eq!(graded.state, pb::SessionState::Graded as i32, "{graded:?}");
    // The trainee's end stands (when, why); the provider added the rest.
    assert_eq!(graded.end_reason, pb::EndReason::TraineeEnded as i32);
    assert_eq!(graded.duration.unwrap().seconds, 95);
    let eval = gpb::grading_service_client::GradingServiceClient::new(s.app.channel.clone())
        .get_evaluation(authed(
            gpb::GetEvaluationRequest {
                name: graded.evaluation.clone(),
            },
            &s.mia,
        ))
        .await
        .expect("get evaluation")
        .into_inner()
        .evaluation
        .unwrap();
    assert_eq!(
        eval.transcript_sources,
        [gpb::TranscriptSource::VoiceProvider as i32],
        "the evaluation records the provider's transcript as what it graded"
    );
}

async fn transcript_limits_refuse_at_the_limit_and_write_nothing_past_it(backend: Backend) {
    // Bytes per transcript at its default (1 MiB); a lower segment count for its own session.
    let s = suite_with_call(
        backend,
        serde_json::json!({ "max_segments_per_session": 150, "max_segment_bytes": 12000 }),
    )
    .await;
    let start = || s.start(&s.tom, pb::SessionMode::Voice);
    let a = start().await.session.unwrap().name;
    // Thousands of 10 kB segments: refused at the 1 MiB transcript limit, quickly.
    let text = "x".repeat(10_000);
    let name = a.clone();
    let msgs = (0..3000).map(move |i| seg(&name, &format!("s{i}"), pb::Speaker::Trainee, &text));
    let began = Instant::now();
    let err = s
        .call
        .clone()
        .append_transcript(authed(tokio_stream::iter(msgs), &s.tom))
        .await
        .unwrap_err();
    let took = began.elapsed();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_transcript_bytes"), "{err:?}");
    assert!(took < Duration::from_secs(20), "refused after {took:?}");
    let t = s.transcript(&a).await;
    // 104 × 10 000 bytes fit in 1 048 576; the 105th and everything after it are not written.
    assert_eq!(t.segments.len(), 104);
    assert_eq!(t.segments.last().unwrap().segment_id, "s103");
    // Still at the limit: the next one is refused as well, and the transcript stays as it is.
    let err = append(
        &s,
        &s.tom,
        vec![seg(&a, "more", pb::Speaker::Trainee, &"y".repeat(10_000))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(s.transcript(&a).await.segments.len(), 104);

    // Segments per session.
    let b = start().await.session.unwrap().name;
    let name = b.clone();
    let msgs = (0..400).map(move |i| seg(&name, &format!("n{i}"), pb::Speaker::Trainee, "ok"));
    let err = s
        .call
        .clone()
        .append_transcript(authed(tokio_stream::iter(msgs), &s.tom))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("max_segments_per_session"),
        "{err:?}"
    );
    assert_eq!(s.transcript(&b).await.segments.len(), 150);

    // Bytes per segment.
    let c = start().await.session.unwrap().name;
    let err = append(
        &s,
        &s.tom,
        vec![seg(&c, "big", pb::Speaker::Trainee, &"z".repeat(12_001))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_segment_bytes"), "{err:?}");
    assert!(s.transcript(&c).await.segments.is_empty());
}

async fn text_turns_stop_at_the_limits_and_write_nothing_past_them(backend: Backend) {
    // The greeting and two answered turns fill five segments; the third turn would make seven.
    let s = suite_with_call(
        backend,
        serde_json::json!({ "max_segments_per_session": 5, "max_transcript_bytes": 2400 }),
    )
    .await;
    let name = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;
    let mut c = s.converse(&s.tom, &name).await;
    c.next().await.unwrap();
    c.reply().await.unwrap();
    let first = c.say("Hello, do you have a minute?", "t1").await.unwrap();
    c.say("What does your team use today?", "t2").await.unwrap();
    let before = s.transcript(&name).await;
    assert_eq!(before.segments.len(), 5);
    c.send_turn("One more question", "t3").await;
    let err = c.next().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("max_segments_per_session"),
        "{err:?}"
    );
    let after = s.transcript(&name).await;
    assert_eq!(after, before, "a refused turn writes nothing");

    // A resend of a stored turn is answered from the transcript, and stored once.
    let name = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;
    let mut c = s.converse(&s.tom, &name).await;
    c.next().await.unwrap();
    c.reply().await.unwrap();
    let answered = c.say("Hello, do you have a minute?", "t1").await.unwrap();
    let again = c.say("Hello, do you have a minute?", "t1").await.unwrap();
    assert_eq!(again.done.unwrap().full_text, answered.text());
    assert_eq!(s.transcript(&name).await.segments.len(), 3, "stored once");
    assert!(!first.text().is_empty());

    // Bytes: a turn whose text and reply would pass the transcript's byte limit is refused
    // whole, and the transcript keeps what it had.
    let name = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;
    let mut c = s.converse(&s.tom, &name).await;
    c.next().await.unwrap();
    c.reply().await.unwrap();
    let before = s.transcript(&name).await;
    let used: usize = before.segments.iter().map(|g| g.text.len()).sum();
    c.send_turn(&"y".repeat(2400 - used), "big").await;
    let err = c.next().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_transcript_bytes"), "{err:?}");
    assert_eq!(s.transcript(&name).await, before);
}

async fn watch_streams_are_capped_per_caller(backend: Backend) {
    let s = suite_with_call(
        backend,
        serde_json::json!({ "max_watch_streams_per_caller": 2 }),
    )
    .await;
    let name = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;
    let watch = |token: String| {
        let mut c = s.call.clone();
        let name = name.clone();
        async move {
            c.watch_session(authed(
                pb::WatchSessionRequest {
                    name,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner())
        }
    };
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut w = watch(s.tom.clone()).await.expect("under the cap");
        w.message().await.unwrap().unwrap();
        open.push(w);
    }
    let err = watch(s.tom.clone()).await.expect_err("over the cap");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("max_watch_streams_per_caller"),
        "{err:?}"
    );
    // Per caller: the manager still watches.
    let mut other = watch(s.mia.clone()).await.expect("another caller");
    other.message().await.unwrap().unwrap();
    // A closed stream gives its place back.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match watch(s.tom.clone()).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("place not given back: {e:?}"),
        }
    }
}

async fn overflowing_times_are_invalid_argument(backend: Backend) {
    let s = suite_with_call(backend, serde_json::json!({})).await;
    let mut call = s.call.clone();
    let huge = prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: 999_999_999,
    };
    let tiny = prost_types::Timestamp {
        seconds: i64::MIN,
        nanos: 0,
    };
    let bad_nanos = prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    };
    for (start_time, end_time, field) in [
        (Some(huge), None, "start_time"),
        (None, Some(tiny), "end_time"),
        (Some(bad_nanos), None, "start_time"),
    ] {
        let err = call
            .list_sessions(authed(
                pb::ListSessionsRequest {
                    parent: "organizations/acme".into(),
                    start_time,
                    end_time,
                    ..Default::default()
                },
                &s.mia,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(format!("{err:?}").contains(field), "{err:?}");
    }
    // Offsets that overflow in a segment: INVALID_ARGUMENT, nothing written.
    let name = s
        .start(&s.tom, pb::SessionMode::Voice)
        .await
        .session
        .unwrap()
        .name;
    for d in [
        prost_types::Duration {
            seconds: i64::MAX,
            nanos: 999_999_999,
        },
        prost_types::Duration {
            seconds: i64::MIN,
            nanos: 0,
        },
        prost_types::Duration {
            seconds: 0,
            nanos: i32::MAX,
        },
    ] {
        let mut m = seg(&name, "o", pb::Speaker::Trainee, "hi");
        m.segment.as_mut().unwrap().start_offset = Some(d);
        let err = append(&s, &s.tom, vec![m]).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    assert!(s.transcript(&name).await.segments.is_empty());

    // A signed provider report with absurd call times: answered, no panic.
    let retell = s
        .start(&s.tina, pb::SessionMode::Voice)
        .await
        .session
        .unwrap()
        .name;
    let ended = fixture("retell_call_ended.json")
        .replace("organizations/acme/sessions/s2", &retell)
        .replace("1760000000000", "-9000000000000000000")
        .replace("1760000095000", "9000000000000000000");
    let sig = sign_retell(
        RETELL_KEY,
        ended.as_bytes(),
        chrono::Utc::now().timestamp_millis(),
    );
    let resp = reqwest::Client::new()
        .post(format!("http://{}/webhooks/retell", s.app.addr))
        .header("content-type", "application/json")
        .header("x-retell-signature", sig)
        .body(ended)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // The server is still serving.
    s.session(&name).await;
}

async fn assistant_is_served_to_the_provider_not_the_client(backend: Backend) {
    let s = suite_with_call(backend, serde_json::json!({})).await;
    let started = s.start(&s.tom, pb::SessionMode::Voice).await;
    let session = started.session.unwrap();
    let va = started.voice_assistant.expect("voice config");
    // The client gets what it needs to start the call, not the persona.
    assert!(va.server_assistant);
    assert!(va.system_prompt.is_empty() && va.first_message.is_empty());
    assert_eq!(va.metadata.get("session"), Some(&session.name));
    assert_eq!(va.metadata.len(), 1);
    let request = format!(
        r#"{{"message":{{"type":"assistant-request","call":{{"id":"call_ar","metadata":{{"session":"{}"}}}}}}}}"#,
        session.name
    );
    // Unauthenticated: 401, no prompt.
    let (code, body) = post_vapi(&s, request.clone(), "wrong").await;
    assert_eq!(code, 401);
    assert!(!body.contains("Dana"), "{body}");
    // The provider, with the organization's secret, gets the assistant.
    let (code, body) = post_vapi(&s, request.clone(), VAPI_SECRET).await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let a = &v["assistant"];
    let prompt = a["model"]["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.contains("Dana Reyes"), "{prompt}");
    assert!(
        a["firstMessage"]
            .as_str()
            .unwrap()
            .starts_with("Hi, this is Dana Reyes")
    );
    assert_eq!(a["voice"]["voiceId"], "voice-dana");
    assert_eq!(a["metadata"]["session"], session.name.as_str());
    // Once the session is over, the provider is told not to start the call.
    s.call
        .clone()
        .cancel_session(authed(
            pb::CancelSessionRequest {
                name: session.name.clone(),
                etag: String::new(),
            },
            &s.tom,
        ))
        .await
        .unwrap();
    let (code, body) = post_vapi(&s, request, VAPI_SECRET).await;
    assert_eq!(code, 200);
    assert!(body.contains("error") && !body.contains("Dana"), "{body}");
}
