//! Outbox + relay on real SQLite and PostgreSQL databases.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{OwnRedis, TestDb, bounded, envelope, payload_str, redis_url, unique};
use salestrainer_bus::outbox::{self, entity};
use salestrainer_bus::{
    CancellationToken, Envelope, Error, InProcessOptions, InProcessTransport, RedisOptions,
    RedisStreamsTransport, Relay, RelayNotifier, RelayOptions, SubscribeOptions, Subscription,
    Transport, relay_once,
};
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder, TransactionTrait};

async fn enqueue_committed(db: &DatabaseConnection, env: &Envelope) {
    let txn = db.begin().await.unwrap();
    outbox::enqueue(&txn, env).await.unwrap();
    txn.commit().await.unwrap();
}

async fn expect_next(sub: &mut Subscription) -> salestrainer_bus::Delivery {
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

async fn rows(db: &DatabaseConnection) -> Vec<entity::Model> {
    entity::Entity::find()
        .order_by_asc(entity::Column::Id)
        .all(db)
        .await
        .unwrap()
}

async fn outbox_scenario(tdb: TestDb) {
    let db = &tdb.db;
    let topic = unique("outbox");
    let transport = InProcessTransport::default();
    let mut sub = transport
        .subscribe(&topic, "g", "c1", SubscribeOptions::default())
        .await
        .unwrap();

    // Rolled back: the event must never leave.
    let rolled_back = envelope(&topic, 0);
    let txn = db.begin().await.unwrap();
    outbox::enqueue(&txn, &rolled_back).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(relay_once(db, &transport, 100).await.unwrap(), 0);
    assert!(rows(db).await.is_empty());

    // Committed: relayed exactly once and marked sent.
    let committed = envelope(&topic, 1);
    enqueue_committed(db, &committed).await;
    assert_eq!(relay_once(db, &transport, 100).await.unwrap(), 1);
    assert_eq!(relay_once(db, &transport, 100).await.unwrap(), 0);
    let d = expect_next(&mut sub).await;
    assert_eq!(
        d.envelope, committed,
        "envelope survives the outbox unchanged"
    );
    d.ack().await.unwrap();
    expect_nothing(&mut sub, Duration::from_millis(200)).await;
    let stored = rows(db).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].sent_at.is_some());
    assert_eq!(stored[0].attempts, 0);

    // Committed while no relay runs (the process crashed after commit): a relay started later
    // sends them, in order, without being notified.
    let e2 = envelope(&topic, 2);
    let e3 = envelope(&topic, 3);
    enqueue_committed(db, &e2).await;
    enqueue_committed(db, &e3).await;
    let shutdown = CancellationToken::new();
    let opts = RelayOptions {
        // Long enough that only a notification (or the start-up round) can explain a fast send.
        sweep_interval: Duration::from_secs(60),
        // The same bus lives on here (no restart): nothing to send again.
        replay_on_start: Duration::ZERO,
        ..RelayOptions::default()
    };
    let (notifier, handle) = Relay::start(
        db.clone(),
        Arc::new(transport.clone()),
        opts,
        shutdown.clone(),
    );
    for expected in [&e2, &e3] {
        let d = expect_next(&mut sub).await;
        assert_eq!(&d.envelope, expected);
        d.ack().await.unwrap();
    }

    // Committed while the relay runs: the notifier wakes it at once.
    let e4 = envelope(&topic, 4);
    enqueue_committed(db, &e4).await;
    notifier.notify();
    let d = expect_next(&mut sub).await;
    assert_eq!(d.envelope, e4);
    d.ack().await.unwrap();
    expect_nothing(&mut sub, Duration::from_millis(300)).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("relay stops on shutdown")
        .unwrap();
    assert!(rows(db).await.iter().all(|r| r.sent_at.is_some()));

    // Sent rows are purged after the retention period; unsent ones never.
    let e5 = envelope(&topic, 5);
    enqueue_committed(db, &e5).await;
    assert_eq!(
        outbox::purge_sent(db, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(outbox::purge_sent(db, Duration::ZERO).await.unwrap(), 4);
    let left = rows(db).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event_id, e5.event_id);

    drop(sub);
    tdb.cleanup().await;
}

