//! Shared harness: a migrated database (SQLite file or a fresh PostgreSQL database), an engine
//! over recorded inputs, and waits bounded in time.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod testkit;

use std::sync::Arc;
use std::time::Duration;

use salestrainer_grading::app::inputs::Credential;
use salestrainer_grading::app::rate_limit::{LocalRateLimit, RateLimit};
use salestrainer_grading::app::{Engine, EngineConfig, WorkQueue};
use salestrainer_grading::store::{self, Migrator, evaluation, job};
use salestrainer_proto::grading::JobState;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use testkit::{RecordedTranscripts, StaticInputs, strong_call};
use tokio_util::sync::CancellationToken;

pub use salestrainer_tests::Backend;

pub struct Db {
    pub db: DatabaseConnection,
    _dir: tempfile::TempDir,
}

/// A fresh, migrated grading database on `backend` (fails, not skips, when it is down).
pub async fn database(backend: Backend) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let db = backend
        .fresh_database::<Migrator>(salestrainer_grading::SERVICE, dir.path())
        .await;
    Db { db, _dir: dir }
}

pub fn fast_config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        lease: Duration::from_secs(5),
        poll: Duration::from_millis(20),
        max_attempts: 5,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        llm_timeout: Duration::from_secs(5),
        max_completion_tokens: 300,
        ..EngineConfig::default()
    }
}

pub struct Harness {
    pub engine: Arc<Engine>,
    pub stop: CancellationToken,
    pub handles: Vec<tokio::task::JoinHandle<()>>,
    pub transcripts: Arc<RecordedTranscripts>,
}

impl Harness {
    pub fn kill(&self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

pub fn engine(
    db: &DatabaseConnection,
    cfg: EngineConfig,
    credential: Option<Credential>,
    limiter: Option<Arc<dyn RateLimit>>,
    queue: Option<WorkQueue>,
) -> Harness {
    let transcripts = Arc::new(RecordedTranscripts::new(strong_call()));
    let engine = Engine::new(
        db.clone(),
        cfg,
        Arc::new(StaticInputs::new(credential)),
        transcripts.clone(),
        limiter.unwrap_or_else(|| Arc::new(LocalRateLimit::default())),
        None,
        salestrainer_runtime::changes::Changes::new("grading"),
        queue,
    )
    .unwrap();
    let stop = CancellationToken::new();
    let handles = engine.start(stop.clone());
    Harness {
        engine,
        stop,
        handles,
        transcripts,
    }
}

/// Feeds a recorded SessionEnded event; returns the job id if one was created.
pub async fn session_ended(h: &Harness, session: &str) -> Option<String> {
    let event = testkit::session_ended("organizations/acme", session);
    let id = salestrainer_grading::app::session_events::handle_session_ended(
        &h.engine.db,
        &event,
        h.engine.cfg.max_attempts,
    )
    .await
    .unwrap();
    if let Some(id) = &id {
        h.engine.job_ready(id).await;
    }
    id
}

pub async fn job(db: &DatabaseConnection, id: &str) -> job::Model {
    store::find_job(db, id).await.unwrap().unwrap()
}

/// Waits until the job reaches `state` (panics after `limit`).
pub async fn wait_state(
    db: &DatabaseConnection,
    id: &str,
    state: JobState,
    limit: Duration,
) -> job::Model {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let j = job(db, id).await;
        if j.state == state as i32 {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} still {:?} (wanted {state:?}); last error {:?}",
            JobState::try_from(j.state),
            j.last_error
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn evaluations_of(db: &DatabaseConnection, session: &str) -> Vec<evaluation::Model> {
    evaluation::Entity::find()
        .filter(evaluation::Column::Session.eq(session))
        .all(db)
        .await
        .unwrap()
}

pub async fn outbox_types(db: &DatabaseConnection) -> Vec<String> {
    use salestrainer_bus::outbox::entity;
    entity::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_type)
        .collect()
}

pub fn session(id: &str) -> String {
    format!("organizations/acme/sessions/{id}")
}
