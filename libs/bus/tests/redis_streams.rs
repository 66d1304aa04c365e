//! The Redis Streams transport against a real Redis (SALESTRAINER_TEST_REDIS_URL, default
//! redis://127.0.0.1:6379). Every test uses its own stream key and deletes it afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{bounded, envelope, payload_str, redis_url, unique};
use salestrainer_bus::{
    Delivery, RedisOptions, RedisStreamsTransport, SubscribeOptions, Subscription, Transport,
};

fn transport() -> RedisStreamsTransport {
    RedisStreamsTransport::from_url(&redis_url(), RedisOptions::default()).unwrap()
}

/// Fast timings so redelivery tests take well under a second.
fn fast() -> SubscribeOptions {
    SubscribeOptions {
        batch_size: 1,
        block: Duration::from_millis(100),
        visibility_timeout: Duration::from_millis(200),
        claim_interval: Duration::from_millis(50),
        ..SubscribeOptions::default()
    }
}

async fn expect_next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("no delivery within 5 s")
        .expect("subscription closed")
}

async fn expect_nothing(sub: &mut Subscription, wait: Duration) {
    if let Ok(d) = tokio::time::timeout(wait, sub.next()).await {
        panic!("unexpected delivery: {d:?}");
    }
}

async fn delete_key(t: &RedisStreamsTransport, key: &str) {
    let mut conn = t.pool().get().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn xlen(t: &RedisStreamsTransport, key: &str) -> u64 {
    let mut conn = t.pool().get().await.unwrap();
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn publish_consume_ack() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-test");
        let mut sub = t.subscribe(&topic, "g", "c1", fast()).await.unwrap();
        let mut env = envelope(&topic, 1);
        env.payload = vec![0u8, 159, 146, 150, 255].into(); // not UTF-8: bytes stay bytes
        env.headers.insert("tracestate".into(), "k=v".into());
        t.publish(&env).await.unwrap();

        let d = expect_next(&mut sub).await;
        assert_eq!(d.envelope, env);
        assert!(!d.redelivered);
        assert_eq!(t.pending_count(&topic, "g").await.unwrap(), 1);
        d.ack().await.unwrap();
        assert_eq!(t.pending_count(&topic, "g").await.unwrap(), 0);
        let depth = t.queue_depth(&topic, "g").await.unwrap();
        assert_eq!(depth.pending, 0);
        assert_eq!(depth.lag, Some(0));

        // Acked entries are not redelivered, even after the visibility timeout.
        expect_nothing(&mut sub, Duration::from_millis(500)).await;
        drop(sub);
        delete_key(&t, &topic).await;
    })
    .await;
}

/// A relay's batch goes out as one pipeline: every event, in order, each as `publish` sends
/// it; and an error in the batch is reported with none counted as published (the relay sends
/// them again), never as a success.
#[tokio::test]
async fn publish_many_sends_a_batch_in_order_and_reports_an_error() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-batch");
        let mut sub = t.subscribe(&topic, "g", "c1", fast()).await.unwrap();
        let envs: Vec<_> = (1..=5).map(|i| envelope(&topic, i)).collect();
        let (sent, error) = t.publish_many(&envs).await;
        assert_eq!((sent, error.map(|e| e.to_string())), (5, None));
        for env in &envs {
            let d = expect_next(&mut sub).await;
            assert_eq!(&d.envelope, env);
            d.ack().await.unwrap();
        }
        assert_eq!(t.publish_many(&[]).await.0, 0);

        // The second event's topic is a key of another type: XADD fails there.
        let wrong = unique("bus-batch-wrongtype");
        let mut conn = t.pool().get().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(&wrong)
            .arg("not a stream")
            .query_async(&mut conn)
            .await
            .unwrap();
        let batch = vec![envelope(&topic, 6), envelope(&wrong, 7)];
        let (sent, error) = t.publish_many(&batch).await;
        assert_eq!(sent, 0);
        assert!(
            error.is_some_and(|e| e.to_string().contains("WRONGTYPE")),
            "the error is reported"
        );
        drop(sub);
        delete_key(&t, &topic).await;
        delete_key(&t, &wrong).await;
    })
    .await;
}

