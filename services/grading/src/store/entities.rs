//! sea-orm entities of the grading tables. Instants are epoch microseconds (`_us`, the suite's
//! one unit, see `salestrainer_runtime::time`), durations milliseconds (`_ms`): portable across
//! SQLite and PostgreSQL and cheap to compare in the claim query.

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "grading_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// "organizations/{id}".
        pub organization: String,
        pub session: String,
        /// 0 for the first grading, n for the n-th regrade; UNIQUE with `session`.
        pub generation: i32,
        /// Idempotency key (the SessionEnded event id, or the caller's request id).
        #[sea_orm(unique)]
        pub request_id: String,
        pub regrade: bool,
        pub trainee: String,
        pub scenario: String,
        pub assignment: String,
        /// Rubric override; empty = the scenario's rubric.
        pub rubric: String,
        pub session_start_us: Option<i64>,
        pub session_duration_ms: Option<i64>,
        /// The session's `SessionSource` value (0: not known).
        pub session_source: i32,
        /// `JobState` value.
        pub state: i32,
        pub attempts: i32,
        pub max_attempts: i32,
        pub next_attempt_at_us: i64,
        /// Fencing token of the worker holding the job; writes of a worker whose lease was
        /// taken over match no row.
        pub lease_token: Option<String>,
        pub lease_until_us: Option<i64>,
        /// `PipelineStep` value.
        pub current_step: i32,
        /// JSON: the outputs of the steps done so far (see `pipeline::Checkpoint`).
        #[sea_orm(column_type = "Text")]
        pub checkpoint: String,
        /// `DeadReason` value.
        pub dead_reason: i32,
        #[sea_orm(column_type = "Text", nullable)]
        pub last_error: Option<String>,
        /// JSON array of the most recent attempts, newest first.
        #[sea_orm(column_type = "Text")]
        pub attempt_log: String,
        /// W3C trace context of the event that created the job, so its attempts (and the
        /// SessionGraded event) continue the session's trace across the bus.
        pub trace_context: String,
        pub evaluation: Option<String>,
        /// GradingStarted was emitted (on the first RUNNING).
        pub started: bool,
        /// Last time the job id was put on the Redis work stream (distributed mode).
        pub enqueued_at_us: Option<i64>,
        pub version: i32,
        pub create_us: i64,
        pub update_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod evaluation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "evaluations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization: String,
        pub session: String,
        pub trainee: String,
        pub scenario: String,
        pub assignment: String,
        /// UNIQUE: one evaluation per job, whatever happens to its workers.
        #[sea_orm(unique)]
        pub job_id: String,
        pub overall_score: f64,
        pub passed: bool,
        pub closed: bool,
        pub supersedes: Option<String>,
        pub superseded_by: Option<String>,
        /// The encoded `salestrainer.grading.v1.Evaluation` (name-independent fields).
        #[sea_orm(column_type = "Blob")]
        pub body: Vec<u8>,
        pub create_us: i64,
        /// OverrideEvaluation and ClearEvaluationOverride calls applied (the etag's version);
        /// 0 for none.
        pub override_revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod usage {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "llm_usage")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub job_id: String,
        pub organization: String,
        pub session: String,
        pub attempt: i32,
        pub step: i32,
        pub provider: String,
        pub model: String,
        pub prompt_tokens: i64,
        pub completion_tokens: i64,
        pub cost_micros: i64,
        pub latency_ms: i64,
        /// "ok", or the failure ("http 429", "timeout", "invalid answer", ...).
        pub outcome: String,
        pub create_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
