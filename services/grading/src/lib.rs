//! The grading service: the grading pipeline: jobs, attempts, evaluations.
//!
//! Rooms, the same in every service:
//! - `api`: protobuf to domain types and errors to statuses, nothing else;
//! - `app`: the use cases: the service object, the SessionEnded consumer, the job engine
//!   (dispatch, attempt, result, group commit), the pipeline, the LLM client and its limiter;
//! - `domain`: plain Rust, no I/O (the grader, cleaning, close decision, metrics, retry and
//!   limiter rules, resource names);
//! - `store`: the entities, migrations and queries of the tables this service owns.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use std::sync::Arc;

use salestrainer_proto::grading::grading_service_server::GradingServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};

pub use app::production_engine;

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "grading";

/// Registers the gRPC API on `server` and returns the start-up task that connects to the
/// database, migrates it, starts the outbox relay, the workers and the SessionEnded consumer,
/// and reports SERVING.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    let db = Ready::new();
    let engine: Ready<Arc<app::Engine>> = Ready::new();
    let api = api::GradingServiceApi::new(app::jobs::Grading::new(db.clone(), engine.clone()));
    let max = server.settings().max_message_bytes;
    // The runtime enforces the real limit (RESOURCE_EXHAUSTED); tonic's own check must not
    // fire first with OUT_OF_RANGE.
    server
        .add_service(
            GradingServiceServer::new(api).max_decoding_message_size(max.saturating_mul(2)),
        )
        .await;
    server.internal_method("/salestrainer.grading.v1.GradingService/SubmitSession");
    database_starter::<store::Migrator>(
        SERVICE,
        <GradingServiceServer<api::GradingServiceApi> as tonic::server::NamedService>::NAME,
        ctx.settings.database_url_for(SERVICE),
        db,
        {
            let ctx = ctx.clone();
            move |db| {
                Box::pin(async move {
                    // Events committed to the outbox (also before a crash) are published from here.
                    let notifier = ctx.start_relay(db.clone());
                    match production_engine(&ctx, db, notifier) {
                        Ok(e) => {
                            e.start(ctx.shutdown.clone());
                            app::session_events::spawn(
                                e.clone(),
                                ctx.clone(),
                                ctx.shutdown.clone(),
                            );
                            engine.set(e);
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "grading engine could not start");
                        }
                    }
                })
            }
        },
    )
}
