//! The in-process transport's consumer-group semantics.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{bounded, envelope, payload_str, unique};
use salestrainer_bus::{
    Delivery, Error, InProcessOptions, InProcessTransport, StartFrom, SubscribeOptions,
    Subscription, Transport,
};

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

/// Reads from `sub` until nothing arrives for 300 ms, acking everything.
async fn drain(mut sub: Subscription) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        got.push(payload_str(&d.envelope));
        d.ack().await.unwrap();
        // Handling takes time in real life: let the group's other consumer run.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    got
}

#[tokio::test]
async fn groups_each_get_every_event_and_consumers_share_within_a_group() {
    bounded(async {
        let t = InProcessTransport::default();
        let topic = unique("topic");
        let opts = SubscribeOptions::default();
        let a1 = t.subscribe(&topic, "a", "a1", opts.clone()).await.unwrap();
        let a2 = t.subscribe(&topic, "a", "a2", opts.clone()).await.unwrap();
        let b1 = t.subscribe(&topic, "b", "b1", opts.clone()).await.unwrap();
        let n = 40;
        for i in 0..n {
            t.publish(&envelope(&topic, i)).await.unwrap();
        }
        let (ga1, ga2, gb1) = tokio::join!(drain(a1), drain(a2), drain(b1));
        let all: BTreeSet<String> = (0..n).map(|i| format!("payload-{i}")).collect();

        // Group b (one consumer) sees everything, in order.
        let expected_order: Vec<String> = (0..n).map(|i| format!("payload-{i}")).collect();
        assert_eq!(gb1, expected_order);
        // Group a sees everything exactly once, split between its consumers.
        assert_eq!(
            ga1.len() + ga2.len(),
            n as usize,
            "no duplicates in group a"
        );
        let union: BTreeSet<String> = ga1.iter().chain(ga2.iter()).cloned().collect();
        assert_eq!(union, all);
        assert!(
            !ga1.is_empty() && !ga2.is_empty(),
            "both consumers took part"
        );
    })
    .await;
}

#[tokio::test]
async fn unacked_delivery_of_a_dropped_subscription_goes_to_another_consumer() {
    bounded(async {
        let t = InProcessTransport::default();
        let topic = unique("topic");
        let opts = SubscribeOptions::default(); // 60 s visibility: only the drop can explain it
        let mut c1 = t.subscribe(&topic, "g", "c1", opts.clone()).await.unwrap();
        let mut c2 = t.subscribe(&topic, "g", "c2", opts.clone()).await.unwrap();
        t.publish(&envelope(&topic, 1)).await.unwrap();

        let d = expect_next(&mut c1).await;
        assert!(!d.redelivered);
        expect_nothing(&mut c2, Duration::from_millis(100)).await;
        let depth = t.queue_depth(&topic, "g").await.unwrap();
        assert_eq!((depth.pending, depth.lag), (1, Some(0)));

        // The consumer dies without acking.
        drop(d);
        drop(c1);
        let d = expect_next(&mut c2).await;
        assert!(d.redelivered);
        assert_eq!(payload_str(&d.envelope), "payload-1");
        d.ack().await.unwrap();
        expect_nothing(&mut c2, Duration::from_millis(100)).await;
        assert_eq!(t.queue_depth(&topic, "g").await.unwrap().total(), 0);
    })
    .await;
}

#[tokio::test]
async fn unacked_delivery_is_redelivered_after_the_visibility_timeout() {
    bounded(async {
        let t = InProcessTransport::default();
        let topic = unique("topic");
        let opts = SubscribeOptions {
            visibility_timeout: Duration::from_millis(200),
            ..SubscribeOptions::default()
        };
        let mut c1 = t.subscribe(&topic, "g", "c1", opts.clone()).await.unwrap();
        let mut c2 = t.subscribe(&topic, "g", "c2", opts.clone()).await.unwrap();
        t.publish(&envelope(&topic, 1)).await.unwrap();
        let hung = expect_next(&mut c1).await;

        // c1 hangs (keeps the delivery and its subscription); c2 takes over after 200 ms.
        let started = tokio::time::Instant::now();
        let d = tokio::select! {
            d = c2.next() => d.unwrap(),
            d = c1.next() => d.unwrap(),
        };
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(d.redelivered);
        d.ack().await.unwrap();
        // A late ack from the hung consumer is harmless.
        hung.ack().await.unwrap();
        expect_nothing(&mut c1, Duration::from_millis(300)).await;
        expect_nothing(&mut c2, Duration::from_millis(10)).await;
    })
    .await;
}

