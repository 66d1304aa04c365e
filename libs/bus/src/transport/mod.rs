//! Transports move envelopes from the relay to consumer groups.
//!
//! Semantics shared by every transport (consumer groups, as in Redis Streams):
//! - every group subscribed to a topic gets every event published to it;
//! - within a group, each event goes to one consumer at a time;
//! - a delivery that is not [`Delivery::ack`]ed within the visibility timeout (its consumer died,
//!   hung or dropped it) is delivered again, to any consumer of the group. Delivery is therefore
//!   at least once: consumers deduplicate with [`crate::inbox::mark_handled`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::{Envelope, Error, Result};

mod memory;
mod redis_streams;

pub use memory::{InProcessOptions, InProcessTransport};
pub use redis_streams::{RedisOptions, RedisStreamsTransport};

/// A boxed, sendable future: keeps [`Transport`] object-safe without `async-trait`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a consumer group that does not exist yet starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// Every event the transport still retains for the topic (the default: events published
    /// before a service's first start are not lost to it).
    #[default]
    Beginning,
    /// Only events published after the group is created.
    Latest,
}

/// How a subscription reads.
#[derive(Clone, Debug)]
pub struct SubscribeOptions {
    /// How many events are fetched per read (Redis `COUNT`). Keep it small when handling is slow:
    /// fetched events wait in this consumer while their visibility timeout runs.
    pub batch_size: usize,
    /// How long one blocking read waits before the loop checks for stalled entries again.
    pub block: Duration,
    /// A delivery not acked this long after it was handed out goes to another consumer. Must be
    /// longer than the slowest handling, or slow events are handled twice.
    pub visibility_timeout: Duration,
    /// How often stalled entries of dead consumers are looked for (Redis `XAUTOCLAIM`).
    pub claim_interval: Duration,
    pub start_from: StartFrom,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            batch_size: 1,
            block: Duration::from_secs(1),
            visibility_timeout: Duration::from_secs(60),
            claim_interval: Duration::from_secs(5),
            start_from: StartFrom::Beginning,
        }
    }
}

/// Queue depth of one consumer group, for metrics and autoscaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Delivered to a consumer but not acked yet.
    pub pending: u64,
    /// Published but not delivered to any consumer of the group yet (`None` when the transport
    /// cannot tell).
    pub lag: Option<u64>,
}

impl QueueDepth {
    /// Pending plus lag: the work the group still has to do.
    pub fn total(&self) -> u64 {
        self.pending + self.lag.unwrap_or(0)
    }
}

