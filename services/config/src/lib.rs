//! The config service: organizations, members, provider credentials, personas, scenarios, rubrics, prompt templates, assignments.
//!
//! Rooms:
//! - `api`: the gRPC methods, protobuf in and out, errors to statuses, nothing else;
//! - `app`: the use cases — access checks, transactions, outbox events, cache invalidation —
//!   the settings, and the service description ([`app::ConfigApp`]);
//! - `domain`: plain Rust with no I/O (validation, the id policy, crypto);
//! - `store`: the entities, queries and migrations of the tables this service owns.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use salestrainer_runtime::{Context, app::Starter, server::ServerBuilder};

/// The service's name: its database, its logs, its metrics, its settings section.
pub const SERVICE: &str = "config";

/// Registers the gRPC API on `server` with the `[config]` settings and returns the start-up
/// task (connect, migrate, start the relay and the cache invalidator, report SERVING).
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    salestrainer_runtime::service::mount::<app::ConfigApp>(server, ctx).await
}

/// [`mount`] with explicit settings (tests, the benchmark).
pub async fn mount_with(
    server: &mut ServerBuilder,
    ctx: &Context,
    settings: app::settings::ConfigSettings,
) -> Starter {
    salestrainer_runtime::service::mount_with::<app::ConfigApp>(server, ctx, settings).await
}