#[tokio::test]
async fn late_groups_start_from_retained_events_and_queues_are_bounded() {
    bounded(async {
        let t = InProcessTransport::new(InProcessOptions {
            max_queue: 2,
            retain: 10,
        });
        let topic = unique("topic");
        t.publish(&envelope(&topic, 1)).await.unwrap();
        let mut early = t
            .subscribe(&topic, "early", "c", SubscribeOptions::default())
            .await
            .unwrap();
        let mut late = t
            .subscribe(
                &topic,
                "late",
                "c",
                SubscribeOptions {
                    start_from: StartFrom::Latest,
                    ..SubscribeOptions::default()
                },
            )
            .await
            .unwrap();
        t.publish(&envelope(&topic, 2)).await.unwrap();
        // "early" holds 2 events now: the next publish is refused for every group.
        let err = t.publish(&envelope(&topic, 3)).await.unwrap_err();
        assert!(matches!(err, Error::QueueFull { ref group, .. } if group == "early"));

        let d = expect_next(&mut early).await;
        assert_eq!(payload_str(&d.envelope), "payload-1");
        d.ack().await.unwrap();
        let d = expect_next(&mut late).await;
        assert_eq!(payload_str(&d.envelope), "payload-2");
        d.ack().await.unwrap();
        t.publish(&envelope(&topic, 3)).await.unwrap();
        for want in ["payload-2", "payload-3"] {
            let d = expect_next(&mut early).await;
            assert_eq!(payload_str(&d.envelope), want);
            d.ack().await.unwrap();
        }
        let d = expect_next(&mut late).await;
        assert_eq!(payload_str(&d.envelope), "payload-3");
        d.ack().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn dropping_the_transport_ends_subscriptions() {
    bounded(async {
        let t = InProcessTransport::default();
        let mut sub = t
            .subscribe("t", "g", "c", SubscribeOptions::default())
            .await
            .unwrap();
        let waiter = tokio::spawn(async move { sub.next().await.is_none() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(t);
        assert!(waiter.await.unwrap());
    })
    .await;
}

/// `next_batch` waits for one delivery, then takes only what is already at hand.
#[tokio::test]
async fn next_batch_takes_what_is_ready_without_waiting() {
    bounded(async {
        let t = InProcessTransport::default();
        let topic = unique("topic");
        let mut sub = t
            .subscribe(&topic, "g", "c1", SubscribeOptions::default())
            .await
            .unwrap();
        for i in 0..5 {
            t.publish(&envelope(&topic, i)).await.unwrap();
        }
        let first = sub.next_batch(3).await;
        let rest = sub.next_batch(10).await;
        let got: Vec<String> = first
            .iter()
            .chain(&rest)
            .map(|d| payload_str(&d.envelope))
            .collect();
        assert_eq!(first.len(), 3);
        assert_eq!(
            got,
            (0..5).map(|i| format!("payload-{i}")).collect::<Vec<_>>()
        );
        for d in first.into_iter().chain(rest) {
            d.ack().await.unwrap();
        }
        // Nothing at hand: it waits for the next one, and returns it alone.
        let later = {
            let t = t.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                t.publish(&envelope(&topic, 9)).await.unwrap();
            })
        };
        let one = sub.next_batch(10).await;
        assert_eq!(one.len(), 1);
        assert_eq!(payload_str(&one[0].envelope), "payload-9");
        later.await.unwrap();
    })
    .await;
}
