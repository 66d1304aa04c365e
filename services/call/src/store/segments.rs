//! The `call_segments` table: a session's transcript.

use salestrainer_runtime::{db::begin_write, time::now_us};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Order, QueryFilter,
    QueryOrder,
    sea_query::{Expr, OnConflict},
};

use super::{
    WriteError, entities::segment, get, session, speaker_from_i32, speaker_to_i32, state_code,
};
use crate::domain::Speaker;
use crate::domain::session::SessionState;
use crate::domain::transcript::{ApplyOutcome, Transcript, TranscriptSegment};

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
        .filter(session::Column::State.eq(state_code(SessionState::Active)))
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
    let txn = begin_write(db).await?;
    match write_turns(&txn, turns, session_id).await {
        Ok(()) => {
            txn.commit().await?;
            Ok(true)
        }
        // Dropping the transaction rolls it back: nothing of a resent turn is written twice.
        Err(WriteError::Duplicate) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn write_turns<C: ConnectionTrait>(
    txn: &C,
    turns: Vec<NewTurn>,
    session_id: &str,
) -> Result<(), WriteError> {
    let now = now_us();
    touch_active(txn, session_id, now).await?;
    for (i, turn) in turns.into_iter().enumerate() {
        // Text turns of one session arrive one at a time: the clock orders them.
        let rows = segment::Entity::insert(segment::ActiveModel {
            session_id: Set(session_id.to_owned()),
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
                    sea_orm::sea_query::ExprTrait::add(Expr::col(session::Column::LlmRequests), 1),
                )
                .col_expr(session::Column::LlmModel, Expr::value(u.model))
                .filter(session::Column::Id.eq(session_id))
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}

/// Folds a voice transcript segment into an ACTIVE session's transcript with the domain rules
/// (a final replaces its partials; repeats are duplicates), inside the caller's write
/// transaction `txn`. `NotActive` is found before anything is written.
pub async fn apply_segment<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    seg: TranscriptSegment,
) -> Result<ApplyOutcome, WriteError> {
    let session_id = session_id.to_owned();
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
}

pub(super) fn clamp_ms(v: u64) -> i64 {
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

/// The persona's stored reply to a trainee segment, if it was answered.
pub async fn reply_to<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    trainee_segment: &str,
) -> Result<Option<segment::Model>, DbErr> {
    segment::Entity::find()
        .filter(segment::Column::SessionId.eq(session_id))
        .filter(segment::Column::ReplyTo.eq(trainee_segment))
        .one(db)
        .await
}
