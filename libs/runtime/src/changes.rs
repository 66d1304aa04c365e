//! The change notifier: "resource X changed" pushed to whoever watches X, in this process and,
//! when Redis is configured, on every replica (Redis pub/sub), so a watch stream reads its
//! database only when something changed and never on a timer.
//!
//! A writer calls [`Changes::publish`] with a resource's key after its transaction commits. A
//! watcher holds a [`Watch`] for one key and awaits [`Watch::changed`], then re-reads the row.
//! Each key is a `tokio::sync::watch` counter, so a burst of changes wakes a watcher once
//! (it reads the latest state) and a slow watcher can never lag behind a buffer. Pub/sub is
//! at-most-once: after the subscription is (re)established every watcher of the process is
//! woken once to re-read ("resync"), so a change published while this replica was cut off
//! from Redis is not lost. An idle watcher costs a map entry and a parked task, no queries.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use futures::StreamExt;
use tokio::sync::watch;

use crate::{Context, backoff::Backoff};

/// How often an idle subscription is pinged, so a silently dead connection is noticed and
/// replaced (one PING per process, not per watcher).
const PING_EVERY: Duration = Duration::from_secs(30);

/// The notifier of one service (cheap to clone).
#[derive(Clone)]
pub struct Changes {
    inner: Arc<Inner>,
}

struct Inner {
    /// The Redis channel of this service's changes.
    channel: String,
    /// This process's mark on what it publishes, so it skips its own echo.
    origin: String,
    /// One counter per watched key; removed when its last watcher goes.
    keys: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Bumped when changes may have been missed (Redis subscription (re)established).
    resync: watch::Sender<u64>,
    /// Set once the Redis subscriber runs; publishes then also go to other replicas.
    redis: OnceLock<deadpool_redis::Pool>,
}

impl Changes {
    /// A notifier for `service`'s resources, in this process only until [`Self::start`].
    pub fn new(service: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                channel: format!("salestrainer.changes.{service}"),
                origin: uuid::Uuid::new_v4().simple().to_string(),
                keys: Mutex::new(HashMap::new()),
                resync: watch::channel(0).0,
                redis: OnceLock::new(),
            }),
        }
    }

    /// Crosses replicas when the context has Redis: subscribes to the service's channel (and
    /// keeps re-subscribing until shutdown) and publishes there too. In-process otherwise.
    pub fn start(&self, ctx: &Context) {
        let (Some(url), Some(pool)) = (ctx.settings.redis_url(), ctx.redis.as_ref()) else {
            return;
        };
        let client = match redis::Client::open(url) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "change notifier: bad Redis URL; watchers see this replica's changes only");
                return;
            }
        };
        if self.inner.redis.set(pool.clone()).is_err() {
            return; // already started
        }
        let inner = self.inner.clone();
        let stop = ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::reconnect();
            loop {
                let cut = tokio::select! {
                    () = stop.cancelled() => return,
                    r = inner.listen(&client, &mut backoff) => r,
                };
                metrics::counter!("change_notifier_reconnects_total", "channel" => inner.channel.clone()).increment(1);
                tracing::warn!(error = %cut, channel = %inner.channel, "change subscription lost; reconnecting");
                if !backoff.wait(&stop).await {
                    return;
                }
            }
        });
    }

    /// Tells every watcher of `key` (here and, with Redis, on every replica) that it changed.
    /// Call after the change committed.
    pub fn publish(&self, key: &str) {
        self.inner.wake(key);
        metrics::counter!("change_notifier_published_total", "channel" => self.inner.channel.clone())
            .increment(1);
        let Some(pool) = self.inner.redis.get().cloned() else {
            return;
        };
        let channel = self.inner.channel.clone();
        let message = format!("{} {key}", self.inner.origin);
        // Fire and forget: the writer's request does not wait on Redis. A publish lost while
        // Redis is down is covered by the resync every replica does when it resubscribes.
        tokio::spawn(async move {
            let sent: anyhow::Result<()> = async {
                let mut conn = pool.get().await?;
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&message)
                    .query_async::<i64>(&mut conn)
                    .await?;
                Ok(())
            }
            .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, %channel, "publishing a change failed");
            }
        });
    }

    /// Watches `key`: [`Watch::changed`] returns when it (may have) changed.
    pub fn watch(&self, key: &str) -> Watch {
        let rx = self
            .inner
            .keys()
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Watch {
            key: key.to_owned(),
            rx: Some(rx),
            resync: self.inner.resync.subscribe(),
            inner: self.inner.clone(),
        }
    }

    /// Keys watched in this process right now (for tests and gauges).
    pub fn watched_keys(&self) -> usize {
        self.inner.keys().len()
    }
}

