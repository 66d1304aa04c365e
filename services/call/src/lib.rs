//! The call service: sessions, text roleplay, live transcripts, voice-provider webhooks.
//!
//! Rooms, the same in every service:
//! - `api`: protobuf (and the webhooks' HTTP) to domain types and errors to statuses, nothing
//!   else;
//! - `app`: the use cases: the service object, transactions, the outbox, authorization, the
//!   grading-event consumer, the idle sweeper, the persona engines, settings;
//! - `domain`: plain Rust, no I/O (a session's state rules, the persona, transcripts,
//!   webhook verification and parsing);
//! - `store`: the entities, queries and migrations of the tables this service owns.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use std::sync::Arc;

use salestrainer_proto::call::call_service_server::CallServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "call";

/// Registers the gRPC API and the webhook routes on `server` and returns the start-up task
/// that connects to the database, migrates it, starts the outbox relay, the grading-event
/// consumer and the idle sweeper, and reports SERVING.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    let db = Ready::new();
    let core = match app::Core::new(ctx, db.clone()) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // Only a malformed peer endpoint or HTTP client setup can fail here; the service
            // then stays NOT_SERVING rather than taking the whole process down.
            tracing::error!(error = %e, "call service cannot start");
            return Box::new(|_| Box::pin(async {}));
        }
    };
    let api = api::CallServiceApi::new(core.clone());
    let max = server.settings().max_message_bytes;
    // The runtime enforces the real limit (RESOURCE_EXHAUSTED); tonic's own check must not
    // fire first with OUT_OF_RANGE.
    server
        .add_service(CallServiceServer::new(api).max_decoding_message_size(max.saturating_mul(2)))
        .await;
    server.add_http_routes("/webhooks/", api::webhooks::router(core.clone()));
    core.config.spawn_invalidator(ctx, SERVICE);
    database_starter::<store::Migrator>(
        SERVICE,
        <CallServiceServer<api::CallServiceApi> as tonic::server::NamedService>::NAME,
        ctx.settings.database_url_for(SERVICE),
        db,
        {
            let ctx = ctx.clone();
            move |db| {
                Box::pin(async move {
                    // Events committed to the outbox (also before a crash) are published from here.
                    core.relay.set(ctx.start_relay(db));
                    app::grading_events::spawn_grading_consumer(core.clone(), &ctx);
                    app::sweeper::spawn_sweeper(core, &ctx);
                })
            }
        },
    )
}