/// A publish failure (here: the in-process queue is full) stops the batch at that row, records
/// the attempt and keeps the order; the row goes out once the transport accepts it.
async fn failure_scenario(tdb: TestDb) {
    let db = &tdb.db;
    let topic = unique("outbox-fail");
    let transport = InProcessTransport::new(InProcessOptions {
        max_queue: 1,
        retain: 0,
    });
    let mut sub = transport
        .subscribe(&topic, "g", "c1", SubscribeOptions::default())
        .await
        .unwrap();
    let e1 = envelope(&topic, 1);
    let e2 = envelope(&topic, 2);
    enqueue_committed(db, &e1).await;
    enqueue_committed(db, &e2).await;

    let err = relay_once(db, &transport, 100).await.unwrap_err();
    assert!(matches!(err, Error::QueueFull { .. }), "{err}");
    let stored = rows(db).await;
    assert!(
        stored[0].sent_at.is_some(),
        "published prefix is marked sent"
    );
    assert!(stored[1].sent_at.is_none());
    assert_eq!(stored[1].attempts, 1);
    assert!(stored[1].last_error.as_deref().unwrap().contains("full"));

    let d = expect_next(&mut sub).await;
    assert_eq!(d.envelope, e1);
    d.ack().await.unwrap();
    assert_eq!(relay_once(db, &transport, 100).await.unwrap(), 1);
    let d = expect_next(&mut sub).await;
    assert_eq!(d.envelope, e2);
    d.ack().await.unwrap();
    assert!(rows(db).await.iter().all(|r| r.sent_at.is_some()));

    drop(sub);
    tdb.cleanup().await;
}

/// A process start: a fresh in-process bus with a consumer on `topic`, and the relay.
async fn start_process(
    db: &DatabaseConnection,
    topic: &str,
    opts: RelayOptions,
) -> (Subscription, CancellationToken, tokio::task::JoinHandle<()>) {
    let transport = InProcessTransport::default();
    let sub = transport
        .subscribe(topic, "g", "c1", SubscribeOptions::default())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let (_, handle) = Relay::start(db.clone(), Arc::new(transport), opts, shutdown.clone());
    (sub, shutdown, handle)
}

/// The in-process bus keeps nothing across a restart: events the relay had sent but no consumer
/// had taken yet are sent again by the next start's relay (consumers' inboxes make repeats
/// harmless); rows sent before the replay window stay sent.
async fn replay_scenario(tdb: TestDb) {
    let db = &tdb.db;
    let topic = unique("replay");
    let e1 = envelope(&topic, 1);
    let e2 = envelope(&topic, 2);
    enqueue_committed(db, &e1).await;
    enqueue_committed(db, &e2).await;
    // The first process sends both, then stops before any consumer took them.
    {
        let transport = InProcessTransport::default();
        assert_eq!(relay_once(db, &transport, 100).await.unwrap(), 2);
    }
    assert!(rows(db).await.iter().all(|r| r.sent_at.is_some()));

    // The next start: a fresh bus, and its relay sends them again, in order.
    let (mut sub, shutdown, handle) = start_process(db, &topic, RelayOptions::default()).await;
    for expected in [&e1, &e2] {
        let d = expect_next(&mut sub).await;
        assert_eq!(&d.envelope, expected);
        d.ack().await.unwrap();
    }
    expect_nothing(&mut sub, Duration::from_millis(200)).await;
    shutdown.cancel();
    handle.await.unwrap();

    // Sent longer ago than the window: not sent again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let opts = RelayOptions {
        replay_on_start: Duration::from_millis(10),
        ..RelayOptions::default()
    };
    let (mut sub, shutdown, handle) = start_process(db, &topic, opts).await;
    expect_nothing(&mut sub, Duration::from_millis(300)).await;
    shutdown.cancel();
    handle.await.unwrap();
    drop(sub);
    tdb.cleanup().await;
}

