//! sea-orm entities of the call service.

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, Default, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Organization id (not the resource name).
        pub organization: String,
        /// Member resource name of the trainee.
        pub trainee: String,
        pub scenario: String,
        pub assignment: String,
        /// `SessionMode` number.
        pub mode: i32,
        /// `SessionState` number.
        pub state: i32,
        pub request_id: Option<String>,
        pub start_us: i64,
        pub end_us: Option<i64>,
        pub duration_ms: Option<i64>,
        /// Scenario time limit, as an absolute time; the sweeper ends the session there.
        pub deadline_us: Option<i64>,
        pub last_activity_us: i64,
        pub end_reason: i32,
        pub end_reason_detail: String,
        pub voice_provider: i32,
        pub provider_call_id: String,
        pub recording_uri: String,
        pub evaluation: String,
        pub overall_score: f64,
        pub passed: bool,
        pub closed: bool,
        pub transcript_final: bool,
        pub transcript_version: i64,
        pub prompt_tokens: i64,
        pub completion_tokens: i64,
        pub llm_requests: i32,
        pub llm_model: String,
        /// Bumped on every change of the session itself; the etag.
        pub version: i64,
        /// Running transcript counters, kept with every segment write (limits in O(1)).
        pub segment_count: i64,
        pub transcript_bytes: i64,
        /// Why the session is FAILED without grading (e.g. `VOICE_REPORT_MISSING`), else empty.
        pub failure_reason: String,
        pub create_us: i64,
        pub update_us: i64,
        /// `SessionSource` number: practice or real call (`m0003_origins`).
        pub source: i32,
        /// The rubric to grade with; empty: the scenario's.
        pub rubric: String,
        pub title: String,
        /// A drill session's origin (all empty for other sessions).
        pub drill_evaluation: String,
        pub drill_criterion: String,
        pub drill_skill: String,
        pub drill_score: f64,
        pub drill_objection: String,
        /// The grade's override revision `overall_score`/`passed` reflect (0: the grader's;
        /// `m0005_score_revision`).
        pub score_revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod segment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_segments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub session_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub segment_id: String,
        /// Arrival order within the session (ties on start offset keep it).
        pub seq: i64,
        /// `Speaker` number of the call API.
        pub speaker: i32,
        #[sea_orm(column_type = "Text")]
        pub text: String,
        pub start_ms: i64,
        pub end_ms: i64,
        pub is_final: bool,
        /// For persona replies in text mode: the trainee segment answered.
        pub reply_to: Option<String>,
        pub create_us: i64,
        /// `TranscriptSource` number of the call API: who recorded the segment.
        pub source: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod receipt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_webhook_receipts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub provider: String,
        pub idempotency_key: String,
        pub session_id: String,
        pub event_type: String,
        pub received_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod comment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_comments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub session_id: String,
        /// Organization id (not the resource name).
        pub organization: String,
        /// Member resource name of the author.
        pub author: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        /// The transcript segment it is anchored to.
        pub segment_id: String,
        /// Id of the comment it answers (same session), empty for a new thread.
        pub reply_to: String,
        pub create_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
