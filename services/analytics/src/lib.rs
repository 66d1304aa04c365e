//! The analytics service: the analytics read model and its queries.
//!
//! Rooms: `grpc` translates protobuf to domain types and errors to statuses; `domain` is plain
//! Rust with no I/O; `store` holds the entities and migrations of the tables this service owns.

pub mod domain;
pub mod grpc;
pub mod store;

use salestrainer_proto::analytics::analytics_service_server::AnalyticsServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "analytics";

/// Registers the gRPC API on `server` and returns the start-up task that connects to the
/// database, migrates it, starts the outbox relay and reports SERVING.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    let db = Ready::new();
    let api = grpc::AnalyticsServiceApi::new(db.clone());
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
                })
            }
        },
    )
}
