//! The `call_sessions` table: a session's row and the events its changes put in the outbox.

use salestrainer_proto::{call as pb, events as ev};
use salestrainer_runtime::{
    db::{begin_write, on_writer},
    events::{enqueue, new_event},
    names,
    time::{duration, now_us, timestamp},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};

use super::segments::clamp_ms;
use super::{
    PRODUCER, WriteError, segment, session, source_to_i32, speaker_to_i32, state_code, state_of,
};
use crate::domain::Source;
use crate::domain::session::{Change, SessionState, Step, end_change, transition};
use crate::domain::transcript::TranscriptSegment;

pub fn session_name(m: &session::Model) -> String {
    names::child_name(&m.organization, "sessions", &m.id)
}

/// The SessionStarted event of a new session.
pub fn session_started_event(model: &session::Model) -> ev::Event {
    new_event(
        &names::organization_name(&model.organization),
        PRODUCER,
        ev::event::Payload::SessionStarted(ev::SessionStarted {
            session: session_name(model),
            trainee: model.trainee.clone(),
            scenario: model.scenario.clone(),
            assignment: model.assignment.clone(),
            mode: model.mode,
            start_time: Some(timestamp(model.start_us)),
            source: model.source,
            drill_of: drill_of_event(model),
        }),
    )
}

/// A drill session's origin as the events carry it.
fn drill_of_event(m: &session::Model) -> Option<ev::DrillOf> {
    (!m.drill_evaluation.is_empty()).then(|| ev::DrillOf {
        evaluation: m.drill_evaluation.clone(),
        criterion: m.drill_criterion.clone(),
        skill: m.drill_skill.clone(),
        score: m.drill_score,
    })
}

/// A new session row (ACTIVE) with its SessionStarted event, in one transaction.
pub async fn insert_session(
    db: &DatabaseConnection,
    model: session::Model,
) -> Result<session::Model, DbErr> {
    let event = session_started_event(&model);
    let conn = db.clone();
    on_writer(db, async move {
        let txn = begin_write(&conn).await?;
        insert_row(&txn, &model).await?;
        enqueue(&txn, &event).await?;
        txn.commit().await?;
        Ok(model)
    })
    .await
}

/// Inserts a session row inside `txn`.
pub(crate) async fn insert_row<C: ConnectionTrait>(
    txn: &C,
    model: &session::Model,
) -> Result<(), DbErr> {
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
        segment_count: Set(model.segment_count),
        transcript_bytes: Set(model.transcript_bytes),
        failure_reason: Set(model.failure_reason.clone()),
        source: Set(model.source),
        rubric: Set(model.rubric.clone()),
        title: Set(model.title.clone()),
        drill_evaluation: Set(model.drill_evaluation.clone()),
        drill_criterion: Set(model.drill_criterion.clone()),
        drill_skill: Set(model.drill_skill.clone()),
        drill_score: Set(model.drill_score),
        drill_objection: Set(model.drill_objection.clone()),
        score_revision: Set(model.score_revision),
    };
    session::Entity::insert(am)
        .exec_without_returning(txn)
        .await?;
    Ok(())
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
    /// `SessionSource` number.
    pub source: Option<i32>,
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
    if let Some(s) = q.source {
        cond = cond.add(session::Column::Source.eq(s));
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

/// How a session ends.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    /// `SessionState::Cancelled` cancels, `SessionState::Failed` fails a voice session whose
    /// report did not come (with `failure_reason`); anything else ends (see [`Ending::change`]).
    pub state: i32,
    pub reason: i32,
    pub detail: String,
    /// The provider's duration, when it reported one (else end - start).
    pub duration_ms: Option<i64>,
    pub recording_uri: Option<String>,
    pub provider_call_id: Option<String>,
    pub voice_provider: Option<i32>,
    /// This is the voice provider's end-of-call report (from its verified webhook).
    pub report: bool,
    /// The provider's final transcript: replaces the stored segments when non-empty.
    pub final_segments: Vec<TranscriptSegment>,
    /// Why the session fails (with `state` FAILED).
    pub failure_reason: String,
    /// Only end if the etag (version) matches.
    pub etag: Option<i64>,
}

