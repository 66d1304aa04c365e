//! The call service: sessions, text roleplay, live transcripts, voice-provider webhooks.
//!
//! Rooms, the same in every service:
//! - `api`: protobuf (and the webhooks' HTTP) to domain types and errors to statuses, nothing
//!   else;
//! - `app`: the use cases: the service object ([`app::CallApp`], the service's description),
//!   transactions, the outbox, authorization, the grading-event handler, the idle sweeper, the
//!   persona engines, settings;
//! - `domain`: plain Rust, no I/O (a session's state rules, the persona, transcripts,
//!   webhook verification and parsing);
//! - `store`: the entities, queries and migrations of the tables this service owns.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use salestrainer_runtime::{Context, app::Starter, server::ServerBuilder};

/// The service's name: its database, its logs, its metrics, its settings section.
pub const SERVICE: &str = "call";

/// Mounts the call service with the settings of its `[call]` section.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    salestrainer_runtime::service::mount::<app::CallApp>(server, ctx).await
}
