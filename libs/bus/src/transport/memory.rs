//! In-process transport for the embedded mode (one process runs every service).
//!
//! Each (topic, group) has a bounded queue. A delivery stays "pending" for its consumer until it
//! is acked; it goes back to the front of the queue (and so to any consumer of the group) when
//! its visibility timeout passes or as soon as the subscription that received it is dropped.
//! Nothing survives a restart, which is fine: the outbox is the durable copy and unacked events
//! were never marked handled by the consumers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{BoxFuture, Delivery, QueueDepth, StartFrom, SubscribeOptions, Subscription};
use super::{SubscriptionSource, Transport};
use crate::{Envelope, Error, Result};

/// Bounds of the in-process transport.
#[derive(Clone, Debug)]
pub struct InProcessOptions {
    /// Per (topic, group): queued plus pending events. A publish that would exceed it fails with
    /// [`Error::QueueFull`] and the relay retries later (the event waits in the outbox).
    pub max_queue: usize,
    /// Per topic: how many recent events are kept for groups created later with
    /// [`StartFrom::Beginning`] (so a consumer that subscribes after the first publish still
    /// gets it).
    pub retain: usize,
}

impl Default for InProcessOptions {
    fn default() -> Self {
        Self {
            max_queue: 10_000,
            retain: 1_000,
        }
    }
}

/// The in-process transport; cheap to clone (all clones share the queues).
#[derive(Clone)]
pub struct InProcessTransport {
    inner: Arc<Inner>,
}

struct Inner {
    opts: InProcessOptions,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    next_seq: u64,
    next_consumer: u64,
}

#[derive(Default)]
struct Topic {
    retained: VecDeque<(u64, Arc<Envelope>)>,
    groups: HashMap<String, Group>,
}

struct Group {
    ready: VecDeque<Entry>,
    pending: HashMap<u64, Pending>,
    notify: Arc<Notify>,
}

struct Entry {
    seq: u64,
    env: Arc<Envelope>,
    redelivered: bool,
}

struct Pending {
    env: Arc<Envelope>,
    consumer: u64,
    deadline: Instant,
}

impl Group {
    fn len(&self) -> usize {
        self.ready.len() + self.pending.len()
    }

    /// Puts pending entries matching `pred` back at the front of the queue, oldest first.
    fn requeue(&mut self, pred: impl Fn(&Pending) -> bool) -> bool {
        let mut seqs: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| pred(p))
            .map(|(s, _)| *s)
            .collect();
        if seqs.is_empty() {
            return false;
        }
        // Push the newest first so that the oldest ends up at the very front.
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        for seq in seqs {
            if let Some(p) = self.pending.remove(&seq) {
                self.ready.push_front(Entry {
                    seq,
                    env: p.env,
                    redelivered: true,
                });
            }
        }
        true
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queues half-updated in a way that
        // matters more than losing the whole bus would, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Wake every waiting consumer so that it sees the transport is gone and returns `None`.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for topic in state.topics.values() {
            for group in topic.groups.values() {
                group.notify.notify_waiters();
            }
        }
    }
}

impl Default for InProcessTransport {
    fn default() -> Self {
        Self::new(InProcessOptions::default())
    }
}

impl InProcessTransport {
    pub fn new(opts: InProcessOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                opts,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn publish_sync(&self, env: &Envelope) -> Result<()> {
        let opts = &self.inner.opts;
        let mut state = self.inner.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        let topic = state.topics.entry(env.topic.clone()).or_default();
        // Check every group first so an event is queued for all of them or for none.
        if let Some((name, _)) = topic.groups.iter().find(|(_, g)| g.len() >= opts.max_queue) {
            return Err(Error::QueueFull {
                topic: env.topic.clone(),
                group: name.clone(),
                capacity: opts.max_queue,
            });
        }
        let env = Arc::new(env.clone());
        for group in topic.groups.values_mut() {
            group.ready.push_back(Entry {
                seq,
                env: env.clone(),
                redelivered: false,
            });
            group.notify.notify_waiters();
        }
        if opts.retain > 0 {
            if topic.retained.len() >= opts.retain {
                topic.retained.pop_front();
            }
            topic.retained.push_back((seq, env));
        }
        Ok(())
    }

    fn subscribe_sync(&self, topic: &str, group: &str, opts: SubscribeOptions) -> MemorySource {
        let mut state = self.inner.lock();
        let consumer = state.next_consumer;
        state.next_consumer += 1;
        let t = state.topics.entry(topic.to_owned()).or_default();
        let seed: VecDeque<Entry> = match opts.start_from {
            StartFrom::Beginning => t
                .retained
                .iter()
                .map(|(seq, env)| Entry {
                    seq: *seq,
                    env: env.clone(),
                    redelivered: false,
                })
                .collect(),
            StartFrom::Latest => VecDeque::new(),
        };
        let g = t.groups.entry(group.to_owned()).or_insert_with(|| Group {
            ready: seed,
            pending: HashMap::new(),
            notify: Arc::new(Notify::new()),
        });
        MemorySource {
            inner: Arc::downgrade(&self.inner),
            notify: g.notify.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            consumer,
            visibility_timeout: opts.visibility_timeout,
        }
    }

    fn queue_depth_sync(&self, topic: &str, group: &str) -> QueueDepth {
        let state = self.inner.lock();
        match state.topics.get(topic).and_then(|t| t.groups.get(group)) {
            Some(g) => QueueDepth {
                pending: g.pending.len() as u64,
                lag: Some(g.ready.len() as u64),
            },
            None => QueueDepth::default(),
        }
    }
}

impl Transport for InProcessTransport {
    fn publish<'a>(&'a self, env: &'a Envelope) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.publish_sync(env) })
    }

