//! The one bus consumer loop. A service writes only its [`EventHandler`]; subscribing with
//! backoff, taking batches, decoding, dropping (and counting) poison events, consume spans,
//! acking or leaving for redelivery, and stopping at shutdown are written here once.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use salestrainer_bus::{Delivery, SubscribeOptions};
use salestrainer_proto::events as pb;
use tracing::Instrument;

use crate::{Context, backoff::Backoff, events};

/// What one consumer follows.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub topic: &'static str,
    /// The consumer group, also the inbox consumer name of the service.
    pub group: String,
    /// Event types handled (`session.ended`, …); others are acked unseen. Empty: all.
    pub event_types: &'static [&'static str],
    /// Most events handed to one [`EventHandler::handle`] call (one transaction).
    pub max_batch: usize,
    pub options: SubscribeOptions,
}

impl Subscription {
    /// A consumer group: each event goes to one replica of the service.
    pub fn new(topic: &'static str, group: &str) -> Self {
        Self {
            topic,
            group: group.to_owned(),
            event_types: &[],
            max_batch: 1,
            options: SubscribeOptions::default(),
        }
    }

    /// Every replica sees every event from now on (a group of its own), e.g. to drop cached
    /// copies; nothing from before the start is replayed.
    pub fn each_replica(topic: &'static str, name: &str, ctx: &Context) -> Self {
        let mut sub = Self::new(topic, &format!("{name}-{}", ctx.consumer));
        sub.options.start_from = salestrainer_bus::StartFrom::Latest;
        sub
    }

    pub fn only(mut self, event_types: &'static [&'static str]) -> Self {
        self.event_types = event_types;
        self
    }

    /// Hands bursts of up to `max` events to one call (fetching as many per read).
    pub fn batches_of(mut self, max: usize) -> Self {
        self.max_batch = max.max(1);
        self.options.batch_size = self.max_batch;
        self
    }
}

/// One decoded event and the consume span that continues its producer's trace.
pub struct Received {
    pub event: pb::Event,
    pub span: tracing::Span,
    /// Handed out before and not acked (a consumer died or was slow); the inbox makes it
    /// harmless.
    pub redelivered: bool,
}

impl Received {
    /// The consume span's trace context, for work that outlives the handling (a job).
    pub fn trace_context(&self) -> BTreeMap<String, String> {
        self.span.in_scope(crate::telemetry::current_trace_context)
    }
}

/// A service's reaction to events. `Ok` acks the whole batch; `Err` leaves it for
/// redelivery after the visibility timeout, so a handler must be idempotent (the inbox).
pub trait EventHandler: Send + Sync + 'static {
    fn handle(&self, batch: &[Received]) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Follows `sub` until the context shuts down.
pub fn spawn<H: EventHandler>(ctx: &Context, sub: Subscription, handler: Arc<H>) {
    let ctx = ctx.clone();
    tokio::spawn(async move { run(&ctx, &sub, &*handler).await });
}

async fn run<H: EventHandler>(ctx: &Context, sub: &Subscription, handler: &H) {
    let stop = &ctx.shutdown;
    let mut backoff = Backoff::reconnect();
    let mut stream = loop {
        match ctx
            .bus
            .subscribe(sub.topic, &sub.group, &ctx.consumer, sub.options.clone())
            .await
        {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(topic = sub.topic, group = %sub.group, error = %e, "cannot subscribe; retrying");
                if !backoff.wait(stop).await {
                    return;
                }
            }
        }
    };
    // A failing handler (its database is down, say) is not retried hot: the next batch waits.
    let mut failures = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let batch = tokio::select! {
            () = stop.cancelled() => return,
            b = stream.next_batch(sub.max_batch) => b,
        };
        if batch.is_empty() {
            tracing::info!(topic = sub.topic, group = %sub.group, "bus closed; consumer stops");
            return;
        }
        let (received, deliveries) = decode_batch(sub, batch).await;
        if received.is_empty() {
            continue;
        }
        let span = match received.as_slice() {
            [one] => one.span.clone(),
            many => {
                tracing::info_span!("event.consume_batch", group = %sub.group, events = many.len())
            }
        };
        match handler.handle(&received).instrument(span).await {
            Ok(()) => {
                count(sub, "handled", received.len());
                failures.reset();
                for d in deliveries {
                    if let Err(e) = d.ack().await {
                        tracing::warn!(group = %sub.group, error = %e, "ack failed; the event will be redelivered");
                    }
                }
            }
            Err(e) => {
                count(sub, "failed", received.len());
                tracing::warn!(group = %sub.group, events = received.len(), error = %e, "events not applied; they will be redelivered");
                drop(deliveries);
                if !failures.wait(stop).await {
                    return;
                }
            }
        }
    }
}

/// Decodes a batch. Events of other types are acked unseen; an event that cannot decode
/// never will, so it is acked too (it would block the group) and counted as poison.
async fn decode_batch(sub: &Subscription, batch: Vec<Delivery>) -> (Vec<Received>, Vec<Delivery>) {
    let mut received = Vec::with_capacity(batch.len());
    let mut keep = Vec::with_capacity(batch.len());
    for delivery in batch {
        let env = &delivery.envelope;
        if !sub.event_types.is_empty() && !sub.event_types.contains(&env.event_type.as_str()) {
            count(sub, "skipped", 1);
            let _ = delivery.ack().await;
            continue;
        }
        match events::decode(env) {
            Ok(event) => {
                received.push(Received {
                    span: events::consumer_span(&event, &sub.group),
                    redelivered: delivery.redelivered,
                    event,
                });
                keep.push(delivery);
            }
            Err(e) => {
                count(sub, "poison", 1);
                tracing::warn!(group = %sub.group, event_id = %env.event_id, error = %e, "undecodable event dropped");
                let _ = delivery.ack().await;
            }
        }
    }
    (received, keep)
}

fn count(sub: &Subscription, outcome: &'static str, n: usize) {
    metrics::counter!("bus_consumed_events_total", "topic" => sub.topic, "group" => sub.group.clone(), "outcome" => outcome)
        .increment(n as u64);
}
