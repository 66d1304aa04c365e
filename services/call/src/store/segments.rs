//! The `call_segments` table: a session's transcript.

use salestrainer_runtime::{
    db::{begin_write, on_writer},
    time::now_us,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, SqlErr, Statement, Value,
    sea_query::{Expr, OnConflict},
};

use super::{
    WriteError, entities::segment, get, session, source_from_i32, source_to_i32, speaker_from_i32,
    speaker_to_i32, state_code,
};
use crate::domain::session::SessionState;
use crate::domain::transcript::{ApplyOutcome, Fold, Limits, TranscriptSegment, fold, normalize};
use crate::domain::{Source, Speaker};

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

/// Marks activity on an ACTIVE session and bumps the transcript version, inside `txn`, and
/// returns the row as it is now (locked for the rest of `txn`: the write comes first, so
/// PostgreSQL holds the row and SQLite the write lock). Fails with `NotActive` when the session
/// has left ACTIVE, before anything is written.
async fn touch_active<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    now: i64,
) -> Result<session::Model, WriteError> {
    touch_active_adding(txn, session_id, now, Moves::default()).await
}

/// What a write adds to the session's running counters.
#[derive(Default)]
struct Moves {
    segments: i64,
    bytes: i64,
    usage: Option<TurnUsage>,
}

/// [`touch_active`] that also moves the running counters in the same statement (one round
/// trip per text turn); the returned row holds the counters after the move.
async fn touch_active_adding<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    now: i64,
    moves: Moves,
) -> Result<session::Model, WriteError> {
    use sea_orm::sea_query::ExprTrait;
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::LastActivityUs, Expr::value(now))
        .col_expr(
            session::Column::TranscriptVersion,
            Expr::col(session::Column::TranscriptVersion).add(1),
        );
    if moves.segments != 0 || moves.bytes != 0 {
        update = update
            .col_expr(
                session::Column::SegmentCount,
                Expr::col(session::Column::SegmentCount).add(moves.segments),
            )
            .col_expr(
                session::Column::TranscriptBytes,
                Expr::col(session::Column::TranscriptBytes).add(moves.bytes),
            );
    }
    if let Some(u) = moves.usage {
        update = update
            .col_expr(
                session::Column::PromptTokens,
                Expr::col(session::Column::PromptTokens).add(u.prompt_tokens),
            )
            .col_expr(
                session::Column::CompletionTokens,
                Expr::col(session::Column::CompletionTokens).add(u.completion_tokens),
            )
            .col_expr(
                session::Column::LlmRequests,
                Expr::col(session::Column::LlmRequests).add(1),
            )
            .col_expr(session::Column::LlmModel, Expr::value(u.model));
    }
    let changed = update
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::State.eq(state_code(SessionState::Active)))
        .exec_with_returning(txn)
        .await?;
    if let Some(m) = changed.into_iter().next() {
        return Ok(m);
    }
    match get(txn, session_id).await? {
        Some(m) => Err(WriteError::NotActive(m.state)),
        None => Err(WriteError::NotFound),
    }
}

/// Moves the session's running transcript counters by `added` segments and `grow` bytes.
async fn add_counters<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    added: i64,
    grow: i64,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::ExprTrait;
    session::Entity::update_many()
        .col_expr(
            session::Column::SegmentCount,
            Expr::col(session::Column::SegmentCount).add(added),
        )
        .col_expr(
            session::Column::TranscriptBytes,
            Expr::col(session::Column::TranscriptBytes).add(grow),
        )
        .filter(session::Column::Id.eq(session_id))
        .exec(txn)
        .await?;
    Ok(())
}

fn text_bytes(text: &str) -> u64 {
    text.len() as u64
}

