//! Tables owned by the call service, their migrations and the queries over them.
//!
//! State changes that other services must hear about (session started, ended, cancelled) write
//! their event into the outbox in the same transaction; callers poke the relay after commit.

pub mod entities;
mod m0001_calls;

use salestrainer_proto::{call as pb, events as ev};
use salestrainer_runtime::events::{enqueue, new_event};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Order,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub use entities::{receipt, segment, session};

use crate::domain::Speaker;
use crate::domain::transcript::{ApplyOutcome, Transcript, TranscriptSegment};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // The outbox carries this service's events; the inbox makes its consumers idempotent.
        vec![
            Box::new(m0001_calls::Migration),
            Box::new(salestrainer_bus::CreateOutbox),
            Box::new(salestrainer_bus::CreateInbox),
        ]
    }
}

pub const PRODUCER: &str = "call";

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

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

/// This service's SQLite writers queue here (see [`salestrainer_runtime::db::WriteGate`]).
pub static SQLITE_WRITES: salestrainer_runtime::db::WriteGate =
    salestrainer_runtime::db::WriteGate::new();

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
    Db(DbErr),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::NotActive(s) => write!(f, "session is not active (state {s})"),
            WriteError::NotFound => f.write_str("session not found"),
            WriteError::EtagMismatch => f.write_str("etag mismatch"),
            WriteError::Duplicate => f.write_str("duplicate segment"),
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

impl From<sea_orm::TransactionError<WriteError>> for WriteError {
    fn from(e: sea_orm::TransactionError<WriteError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => WriteError::Db(db),
            sea_orm::TransactionError::Transaction(w) => w,
        }
    }
}

pub fn session_name(m: &session::Model) -> String {
    format!("organizations/{}/sessions/{}", m.organization, m.id)
}

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn dur_ms(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// A new session row (ACTIVE) with its SessionStarted event, in one transaction.
pub async fn insert_session(
    db: &DatabaseConnection,
    model: session::Model,
) -> Result<session::Model, DbErr> {
    let event = new_event(
        &format!("organizations/{}", model.organization),
        PRODUCER,
        ev::event::Payload::SessionStarted(ev::SessionStarted {
            session: session_name(&model),
            trainee: model.trainee.clone(),
            scenario: model.scenario.clone(),
            assignment: model.assignment.clone(),
            mode: model.mode,
            start_time: Some(ts(model.start_us)),
        }),
    );
    let am = session::ActiveModel {
        id: Set(model.id.clone()),
        organization: Set(model.organization.clone()),
        trainee: Set(model.trainee.clone()),
        scenario: Set(model.scenario.clone()),
        assignment: Set(model.assignment.clone()),
        mode: Set(model.mode),
        state: Set(model.state),
        request_id: Set(model.request_id.clone()),
        start_us: Set(model.start_us),
        end_us: Set(model.end_us),
        duration_ms: Set(model.duration_ms),
        deadline_us: Set(model.deadline_us),
        last_activity_us: Set(model.last_activity_us),
        end_reason: Set(model.end_reason),
        end_reason_detail: Set(model.end_reason_detail.clone()),
        voice_provider: Set(model.voice_provider),
        provider_call_id: Set(model.provider_call_id.clone()),
        recording_uri: Set(model.recording_uri.clone()),
        evaluation: Set(model.evaluation.clone()),
        overall_score: Set(model.overall_score),
        passed: Set(model.passed),
        closed: Set(model.closed),
        transcript_final: Set(model.transcript_final),
        transcript_version: Set(model.transcript_version),
        prompt_tokens: Set(model.prompt_tokens),
        completion_tokens: Set(model.completion_tokens),
        llm_requests: Set(model.llm_requests),
        llm_model: Set(model.llm_model.clone()),
        version: Set(model.version),
        create_us: Set(model.create_us),
        update_us: Set(model.update_us),
    };
    let _gate = SQLITE_WRITES.enter(db).await;
    let txn = db.begin().await?;
    session::Entity::insert(am)
        .exec_without_returning(&txn)
        .await?;
    enqueue(&txn, &event).await?;
    txn.commit().await?;
    Ok(model)
}

pub async fn get<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn find_by_request_id(
    db: &DatabaseConnection,
    organization: &str,
    trainee: &str,
    request_id: &str,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::Organization.eq(organization))
        .filter(session::Column::Trainee.eq(trainee))
        .filter(session::Column::RequestId.eq(request_id))
        .one(db)
        .await
}

