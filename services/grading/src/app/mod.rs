//! The grading service's use cases, the engine that runs them, and [`GradingApp`], the
//! service's description for the runtime.
//!
//! - `jobs`: the service object behind the API (submit, jobs, evaluations, regrade, watch);
//! - `overrides`: a manager's scores beside the grader's, and their audit;
//! - `outcomes`: what grading has for a set of sessions, for consumers that lost events;
//! - `session_events`: the event handler that turns SessionEnded events into jobs;
//! - the job engine: `dispatch` (claiming, the embedded and distributed modes), `attempt`
//!   (running one attempt through `pipeline`), `result` (turning outcomes into writes),
//!   `commit` (the group commit);
//! - `llm_provider` (the OpenAI-compatible grading client) behind `rate_limit`; `inputs`, the
//!   seams to the config and call services; `settings`, the engine's knobs;
//! - `eval`: runs the labelled set through the pipeline (`salestrainer grader-eval`).

mod attempt;
mod commit;
pub mod dispatch;
pub mod eval;
pub mod inputs;
pub mod jobs;
pub mod llm_provider;
pub mod outcomes;
pub mod overrides;
pub mod pipeline;
pub mod rate_limit;
mod result;
pub mod session_events;
pub mod settings;

use std::sync::Arc;

use salestrainer_proto::grading::grading_service_server::GradingServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    changes::Changes,
    consumer::{self, Subscription},
    events::TOPIC_SESSIONS,
    service::{Routes, Service},
};
use sea_orm::DatabaseConnection;

pub use dispatch::{Engine, JOBS_GROUP, JOBS_STREAM, WorkQueue};
pub use settings::{EngineConfig, GradingSettings};

use crate::{api::GradingServiceApi, store};

/// The grading service: the API's use cases, and the engine once the database is ready.
pub struct GradingApp {
    settings: GradingSettings,
    db: Ready<DatabaseConnection>,
    engine: Ready<Arc<Engine>>,
}

impl Service for GradingApp {
    const NAME: &'static str = crate::SERVICE;
    type Settings = GradingSettings;
    type Migrator = store::Migrator;

    fn build(
        _ctx: &Context,
        settings: GradingSettings,
        db: Ready<DatabaseConnection>,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            settings,
            db,
            engine: Ready::new(),
        }))
    }

    async fn routes(self: &Arc<Self>, routes: &mut Routes<'_>) {
        let api = GradingServiceApi::new(jobs::Grading::new(self.db.clone(), self.engine.clone()));
        routes
            .grpc(GradingServiceServer::new(api).max_decoding_message_size(routes.decoding_limit()))
            .await;
        routes.internal("/salestrainer.grading.v1.GradingService/SubmitSession");
        routes.internal("/salestrainer.grading.v1.GradingService/BatchGetSessionOutcomes");
    }

    async fn start(self: Arc<Self>, ctx: &Context, db: DatabaseConnection) {
        // Events committed to the outbox (also before a crash) are published from here.
        let notifier = ctx.start_relay(
            crate::SERVICE,
            db.clone(),
            self.settings.relay_replay_after_loss_secs,
        );
        let engine = match production_engine(ctx, db, notifier, self.settings.engine()) {
            Ok(e) => e,
            Err(err) => {
                tracing::error!(error = %err, "grading engine could not start");
                return;
            }
        };
        engine.start(ctx.shutdown.clone());
        consumer::spawn(
            ctx,
            Subscription::new(TOPIC_SESSIONS, session_events::GROUP)
                .only(&["session.ended"])
                .batches_of(16),
            Arc::new(session_events::SessionEvents(engine.clone())),
        );
        self.engine.set(engine);
    }
}

/// Builds the engine of a mounted service: the peers over gRPC, the limiter and work queue of
/// the mode the context runs in (Redis when configured, else in-process).
pub fn production_engine(
    ctx: &Context,
    db: sea_orm::DatabaseConnection,
    notifier: salestrainer_bus::RelayNotifier,
    cfg: EngineConfig,
) -> anyhow::Result<Arc<Engine>> {
    let limiter: Arc<dyn rate_limit::RateLimit> = match &ctx.redis {
        Some(pool) => Arc::new(rate_limit::RedisRateLimit::new(pool.clone())),
        None => Arc::new(rate_limit::LocalRateLimit::default()),
    };
    let changes = Changes::new(crate::SERVICE);
    changes.start(ctx);
    let queue = ctx.redis.as_ref().map(|_| WorkQueue {
        bus: ctx.bus.clone(),
        consumer: ctx.consumer.clone(),
    });
    Engine::new(
        db,
        cfg,
        Arc::new(inputs::ConfigInputs::new(ctx)?),
        Arc::new(inputs::CallTranscripts::new(ctx)?),
        limiter,
        Some(notifier),
        changes,
        queue,
    )
}
