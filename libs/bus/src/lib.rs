//! The Salestrainer event bus.
//!
//! Events are delivered at least once through a transactional outbox:
//!
//! 1. a producer writes its state change and the event ([`outbox::enqueue`]) in one database
//!    transaction, then pokes the relay ([`RelayNotifier::notify`]);
//! 2. the [`Relay`] publishes committed outbox rows through a [`Transport`] and marks them sent;
//! 3. consumers [`Transport::subscribe`] with a consumer group, record the event id with
//!    [`inbox::mark_handled`] in the same transaction as their own state change (so a redelivery
//!    changes nothing), commit, then [`Delivery::ack`].
//!
//! The payload is opaque bytes on purpose: this crate knows nothing about protobuf, services put
//! an encoded `salestrainer.events.v1.Event` in it.
//!
//! Wiring in a service (sketch):
//!
//! ```ignore
//! // migrations: add salestrainer_bus::CreateOutbox and CreateInbox to the service's Migrator.
//! let transport: Arc<dyn Transport> = match redis_url {
//!     Some(url) => Arc::new(RedisStreamsTransport::from_url(url, RedisOptions::default())?),
//!     None => Arc::new(shared_in_process_transport.clone()),
//! };
//! let (notifier, relay) = Relay::start(db.clone(), transport.clone(), RelayOptions::default(),
//!     shutdown.clone());
//!
//! // producer
//! let txn = db.begin().await?;
//! /* state change */
//! outbox::enqueue(&txn, &Envelope::new(id, "salestrainer.sessions", "session.ended", org, bytes))
//!     .await?;
//! txn.commit().await?;
//! notifier.notify();
//!
//! // consumer
//! let mut sub = transport.subscribe("salestrainer.sessions", "analytics", &pod_name,
//!     SubscribeOptions::default()).await?;
//! while let Some(d) = sub.next().await {
//!     let txn = db.begin().await?;
//!     if inbox::mark_handled(&txn, "analytics", &d.envelope.event_id).await? {
//!         /* state change */
//!     }
//!     txn.commit().await?;
//!     d.ack().await?;
//! }
//! ```
//!
//! Two transports sit behind the same trait: [`InProcessTransport`] for the embedded mode (one
//! process runs every service) and [`RedisStreamsTransport`] for the distributed mode.

mod envelope;
mod error;
pub mod inbox;
pub mod migration;
pub mod outbox;
mod relay;
pub mod transport;

pub use envelope::{Envelope, HEADER_TRACEPARENT, HEADER_TRACESTATE};
pub use error::{Error, Result};
pub use migration::{CreateInbox, CreateOutbox};
pub use relay::{REPLAY_AFTER_LOSS_SECS, Relay, RelayNotifier, RelayOptions, relay_once};
pub use tokio_util::sync::CancellationToken;
pub use transport::{
    BoxFuture, Delivery, InProcessOptions, InProcessTransport, QueueDepth, RedisOptions,
    RedisStreamsTransport, StartFrom, SubscribeOptions, Subscription, SubscriptionSource,
    Transport,
};