pub async fn find_by_provider_call(
    db: &DatabaseConnection,
    provider_call_id: &str,
) -> Result<Option<session::Model>, DbErr> {
    if provider_call_id.is_empty() {
        return Ok(None);
    }
    session::Entity::find()
        .filter(session::Column::ProviderCallId.eq(provider_call_id))
        .one(db)
        .await
}

/// ListSessions filters (already authorised and validated).
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub organization: String,
    pub trainee: Option<String>,
    pub scenario: Option<String>,
    pub assignment: Option<String>,
    pub state: Option<i32>,
    pub mode: Option<i32>,
    pub start_from_us: Option<i64>,
    pub start_before_us: Option<i64>,
    /// Keyset cursor: (create_us, id) of the last row of the previous page.
    pub after: Option<(i64, String)>,
    pub limit: u64,
}

/// Newest first; returns up to `limit + 1` rows so the caller knows whether a page follows.
pub async fn list(
    db: &DatabaseConnection,
    q: &ListQuery,
) -> Result<(Vec<session::Model>, u64), DbErr> {
    use sea_orm::PaginatorTrait;
    let mut cond = Condition::all().add(session::Column::Organization.eq(q.organization.clone()));
    if let Some(t) = &q.trainee {
        cond = cond.add(session::Column::Trainee.eq(t.clone()));
    }
    if let Some(s) = &q.scenario {
        cond = cond.add(session::Column::Scenario.eq(s.clone()));
    }
    if let Some(a) = &q.assignment {
        cond = cond.add(session::Column::Assignment.eq(a.clone()));
    }
    if let Some(s) = q.state {
        cond = cond.add(session::Column::State.eq(s));
    }
    if let Some(m) = q.mode {
        cond = cond.add(session::Column::Mode.eq(m));
    }
    if let Some(t) = q.start_from_us {
        cond = cond.add(session::Column::StartUs.gte(t));
    }
    if let Some(t) = q.start_before_us {
        cond = cond.add(session::Column::StartUs.lt(t));
    }
    let total = session::Entity::find()
        .filter(cond.clone())
        .count(db)
        .await?;
    if let Some((c, id)) = &q.after {
        cond = cond.add(
            Condition::any().add(session::Column::CreateUs.lt(*c)).add(
                Condition::all()
                    .add(session::Column::CreateUs.eq(*c))
                    .add(session::Column::Id.lt(id.clone())),
            ),
        );
    }
    let rows = session::Entity::find()
        .filter(cond)
        .order_by(session::Column::CreateUs, Order::Desc)
        .order_by(session::Column::Id, Order::Desc)
        .limit(q.limit + 1)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Segments in transcript order (start offset, then arrival).
pub async fn segments<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
) -> Result<Vec<segment::Model>, DbErr> {
    segment::Entity::find()
        .filter(segment::Column::SessionId.eq(session_id))
        .order_by(segment::Column::StartMs, Order::Asc)
        .order_by(segment::Column::Seq, Order::Asc)
        .all(db)
        .await
}

pub async fn segment<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    segment_id: &str,
) -> Result<Option<segment::Model>, DbErr> {
    segment::Entity::find_by_id((session_id.to_owned(), segment_id.to_owned()))
        .one(db)
        .await
}

