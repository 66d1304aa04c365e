//! The streaming persona against a local fake OpenAI-compatible server speaking real SSE,
//! including a failure in the middle of a stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use axum::{Json, Router, body::Body, extract::State, http::HeaderMap, routing::post};
use bytes::Bytes;
use common::{Backend, await_event, suite, use_llm};
use salestrainer_bus::SubscribeOptions;
use salestrainer_proto::{call as pb, events as ev};
use salestrainer_runtime::events::TOPIC_SESSIONS;
use tonic::Code;

#[derive(Default)]
struct Fake {
    /// The next request whose last user turn contains "FAIL" breaks off mid-stream.
    fail_next: AtomicBool,
    requests: Mutex<Vec<(String, serde_json::Value)>>,
}

fn sse(data: &str) -> Result<Bytes, std::io::Error> {
    Ok(Bytes::from(format!("data: {data}\n\n")))
}

async fn completions(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    fake.requests.lock().unwrap().push((auth, body));
    let chunk =
        |t: &str| sse(&serde_json::json!({"choices":[{"delta":{"content":t}}]}).to_string());
    let items: Vec<Result<Bytes, std::io::Error>> =
        if last.contains("FAIL") && fake.fail_next.swap(false, Ordering::SeqCst) {
            vec![
                chunk("Well, "),
                chunk("I was going to say"),
                Err(std::io::Error::other("connection reset")),
            ]
        } else {
            vec![
                Ok(Bytes::from_static(b": keep-alive\n\n")),
                chunk("Sure"),
                chunk(", tell"),
                chunk(" me more."),
                sse(r#"{"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":7}}"#),
                sse("[DONE]"),
            ]
        };
    // Spaced out so the reply really streams.
    let stream = futures::stream::iter(items).then(|i| async move {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        i
    });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

use futures::StreamExt;

async fn fake_server(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_persona_and_failure_mid_stream() {
    let fake = Arc::new(Fake::default());
    let base_url = fake_server(fake.clone()).await;
    let s = suite(Backend::Sqlite).await;
    use_llm(&s, base_url).await;
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
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let mut c = s.converse(&s.tom, &session.name).await;
    c.next().await.unwrap();
    let greeting = c.reply().await.unwrap();
    assert!(greeting.text().starts_with("Hi, this is Dana Reyes"));

    let r = c.say("How are things at Northwind?", "l1").await.unwrap();
    assert_eq!(r.chunks, ["Sure", ", tell", " me more."]);
    assert_eq!(r.done.unwrap().full_text, "Sure, tell me more.");
    {
        let reqs = fake.requests.lock().unwrap();
        let (auth, body) = &reqs[0];
        assert_eq!(auth, "Bearer sk-test-key");
        assert_eq!(body["stream"], true);
        assert_eq!(body["model"], "fake-model");
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs[0]["role"], "system");
        assert!(msgs[0]["content"].as_str().unwrap().contains("Dana Reyes"));
        assert_eq!(msgs[1]["role"], "assistant");
        assert_eq!(msgs[2]["content"], "How are things at Northwind?");
    }

    // Failure in the middle of the stream: a clear status, no half persona turn stored.
    fake.fail_next.store(true, Ordering::SeqCst);
    c.send_turn("FAIL: what does it cost?", "l2").await;
    assert!(matches!(
        c.next().await.unwrap(),
        pb::converse_response::Payload::Accepted(_)
    ));
    let err = loop {
        match c.next().await {
            Ok(pb::converse_response::Payload::Chunk(_)) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("persona's reply failed"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("sk-test-key"));
    let t = s.transcript(&session.name).await;
    let texts: Vec<&str> = t.segments.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(texts[3], "FAIL: what does it cost?");
    assert!(!texts.iter().any(|x| x.contains("I was going to say")));
    assert_eq!(
        s.session(&session.name).await.state,
        pb::SessionState::Active as i32
    );

    // Reconnect and resend the same turn: it is answered, not stored twice.
    let mut c = s.converse(&s.tom, &session.name).await;
    c.next().await.unwrap();
    let r = c.say("FAIL: what does it cost?", "l2").await.unwrap();
    assert_eq!(r.text(), "Sure, tell me more.");
    assert_eq!(s.transcript(&session.name).await.segments.len(), 5);
    let last = fake.requests.lock().unwrap().last().cloned().unwrap().1;
    let roles: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "assistant", "user", "assistant", "user"]);

    c.end().await;
    let event = await_event(&mut sub, &session.name, "ended").await;
    let Some(ev::event::Payload::SessionEnded(e)) = event.payload else {
        unreachable!()
    };
    let usage = e.usage.expect("LLM usage reported");
    assert_eq!(usage.requests, 2);
    assert_eq!(usage.prompt_tokens, 84);
    assert_eq!(usage.model, "fake-model");
}

/// How many requests the fake has seen, waiting up to 10 s for at least `n`.
async fn requests_reach(fake: &Fake, n: usize) -> usize {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = fake.requests.lock().unwrap().len();
        if seen >= n || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Locks the session's row in `txn` until it ends.
async fn lock_session(txn: &sea_orm::DatabaseTransaction, id: &str) {
    use sea_orm::{ConnectionTrait, Statement};
    txn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT id FROM call_sessions WHERE id = $1 FOR UPDATE",
        [id.into()],
    ))
    .await
    .unwrap();
}

/// The LLM is asked for the reply while the trainee's turn is still being written, so the
/// trainee waits for the slower of the two, not their sum. The session row is held locked
/// from another connection: the turn's write cannot finish, yet the request reaches the
/// provider; the turn is accepted only once stored, and its reply follows. A turn refused
/// by its write (here the session ended meanwhile) sends no chunk of the reply it requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_is_requested_while_the_turn_is_written() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    let fake = Arc::new(Fake::default());
    let base_url = fake_server(fake.clone()).await;
    let s = suite(Backend::Postgres).await;
    use_llm(&s, base_url).await;
    let url = s.app.settings.database_url.clone();
    let db = sea_orm::Database::connect(url.replace("{service}", "call"))
        .await
        .unwrap();
    let (session, mut c) = s.greeted(&s.tom).await;
    let id = session.name.rsplit('/').next().unwrap().to_owned();

    let held = db.begin().await.unwrap();
    lock_session(&held, &id).await;
    c.send_turn("How are things at Northwind?", "w1").await;
    assert_eq!(
        requests_reach(&fake, 1).await,
        1,
        "the reply was not requested while the turn's write waited"
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), c.next())
            .await
            .is_err(),
        "nothing is sent before the turn is stored"
    );
    held.rollback().await.unwrap();
    match c.next().await.unwrap() {
        pb::converse_response::Payload::Accepted(a) => assert_eq!(a.client_turn_id, "w1"),
        other => panic!("expected accepted, got {other:?}"),
    }
    let r = c.reply().await.unwrap();
    assert_eq!(r.text(), "Sure, tell me more.");
    let t = s.transcript(&session.name).await;
    assert_eq!(t.segments.len(), 3);

    // The session ends while the next turn's write waits: the turn is refused, and the reply
    // already requested is dropped unsent.
    let held = db.begin().await.unwrap();
    lock_session(&held, &id).await;
    c.send_turn("And the price?", "w2").await;
    assert_eq!(requests_reach(&fake, 2).await, 2);
    held.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "UPDATE call_sessions SET state = $1 WHERE id = $2",
        [(pb::SessionState::Ended as i32).into(), id.clone().into()],
    ))
    .await
    .unwrap();
    held.commit().await.unwrap();
    let refused = c.next().await.expect_err("the turn is refused");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(s.transcript(&session.name).await.segments.len(), 3);

    drop(c);
    drop(db);
    s.app.stop().await;
    salestrainer_tests::drop_postgres_databases(&url, &salestrainer_tests::DATABASES).await;
}