impl Ending {
    /// Which change of the session's life this is (before [`end_change`] applies the voice
    /// rule).
    pub fn change(&self) -> Change {
        if self.state == pb::SessionState::Cancelled as i32 {
            Change::Cancel
        } else if self.report {
            Change::Report
        } else if self.state == pb::SessionState::Failed as i32 {
            Change::ReportMissing
        } else {
            Change::End
        }
    }
}

/// The outcome of ending a session.
pub struct Ended {
    pub session: session::Model,
    /// False when nothing was written (the session had already moved on).
    pub changed: bool,
}

/// Ends (or cancels, or fails) a session with everything that goes with it, inside the
/// caller's write transaction `txn`, which must not commit after an error. Idempotent: a
/// change already made (or overtaken) is answered with the session unchanged.
///
/// - a text session, or a voice session with its provider's report: ENDED, transcript final
///   (for voice, the provider's transcript only) and SessionEnded in the outbox;
/// - a voice session ended any other way: AWAITING_REPORT, nothing submitted for grading;
/// - a voice session whose report did not come: FAILED with `failure_reason`, no event;
/// - cancelled: CANCELLED and SessionEnded (with reason CANCELLED: not graded).
pub async fn end_session<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    ending: Ending,
) -> Result<Ended, WriteError> {
    let session_id = session_id.to_owned();
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
    let voice = current.mode == pb::SessionMode::Voice as i32;
    let change = end_change(voice, ending.change());
    // Refused or already done: nothing is written and the session is answered as is
    // (the use case tells a refusal apart before it gets here).
    let Some(Ok(Step::To(next))) = state_of(current.state).map(|s| transition(s, change)) else {
        return Ok(Ended {
            session: current,
            changed: false,
        });
    };
    let now = now_us();
    let was_waiting = state_of(current.state) == Some(SessionState::AwaitingReport);
    let mut m = current.clone();
    m.state = state_code(next);
    if !was_waiting {
        // The first end of the call sets when it ended; the report that follows a wait fills
        // in what only the provider knows.
        m.end_us = Some(now);
        m.duration_ms = Some(
            ending
                .duration_ms
                .unwrap_or((now - current.start_us).max(0) / 1000),
        );
    } else if let Some(d) = ending.duration_ms {
        m.duration_ms = Some(d);
    }
    if !was_waiting || change == Change::Cancel {
        m.end_reason = ending.reason;
        m.end_reason_detail = ending.detail.clone();
    }
    if let Some(r) = &ending.recording_uri {
        m.recording_uri = r.clone();
    }
    if let Some(p) = &ending.provider_call_id {
        m.provider_call_id = p.clone();
    }
    if let Some(v) = ending.voice_provider {
        m.voice_provider = v;
    }
    if next == SessionState::Failed {
        m.failure_reason = ending.failure_reason.clone();
    }
    // Waiting for the report, the transcript is not final: the report replaces it.
    let finalize = next != SessionState::AwaitingReport;
    m.transcript_final = finalize;
    m.transcript_version += 1;
    m.version += 1;
    m.update_us = now;
    m.last_activity_us = now;
    // Conditional on the state and the version read, so two enders cannot both win.
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
        .col_expr(
            session::Column::FailureReason,
            Expr::value(m.failure_reason.clone()),
        )
        .col_expr(session::Column::TranscriptFinal, Expr::value(finalize))
        .col_expr(
            session::Column::TranscriptVersion,
            Expr::value(m.transcript_version),
        )
        .col_expr(session::Column::Version, Expr::value(m.version))
        .col_expr(session::Column::UpdateUs, Expr::value(now))
        .col_expr(session::Column::LastActivityUs, Expr::value(now))
        .filter(session::Column::Id.eq(session_id.clone()))
        .filter(session::Column::State.eq(current.state))
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
    match next {
        // Nothing to grade yet (or ever): no event.
        SessionState::AwaitingReport | SessionState::Failed => {
            return Ok(Ended {
                session: m,
                changed: true,
            });
        }
        _ => {}
    }
    if change == Change::Report && !ending.final_segments.is_empty() {
        // The provider's end-of-call transcript is authoritative for a voice call.
        segment::Entity::delete_many()
            .filter(segment::Column::SessionId.eq(session_id.clone()))
            .exec(txn)
            .await?;
        let mut bytes = 0i64;
        for (i, s) in ending.final_segments.iter().enumerate() {
            bytes = bytes.saturating_add(i64::try_from(s.text.len()).unwrap_or(i64::MAX));
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
                source: Set(source_to_i32(Source::VoiceProvider)),
            })
            .exec_without_returning(txn)
            .await?;
        }
        let n = ending.final_segments.len() as i64;
        m.segment_count = n;
        m.transcript_bytes = bytes;
        session::Entity::update_many()
            .col_expr(session::Column::SegmentCount, Expr::value(n))
            .col_expr(session::Column::TranscriptBytes, Expr::value(bytes))
            .filter(session::Column::Id.eq(session_id.clone()))
            .exec(txn)
            .await?;
    } else {
        if voice && change != Change::Cancel {
            // A voice call is graded on the provider's transcript only: without a final
            // transcript in its report, the provider's live segments are what is left.
            segment::Entity::delete_many()
                .filter(segment::Column::SessionId.eq(session_id.clone()))
                .filter(segment::Column::Source.ne(source_to_i32(Source::VoiceProvider)))
                .exec(txn)
                .await?;
        }
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
        &names::organization_name(&m.organization),
        PRODUCER,
        ev::event::Payload::SessionEnded(ev::SessionEnded {
            session: session_name(m),
            trainee: m.trainee.clone(),
            scenario: m.scenario.clone(),
            assignment: m.assignment.clone(),
            mode: m.mode,
            start_time: Some(timestamp(m.start_us)),
            end_time: m.end_us.map(timestamp),
            duration: m.duration_ms.map(duration),
            end_reason: m.end_reason,
            end_reason_detail: m.end_reason_detail.clone(),
            usage,
            rubric: m.rubric.clone(),
            source: m.source,
            drill_of: drill_of_event(m),
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
        /// The override revision `score` reflects (0 for the grader's own score).
        revision: i64,
    },
    Failed,
    /// A manager's override of the session's current evaluation (grading's revision).
    Overridden {
        evaluation: String,
        score: f64,
        passed: bool,
        revision: i64,
    },
}

/// Applies a grading event to a session inside `txn`; returns the updated session when it
/// changed. Sessions that were never ended (or were cancelled) are not moved.
pub async fn apply_grading<C: ConnectionTrait>(
    txn: &C,
    session_id: &str,
    update: &GradingUpdate,
) -> Result<Option<session::Model>, DbErr> {
    let Some(mut m) = get(txn, session_id).await? else {
        return Ok(None);
    };
    let change = match update {
        GradingUpdate::Started => Change::GradingStarted,
        GradingUpdate::Graded { .. } => Change::Graded,
        GradingUpdate::Failed => Change::GradingFailed,
        GradingUpdate::Overridden {
            evaluation,
            score,
            passed,
            revision,
        } => return apply_override(txn, m, evaluation, *score, *passed, *revision).await,
    };
    let Some(Ok(Step::To(next))) = state_of(m.state).map(|s| transition(s, change)) else {
        return Ok(None);
    };
    // The grade the session already holds, announced again (a late copy of its event, or the
    // reconciler's repair met by the real event) at no newer revision: nothing changes, and
    // an override applied meanwhile is not undone.
    if let GradingUpdate::Graded {
        evaluation,
        revision,
        ..
    } = update
        && next == SessionState::Graded
        && m.state == state_code(SessionState::Graded)
        && m.evaluation == *evaluation
        && *revision <= m.score_revision
    {
        return Ok(None);
    }
    let target = state_code(next);
    let now = now_us();
    m.state = target;
    m.version += 1;
    m.update_us = now;
    if let GradingUpdate::Graded {
        evaluation,
        score,
        passed,
        closed,
        revision,
    } = update
    {
        m.evaluation = evaluation.clone();
        m.overall_score = *score;
        m.passed = *passed;
        m.closed = *closed;
        m.score_revision = *revision;
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
        .col_expr(
            session::Column::ScoreRevision,
            Expr::value(m.score_revision),
        )
        .col_expr(session::Column::Version, Expr::value(m.version))
        .col_expr(session::Column::UpdateUs, Expr::value(now))
        .filter(session::Column::Id.eq(session_id))
        .exec(txn)
        .await?;
    Ok(Some(m))
}

/// Copies an override's effective score onto the session when it is about the session's
/// current evaluation and newer than the score it holds (a regrade's evaluation, or a late
/// older override, leaves it alone). The state does not change.
async fn apply_override<C: ConnectionTrait>(
    txn: &C,
    mut m: session::Model,
    evaluation: &str,
    score: f64,
    passed: bool,
    revision: i64,
) -> Result<Option<session::Model>, DbErr> {
    if m.evaluation != evaluation || revision <= m.score_revision {
        return Ok(None);
    }
    let now = now_us();
    m.overall_score = score;
    m.passed = passed;
    m.score_revision = revision;
    m.version += 1;
    m.update_us = now;
    session::Entity::update_many()
        .col_expr(session::Column::OverallScore, Expr::value(score))
        .col_expr(session::Column::Passed, Expr::value(passed))
        .col_expr(session::Column::ScoreRevision, Expr::value(revision))
        .col_expr(session::Column::Version, Expr::value(m.version))
        .col_expr(session::Column::UpdateUs, Expr::value(now))
        .filter(session::Column::Id.eq(m.id.clone()))
        .filter(session::Column::Evaluation.eq(evaluation))
        .filter(session::Column::ScoreRevision.lt(revision))
        .exec(txn)
        .await?;
    Ok(Some(m))
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

/// Voice sessions that have waited for their provider's report since before `cutoff_us`.
pub async fn overdue_reports(
    db: &DatabaseConnection,
    cutoff_us: i64,
    limit: u64,
) -> Result<Vec<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::State.eq(state_code(SessionState::AwaitingReport)))
        .filter(session::Column::EndUs.lt(cutoff_us))
        .limit(limit)
        .all(db)
        .await
}

/// ACTIVE sessions idle since before `idle_cutoff_us` or past their deadline.
pub async fn expired_sessions(
    db: &DatabaseConnection,
    idle_cutoff_us: i64,
    now: i64,
    limit: u64,
) -> Result<Vec<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::State.eq(state_code(SessionState::Active)))
        .filter(
            Condition::any()
                .add(session::Column::LastActivityUs.lt(idle_cutoff_us))
                .add(session::Column::DeadlineUs.lte(now)),
        )
        .limit(limit)
        .all(db)
        .await
}

