//! The grading service's use cases and the engine that runs them.
//!
//! - `jobs`: the service object behind the API (submit, jobs, evaluations, regrade, watch);
//! - `session_events`: the consumer that turns SessionEnded events into jobs;
//! - the job engine: `dispatch` (claiming, the embedded and distributed modes), `attempt`
//!   (running one attempt through `pipeline`), `result` (turning outcomes into writes),
//!   `commit` (the group commit);
//! - `llm_provider` (the OpenAI-compatible grading client) behind `rate_limit`; `inputs`, the
//!   seams to the config and call services; `settings`, the engine's knobs.

mod attempt;
mod commit;
pub mod dispatch;
pub mod inputs;
pub mod jobs;
pub mod llm_provider;
pub mod pipeline;
pub mod rate_limit;
mod result;
pub mod session_events;
pub mod settings;

use std::sync::Arc;

use salestrainer_runtime::Context;

pub use dispatch::{Engine, JOBS_GROUP, JOBS_STREAM, WorkQueue};
pub use settings::EngineConfig;

/// Builds the engine of a mounted service: the peers over gRPC, the limiter and work queue of
/// the mode the context runs in (Redis when configured, else in-process).
pub fn production_engine(
    ctx: &Context,
    db: sea_orm::DatabaseConnection,
    notifier: salestrainer_bus::RelayNotifier,
) -> anyhow::Result<Arc<Engine>> {
    let limiter: Arc<dyn rate_limit::RateLimit> = match &ctx.redis {
        Some(pool) => Arc::new(rate_limit::RedisRateLimit::new(pool.clone())),
        None => Arc::new(rate_limit::LocalRateLimit::default()),
    };
    let queue = ctx.redis.as_ref().map(|_| WorkQueue {
        bus: ctx.bus.clone(),
        consumer: ctx.consumer.clone(),
    });
    Engine::new(
        db,
        EngineConfig::from_env(),
        Arc::new(inputs::ConfigInputs::new(ctx)?),
        Arc::new(inputs::CallTranscripts::new(ctx)?),
        limiter,
        Some(notifier),
        tokio::sync::broadcast::channel(1024).0,
        queue,
    )
}