/// Redis loses what it held (a restart without persistence): the relay notices by its marker
/// and sends again the events it had sent within `replay_after_loss`, which a consumer had
/// already taken once. With a short window (a service's `relay_replay_after_loss_secs`), an
/// event sent before it stays lost and a later one is sent again.
async fn loss_scenario(tdb: TestDb, replay_after_loss: Duration) {
    let db = &tdb.db;
    let topic = unique("loss");
    let marker = unique("relay-test");
    // Where the transport keeps the marker (`Transport::intact`).
    let marker_key = format!("salestrainer:bus:marker:{marker}");
    let transport =
        Arc::new(RedisStreamsTransport::from_url(&redis_url(), RedisOptions::default()).unwrap());
    let mut conn = transport.pool().get().await.unwrap();
    // A marker's first check says "lost"; later ones say "kept" until it disappears.
    assert!(!transport.intact(&marker).await.unwrap());
    assert!(transport.intact(&marker).await.unwrap());
    let short = replay_after_loss < Duration::from_secs(60);
    let (notifier, shutdown, handle, mut sub) =
        watched_relay(db, &transport, &topic, &marker, replay_after_loss).await;
    let e1 = envelope(&topic, 1);
    send_and_take(db, &notifier, &mut sub, &e1).await;
    // The window only bounds what goes out again: e1 falls out of a short one.
    let resent = if short {
        tokio::time::sleep(replay_after_loss + Duration::from_millis(500)).await;
        let e2 = envelope(&topic, 2);
        send_and_take(db, &notifier, &mut sub, &e2).await;
        e2
    } else {
        e1
    };
    expect_nothing(&mut sub, Duration::from_millis(400)).await;
    drop(sub);

    // Redis loses the stream, its groups and the marker.
    let _: () = redis::cmd("DEL")
        .arg(&topic)
        .arg(&marker_key)
        .query_async(&mut *conn)
        .await
        .unwrap();
    let mut sub = transport
        .subscribe(&topic, "g", "c1", SubscribeOptions::default())
        .await
        .unwrap();
    let d = expect_next(&mut sub).await;
    assert_eq!(
        d.envelope, resent,
        "the lost event within the window is sent again"
    );
    d.ack().await.unwrap();
    expect_nothing(&mut sub, Duration::from_millis(400)).await;
    shutdown.cancel();
    handle.await.unwrap();
    drop(sub);
    let _: () = redis::cmd("DEL")
        .arg(&topic)
        .arg(&marker_key)
        .query_async(&mut *conn)
        .await
        .unwrap();
    tdb.cleanup().await;
}

/// What a failover to a replica that lagged does: Redis comes back holding the marker and
/// the older events but not the latest ones. A Redis of the test's own is SIGKILLed and
/// started again from a snapshot taken after e1 was sent and before e2 was: the relay finds
/// its watermark older than the one it set, and sends e2 again, and only e2.
async fn tail_loss_scenario(tdb: TestDb) {
    let db = &tdb.db;
    let rig = snapshotted_after_e1(db, "tail").await;
    // e2 is sent after the snapshot; no consumer takes it before Redis goes.
    let e2 = envelope(&rig.topic, 2);
    enqueue_committed(db, &e2).await;
    rig.notifier.notify();
    wait_for_watermark(&rig.transport, &rig.watermarks, Some(rig.first)).await;
    assert_eq!(xlen(&rig.transport, &rig.topic).await, 2);
    // e1 was kept: neither it nor e2 comes again after e2's one resend.
    rig.sends_again(&e2, 1, true).await;
    tdb.cleanup().await;
}