/// Marks activity on an ACTIVE session and bumps the transcript version, inside `txn`.
/// Fails with `NotActive` when the session has left ACTIVE.
async fn touch_active<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    now: i64,
) -> Result<(), WriteError> {
    let res = session::Entity::update_many()
        .col_expr(session::Column::LastActivityUs, Expr::value(now))
        .col_expr(
            session::Column::TranscriptVersion,
            sea_orm::sea_query::ExprTrait::add(Expr::col(session::Column::TranscriptVersion), 1),
        )
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::State.eq(pb::SessionState::Active as i32))
        .exec(txn)
        .await?;
    if res.rows_affected == 0 {
        return match get(txn, session_id).await? {
            Some(m) => Err(WriteError::NotActive(m.state)),
            None => Err(WriteError::NotFound),
        };
    }
    Ok(())
}

/// A text-mode turn (trainee or complete persona reply) as a final segment.
pub struct NewTurn {
    pub segment_id: String,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reply_to: Option<String>,
    /// LLM usage of producing this turn (persona replies).
    pub usage: Option<TurnUsage>,
}

#[derive(Debug, Clone, Default)]
pub struct TurnUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub model: String,
}

/// Stores turns on an ACTIVE session in one transaction (a trainee turn and, for the scripted
/// persona, its reply). Returns false and writes nothing when the first turn's segment id is
/// already stored: a resent turn.
pub async fn append_turns(
    db: &DatabaseConnection,
    turns: Vec<NewTurn>,
    session_id: &str,
) -> Result<bool, WriteError> {
    let session_id = session_id.to_owned();
    let _gate = SQLITE_WRITES.enter(db).await;
    db.transaction::<_, bool, WriteError>(|txn| {
        Box::pin(async move {
            let now = now_us();
            touch_active(txn, &session_id, now).await?;
            for (i, turn) in turns.into_iter().enumerate() {
                // Text turns of one session arrive one at a time: the clock orders them.
                let rows = segment::Entity::insert(segment::ActiveModel {
                    session_id: Set(session_id.clone()),
                    segment_id: Set(turn.segment_id),
                    seq: Set(now + i as i64),
                    speaker: Set(speaker_to_i32(turn.speaker)),
                    text: Set(turn.text),
                    start_ms: Set(turn.start_ms),
                    end_ms: Set(turn.end_ms),
                    is_final: Set(true),
                    reply_to: Set(turn.reply_to),
                    create_us: Set(now),
                })
                .on_conflict(
                    OnConflict::columns([segment::Column::SessionId, segment::Column::SegmentId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
                if rows == 0 {
                    return Err(WriteError::Duplicate);
                }
                if let Some(u) = turn.usage {
                    session::Entity::update_many()
                        .col_expr(
                            session::Column::PromptTokens,
                            sea_orm::sea_query::ExprTrait::add(
                                Expr::col(session::Column::PromptTokens),
                                u.prompt_tokens,
                            ),
                        )
                        .col_expr(
                            session::Column::CompletionTokens,
                            sea_orm::sea_query::ExprTrait::add(
                                Expr::col(session::Column::CompletionTokens),
                                u.completion_tokens,
                            ),
                        )
                        .col_expr(
                            session::Column::LlmRequests,
                            sea_orm::sea_query::ExprTrait::add(
                                Expr::col(session::Column::LlmRequests),
                                1,
                            ),
                        )
                        .col_expr(session::Column::LlmModel, Expr::value(u.model))
                        .filter(session::Column::Id.eq(session_id.clone()))
                        .exec(txn)
                        .await?;
                }
            }
            Ok(true)
        })
    })
    .await
    .map_err(WriteError::from)
    .or_else(|e| match e {
        // Rolled back: nothing of a resent turn is written twice.
        WriteError::Duplicate => Ok(false),
        e => Err(e),
    })
}

/// Folds a voice transcript segment into an ACTIVE session's transcript with the domain rules
/// (a final replaces its partials; repeats are duplicates).
pub async fn apply_segment<C: TransactionTrait + ConnectionTrait>(
    db: &C,
    session_id: &str,
    seg: TranscriptSegment,
) -> Result<ApplyOutcome, WriteError> {
    let session_id = session_id.to_owned();
    // Not gated: also called inside a caller's transaction that may hold the gate.
    db.transaction::<_, ApplyOutcome, WriteError>(|txn| {
        Box::pin(async move {
            let now = now_us();
            touch_active(txn, &session_id, now).await?;
            let stored = segments(txn, &session_id).await?;
            let max_seq = stored.iter().map(|s| s.seq).max().unwrap_or(-1);
            let mut t = Transcript::from_segments(stored.iter().map(to_domain));
            let outcome = t.apply(seg);
            let id = outcome.segment_id().to_owned();
            let Some(new) = t.segments().find(|s| s.segment_id == id).cloned() else {
                return Ok(outcome);
            };
            match &outcome {
                ApplyOutcome::Inserted(_) => {
                    segment::Entity::insert(segment::ActiveModel {
                        session_id: Set(session_id.clone()),
                        segment_id: Set(id),
                        seq: Set(max_seq + 1),
                        speaker: Set(speaker_to_i32(new.speaker)),
                        text: Set(new.text),
                        start_ms: Set(clamp_ms(new.start_ms)),
                        end_ms: Set(clamp_ms(new.end_ms)),
                        is_final: Set(new.is_final),
                        reply_to: Set(None),
                        create_us: Set(now),
                    })
                    .exec_without_returning(txn)
                    .await?;
                }
                ApplyOutcome::Replaced(_) => {
                    segment::Entity::update_many()
                        .col_expr(
                            segment::Column::Speaker,
                            Expr::value(speaker_to_i32(new.speaker)),
                        )
                        .col_expr(segment::Column::Text, Expr::value(new.text))
                        .col_expr(
                            segment::Column::StartMs,
                            Expr::value(clamp_ms(new.start_ms)),
                        )
                        .col_expr(segment::Column::EndMs, Expr::value(clamp_ms(new.end_ms)))
                        .col_expr(segment::Column::IsFinal, Expr::value(new.is_final))
                        .filter(segment::Column::SessionId.eq(session_id.clone()))
                        .filter(segment::Column::SegmentId.eq(id))
                        .exec(txn)
                        .await?;
                }
                ApplyOutcome::Duplicate(_) => {}
            }
            Ok(outcome)
        })
    })
    .await
    .map_err(WriteError::from)
}

fn clamp_ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn to_domain(s: &segment::Model) -> TranscriptSegment {
    TranscriptSegment {
        segment_id: s.segment_id.clone(),
        speaker: speaker_from_i32(s.speaker),
        text: s.text.clone(),
        start_ms: u64::try_from(s.start_ms).unwrap_or(0),
        end_ms: u64::try_from(s.end_ms).unwrap_or(0),
        is_final: s.is_final,
    }
}

/// How a session ends.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub state: i32,
    pub reason: i32,
    pub detail: String,
    /// The provider's duration, when it reported one (else end - start).
    pub duration_ms: Option<i64>,
    pub recording_uri: Option<String>,
    pub provider_call_id: Option<String>,
    pub voice_provider: Option<i32>,
    /// The provider's final transcript: replaces the stored segments when non-empty.
    pub final_segments: Vec<TranscriptSegment>,
    /// Only end if the etag (version) matches.
    pub etag: Option<i64>,
}

/// The outcome of ending a session.
pub struct Ended {
    pub session: session::Model,
    /// False when the session had already left ACTIVE (nothing was written).
    pub changed: bool,
}

/// Ends (or cancels) an ACTIVE session: transcript final, state and times set, and the
/// SessionEnded event in the outbox — all in one transaction. Idempotent: a session that
/// already left ACTIVE is returned unchanged.
pub async fn end_session<C: TransactionTrait + ConnectionTrait>(
    db: &C,
    session_id: &str,
    ending: Ending,
) -> Result<Ended, WriteError> {
    let session_id = session_id.to_owned();
    // Not gated: also called inside a caller's transaction that may hold the gate.
    db.transaction::<_, Ended, WriteError>(|txn| {
        Box::pin(async move {
            // Write first: it takes SQLite's write lock (a read-then-write transaction fails
            // with SQLITE_BUSY when another writer commits between) and locks the row in
            // PostgreSQL, so concurrent enders queue instead of failing.
            session::Entity::update_many()
                .col_expr(
                    session::Column::Version,
                    Expr::col(session::Column::Version),
                )
                .filter(session::Column::Id.eq(session_id.clone()))
                .exec(txn)
                .await?;
            let Some(current) = get(txn, &session_id).await? else {
                return Err(WriteError::NotFound);
            };
            if let Some(etag) = ending.etag
                && etag != current.version
            {
                return Err(WriteError::EtagMismatch);
            }
            if current.state != pb::SessionState::Active as i32 {
                return Ok(Ended {
                    session: current,
                    changed: false,
                });
            }
            let now = now_us();
            let duration_ms = ending
                .duration_ms
                .unwrap_or((now - current.start_us).max(0) / 1000);
            let mut m = current.clone();
            m.state = ending.state;
            m.end_us = Some(now);
            m.duration_ms = Some(duration_ms);
            m.end_reason = ending.reason;
            m.end_reason_detail = ending.detail.clone();
            if let Some(r) = &ending.recording_uri {
                m.recording_uri = r.clone();
            }
            if let Some(p) = &ending.provider_call_id {
                m.provider_call_id = p.clone();
            }
            if let Some(v) = ending.voice_provider {
                m.voice_provider = v;
            }
            m.transcript_final = true;
            m.transcript_version += 1;
            m.version += 1;
            m.update_us = now;
            m.last_activity_us = now;
            // Conditional on ACTIVE and the version read, so two enders cannot both win.
            let res = session::Entity::update_many()
                .col_expr(session::Column::State, Expr::value(m.state))
                .col_expr(session::Column::EndUs, Expr::value(m.end_us))
                .col_expr(session::Column::DurationMs, Expr::value(m.duration_ms))
                .col_expr(session::Column::EndReason, Expr::value(m.end_reason))
                .col_expr(
                    session::Column::EndReasonDetail,
                    Expr::value(m.end_reason_detail.clone()),
                )
                .col_expr(
                    session::Column::RecordingUri,
                    Expr::value(m.recording_uri.clone()),
                )
                .col_expr(
                    session::Column::ProviderCallId,
                    Expr::value(m.provider_call_id.clone()),
                )
                .col_expr(
                    session::Column::VoiceProvider,
                    Expr::value(m.voice_provider),
                )
                .col_expr(session::Column::TranscriptFinal, Expr::value(true))
                .col_expr(
                    session::Column::TranscriptVersion,
                    Expr::value(m.transcript_version),
                )
                .col_expr(session::Column::Version, Expr::value(m.version))
                .col_expr(session::Column::UpdateUs, Expr::value(now))
                .col_expr(session::Column::LastActivityUs, Expr::value(now))
                .filter(session::Column::Id.eq(session_id.clone()))
                .filter(session::Column::State.eq(pb::SessionState::Active as i32))
                .filter(session::Column::Version.eq(current.version))
                .exec(txn)
                .await?;
            if res.rows_affected == 0 {
                let latest = get(txn, &session_id).await?.ok_or(WriteError::NotFound)?;
                return Ok(Ended {
                    session: latest,
                    changed: false,
                });
            }
            if !ending.final_segments.is_empty() {
                // The provider's end-of-call transcript is authoritative for a voice call.
                segment::Entity::delete_many()
                    .filter(segment::Column::SessionId.eq(session_id.clone()))
                    .exec(txn)
                    .await?;
                for (i, s) in ending.final_segments.iter().enumerate() {
                    segment::Entity::insert(segment::ActiveModel {
                        session_id: Set(session_id.clone()),
                        segment_id: Set(if s.segment_id.is_empty() {
                            format!("final-{i}")
                        } else {
                            s.segment_id.clone()
                        }),
                        seq: Set(i as i64),
                        speaker: Set(speaker_to_i32(s.speaker)),
                        text: Set(s.text.clone()),
                        start_ms: Set(clamp_ms(s.start_ms)),
                        end_ms: Set(clamp_ms(s.end_ms)),
                        is_final: Set(true),
                        reply_to: Set(None),
                        create_us: Set(now),
                    })
                    .exec_without_returning(txn)
                    .await?;
                }
            } else {
                // Partials still pending are the last words heard: keep them, as final.
                segment::Entity::update_many()
                    .col_expr(segment::Column::IsFinal, Expr::value(true))
                    .filter(segment::Column::SessionId.eq(session_id.clone()))
                    .exec(txn)
                    .await?;
            }
            enqueue(txn, &session_ended_event(&m)).await?;
            Ok(Ended {
                session: m,
                changed: true,
            })
        })
    })
    .await
    .map_err(WriteError::from)
}

pub fn session_ended_event(m: &session::Model) -> ev::Event {
    let usage = (m.llm_requests > 0).then(|| ev::LlmUsage {
        prompt_tokens: m.prompt_tokens,
        completion_tokens: m.completion_tokens,
        cost_micros: 0,
        provider: "openai-compatible".into(),
        model: m.llm_model.clone(),
        requests: m.llm_requests,
    });
    new_event(
        &format!("organizations/{}", m.organization),
        PRODUCER,
        ev::event::Payload::SessionEnded(ev::SessionEnded {
            session: session_name(m),
            trainee: m.trainee.clone(),
            scenario: m.scenario.clone(),
            assignment: m.assignment.clone(),
            mode: m.mode,
            start_time: Some(ts(m.start_us)),
            end_time: m.end_us.map(ts),
            duration: m.duration_ms.map(dur_ms),
            end_reason: m.end_reason,
            end_reason_detail: m.end_reason_detail.clone(),
            usage,
        }),
    )
}

/// A state change pushed by grading's events.
#[derive(Debug, Clone)]
pub enum GradingUpdate {
    Started,
    Graded {
        evaluation: String,
        score: f64,
        passed: bool,
        closed: bool,
    },
    Failed,
}

/// Applies a grading event to a session inside `txn`; returns the updated session when it
/// changed. Sessions that were never ended (or were cancelled) are not moved.
pub async fn apply_grading<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    update: &GradingUpdate,
) -> Result<Option<session::Model>, DbErr> {
    use pb::SessionState as S;
    let Some(mut m) = get(txn, session_id).await? else {
        return Ok(None);
    };
    let from_ok = [S::Ended, S::Grading, S::Graded, S::Failed]
        .iter()
        .any(|s| *s as i32 == m.state);
    if !from_ok {
        return Ok(None);
    }
    let target = match update {
        GradingUpdate::Started => S::Grading,
        GradingUpdate::Graded { .. } => S::Graded,
        GradingUpdate::Failed => S::Failed,
    } as i32;
    // A late GradingStarted must not undo a result that already arrived.
    if matches!(update, GradingUpdate::Started)
        && (m.state == S::Graded as i32 || m.state == S::Failed as i32)
    {
        return Ok(None);
    }
    let now = now_us();
    m.state = target;
    m.version += 1;
    m.update_us = now;
    if let GradingUpdate::Graded {
        evaluation,
        score,
        passed,
        closed,
    } = update
    {
        m.evaluation = evaluation.clone();
        m.overall_score = *score;
        m.passed = *passed;
        m.closed = *closed;
    }
    session::Entity::update_many()
        .col_expr(session::Column::State, Expr::value(m.state))
        .col_expr(
            session::Column::Evaluation,
            Expr::value(m.evaluation.clone()),
        )
        .col_expr(session::Column::OverallScore, Expr::value(m.overall_score))
        .col_expr(session::Column::Passed, Expr::value(m.passed))
        .col_expr(session::Column::Closed, Expr::value(m.closed))
        .col_expr(session::Column::Version, Expr::value(m.version))
        .col_expr(session::Column::UpdateUs, Expr::value(now))
        .filter(session::Column::Id.eq(session_id))
        .exec(txn)
        .await?;
    Ok(Some(m))
}

/// Records a webhook delivery; false when this (provider, key) was already recorded.
pub async fn record_receipt<C: ConnectionTrait>(
    txn: &C,
    provider: &str,
    key: &str,
    session_id: &str,
    event_type: &str,
) -> Result<bool, DbErr> {
    let rows = receipt::Entity::insert(receipt::ActiveModel {
        provider: Set(provider.to_owned()),
        idempotency_key: Set(key.to_owned()),
        session_id: Set(session_id.to_owned()),
        event_type: Set(event_type.to_owned()),
        received_us: Set(now_us()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([receipt::Column::Provider, receipt::Column::IdempotencyKey])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(rows > 0)
}

pub async fn has_receipt<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    key: &str,
) -> Result<bool, DbErr> {
    Ok(receipt::Entity::find()
        .filter(receipt::Column::Provider.eq(provider))
        .filter(receipt::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
        .is_some())
}

/// Sets the provider call id (and provider) of a voice session, once.
pub async fn set_provider_call<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    provider: i32,
    call_id: &str,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::ProviderCallId, Expr::value(call_id))
        .col_expr(session::Column::VoiceProvider, Expr::value(provider))
        .col_expr(session::Column::LastActivityUs, Expr::value(now_us()))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::ProviderCallId.eq(""))
        .exec(db)
        .await?;
    Ok(())
}

/// ACTIVE sessions idle since before `idle_cutoff_us` or past their deadline.
pub async fn expired_sessions(
    db: &DatabaseConnection,
    idle_cutoff_us: i64,
    now: i64,
    limit: u64,
) -> Result<Vec<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::State.eq(pb::SessionState::Active as i32))
        .filter(
            Condition::any()
                .add(session::Column::LastActivityUs.lt(idle_cutoff_us))
                .add(session::Column::DeadlineUs.lte(now)),
        )
        .limit(limit)
        .all(db)
        .await
}

