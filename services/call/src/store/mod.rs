//! Tables owned by the call service, their migrations and the queries over them, one file per
//! table: `sessions` (with the outbox events written in the same transactions), `segments`
//! (the transcript), `comments` (on transcript lines, with `comment_events`) and `receipts` (webhook deliveries).
//!
//! State changes that other services must hear about (session started, ended, cancelled; a
//! comment added or deleted) write
//! their event into the outbox in the same transaction; callers poke the relay after commit.

mod comment_events;
mod comments;
pub mod entities;
mod imports;
mod m0001_calls;
mod m0002_provenance_limits;
mod m0003_origins;
mod m0004_comments;
mod m0005_score_revision;
mod m0006_recheck_index;
mod m0007_hot_turns;
mod receipts;
mod segments;
mod sessions;

use salestrainer_proto::call as pb;
use sea_orm::DbErr;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub use comment_events::*;
pub use comments::*;
pub use entities::{comment, receipt, segment, session};
pub use imports::*;
pub use receipts::*;
pub use segments::*;
pub use sessions::*;

use crate::domain::session::SessionState;
use crate::domain::transcript::Exceeded;
use crate::domain::{Source, Speaker};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // The outbox carries this service's events; the inbox makes its consumers idempotent.
        vec![
            Box::new(m0001_calls::Migration),
            Box::new(salestrainer_bus::CreateOutbox),
            Box::new(salestrainer_bus::CreateInbox),
            Box::new(m0002_provenance_limits::Migration),
            Box::new(m0003_origins::Migration),
            Box::new(m0004_comments::Migration),
            Box::new(m0005_score_revision::Migration),
            Box::new(m0006_recheck_index::Migration),
            Box::new(m0007_hot_turns::Migration),
        ]
    }
}

pub const PRODUCER: &str = "call";

pub fn speaker_to_i32(s: Speaker) -> i32 {
    match s {
        Speaker::Trainee => pb::Speaker::Trainee as i32,
        Speaker::Persona => pb::Speaker::Persona as i32,
        Speaker::System => pb::Speaker::System as i32,
    }
}

pub fn speaker_from_i32(v: i32) -> Speaker {
    match pb::Speaker::try_from(v) {
        Ok(pb::Speaker::Trainee) => Speaker::Trainee,
        Ok(pb::Speaker::Persona) => Speaker::Persona,
        _ => Speaker::System,
    }
}

pub fn source_to_i32(s: Source) -> i32 {
    (match s {
        Source::PersonaEngine => pb::TranscriptSource::PersonaEngine,
        Source::VoiceProvider => pb::TranscriptSource::VoiceProvider,
        Source::TraineeClient => pb::TranscriptSource::TraineeClient,
        Source::Import => pb::TranscriptSource::Import,
    }) as i32
}

/// The source of a stored `TranscriptSource` number; `None` for 0 (rows written before
/// sources were recorded) and unknown numbers.
pub fn source_from_i32(v: i32) -> Option<Source> {
    match pb::TranscriptSource::try_from(v).ok()? {
        pb::TranscriptSource::PersonaEngine => Some(Source::PersonaEngine),
        pb::TranscriptSource::VoiceProvider => Some(Source::VoiceProvider),
        pb::TranscriptSource::TraineeClient => Some(Source::TraineeClient),
        pb::TranscriptSource::Import => Some(Source::Import),
        pb::TranscriptSource::Unspecified => None,
    }
}

/// Why a write to a session was refused.
#[derive(Debug)]
pub enum WriteError {
    /// The session is not ACTIVE (its current state).
    NotActive(i32),
    NotFound,
    /// `etag` given and stale.
    EtagMismatch,
    /// A segment id already stored (internal: rolls a turn back).
    Duplicate,
    /// A transcript limit would be passed; nothing was written.
    Limit(Exceeded),
    /// The segment id belongs to a segment another source recorded.
    Foreign,
    Db(DbErr),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::NotActive(s) => write!(f, "session is not active (state {s})"),
            WriteError::NotFound => f.write_str("session not found"),
            WriteError::EtagMismatch => f.write_str("etag mismatch"),
            WriteError::Duplicate => f.write_str("duplicate segment"),
            WriteError::Limit(e) => write!(f, "transcript limit: {e:?}"),
            WriteError::Foreign => f.write_str("segment recorded by another source"),
            WriteError::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

impl From<DbErr> for WriteError {
    fn from(e: DbErr) -> Self {
        WriteError::Db(e)
    }
}

/// The domain state of a stored `SessionState` number (the contract's numbering).
pub fn state_of(code: i32) -> Option<SessionState> {
    use pb::SessionState as P;
    Some(match P::try_from(code).ok()? {
        P::Active => SessionState::Active,
        P::Ended => SessionState::Ended,
        P::Grading => SessionState::Grading,
        P::Graded => SessionState::Graded,
        P::Failed => SessionState::Failed,
        P::Cancelled => SessionState::Cancelled,
        P::AwaitingReport => SessionState::AwaitingReport,
        P::Unspecified => return None,
    })
}

/// The stored number of a domain state.
pub fn state_code(s: SessionState) -> i32 {
    use pb::SessionState as P;
    (match s {
        SessionState::Active => P::Active,
        SessionState::Ended => P::Ended,
        SessionState::Grading => P::Grading,
        SessionState::Graded => P::Graded,
        SessionState::Failed => P::Failed,
        SessionState::Cancelled => P::Cancelled,
        SessionState::AwaitingReport => P::AwaitingReport,
    }) as i32
}
