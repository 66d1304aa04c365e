//! The grading service: the grading pipeline: jobs, attempts, evaluations.
//!
//! Rooms: `grpc` translates protobuf to domain types and errors to statuses; `domain` is plain
//! Rust with no I/O; `store` holds the entities, migrations and queries of the tables this
//! service owns; `worker` runs jobs through `pipeline`, calling the LLM through `provider`
//! behind `ratelimit`; `inputs` are the seams to the config and call services; `consumer`
//! turns SessionEnded events into jobs.

pub mod consumer;
pub mod domain;
pub mod eval;
pub mod grpc;
pub mod inputs;
pub mod names;
pub mod pipeline;
pub mod provider;
pub mod ratelimit;
pub mod store;
pub mod testkit;
pub mod worker;

use std::sync::Arc;

use salestrainer_proto::grading::grading_service_server::GradingServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "grading";

/// Builds the engine of a mounted service: the peers over gRPC, the limiter and work queue of
/// the mode the context runs in (Redis when configured, else in-process).
pub fn production_engine(
    ctx: &Context,
    db: sea_orm::DatabaseConnection,
    notifier: salestrainer_bus::RelayNotifier,
) -> anyhow::Result<Arc<worker::Engine>> {
    let limiter: Arc<dyn ratelimit::RateLimit> = match &ctx.redis {
        Some(pool) => Arc::new(ratelimit::RedisRateLimit::new(pool.clone())),
        None => Arc::new(ratelimit::LocalRateLimit::default()),
    };
    let queue = ctx.redis.as_ref().map(|_| worker::WorkQueue {
        bus: ctx.bus.clone(),
        consumer: ctx.consumer.clone(),
    });
    worker::Engine::new(
        db,
        worker::EngineConfig::from_env(),
        Arc::new(inputs::ConfigInputs::new(ctx)?),
        Arc::new(inputs::CallTranscripts::new(ctx)?),
        limiter,
        Some(notifier),
        tokio::sync::broadcast::channel(1024).0,
        queue,
    )
}

/// Registers the gRPC API on `server` and returns the start-up task that connects to the
/// database, migrates it, starts the outbox relay, the workers and the SessionEnded consumer,
/// and reports SERVING.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    let db = Ready::new();
    let engine: Ready<Arc<worker::Engine>> = Ready::new();
    let api = grpc::GradingServiceApi::new(db.clone(), engine.clone());
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
        <GradingServiceServer<grpc::GradingServiceApi> as tonic::server::NamedService>::NAME,
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
                            consumer::spawn(e.clone(), ctx.clone(), ctx.shutdown.clone());
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