/// The proto view of a session row.
pub fn to_pb(m: &session::Model) -> pb::Session {
    pb::Session {
        name: session_name(m),
        scenario: m.scenario.clone(),
        assignment: m.assignment.clone(),
        trainee: m.trainee.clone(),
        mode: m.mode,
        state: m.state,
        start_time: Some(ts(m.start_us)),
        end_time: m.end_us.map(ts),
        duration: m.duration_ms.map(dur_ms),
        end_reason: m.end_reason,
        end_reason_detail: m.end_reason_detail.clone(),
        voice_provider: m.voice_provider,
        provider_call_id: m.provider_call_id.clone(),
        recording_uri: m.recording_uri.clone(),
        evaluation: m.evaluation.clone(),
        overall_score: m.overall_score,
        passed: m.passed,
        closed: m.closed,
        create_time: Some(ts(m.create_us)),
        update_time: Some(ts(m.update_us)),
        etag: m.version.to_string(),
    }
}

pub fn segment_to_pb(s: &segment::Model) -> pb::TranscriptSegment {
    pb::TranscriptSegment {
        segment_id: s.segment_id.clone(),
        speaker: s.speaker,
        text: s.text.clone(),
        start_offset: Some(dur_ms(s.start_ms)),
        end_offset: Some(dur_ms(s.end_ms)),
        r#final: s.is_final,
    }
}

pub fn transcript_to_pb(m: &session::Model, segs: &[segment::Model]) -> pb::Transcript {
    pb::Transcript {
        name: format!("{}/transcript", session_name(m)),
        segments: segs.iter().map(segment_to_pb).collect(),
        r#final: m.transcript_final,
        update_time: Some(ts(m
            .update_us
            .max(segs.iter().map(|s| s.create_us).max().unwrap_or(0)))),
        etag: m.transcript_version.to_string(),
    }
}
