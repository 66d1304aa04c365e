//! The change notifier across processes on the real Redis (127.0.0.1:6379, or
//! SALESTRAINER_TEST_REDIS_URL): a change published by one notifier wakes the watcher of that
//! key on another, not the watchers of other keys; and when the subscription is cut, the
//! notifier resubscribes and wakes every watcher once to re-read. Fails (does not skip) when
//! Redis is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use salestrainer_runtime::{
    Context, Settings,
    auth::TokenMinter,
    changes::{Changes, Watch},
};

fn redis_url() -> String {
    std::env::var("SALESTRAINER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn context() -> Context {
    let settings = Settings {
        redis_url: redis_url(),
        ..Settings::default()
    };
    Context::new(
        settings,
        TokenMinter::new(b"a-test-secret-of-at-least-32-bytes!!", ""),
        "127.0.0.1:0".parse().unwrap(),
    )
    .expect("context")
}

async fn woken(w: &mut Watch, within: Duration) -> bool {
    tokio::time::timeout(within, w.changed()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_crosses_processes_and_a_cut_subscription_resyncs() {
    // A channel of its own, so other tests' changes do not wake this one's watchers.
    let service = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (ctx_a, ctx_b) = (context(), context());
    let a = Changes::new(&service);
    a.start(&ctx_a);
    let b = Changes::new(&service);
    b.start(&ctx_b);
    let mut key = b.watch("sessions-1");
    let mut other = b.watch("sessions-2");

    // Until B has subscribed, A's publishes reach nobody: publish until one arrives.
    let mut arrived = false;
    for _ in 0..50 {
        a.publish("sessions-1");
        if woken(&mut key, Duration::from_millis(100)).await {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "B never heard of A's change");
    // Settled: the subscription's own resync has been consumed with the wake above (or it
    // comes now); drain it before checking that only the published key wakes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = woken(&mut key, Duration::from_millis(50)).await;
    let _ = woken(&mut other, Duration::from_millis(50)).await;

    a.publish("sessions-1");
    assert!(
        woken(&mut key, Duration::from_secs(2)).await,
        "the key's watcher wakes"
    );
    assert!(
        !woken(&mut other, Duration::from_millis(300)).await,
        "another key's watcher does not"
    );

    // Cut every pub/sub connection (only the change notifier subscribes on this Redis):
    // B resubscribes and every watcher re-reads once, whatever it may have missed.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(killed >= 1, "a subscription to cut");
    assert!(
        woken(&mut key, Duration::from_secs(10)).await,
        "resync wakes the key"
    );
    assert!(
        woken(&mut other, Duration::from_secs(1)).await,
        "and every other watcher"
    );
    a.publish("sessions-2");
    assert!(
        woken(&mut other, Duration::from_secs(2)).await,
        "and changes flow again"
    );

    ctx_a.shutdown.cancel();
    ctx_b.shutdown.cancel();
}