/// Redis takes a batch and then fails before the relay can set its watermark, as a server
/// going down can (here an ACL refuses every command but XADD, so the relay's mark and checks
/// fail), and comes back from a snapshot taken before the batch. The mark it holds is the
/// relay's last one, which proves nothing: the relay sends the batch again at Redis's first
/// answer.
///
/// `for_good`: Redis stays up and keeps refusing only the mark. The batch goes again once, at
/// the first check, and not at every check after it.
async fn unmarked_batch_scenario(tdb: TestDb, for_good: bool) {
    let db = &tdb.db;
    let rig = snapshotted_after_e1(db, "unmarked").await;
    let refused: &[&str] = if for_good {
        &["-eval", "-evalsha"]
    } else {
        &["-set", "-get", "-eval", "-evalsha"]
    };
    let mut conn = rig.transport.pool().get().await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg(refused)
        .query_async(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let e2 = envelope(&rig.topic, 2);
    enqueue_committed(db, &e2).await;
    rig.notifier.notify();
    while xlen(&rig.transport, &rig.topic).await < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The relay tries its mark right after the batch, and checks every 100 ms: all refused.
    tokio::time::sleep(Duration::from_millis(400)).await;
    if for_good {
        // Redis never went: e2 itself and one copy, then nothing.
        rig.sends_again(&e2, 2, false).await;
    } else {
        rig.sends_again(&e2, 1, true).await;
    }
    tdb.cleanup().await;
}

/// A relay watched under a fresh marker (the default loss window) on a Redis of the test's
/// own, after event 1 went through it and Redis saved a snapshot.
struct Snapshotted {
    server: OwnRedis,
    _dir: tempfile::TempDir,
    transport: Arc<RedisStreamsTransport>,
    topic: String,
    watermarks: String,
    /// The relay's watermark after event 1.
    first: i64,
    notifier: RelayNotifier,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

async fn snapshotted_after_e1(db: &DatabaseConnection, name: &str) -> Snapshotted {
    let dir = tempfile::tempdir().unwrap();
    let server = OwnRedis::start(None, Some(dir.path()));
    let transport = Arc::new(
        RedisStreamsTransport::from_url(&server.url(None), RedisOptions::default()).unwrap(),
    );
    let topic = unique(name);
    let marker = unique(&format!("relay-{name}"));
    let watermarks = format!("salestrainer:bus:watermark:{marker}:*");
    let window = Duration::from_secs(salestrainer_bus::REPLAY_AFTER_LOSS_SECS);
    let (notifier, shutdown, handle, mut sub) =
        watched_relay(db, &transport, &topic, &marker, window).await;
    send_and_take(db, &notifier, &mut sub, &envelope(&topic, 1)).await;
    drop(sub);
    let first = wait_for_watermark(&transport, &watermarks, None).await;
    let mut conn = transport.pool().get().await.unwrap();
    let _: () = redis::cmd("SAVE").query_async(&mut *conn).await.unwrap();
    Snapshotted {
        server,
        _dir: dir,
        transport,
        topic,
        watermarks,
        first,
        notifier,
        shutdown,
        handle,
    }
}

impl Snapshotted {
    /// With `restart`, SIGKILLs Redis and starts it again from the snapshot (which holds event
    /// 1 only). Then expects `e` `copies` times on the topic and nothing after; stops the relay.
    async fn sends_again(mut self, e: &Envelope, copies: usize, restart: bool) {
        if restart {
            self.server.kill_and_restart();
            assert_eq!(
                xlen(&self.transport, &self.topic).await,
                1,
                "the snapshot holds event 1 only"
            );
        }
        let mut sub = self
            .transport
            .subscribe(&self.topic, "g", "c1", SubscribeOptions::default())
            .await
            .unwrap();
        for _ in 0..copies {
            let d = expect_next(&mut sub).await;
            assert_eq!(&d.envelope, e, "the lost event is sent again");
            d.ack().await.unwrap();
        }
        expect_nothing(&mut sub, Duration::from_millis(500)).await;
        self.shutdown.cancel();
        self.handle.await.unwrap();
    }
}

/// A relay checking for losses under `marker` every 100 ms, and a consumer on `topic`.
async fn watched_relay(
    db: &DatabaseConnection,
    transport: &Arc<RedisStreamsTransport>,
    topic: &str,
    marker: &str,
    replay_after_loss: Duration,
) -> (
    RelayNotifier,
    CancellationToken,
    tokio::task::JoinHandle<()>,
    Subscription,
) {
    let opts = RelayOptions {
        sweep_interval: Duration::from_millis(100),
        loss_marker: Some(marker.to_owned()),
        replay_after_loss,
        ..RelayOptions::default()
    };
    let shutdown = CancellationToken::new();
    let (notifier, handle) = Relay::start(db.clone(), transport.clone(), opts, shutdown.clone());
    let sub = transport
        .subscribe(topic, "g", "c1", SubscribeOptions::default())
        .await
        .unwrap();
    (notifier, shutdown, handle, sub)
}

/// Commits `e` to the outbox, wakes the relay, and takes `e` as the consumer.
async fn send_and_take(
    db: &DatabaseConnection,
    notifier: &RelayNotifier,
    sub: &mut Subscription,
    e: &Envelope,
) {
    enqueue_committed(db, e).await;
    notifier.notify();
    let d = expect_next(sub).await;
    assert_eq!(&d.envelope, e);
    d.ack().await.unwrap();
}

async fn xlen(transport: &RedisStreamsTransport, topic: &str) -> u64 {
    let mut conn = transport.pool().get().await.unwrap();
    redis::cmd("XLEN")
        .arg(topic)
        .query_async(&mut *conn)
        .await
        .unwrap()
}

/// The relay's watermark under `pattern`, once set (and newer than `after`).
async fn wait_for_watermark(
    transport: &RedisStreamsTransport,
    pattern: &str,
    after: Option<i64>,
) -> i64 {
    let mut conn = transport.pool().get().await.unwrap();
    loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut *conn)
            .await
            .unwrap();
        if let [key] = keys.as_slice() {
            let mark: i64 = redis::cmd("GET")
                .arg(key)
                .query_async(&mut *conn)
                .await
                .unwrap();
            if after.is_none_or(|a| mark > a) {
                return mark;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The in-process bus keeps no watermark: a relay with a loss marker on it sends each event
/// once and never again while it runs.
async fn in_process_sends_once_scenario(tdb: TestDb) {
    let db = &tdb.db;
    let topic = unique("once");
    let transport = Arc::new(InProcessTransport::default());
    let mut sub = transport
        .subscribe(&topic, "g", "c1", SubscribeOptions::default())
        .await
        .unwrap();
    let opts = RelayOptions {
        sweep_interval: Duration::from_millis(50),
        loss_marker: Some(unique("relay-once")),
        ..RelayOptions::default()
    };
    let shutdown = CancellationToken::new();
    let (notifier, handle) = Relay::start(db.clone(), transport, opts, shutdown.clone());
    for n in 1..=3 {
        send_and_take(db, &notifier, &mut sub, &envelope(&topic, n)).await;
    }
    expect_nothing(&mut sub, Duration::from_millis(600)).await;
    shutdown.cancel();
    handle.await.unwrap();
    drop(sub);
    tdb.cleanup().await;
}

#[tokio::test]
async fn in_process_relay_sends_once_sqlite() {
    bounded(in_process_sends_once_scenario(TestDb::sqlite().await)).await;
}

#[tokio::test]
async fn relay_resends_a_batch_whose_mark_failed_sqlite() {
    bounded(unmarked_batch_scenario(TestDb::sqlite().await, false)).await;
}

#[tokio::test]
async fn relay_resends_a_batch_whose_mark_failed_postgres() {
    bounded(unmarked_batch_scenario(TestDb::postgres().await, false)).await;
}

#[tokio::test]
async fn relay_resends_once_while_its_mark_keeps_failing_sqlite() {
    bounded(unmarked_batch_scenario(TestDb::sqlite().await, true)).await;
}

#[tokio::test]
async fn relay_resends_the_tail_a_lagging_redis_lost_sqlite() {
    bounded(tail_loss_scenario(TestDb::sqlite().await)).await;
}

#[tokio::test]
async fn relay_resends_the_tail_a_lagging_redis_lost_postgres() {
    bounded(tail_loss_scenario(TestDb::postgres().await)).await;
}

#[tokio::test]
async fn relay_resends_what_redis_lost_sqlite() {
    let window = Duration::from_secs(salestrainer_bus::REPLAY_AFTER_LOSS_SECS);
    bounded(loss_scenario(TestDb::sqlite().await, window)).await;
}

#[tokio::test]
async fn relay_resends_what_redis_lost_postgres() {
    let window = Duration::from_secs(salestrainer_bus::REPLAY_AFTER_LOSS_SECS);
    bounded(loss_scenario(TestDb::postgres().await, window)).await;
}

#[tokio::test]
async fn relay_resends_only_within_its_window_sqlite() {
    bounded(loss_scenario(
        TestDb::sqlite().await,
        Duration::from_secs(1),
    ))
    .await;
}

#[tokio::test]
async fn relay_resends_only_within_its_window_postgres() {
    bounded(loss_scenario(
        TestDb::postgres().await,
        Duration::from_secs(1),
    ))
    .await;
}

#[tokio::test]
async fn replay_after_restart_sqlite() {
    bounded(async { replay_scenario(TestDb::sqlite().await).await }).await;
}

#[tokio::test]
async fn replay_after_restart_postgres() {
    bounded(async { replay_scenario(TestDb::postgres().await).await }).await;
}

#[tokio::test]
async fn outbox_sqlite() {
    bounded(async { outbox_scenario(TestDb::sqlite().await).await }).await;
}

#[tokio::test]
async fn outbox_postgres() {
    bounded(async { outbox_scenario(TestDb::postgres().await).await }).await;
}

#[tokio::test]
async fn outbox_publish_failure_sqlite() {
    bounded(async { failure_scenario(TestDb::sqlite().await).await }).await;
}

#[tokio::test]
async fn outbox_publish_failure_postgres() {
    bounded(async { failure_scenario(TestDb::postgres().await).await }).await;
}

#[tokio::test]
async fn payload_and_headers_round_trip() {
    bounded(async {
        let tdb = TestDb::sqlite().await;
        let topic = unique("bytes");
        let mut env = envelope(&topic, 0);
        env.payload = vec![0u8, 255, 1, 128, 0].into();
        env.headers.insert("tracestate".into(), "a=b".into());
        enqueue_committed(&tdb.db, &env).await;
        let transport = InProcessTransport::default();
        let mut sub = transport
            .subscribe(&topic, "g", "c", SubscribeOptions::default())
            .await
            .unwrap();
        relay_once(&tdb.db, &transport, 10).await.unwrap();
        let d = expect_next(&mut sub).await;
        assert_eq!(d.envelope, env);
        assert_eq!(payload_str(&envelope(&topic, 7)), "payload-7");
        drop(sub);
        tdb.cleanup().await;
    })
    .await;
}