/// GRADED sessions last changed (graded, overridden, ...) within `[from_us, before_us)`, by
/// that time, after the keyset `(after_us, after_id)`: the reconciler re-checks their score
/// with grading. A session changed meanwhile moves later in the order: seen again, not skipped.
pub async fn graded_sessions(
    db: &DatabaseConnection,
    from_us: i64,
    before_us: i64,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<session::Model>, DbErr> {
    let q = session::Entity::find()
        .filter(session::Column::State.eq(state_code(SessionState::Graded)))
        .filter(session::Column::UpdateUs.gte(from_us))
        .filter(session::Column::UpdateUs.lt(before_us));
    by_update_after(q, after, limit).all(db).await
}

/// `q` ordered by (update time, id), the page of `limit` after the keyset `after`.
fn by_update_after(
    mut q: sea_orm::Select<session::Entity>,
    after: Option<(i64, String)>,
    limit: u64,
) -> sea_orm::Select<session::Entity> {
    if let Some((us, id)) = after {
        q = q.filter(
            Condition::any().add(session::Column::UpdateUs.gt(us)).add(
                Condition::all()
                    .add(session::Column::UpdateUs.eq(us))
                    .add(session::Column::Id.gt(id)),
            ),
        );
    }
    q.order_by_asc(session::Column::UpdateUs)
        .order_by_asc(session::Column::Id)
        .limit(limit)
}

/// Sessions accepted as ended whose grading has not settled here (ENDED or GRADING) and
/// unchanged since before `cutoff_us`, oldest first, after the keyset `(after_us, after_id)`.
pub async fn unsettled_sessions(
    db: &DatabaseConnection,
    cutoff_us: i64,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<session::Model>, DbErr> {
    let q = session::Entity::find()
        .filter(session::Column::State.is_in([
            state_code(SessionState::Ended),
            state_code(SessionState::Grading),
        ]))
        .filter(session::Column::UpdateUs.lt(cutoff_us));
    by_update_after(q, after, limit).all(db).await
}
