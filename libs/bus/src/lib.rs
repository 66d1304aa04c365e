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
pub use relay::{Relay, RelayNotifier, RelayOptions, relay_once};
pub use tokio_util::sync::CancellationToken;
pub use transport::{
    BoxFuture, Delivery, InProcessOptions, InProcessTransport, QueueDepth, RedisOptions,
    RedisStreamsTransport, StartFrom, SubscribeOptions, Subscription, SubscriptionSource,
    Transport,
};
