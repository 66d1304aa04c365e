//! Conversation threads on the real Redis (127.0.0.1:6379): stored with a 7-day TTL, continued
//! by a new stream, dropped when the session ends. Fails (does not skip) when Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, suite_with};
use salestrainer_call::app::threads::redis_key;

const REDIS: &str = "redis://127.0.0.1:6379";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_live_in_redis_with_a_ttl() {
    let s = suite_with(Backend::Sqlite, |st| st.redis_url = REDIS.into()).await;
    let mut redis = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis at 127.0.0.1:6379");
    let (session, mut c) = s.greeted(&s.tom).await;
    let id = session.name.rsplit('/').next().unwrap().to_owned();
    c.say("How do you plan your routes today?", "r1")
        .await
        .unwrap();
    // Kept open: closing our side would end the session (the contract of Converse).
    let _first = c;

    let raw: Option<String> = redis::cmd("GET")
        .arg(redis_key(&id))
        .query_async(&mut redis)
        .await
        .unwrap();
    let raw = raw.expect("thread stored in Redis");
    assert!(
        raw.contains("Scripted") && raw.contains("\"answered\":2"),
        "{raw}"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(redis_key(&id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        (7 * 24 * 3600 - 60..=7 * 24 * 3600).contains(&ttl),
        "ttl {ttl}"
    );

    // A new stream (any replica) continues the thread: discovery happened, so the pitch now
    // raises the objection instead of a push-back.
    let mut c = s.converse(&s.tom, &session.name).await;
    c.next().await.unwrap();
    let r = c
        .say("RouteWise plans the routes automatically every morning and sends them to a driver app.", "r2")
        .await
        .unwrap();
    assert!(r.text().contains("price is too high"), "{}", r.text());
    c.end().await;
    let gone: Option<String> = redis::cmd("GET")
        .arg(redis_key(&id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(gone.is_none(), "thread dropped when the session ends");
}
