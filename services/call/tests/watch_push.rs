//! WatchSession is pushed, not polled: two call replicas sharing PostgreSQL and Redis, a
//! change committed on one reaches a watcher on the other within a second (Redis pub/sub);
//! and idle watchers issue no database queries (PostgreSQL's own counters, pg_stat_database).
//! Fails (does not skip) when PostgreSQL or Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Suite, suite_with};
use salestrainer_call::app::{CallApp, settings::CallSettings};
use salestrainer_proto::call as pb;
use salestrainer_tests::{authed, redis_url, spawn_service_with, wait_serving};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Streaming;

async fn watch(
    client: &pb::call_service_client::CallServiceClient<tonic::transport::Channel>,
    token: &str,
    name: &str,
    include_comments: bool,
) -> Streaming<pb::WatchSessionResponse> {
    client
        .clone()
        .watch_session(authed(
            pb::WatchSessionRequest {
                name: name.into(),
                include_comments,
            },
            token,
        ))
        .await
        .expect("watch")
        .into_inner()
}

async fn next(
    stream: &mut Streaming<pb::WatchSessionResponse>,
    within: Duration,
) -> pb::WatchSessionResponse {
    tokio::time::timeout(within, stream.message())
        .await
        .unwrap_or_else(|_| panic!("no watch message within {within:?}"))
        .expect("stream ok")
        .expect("stream open")
}

/// A TEXT session of tom's with two transcript lines; returns its name and a segment id.
async fn session_with_lines(s: &Suite) -> (String, String) {
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let mut c = s.converse(&s.tom, &session.name).await;
    c.next().await.unwrap();
    c.reply().await.unwrap();
    c.say("How do you plan your routes today?", "r1")
        .await
        .unwrap();
    let segment = s.transcript(&session.name).await.segments[0]
        .segment_id
        .clone();
    // Kept open elsewhere would keep the session ACTIVE; the tests end it themselves.
    drop(c);
    (session.name, segment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_a_watcher_on_another() {
    let redis = redis_url();
    let a = suite_with(Backend::Postgres, |st| st.redis_url = redis.clone()).await;
    let peer = format!("http://{}", a.app.addr);
    let db = a.app.settings.database_url.clone();
    let b = spawn_service_with::<CallApp>(
        |st| {
            st.database_url = db.clone();
            st.redis_url = redis.clone();
            st.endpoints.config = peer.clone();
            st.endpoints.grading = peer.clone();
            st.endpoints.analytics = peer.clone();
        },
        CallSettings::default(),
    )
    .await;
    wait_serving(&b, "", Duration::from_secs(60)).await;
    let b_call = pb::call_service_client::CallServiceClient::new(b.channel.clone());

    let session = a
        .start(&a.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let mut on_b = watch(&b_call, &a.tom, &session.name, false).await;
    let first = next(&mut on_b, Duration::from_secs(5)).await;
    assert_eq!(first.state, pb::SessionState::Active as i32);

    // Committed on A; B's watcher hears of it through Redis and reads the row once.
    let t = Instant::now();
    a.call
        .clone()
        .end_session(authed(
            pb::EndSessionRequest {
                name: session.name.clone(),
                etag: String::new(),
            },
            &a.tom,
        ))
        .await
        .expect("end on A");
    let seen = next(&mut on_b, Duration::from_secs(1)).await;
    let took = t.elapsed();
    assert_ne!(seen.state, pb::SessionState::Active as i32, "{seen:?}");
    println!(
        "replica B saw {:?} {took:?} after A's EndSession",
        pb::SessionState::try_from(seen.state)
    );

    // A comment written on A is pushed to a comment watcher on B.
    let (name, segment) = session_with_lines(&a).await;
    let mut comments_on_b = watch(&b_call, &a.tom, &name, true).await;
    next(&mut comments_on_b, Duration::from_secs(5)).await;
    let t = Instant::now();
    let created = a
        .call
        .clone()
        .create_comment(authed(
            pb::CreateCommentRequest {
                parent: name.clone(),
                comment: Some(pb::Comment {
                    body: "Good open question.".into(),
                    segment_id: segment.clone(),
                    ..Default::default()
                }),
            },
            &a.mia,
        ))
        .await
        .expect("comment on A")
        .into_inner()
        .comment
        .unwrap();
    let pushed = loop {
        let m = next(&mut comments_on_b, Duration::from_secs(1)).await;
        if let Some(c) = m.comment {
            break c;
        }
    };
    println!(
        "replica B pushed the comment {:?} after A's CreateComment",
        t.elapsed()
    );
    assert_eq!(pushed, created);
    assert_eq!(pushed.author, "organizations/acme/members/mia");

    b.stop().await;
    let url = a.app.settings.database_url.clone();
    a.app.stop().await;
    salestrainer_tests::drop_postgres_databases(&url, &salestrainer_tests::DATABASES).await;
}

/// Transactions committed in `database` so far, by PostgreSQL's statistics, read from
/// another database so the reading does not count.
async fn commits(admin: &sea_orm::DatabaseConnection, database: &str) -> i64 {
    let row = admin
        .query_one_raw(Statement::from_string(
            admin.get_database_backend(),
            format!(
                "SELECT (xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database \
                 WHERE datname = '{database}'"
            ),
        ))
        .await
        .expect("pg_stat_database")
        .expect("a row for the database");
    row.try_get::<i64>("", "n").expect("n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watchers_issue_no_database_queries() {
    const WATCHERS: usize = 64;
    let s = suite_with(Backend::Postgres, |st| {
        st.set_section(
            "call",
            CallSettings {
                max_watch_streams_per_caller: WATCHERS,
                ..Default::default()
            },
        );
    })
    .await;
    let url = s.app.settings.database_url.clone();
    let call_db = url.replace("{service}", "call");
    let database = call_db.rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(format!(
        "{}/postgres",
        salestrainer_tests::postgres_server_url()
    ))
    .await
    .unwrap();
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    // A backend's statistics reach pg_stat_database some seconds after it goes idle: each
    // window starts once the work before it (start, opening the streams) has been counted.
    let window = Duration::from_secs(6);
    let settle = Duration::from_secs(8);
    tokio::time::sleep(settle).await;
    let before = commits(&admin, &database).await;
    tokio::time::sleep(window).await;
    let baseline = commits(&admin, &database).await - before;

    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        let mut w = watch(&s.call, &s.tom, &session.name, false).await;
        next(&mut w, Duration::from_secs(5)).await;
        streams.push(w);
    }
    tokio::time::sleep(settle).await;
    let before = commits(&admin, &database).await;
    tokio::time::sleep(window).await;
    let watched = commits(&admin, &database).await - before;
    println!(
        "call database transactions in {window:?}: {baseline} without watchers, \
         {watched} with {WATCHERS} idle watchers"
    );
    // The service's own background work (outbox relay, sweeper) is the same in both windows;
    // a per-stream re-read every 5 s would add at least one query per watcher.
    assert!(
        watched <= baseline + 8,
        "{WATCHERS} idle watchers cost {} extra transactions in {window:?}",
        watched - baseline
    );

    // They were alive all along: the end reaches every one of them.
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
        .expect("end");
    for w in &mut streams {
        let m = next(w, Duration::from_secs(5)).await;
        assert_ne!(m.state, pb::SessionState::Active as i32);
    }
    drop(streams);
    let _ = admin.close().await;
    s.app.stop().await;
    salestrainer_tests::drop_postgres_databases(&url, &salestrainer_tests::DATABASES).await;
}
