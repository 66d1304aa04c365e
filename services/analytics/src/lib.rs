//! The analytics service: the analytics read model and its queries.
//!
//! Rooms:
//! - `api`: the gRPC methods, protobuf in and out, errors to statuses, nothing else;
//! - `app`: the use cases — request checks and authorization, the summary cache, the config
//!   lookups, event ingestion (bus consumers and IngestEvents), the settings;
//! - `domain`: plain Rust with no I/O (facts and rollups, summaries, event checks);
//! - `store`: the tables this service owns, their SQL and migrations.
//!
//! Choices worth knowing:
//! - Day buckets and trends are UTC only; a request's `time_zone` must be empty or "UTC".
//! - A trainee principal's own member is `organizations/{org}/members/{jwt subject}`.
//! - Assignment terms (assignees, due time, required attempts, passing score) and the
//!   leaderboard setting come from the config service; when it cannot answer, progress uses
//!   what events gave (assignees with attempts, one attempt required, the grader's pass) and
//!   the leaderboard follows `SALESTRAINER_ANALYTICS_LEADERBOARD_VISIBLE_BY_DEFAULT` (true).
//! - Usage ranges are widened to whole UTC days (usage is only kept per day).

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use std::sync::Arc;

use salestrainer_proto::analytics::analytics_service_server::AnalyticsServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};

use app::{
    AnalyticsApp, config_lookup::ConfigLookup, settings::AnalyticsSettings,
    summary_cache::SummaryCache,
};

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "analytics";

/// Registers the gRPC API on `server` and returns the start-up task that connects to the
/// database, migrates it, starts the outbox relay and the consumers, and reports SERVING.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    mount_with(server, ctx, AnalyticsSettings::from_env()).await
}

/// [`mount`] with explicit settings (tests, the benchmark).
pub async fn mount_with(
    server: &mut ServerBuilder,
    ctx: &Context,
    settings: AnalyticsSettings,
) -> Starter {
    let db = Ready::new();
    let app = Arc::new(AnalyticsApp {
        db: db.clone(),
        cache: SummaryCache::new(
            settings.cache_ttl,
            settings.cache_capacity,
            ctx.redis.clone(),
        ),
        config: ConfigLookup::new(Some(ctx)),
        settings,
    });
    let api = api::AnalyticsServiceApi::new(app.clone());
    let max = server.settings().max_message_bytes;
    // The runtime enforces the real limit (RESOURCE_EXHAUSTED); tonic's own check must not
    // fire first with OUT_OF_RANGE.
    server
        .add_service(
            AnalyticsServiceServer::new(api).max_decoding_message_size(max.saturating_mul(2)),
        )
        .await;
    server.internal_method("/salestrainer.analytics.v1.AnalyticsService/IngestEvents");
    database_starter::<store::Migrator>(
        SERVICE,
        <AnalyticsServiceServer<api::AnalyticsServiceApi> as tonic::server::NamedService>::NAME,
        ctx.settings.database_url_for(SERVICE),
        db,
        {
            let ctx = ctx.clone();
            move |db| {
                Box::pin(async move {
                    // Events committed to the outbox (also before a crash) are published from here.
                    ctx.start_relay(db);
                    if app.settings.consume_bus {
                        crate::app::ingest::spawn_consumers(app, &ctx);
                    }
                })
            }
        },
    )
}