#[tokio::test]
async fn groups_each_get_every_event_and_consumers_share_within_a_group() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-test");
        let opts = SubscribeOptions {
            visibility_timeout: Duration::from_secs(30),
            ..fast()
        };
        let a1 = t.subscribe(&topic, "a", "a1", opts.clone()).await.unwrap();
        let a2 = t.subscribe(&topic, "a", "a2", opts.clone()).await.unwrap();
        let b1 = t.subscribe(&topic, "b", "b1", opts.clone()).await.unwrap();
        let n = 30;
        for i in 0..n {
            t.publish(&envelope(&topic, i)).await.unwrap();
        }
        async fn drain(mut sub: Subscription) -> Vec<String> {
            let mut got = Vec::new();
            while let Ok(Some(d)) =
                tokio::time::timeout(Duration::from_millis(500), sub.next()).await
            {
                got.push(payload_str(&d.envelope));
                d.ack().await.unwrap();
                // Give the other consumer of the group a chance to read.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            got
        }
        let (ga1, ga2, gb1) = tokio::join!(drain(a1), drain(a2), drain(b1));
        let expected: Vec<String> = (0..n).map(|i| format!("payload-{i}")).collect();
        assert_eq!(gb1, expected, "group b gets everything in order");
        assert_eq!(
            ga1.len() + ga2.len(),
            n as usize,
            "no duplicates in group a"
        );
        let union: BTreeSet<String> = ga1.iter().chain(&ga2).cloned().collect();
        assert_eq!(union, expected.into_iter().collect::<BTreeSet<_>>());
        assert!(
            !ga1.is_empty() && !ga2.is_empty(),
            "both consumers took part"
        );
        delete_key(&t, &topic).await;
    })
    .await;
}

#[tokio::test]
async fn entry_of_a_killed_consumer_is_reclaimed_by_another() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-test");

        // Consumer "doomed" takes the entry and is killed (its task aborted) before XACK.
        let mut doomed = t.subscribe(&topic, "g", "doomed", fast()).await.unwrap();
        t.publish(&envelope(&topic, 1)).await.unwrap();
        let (got_tx, got_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let d = doomed.next().await.unwrap();
            got_tx.send(d.envelope.event_id.clone()).unwrap();
            // "Handling" that never finishes.
            std::future::pending::<()>().await;
            drop(d);
        });
        let event_id = tokio::time::timeout(Duration::from_secs(5), got_rx)
            .await
            .unwrap()
            .unwrap();
        task.abort();
        let _ = task.await;
        assert_eq!(t.pending_count(&topic, "g").await.unwrap(), 1);

        // Another consumer of the group gets it via XAUTOCLAIM once idle > 200 ms.
        let started = tokio::time::Instant::now();
        let mut rescuer = t.subscribe(&topic, "g", "rescuer", fast()).await.unwrap();
        let d = expect_next(&mut rescuer).await;
        assert_eq!(d.envelope.event_id, event_id);
        assert!(d.redelivered);
        assert!(started.elapsed() < Duration::from_secs(3));
        d.ack().await.unwrap();
        assert_eq!(t.pending_count(&topic, "g").await.unwrap(), 0);

        // Once acked it is not handed out again, to anyone.
        let mut third = t.subscribe(&topic, "g", "third", fast()).await.unwrap();
        expect_nothing(&mut rescuer, Duration::from_millis(600)).await;
        expect_nothing(&mut third, Duration::from_millis(10)).await;
        drop((rescuer, third));
        delete_key(&t, &topic).await;
    })
    .await;
}

#[tokio::test]
async fn dropped_subscription_stops_reading_promptly() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-test");
        let opts = SubscribeOptions {
            block: Duration::from_secs(10),
            claim_interval: Duration::from_secs(30),
            visibility_timeout: Duration::from_secs(30),
            ..SubscribeOptions::default()
        };
        let sub = t.subscribe(&topic, "g", "c1", opts.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await; // now inside XREADGROUP BLOCK
        drop(sub);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The dropped consumer must not take this entry: a new consumer gets it at once.
        t.publish(&envelope(&topic, 1)).await.unwrap();
        let mut other = t.subscribe(&topic, "g", "c2", opts).await.unwrap();
        let d = tokio::time::timeout(Duration::from_secs(2), other.next())
            .await
            .expect("the dropped consumer's blocked read must not have taken the entry")
            .unwrap();
        assert!(!d.redelivered);
        d.ack().await.unwrap();
        drop(other);
        delete_key(&t, &topic).await;
    })
    .await;
}

