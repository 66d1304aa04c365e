//! Distributed mode on the real Redis at 127.0.0.1:6379 (override with
//! SALESTRAINER_TEST_REDIS_URL): the Redis Streams work queue and the shared limiter. Fails,
//! not skips, when Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::testkit::{Behaviour, FakeProvider};
use common::*;
use salestrainer_bus::{RedisOptions, RedisStreamsTransport, Transport};
use salestrainer_grading::app::rate_limit::{Budget, RateLimit, RedisRateLimit};
use salestrainer_grading::app::{EngineConfig, JOBS_GROUP, WorkQueue};
use salestrainer_proto::grading::JobState;
use salestrainer_tests::redis_url;

async fn transport() -> Arc<RedisStreamsTransport> {
    let t = RedisStreamsTransport::from_url(&redis_url(), RedisOptions::default()).unwrap();
    salestrainer_runtime::redis::ping(t.pool())
        .await
        .expect("Redis must be running for this test");
    Arc::new(t)
}

fn distributed(stream: &str) -> EngineConfig {
    EngineConfig {
        jobs_stream: stream.to_owned(),
        ..fast_config()
    }
}

#[tokio::test]
async fn redis_streams_work_queue_grades_every_session_once() {
    let bus = transport().await;
    let stream = format!("test.grading.jobs.{}", uuid::Uuid::new_v4().simple());
    let d = database(Backend::Postgres).await;
    let queue = WorkQueue {
        bus: bus.clone(),
        consumer: "replica-a".into(),
    };
    let h = engine(&d.db, distributed(&stream), None, None, Some(queue));
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(session_ended(&h, &format!("r{i}")).await.unwrap());
    }
    for (i, id) in ids.iter().enumerate() {
        wait_state(&d.db, id, JobState::Succeeded, Duration::from_secs(20)).await;
        assert_eq!(
            evaluations_of(&d.db, &session(&format!("r{i}")))
                .await
                .len(),
            1
        );
    }
    // Everything acked: nothing pending or unread for the group.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let depth = bus.queue_depth(&stream, JOBS_GROUP).await.unwrap();
        if depth.total() == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue depth {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop.cancel();
}

#[tokio::test]
async fn redis_dead_worker_entry_is_reclaimed() {
    let bus = transport().await;
    let stream = format!("test.grading.jobs.{}", uuid::Uuid::new_v4().simple());
    let fake = FakeProvider::start(None).await.unwrap();
    fake.script([Behaviour::Hang(Duration::from_secs(30))]);
    let d = database(Backend::Sqlite).await;
    let cfg = EngineConfig {
        lease: Duration::from_millis(800),
        llm_timeout: Duration::from_secs(60),
        ..distributed(&stream)
    };
    let a = engine(
        &d.db,
        cfg.clone(),
        Some(fake.credential(0, 0)),
        None,
        Some(WorkQueue {
            bus: bus.clone(),
            consumer: "replica-a".into(),
        }),
    );
    let id = session_ended(&a, "dead-worker").await.unwrap();
    wait_state(&d.db, &id, JobState::Running, Duration::from_secs(10)).await;
    while fake.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.kill();
    let b = engine(
        &d.db,
        cfg,
        Some(fake.credential(0, 0)),
        None,
        Some(WorkQueue {
            bus: bus.clone(),
            consumer: "replica-b".into(),
        }),
    );
    let j = wait_state(&d.db, &id, JobState::Succeeded, Duration::from_secs(20)).await;
    assert_eq!(j.attempts, 2);
    assert_eq!(
        evaluations_of(&d.db, &session("dead-worker")).await.len(),
        1
    );
    b.stop.cancel();
}

#[tokio::test]
async fn redis_limiter_is_shared_and_corrected() {
    let bus = transport().await;
    let prefix = format!("test:limiter:{}:", uuid::Uuid::new_v4().simple());
    // Two replicas share one budget through Redis.
    let a = RedisRateLimit::with_prefix(bus.pool().clone(), &prefix);
    let b = RedisRateLimit::with_prefix(bus.pool().clone(), &prefix);
    let budget = Budget { rpm: 0, tpm: 1000 };
    let p = a
        .try_reserve("cred", budget, 600)
        .await
        .unwrap()
        .expect("granted");
    let wait = b
        .try_reserve("cred", budget, 600)
        .await
        .unwrap()
        .expect_err("over budget");
    // 400 left of 1,000, refilling at 1,000 per 61 s: the missing 200 take ~12.2 s.
    assert!(
        wait > Duration::from_secs(11) && wait <= Duration::from_millis(12_200),
        "{wait:?}"
    );
    // The call used only 100 tokens: the rest of the reservation is given back.
    a.correct("cred", budget, &p, 100).await.unwrap();
    b.try_reserve("cred", budget, 600)
        .await
        .unwrap()
        .expect("granted after correction");
    // The provider says fewer tokens are left than we think: we believe it.
    a.observe(
        "cred",
        budget,
        salestrainer_grading::app::rate_limit::Observed {
            remaining_tokens: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let wait = a
        .try_reserve("cred", budget, 50)
        .await
        .unwrap()
        .expect_err("provider says empty");
    // 50 tokens at 1,000 per 61 s: ~3.05 s.
    assert!(
        wait > Duration::from_millis(2_900) && wait <= Duration::from_millis(3_050),
        "{wait:?}"
    );
}