/// The limits against the session's counters, for a write adding `added` segments, growing
/// the transcript by `grow` bytes, whose largest segment is `largest` bytes.
fn check(
    limits: &Limits,
    m: &session::Model,
    added: u64,
    grow: i64,
    largest: u64,
) -> Result<(), WriteError> {
    limits.check_segment(largest).map_err(WriteError::Limit)?;
    limits
        .check_write(
            u64::try_from(m.segment_count).unwrap_or(0),
            u64::try_from(m.transcript_bytes).unwrap_or(0),
            added,
            grow,
        )
        .map_err(WriteError::Limit)
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
/// already stored: a resent turn. Trainee turns are recorded as the trainee's client's, the
/// rest as the persona engine's. A limit that would be passed writes nothing.
pub async fn append_turns(
    db: &DatabaseConnection,
    turns: Vec<NewTurn>,
    session_id: &str,
    limits: &Limits,
) -> Result<bool, WriteError> {
    if db.get_database_backend() == DbBackend::Postgres {
        return append_turns_postgres(db, turns, session_id, limits).await;
    }
    // Every text turn writes: on SQLite the transaction runs on the writer thread.
    let (conn, session_id, limits) = (db.clone(), session_id.to_owned(), *limits);
    on_writer(db, async move {
        let txn = begin_write(&conn).await?;
        match write_turns(&txn, turns, &session_id, &limits).await {
            Ok(()) => {
                txn.commit().await?;
                Ok(true)
            }
            // Dropping the transaction rolls it back: nothing of a resent turn is written twice.
            Err(WriteError::Duplicate) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await
}

/// The turns' count, total bytes and largest segment's bytes, after checking that largest
/// against the segment limit: before any statement, so an oversized turn costs no write.
fn sizes(turns: &[NewTurn], limits: &Limits) -> Result<(i64, i64, u64), WriteError> {
    let grow_bytes: u64 = turns.iter().map(|t| text_bytes(&t.text)).sum();
    let largest = turns.iter().map(|t| text_bytes(&t.text)).max().unwrap_or(0);
    limits.check_segment(largest).map_err(WriteError::Limit)?;
    Ok((
        turns.len() as i64,
        i64::try_from(grow_bytes).unwrap_or(i64::MAX),
        largest,
    ))
}

/// [`append_turns`] on PostgreSQL: one statement, so one round trip and one commit instead
/// of four (BEGIN, UPDATE, INSERT, COMMIT) while the trainee waits for the reply. The session
/// row is updated first (its lock orders concurrent writers, and its state and limits are
/// re-checked on the latest row), and the turns are inserted only when it was; a segment id
/// stored already, or stored concurrently (a unique violation aborts the whole statement),
/// leaves nothing written. Only when nothing was written is the row read again, to say why.
async fn append_turns_postgres(
    db: &DatabaseConnection,
    turns: Vec<NewTurn>,
    session_id: &str,
    limits: &Limits,
) -> Result<bool, WriteError> {
    if turns.is_empty() {
        return Ok(true);
    }
    let (added, grow, largest) = sizes(&turns, limits)?;
    let ids: Vec<String> = turns.iter().map(|t| t.segment_id.clone()).collect();
    let statement = turn_statement(session_id, now_us(), &ids, turns, limits, grow);
    match db.execute_raw(statement).await {
        Ok(r) if r.rows_affected() == added as u64 => return Ok(true),
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
        Err(e) => return Err(e.into()),
    }
    // Nothing was written: the session is gone or not ACTIVE, a limit would be passed, or the
    // turn was stored before (a resend). Said in that order, as the SQLite path says it.
    let m = get(db, session_id).await?.ok_or(WriteError::NotFound)?;
    if m.state != state_code(SessionState::Active) {
        return Err(WriteError::NotActive(m.state));
    }
    check(limits, &m, added as u64, grow, largest)?;
    let stored = segment::Entity::find()
        .filter(segment::Column::SessionId.eq(session_id))
        .filter(segment::Column::SegmentId.is_in(ids))
        .count(db)
        .await?;
    if stored > 0 {
        return Ok(false);
    }
    // A write of another transaction moved the row between the statement and the read (it
    // rolled back, or ended the session and it was reopened): the turn is not stored.
    Err(WriteError::Db(DbErr::Custom(
        "the session changed during the turn's write; send the turn again".into(),
    )))
}

/// The one statement of [`append_turns_postgres`]: the session's counters and activity move
/// (if it is ACTIVE, within its limits, and none of the turns' ids is stored), and the turns
/// are inserted only when they did.
fn turn_statement(
    session_id: &str,
    now: i64,
    ids: &[String],
    turns: Vec<NewTurn>,
    limits: &Limits,
    grow: i64,
) -> Statement {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let usage = turns.iter().rev().find_map(|t| t.usage.clone());
    let (prompt, completion, requests, model) = match usage {
        Some(u) => (u.prompt_tokens, u.completion_tokens, 1i32, u.model),
        None => (0, 0, 0, String::new()),
    };
    let mut values: Vec<Value> = vec![
        session_id.into(),                         // $1
        now.into(),                                // $2
        (turns.len() as i64).into(),               // $3
        grow.into(),                               // $4
        prompt.into(),                             // $5
        completion.into(),                         // $6
        requests.into(),                           // $7
        model.into(),                              // $8
        state_code(SessionState::Active).into(),   // $9
        clamp(limits.max_segments).into(),         // $10
        clamp(limits.max_transcript_bytes).into(), // $11
    ];
    let id_params: Vec<String> = ids
        .iter()
        .map(|id| {
            values.push(id.as_str().into());
            format!("${}", values.len())
        })
        .collect();
    let mut rows = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        let source = match turn.speaker {
            Speaker::Trainee => Source::TraineeClient,
            _ => Source::PersonaEngine,
        };
        let first = values.len() + 1;
        values.extend([
            turn.segment_id.into(),
            // Text turns of one session arrive one at a time: the clock orders them.
            (now + i as i64).into(),
            speaker_to_i32(turn.speaker).into(),
            turn.text.into(),
            turn.start_ms.into(),
            turn.end_ms.into(),
            turn.reply_to.into(),
            source_to_i32(source).into(),
        ]);
        let p = |k: usize| first + k;
        rows.push(format!(
            "(${}::text, ${}::int8, ${}::int4, ${}::text, ${}::int8, ${}::int8, ${}::text, ${}::int4)",
            p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7)
        ));
    }
    let sql = format!(
        "WITH s AS ( \
           UPDATE call_sessions SET \
             last_activity_us = $2, \
             transcript_version = transcript_version + 1, \
             segment_count = segment_count + $3, \
             transcript_bytes = transcript_bytes + $4, \
             prompt_tokens = prompt_tokens + $5, \
             completion_tokens = completion_tokens + $6, \
             llm_requests = llm_requests + $7, \
             llm_model = CASE WHEN $7 > 0 THEN $8 ELSE llm_model END \
           WHERE id = $1 AND state = $9 \
             AND segment_count + $3 <= $10 \
             AND ($4 <= 0 OR transcript_bytes + $4 <= $11) \
             AND NOT EXISTS (SELECT 1 FROM call_segments \
                             WHERE session_id = $1 AND segment_id IN ({ids})) \
           RETURNING id) \
         INSERT INTO call_segments \
           (session_id, segment_id, seq, speaker, text, start_ms, end_ms, is_final, reply_to, \
            create_us, source) \
         SELECT s.id, t.segment_id, t.seq, t.speaker, t.text, t.start_ms, t.end_ms, true, \
                t.reply_to, $2, t.source \
         FROM s, (VALUES {rows}) \
           AS t(segment_id, seq, speaker, text, start_ms, end_ms, reply_to, source)",
        ids = id_params.join(", "),
        rows = rows.join(", "),
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn write_turns<C: ConnectionTrait>(
    txn: &C,
    turns: Vec<NewTurn>,
    session_id: &str,
    limits: &Limits,
) -> Result<(), WriteError> {
    if turns.is_empty() {
        return Ok(());
    }
    let now = now_us();
    let (added, grow, largest) = sizes(&turns, limits)?;
    let usage = turns.iter().rev().find_map(|t| t.usage.clone());
    // The counters move in the same statement that marks activity (the limits are checked
    // against the values before it); the transaction is dropped, not committed, on a refusal.
    let after = touch_active_adding(
        txn,
        session_id,
        now,
        Moves {
            segments: added,
            bytes: grow,
            usage,
        },
    )
    .await?;
    let before = session::Model {
        segment_count: after.segment_count - added,
        transcript_bytes: after.transcript_bytes.saturating_sub(grow),
        ..after
    };
    check(limits, &before, added as u64, grow, largest)?;
    let rows = turns.into_iter().enumerate().map(|(i, turn)| {
        let source = match turn.speaker {
            Speaker::Trainee => Source::TraineeClient,
            _ => Source::PersonaEngine,
        };
        // Text turns of one session arrive one at a time: the clock orders them.
        segment::ActiveModel {
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
            source: Set(source_to_i32(source)),
        }
    });
    // One statement for all the turns; any id already stored makes it a resend.
    let inserted = segment::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([segment::Column::SessionId, segment::Column::SegmentId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if inserted < added as u64 {
        return Err(WriteError::Duplicate);
    }
    Ok(())
}

/// Folds a voice transcript segment recorded by `source` into an ACTIVE session's transcript
/// with the domain rules (a final replaces its partials; repeats are duplicates; another
/// source's segment is not replaced), inside the caller's write transaction `txn`. Costs a
/// constant number of indexed statements whatever the transcript's length: the stored segment
/// with the same id (or, without an id, the speaker's latest partial from the same source) is
/// the only one read, and the limits are checked against the session's running counters.
/// On any error the caller must not commit (`touch_active` has bumped the version).
pub async fn apply_segment<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    seg: TranscriptSegment,
    source: Source,
    limits: &Limits,
) -> Result<ApplyOutcome, WriteError> {
    let now = now_us();
    let m = touch_active(txn, session_id, now).await?;
    let mut seg = normalize(seg);
    let stored = if seg.segment_id.is_empty() {
        segment::Entity::find()
            .filter(segment::Column::SessionId.eq(session_id))
            .filter(segment::Column::Speaker.eq(speaker_to_i32(seg.speaker)))
            .filter(segment::Column::IsFinal.eq(false))
            .filter(segment::Column::Source.eq(source_to_i32(source)))
            .order_by(segment::Column::Seq, Order::Desc)
            .one(txn)
            .await?
    } else {
        segment(txn, session_id, &seg.segment_id).await?
    };
    if let Some(st) = &stored {
        seg.segment_id = st.segment_id.clone();
    }
    let verdict = match &stored {
        None => Fold::Insert,
        Some(st) => match source_from_i32(st.source) {
            Some(s) => fold(Some((&to_domain(st), s)), &seg, source),
            // Written before sources were recorded: nobody may claim it.
            None => Fold::Foreign,
        },
    };
    let bytes = text_bytes(&seg.text);
    match verdict {
        Fold::Foreign => Err(WriteError::Foreign),
        Fold::Duplicate => Ok(ApplyOutcome::Duplicate(seg.segment_id)),
        Fold::Insert => {
            check(
                limits,
                &m,
                1,
                i64::try_from(bytes).unwrap_or(i64::MAX),
                bytes,
            )?;
            let id = if seg.segment_id.is_empty() {
                format!("auto-{}", uuid::Uuid::now_v7().simple())
            } else {
                seg.segment_id.clone()
            };
            segment::Entity::insert(segment::ActiveModel {
                session_id: Set(session_id.to_owned()),
                segment_id: Set(id.clone()),
                seq: Set(m.segment_count),
                speaker: Set(speaker_to_i32(seg.speaker)),
                text: Set(seg.text),
                start_ms: Set(clamp_ms(seg.start_ms)),
                end_ms: Set(clamp_ms(seg.end_ms)),
                is_final: Set(seg.is_final),
                reply_to: Set(None),
                create_us: Set(now),
                source: Set(source_to_i32(source)),
            })
            .exec_without_returning(txn)
            .await?;
            add_counters(txn, session_id, 1, i64::try_from(bytes).unwrap_or(i64::MAX)).await?;
            Ok(ApplyOutcome::Inserted(id))
        }
        Fold::Replace => {
            let old = stored.as_ref().map(|s| text_bytes(&s.text)).unwrap_or(0);
            let grow = i64::try_from(bytes).unwrap_or(i64::MAX) - i64::try_from(old).unwrap_or(0);
            check(limits, &m, 0, grow, bytes)?;
            let id = seg.segment_id.clone();
            segment::Entity::update_many()
                .col_expr(
                    segment::Column::Speaker,
                    Expr::value(speaker_to_i32(seg.speaker)),
                )
                .col_expr(segment::Column::Text, Expr::value(seg.text))
                .col_expr(
                    segment::Column::StartMs,
                    Expr::value(clamp_ms(seg.start_ms)),
                )
                .col_expr(segment::Column::EndMs, Expr::value(clamp_ms(seg.end_ms)))
                .col_expr(segment::Column::IsFinal, Expr::value(seg.is_final))
                .filter(segment::Column::SessionId.eq(session_id))
                .filter(segment::Column::SegmentId.eq(id.clone()))
                .exec(txn)
                .await?;
            add_counters(txn, session_id, 0, grow).await?;
            Ok(ApplyOutcome::Replaced(id))
        }
    }
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