    fn durable(&self) -> bool {
        false
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        _consumer: &'a str,
        opts: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription>> {
        Box::pin(async move { Ok(Subscription::new(self.subscribe_sync(topic, group, opts))) })
    }

    fn queue_depth<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<QueueDepth>> {
        Box::pin(async move { Ok(self.queue_depth_sync(topic, group)) })
    }
}

/// One consumer of one group. Holds the transport weakly so that dropping the transport ends
/// the subscription instead of keeping the queues alive.
struct MemorySource {
    inner: Weak<Inner>,
    notify: Arc<Notify>,
    topic: String,
    group: String,
    consumer: u64,
    visibility_timeout: Duration,
}

/// The longest a waiting consumer sleeps without a wake-up, as a safety net.
const MAX_IDLE_WAIT: Duration = Duration::from_secs(1);

enum Poll {
    Got(Delivery),
    Wait(Instant),
    Closed,
}

impl MemorySource {
    fn poll_once(&self) -> Poll {
        let Some(inner) = self.inner.upgrade() else {
            return Poll::Closed;
        };
        let now = Instant::now();
        let mut state = inner.lock();
        let Some(group) = state
            .topics
            .get_mut(&self.topic)
            .and_then(|t| t.groups.get_mut(&self.group))
        else {
            return Poll::Closed;
        };
        // Entries whose consumer went silent past the visibility timeout are up for grabs.
        group.requeue(|p| p.deadline <= now);
        if let Some(entry) = group.ready.pop_front() {
            group.pending.insert(
                entry.seq,
                Pending {
                    env: entry.env.clone(),
                    consumer: self.consumer,
                    deadline: now + self.visibility_timeout,
                },
            );
            let ack = {
                let inner = self.inner.clone();
                let topic = self.topic.clone();
                let group = self.group.clone();
                let seq = entry.seq;
                move || -> BoxFuture<'static, Result<()>> {
                    Box::pin(async move {
                        ack(&inner, &topic, &group, seq);
                        Ok(())
                    })
                }
            };
            let env = Envelope::clone(&entry.env);
            return Poll::Got(Delivery::new(env, entry.redelivered, ack));
        }
        let next_deadline = group
            .pending
            .values()
            .map(|p| p.deadline)
            .min()
            .unwrap_or(now + MAX_IDLE_WAIT);
        Poll::Wait(next_deadline.min(now + MAX_IDLE_WAIT))
    }
}

fn ack(inner: &Weak<Inner>, topic: &str, group: &str, seq: u64) {
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let mut state = inner.lock();
    if let Some(g) = state
        .topics
        .get_mut(topic)
        .and_then(|t| t.groups.get_mut(group))
        && g.pending.remove(&seq).is_none()
    {
        // Requeued meanwhile (timeout or its subscription dropped) but handled after all: do
        // not hand it out again.
        g.ready.retain(|e| e.seq != seq);
    }
}

impl SubscriptionSource for MemorySource {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            loop {
                // Register for wake-ups before looking at the queue, so a publish that lands
                // between the look and the wait is not missed.
                let notified = self.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match self.poll_once() {
                    Poll::Got(d) => return Some(d),
                    Poll::Closed => return None,
                    Poll::Wait(until) => {
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep_until(until) => {}
                        }
                    }
                }
            }
        })
    }

    fn try_next(&mut self) -> Option<Delivery> {
        match self.poll_once() {
            Poll::Got(d) => Some(d),
            Poll::Closed | Poll::Wait(_) => None,
        }
    }
}

impl Drop for MemorySource {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut state = inner.lock();
        if let Some(g) = state
            .topics
            .get_mut(&self.topic)
            .and_then(|t| t.groups.get_mut(&self.group))
        {
            // This consumer is gone: hand its unacked deliveries to the others right away
            // instead of waiting for the visibility timeout.
            let consumer = self.consumer;
            if g.requeue(|p| p.consumer == consumer) {
                g.notify.notify_waiters();
            }
        }
    }
}
