//! The analytics service: the analytics read model and its queries.
//!
//! Rooms: `grpc` translates protobuf to domain types and errors to statuses; `domain` is plain
//! Rust with no I/O; `store` holds the tables this service owns and their SQL; `ingest`
//! checks events and follows the bus; `reports` assembles summaries; `cache` and
//! `config_source` are the two outside helpers.
//!
//! Choices worth knowing:
//! - Day buckets and trends are UTC only; a request's `time_zone` must be empty or "UTC".
//! - A trainee principal's own member is `organizations/{org}/members/{jwt subject}`.
//! - Assignment terms (assignees, due time, required attempts, passing score) and the
//!   leaderboard setting come from the config service; when it cannot answer, progress uses
//!   what events gave (assignees with attempts, one attempt required, the grader's pass) and
//!   the leaderboard follows `SALESTRAINER_ANALYTICS_LEADERBOARD_VISIBLE_BY_DEFAULT` (true).
//! - Usage ranges are widened to whole UTC days (usage is only kept per day).

pub mod cache;
pub mod config_source;
pub mod domain;
pub mod grpc;
pub mod ingest;
pub mod reports;
pub mod settings;
pub mod store;

use std::sync::Arc;

use salestrainer_proto::analytics::analytics_service_server::AnalyticsServiceServer;
use salestrainer_runtime::{
    ApiError, ApiResult, Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};
use sea_orm::DatabaseConnection;

pub use settings::AnalyticsSettings;

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "analytics";

/// What the RPCs and the consumers share.
pub struct State {
    pub db: Ready<DatabaseConnection>,
    pub cache: cache::SummaryCache,
    pub config: config_source::ConfigLookup,
    pub settings: AnalyticsSettings,
}

impl State {
    /// Applies events atomically, then moves the cache version of every organization they
    /// changed and drops config lookups they made stale.
    pub async fn ingest(
        &self,
        events: &[store::ingest::Parsed],
    ) -> ApiResult<store::ingest::Outcome> {
        let db = self.db.get()?;
        let out = store::ingest::apply(db, events)
            .await
            .map_err(ApiError::internal)?;
        for org in &out.orgs {
            self.cache.bump(org).await;
        }
        for e in events {
            if let store::ingest::Body::Name { resource, .. } = &e.body {
                self.config.invalidate(resource);
            }
        }
        Ok(out)
    }
}

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
    let state = Arc::new(State {
        db: db.clone(),
        cache: cache::SummaryCache::new(
            settings.cache_ttl,
            settings.cache_capacity,
            ctx.redis.clone(),
        ),
        config: config_source::ConfigLookup::new(Some(ctx)),
        settings,
    });
    let api = grpc::AnalyticsServiceApi::new(state.clone());
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
        <AnalyticsServiceServer<grpc::AnalyticsServiceApi> as tonic::server::NamedService>::NAME,
        ctx.settings.database_url_for(SERVICE),
        db,
        {
            let ctx = ctx.clone();
            move |db| {
                Box::pin(async move {
                    // Events committed to the outbox (also before a crash) are published from here.
                    ctx.start_relay(db);
                    if state.settings.consume_bus {
                        ingest::spawn_consumers(state, &ctx);
                    }
                })
            }
        },
    )
}