/// One interface over the in-process and Redis Streams transports.
pub trait Transport: Send + Sync + 'static {
    /// Publishes one event to `env.topic`. Once this returns `Ok`, the transport holds the event
    /// for every group of the topic.
    fn publish<'a>(&'a self, env: &'a Envelope) -> BoxFuture<'a, Result<()>>;

    /// Publishes `envs` in order: how many were published before an error stopped the rest,
    /// and that error. One at a time by default; a transport may send them all in one round
    /// trip, and then on an error it may report fewer published than were (they are sent
    /// again: at least once, as after a crash).
    fn publish_many<'a>(&'a self, envs: &'a [Envelope]) -> BoxFuture<'a, (usize, Option<Error>)> {
        Box::pin(async move {
            for (i, env) in envs.iter().enumerate() {
                if let Err(e) = self.publish(env).await {
                    return (i, Some(e));
                }
            }
            (envs.len(), None)
        })
    }

    /// Joins `consumer` to consumer `group` on `topic`, creating the group if needed.
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        consumer: &'a str,
        opts: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription>>;

    /// Whether a published event outlives this process (Redis does; the in-process transport
    /// loses what its consumers had not taken yet, so its relays send recent events again at
    /// the next start, see [`crate::RelayOptions::replay_on_start`]).
    fn durable(&self) -> bool {
        true
    }

    /// Whether the transport still holds what it held when `marker` was last checked: false
    /// when its data was lost since (a Redis restarted without persistence, or flushed), and
    /// at the first check of a new marker. Whoever put something there that must not be lost
    /// (the relay, a work queue) puts it there again. Transports that cannot tell answer true.
    fn intact<'a>(&'a self, marker: &'a str) -> BoxFuture<'a, Result<bool>> {
        let _ = marker;
        Box::pin(async { Ok(true) })
    }

    /// Records under `key` how far a publisher's publishes reached: the mark moves from
    /// `from` (`None`: no mark yet) to `to` after publishes that returned, so finding an older
    /// mark later means the transport lost the publishes after it while keeping what came
    /// before (a failover to a replica that lagged). Atomic: when the transport holds another
    /// mark than `from`, nothing changes and `Err(held)` says which (`None`: none). The mark
    /// expires after `ttl` without a new one. Transports that cannot lose a tail keep nothing
    /// and always advance.
    fn advance_watermark<'a>(
        &'a self,
        key: &'a str,
        from: Option<i64>,
        to: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<std::result::Result<(), Option<i64>>>> {
        let _ = (key, from, to, ttl);
        Box::pin(async { Ok(Ok(())) })
    }

    /// The mark under `key` that the transport holds; `None` when it holds none (or keeps
    /// none: then the relay does not look).
    fn watermark<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<i64>>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// How much work `group` still has on `topic`.
    fn queue_depth<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<QueueDepth>>;
}

/// The transport-specific side of a [`Subscription`]; dropping it leaves the group.
pub trait SubscriptionSource: Send {
    /// The next delivery, waiting as long as needed; `None` once the transport is closed.
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>>;

    /// A delivery that is ready now, without waiting; `None` when there is none at hand.
    fn try_next(&mut self) -> Option<Delivery> {
        None
    }
}

/// A consumer's membership in a group. Dropping it stops the reading promptly; deliveries it had
/// handed out but not acked are redelivered to another consumer of the group.
pub struct Subscription {
    source: Box<dyn SubscriptionSource>,
}

impl Subscription {
    pub fn new(source: impl SubscriptionSource + 'static) -> Self {
        Self {
            source: Box::new(source),
        }
    }

    /// Waits for the next delivery; `None` when the transport has shut down. Cancel-safe in the
    /// sense that matters: a delivery lost by dropping this future is simply redelivered later.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.source.next().await
    }

    /// Waits for the next delivery, then adds those already at hand, up to `max` in all, so a
    /// consumer can handle a burst in one transaction. Empty once the transport has shut down.
    pub async fn next_batch(&mut self, max: usize) -> Vec<Delivery> {
        let Some(first) = self.source.next().await else {
            return Vec::new();
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match self.source.try_next() {
                Some(d) => batch.push(d),
                None => break,
            }
        }
        batch
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

type AckFn = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// One event handed to one consumer. Handle it, commit, then [`Delivery::ack`]; a delivery
/// dropped without ack is redelivered after the visibility timeout.
pub struct Delivery {
    pub envelope: Envelope,
    /// True when this event was handed out before and not acked (the consumer died or was slow);
    /// the inbox makes that harmless.
    pub redelivered: bool,
    ack: Option<AckFn>,
}

impl Delivery {
    /// For transport implementations: `ack` is run once by [`Delivery::ack`].
    pub fn new(
        envelope: Envelope,
        redelivered: bool,
        ack: impl FnOnce() -> BoxFuture<'static, Result<()>> + Send + 'static,
    ) -> Self {
        Self {
            envelope,
            redelivered,
            ack: Some(Box::new(ack)),
        }
    }

    /// Acknowledges the delivery: the group will not see this event again.
    pub async fn ack(mut self) -> Result<()> {
        match self.ack.take() {
            Some(ack) => ack().await,
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event_id", &self.envelope.event_id)
            .field("topic", &self.envelope.topic)
            .field("event_type", &self.envelope.event_type)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}