impl Inner {
    fn keys(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake(&self, key: &str) {
        if let Some(tx) = self.keys().get(key) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// One subscription's life: subscribe, resync the watchers, deliver until it breaks.
    async fn listen(&self, client: &redis::Client, backoff: &mut Backoff) -> anyhow::Error {
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        let (mut sink, mut messages) = pubsub.split();
        if let Err(e) = sink.subscribe(&self.channel).await {
            return e.into();
        }
        backoff.reset();
        // Whatever was published while we were not subscribed is unknown: everyone re-reads.
        self.resync.send_modify(|n| *n = n.wrapping_add(1));
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                m = messages.next() => {
                    let Some(m) = m else { return anyhow::anyhow!("subscription closed") };
                    let payload = String::from_utf8_lossy(m.get_payload_bytes());
                    match payload.split_once(' ') {
                        Some((origin, _)) if origin == self.origin => {}
                        Some((_, key)) => self.wake(key),
                        None => {}
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = sink.ping::<String>().await {
                        return e.into();
                    }
                }
            }
        }
    }
}

/// A watcher of one key. Dropping it releases the key when it was the last.
pub struct Watch {
    key: String,
    rx: Option<watch::Receiver<u64>>,
    resync: watch::Receiver<u64>,
    inner: Arc<Inner>,
}

impl Watch {
    /// Returns when the key changed (or everything must be re-read) since the last call (or
    /// since the watch began); several changes in between wake it once.
    pub async fn changed(&mut self) {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        // Neither sender is dropped while we hold `inner`, so these do not error.
        tokio::select! {
            r = rx.changed() => { if r.is_err() { std::future::pending::<()>().await } }
            r = self.resync.changed() => { if r.is_err() { std::future::pending::<()>().await } }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut keys = self.inner.keys();
        // Our receiver goes first, under the lock, so the count below is exact.
        drop(self.rx.take());
        if keys
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_only_the_watchers_of_the_key_and_forgets_unwatched_keys() {
        let changes = Changes::new("test");
        let mut a = changes.watch("a");
        let mut b = changes.watch("b");
        changes.publish("a");
        changes.publish("a");
        tokio::time::timeout(Duration::from_secs(1), a.changed())
            .await
            .unwrap_or_else(|_| panic!("a was published"));
        // Two publishes, one wake: the watcher re-reads the latest state once.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a.changed())
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.changed())
                .await
                .is_err()
        );
        assert_eq!(changes.watched_keys(), 2);
        drop(a);
        assert_eq!(changes.watched_keys(), 1);
        let b2 = changes.watch("b");
        drop(b);
        assert_eq!(changes.watched_keys(), 1, "b still has a watcher");
        drop(b2);
        assert_eq!(changes.watched_keys(), 0);
        changes.publish("nobody"); // no watcher: nothing kept
        assert_eq!(changes.watched_keys(), 0);
    }

    #[tokio::test]
    async fn a_resync_wakes_every_watcher() {
        let changes = Changes::new("test");
        let mut a = changes.watch("a");
        let mut b = changes.watch("b");
        changes.inner.resync.send_modify(|n| *n += 1);
        for w in [&mut a, &mut b] {
            tokio::time::timeout(Duration::from_secs(1), w.changed())
                .await
                .unwrap_or_else(|_| panic!("resync wakes all"));
        }
    }
}
