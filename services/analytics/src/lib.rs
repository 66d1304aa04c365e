//! The analytics service: the analytics read model and its queries.
//!
//! Rooms:
//! - `api`: the gRPC methods, protobuf in and out, errors to statuses, nothing else;
//! - `app`: the use cases — request checks and authorization, the summary cache, the config
//!   lookups, event ingestion (the bus consumer and IngestEvents), the settings, and the
//!   service description ([`app::AnalyticsApp`]);
//! - `domain`: plain Rust with no I/O (facts and rollups, summaries, event checks);
//! - `store`: the tables this service owns, their SQL and migrations.
//!
//! Choices worth knowing:
//! - Day buckets and trends are UTC only; a request's `time_zone` must be empty or "UTC".
//! - A trainee principal's own member is `organizations/{org}/members/{jwt subject}`.
//! - Assignment terms (assignees, due time, required attempts, passing score) and the
//!   leaderboard setting come from the config service; when it cannot answer, progress uses
//!   what events gave (assignees with attempts, one attempt required, the grader's pass) and
//!   the leaderboard follows `[analytics] leaderboard_visible_by_default` (true).
//! - Usage ranges are widened to whole UTC days (usage is only kept per day).

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use salestrainer_runtime::{Context, app::Starter, server::ServerBuilder};

/// The service's name: its database, its logs, its metrics, its settings section.
pub const SERVICE: &str = "analytics";

/// Registers the gRPC API on `server` with the `[analytics]` settings and returns the
/// start-up task (connect, migrate, start the relay and the consumer, report SERVING).
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    salestrainer_runtime::service::mount::<app::AnalyticsApp>(server, ctx).await
}

/// [`mount`] with explicit settings (tests, the benchmark).
pub async fn mount_with(
    server: &mut ServerBuilder,
    ctx: &Context,
    settings: app::settings::AnalyticsSettings,
) -> Starter {
    salestrainer_runtime::service::mount_with::<app::AnalyticsApp>(server, ctx, settings).await
}