#[tokio::test]
async fn restarted_consumer_rereads_its_own_pending_entries_first() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-test");
        let opts = SubscribeOptions {
            visibility_timeout: Duration::from_secs(30),
            ..fast()
        };
        let mut first = t
            .subscribe(&topic, "g", "pod-0", opts.clone())
            .await
            .unwrap();
        t.publish(&envelope(&topic, 1)).await.unwrap();
        let d = expect_next(&mut first).await;
        drop(d);
        drop(first);
        // Same consumer name after a restart: no need to wait for the visibility timeout.
        let mut again = t.subscribe(&topic, "g", "pod-0", opts).await.unwrap();
        let d = expect_next(&mut again).await;
        assert!(d.redelivered);
        assert_eq!(payload_str(&d.envelope), "payload-1");
        d.ack().await.unwrap();
        expect_nothing(&mut again, Duration::from_millis(300)).await;
        drop(again);
        delete_key(&t, &topic).await;
    })
    .await;
}

#[tokio::test]
async fn trim_keeps_pending_and_unread_entries() {
    bounded(async {
        let t = transport();
        let topic = unique("bus-test");
        let opts = SubscribeOptions {
            visibility_timeout: Duration::from_secs(30),
            ..fast()
        };
        let mut fast_group = t
            .subscribe(&topic, "fast", "c", opts.clone())
            .await
            .unwrap();
        let mut slow_group = t
            .subscribe(&topic, "slow", "c", opts.clone())
            .await
            .unwrap();
        for i in 0..5 {
            t.publish(&envelope(&topic, i)).await.unwrap();
        }
        for _ in 0..5 {
            expect_next(&mut fast_group).await.ack().await.unwrap();
        }
        // "slow" acked 0 and 1, holds 2 unacked, and has not read 3 and 4.
        for _ in 0..2 {
            expect_next(&mut slow_group).await.ack().await.unwrap();
        }
        let held = expect_next(&mut slow_group).await;
        assert_eq!(payload_str(&held.envelope), "payload-2");

        let trimmed = t.trim_acked(&topic).await.unwrap();
        assert_eq!(trimmed, 2, "only entries every group acked go");
        assert_eq!(xlen(&t, &topic).await, 3);
        held.ack().await.unwrap();
        for want in ["payload-3", "payload-4"] {
            let d = expect_next(&mut slow_group).await;
            assert_eq!(payload_str(&d.envelope), want);
            d.ack().await.unwrap();
        }
        drop((fast_group, slow_group));
        delete_key(&t, &topic).await;
    })
    .await;
}

#[tokio::test]
async fn unreachable_redis_fails_subscribe_and_publish() {
    bounded(async {
        // Port 1 on loopback: nothing listens there.
        let t = RedisStreamsTransport::from_url("redis://127.0.0.1:1", RedisOptions::default())
            .unwrap();
        let topic = unique("bus-test");
        assert!(t.publish(&envelope(&topic, 1)).await.is_err());
        assert!(
            t.subscribe(&topic, "g", "c", SubscribeOptions::default())
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn a_watermark_moves_only_from_the_mark_it_holds() {
    bounded(async {
        let t = transport();
        let key = unique("watermark-test");
        let ttl = Duration::from_secs(60);
        assert_eq!(t.watermark(&key).await.unwrap(), None);
        assert_eq!(
            t.advance_watermark(&key, None, 10, ttl).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            t.advance_watermark(&key, Some(10), 20, ttl).await.unwrap(),
            Ok(())
        );
        assert_eq!(t.watermark(&key).await.unwrap(), Some(20));
        // From a mark it does not hold (or from none): refused, and what it holds is told.
        assert_eq!(
            t.advance_watermark(&key, Some(10), 30, ttl).await.unwrap(),
            Err(Some(20))
        );
        assert_eq!(
            t.advance_watermark(&key, None, 30, ttl).await.unwrap(),
            Err(Some(20))
        );
        assert_eq!(t.watermark(&key).await.unwrap(), Some(20));
        delete_key(&t, &format!("salestrainer:bus:watermark:{key}")).await;
        assert_eq!(
            t.advance_watermark(&key, Some(20), 30, ttl).await.unwrap(),
            Err(None)
        );
        // Kept for its TTL only.
        assert_eq!(
            t.advance_watermark(&key, None, 40, Duration::from_millis(50))
                .await
                .unwrap(),
            Ok(())
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(t.watermark(&key).await.unwrap(), None);
    })
    .await;
}
