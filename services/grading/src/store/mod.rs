//! Tables owned by the grading service, their migrations and the queries of the job engine.
//!
//! Every write a worker makes after claiming a job is fenced by its lease token: once another
//! worker has taken an expired lease over, the old worker's writes match no row.
//!
//! Instants are microseconds since the Unix epoch (`salestrainer_runtime::time::now_us`, in
//! columns ending in `_us`); durations, the lease included (`lease_ms`), are milliseconds.

pub mod entities;
mod m0003_instants_us;
mod m0005_session_source;
mod m0006_override_cleared;
mod migration;
pub mod overrides;
mod reads;

pub use reads::*;

use salestrainer_proto::events as ev;
use salestrainer_proto::grading::{DeadReason, JobState, PipelineStep};
use salestrainer_runtime::{db::begin_write, names, time::now_us};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TryIntoModel,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub use entities::{evaluation, job, usage};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // The outbox carries this service's events; the inbox makes its consumers idempotent.
        vec![
            Box::new(salestrainer_bus::CreateOutbox),
            Box::new(salestrainer_bus::CreateInbox),
            Box::new(migration::CreateGradingTables),
            Box::new(m0003_instants_us::GradingInstantsInMicros),
            Box::new(overrides::CreateOverrides),
            Box::new(m0005_session_source::GradingSessionSource),
            Box::new(m0006_override_cleared::OverrideCleared),
        ]
    }
}

/// `organizations/{org}/{collection}/{id}` of a stored row, whose organization column holds
/// `organizations/{org}`.
pub fn resource_name(organization: &str, collection: &str, id: &str) -> String {
    names::child_name(
        names::organization_of(organization).unwrap_or_default(),
        collection,
        id,
    )
}

pub fn job_name(organization: &str, id: &str) -> String {
    resource_name(organization, "gradingJobs", id)
}

pub fn evaluation_name(organization: &str, id: &str) -> String {
    resource_name(organization, "evaluations", id)
}

/// The inbox consumer name of the SessionEnded handler.
pub const INBOX_CONSUMER: &str = "grading";

/// What a new job is created from (a SessionEnded event, SubmitSession or RegradeSession).
#[derive(Clone, Debug, Default)]
pub struct NewJob {
    pub organization: String,
    pub session: String,
    pub request_id: String,
    pub trainee: String,
    pub scenario: String,
    pub assignment: String,
    pub rubric: String,
    pub session_start_us: Option<i64>,
    pub session_duration_ms: Option<i64>,
    /// The session's `SessionSource` number (0: not known).
    pub session_source: i32,
    pub max_attempts: i32,
    /// W3C trace context the job's attempts continue (empty: the current span's).
    pub trace_context: std::collections::BTreeMap<String, String>,
}

fn new_row(n: &NewJob, generation: i32) -> job::ActiveModel {
    let now = now_us();
    job::ActiveModel {
        id: Set(uuid::Uuid::now_v7().simple().to_string()),
        organization: Set(n.organization.clone()),
        session: Set(n.session.clone()),
        generation: Set(generation),
        request_id: Set(n.request_id.clone()),
        regrade: Set(generation > 0),
        trainee: Set(n.trainee.clone()),
        scenario: Set(n.scenario.clone()),
        assignment: Set(n.assignment.clone()),
        rubric: Set(n.rubric.clone()),
        session_start_us: Set(n.session_start_us),
        session_duration_ms: Set(n.session_duration_ms),
        session_source: Set(n.session_source),
        state: Set(JobState::Queued as i32),
        attempts: Set(0),
        max_attempts: Set(Ord::max(n.max_attempts, 1)),
        next_attempt_at_us: Set(now),
        lease_token: Set(None),
        lease_until_us: Set(None),
        current_step: Set(PipelineStep::Unspecified as i32),
        checkpoint: Set("{}".into()),
        dead_reason: Set(DeadReason::Unspecified as i32),
        last_error: Set(None),
        attempt_log: Set("[]".into()),
        trace_context: Set({
            let current = n
                .trace_context
                .is_empty()
                .then(salestrainer_runtime::telemetry::current_trace_context);
            serde_json::to_string(current.as_ref().unwrap_or(&n.trace_context))
                .unwrap_or_else(|_| "{}".into())
        }),
        evaluation: Set(None),
        started: Set(false),
        enqueued_at_us: Set(None),
        version: Set(1),
        create_us: Set(now),
        update_us: Set(now),
    }
}

/// Inserts the first job of a session unless the session (or the request id) already has one.
/// Returns the job and whether it was created now.
pub async fn create_first_job<C: ConnectionTrait>(
    conn: &C,
    n: &NewJob,
) -> Result<(job::Model, bool), DbErr> {
    // ON CONFLICT on either unique key (session+generation, request_id) inserts nothing.
    let row = new_row(n, 0);
    let inserted = job::Entity::insert(row.clone())
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    if inserted == 1 {
        // Every column was set above: the row as written, without reading it back.
        return Ok((row.try_into_model()?, true));
    }
    let found = job::Entity::find()
        .filter(
            Condition::any()
                .add(job::Column::RequestId.eq(n.request_id.as_str()))
                .add(
                    Condition::all()
                        .add(job::Column::Session.eq(n.session.as_str()))
                        .add(job::Column::Generation.eq(0)),
                ),
        )
        .order_by_asc(job::Column::Generation)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("grading job after insert".into()))?;
    Ok((found, false))
}

/// Creates a regrade job (next generation) unless `request_id` was used already.
pub async fn create_regrade_job(
    db: &DatabaseConnection,
    n: &NewJob,
) -> Result<(job::Model, bool), DbErr> {
    let txn = begin_write(db).await?;
    // Two concurrent regrades may pick the same generation: the unique index rejects one,
    // which then takes the next number.
    for _ in 0..5 {
        if let Some(existing) = job::Entity::find()
            .filter(job::Column::RequestId.eq(n.request_id.as_str()))
            .one(&txn)
            .await?
        {
            return Ok((existing, false));
        }
        let last = job::Entity::find()
            .filter(job::Column::Session.eq(n.session.as_str()))
            .order_by_desc(job::Column::Generation)
            .one(&txn)
            .await?;
        let generation = last.map_or(0, |j| j.generation + 1);
        let row = new_row(n, generation);
        let inserted = job::Entity::insert(row)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await?;
        if inserted == 1 {
            let created = job::Entity::find()
                .filter(job::Column::RequestId.eq(n.request_id.as_str()))
                .one(&txn)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("regrade job after insert".into()))?;
            txn.commit().await?;
            return Ok((created, true));
        }
    }
    Err(DbErr::Custom(
        "could not allocate a regrade generation".into(),
    ))
}

pub async fn find_job<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find_by_id(id.to_owned()).one(conn).await
}

/// Due jobs: QUEUED/RETRYING whose time has come, or RUNNING whose lease expired (its worker
/// died). Oldest first.
pub async fn due_job_ids(
    db: &DatabaseConnection,
    now: i64,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(due_condition(now))
        .order_by_asc(job::Column::NextAttemptAtUs)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// Due jobs (oldest first) that the work stream may not hold: never put there, put there
/// before `requeue_cutoff`, or RUNNING with an expired lease and not put there since it
/// expired (its worker died: the entry it had taken is gone or stalled).
pub async fn unqueued_due_ids(
    db: &DatabaseConnection,
    now: i64,
    requeue_cutoff: i64,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(due_condition(now))
        .filter(
            Condition::any()
                .add(job::Column::EnqueuedAtUs.is_null())
                .add(job::Column::EnqueuedAtUs.lt(requeue_cutoff))
                .add(
                    Condition::all()
                        .add(job::Column::State.eq(JobState::Running as i32))
                        .add(
                            Expr::col(job::Column::EnqueuedAtUs)
                                .lt(Expr::col(job::Column::LeaseUntilUs)),
                        ),
                ),
        )
        .order_by_asc(job::Column::NextAttemptAtUs)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// How many jobs are due now (the embedded queue depth).
pub async fn count_due(db: &DatabaseConnection, now: i64) -> Result<u64, DbErr> {
    job::Entity::find()
        .filter(due_condition(now))
        .count(db)
        .await
}

fn due_condition(now: i64) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(job::Column::State.is_in([JobState::Queued as i32, JobState::Retrying as i32]))
                .add(job::Column::NextAttemptAtUs.lte(now)),
        )
        .add(
            Condition::all()
                .add(job::Column::State.eq(JobState::Running as i32))
                .add(job::Column::LeaseUntilUs.lt(now)),
        )
}

/// Leases those of `ids` that are still due to `token` (one compare-and-set UPDATE, so of
/// several claimers exactly one wins each row), reads them back, and marks their first claim
/// with GradingStarted, all inside the caller's transaction.
async fn take_lease<C: ConnectionTrait>(
    txn: &C,
    ids: &[String],
    token: &str,
    lease_ms: i64,
) -> Result<Vec<job::Model>, DbErr> {
    let now = now_us();
    job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Running as i32))
        .col_expr(
            job::Column::Attempts,
            Expr::col(job::Column::Attempts).add(1),
        )
        .col_expr(job::Column::LeaseToken, Expr::value(token.to_owned()))
        .col_expr(
            job::Column::LeaseUntilUs,
            Expr::value(now.saturating_add(lease_ms.saturating_mul(1000))),
        )
        .col_expr(job::Column::Version, Expr::col(job::Column::Version).add(1))
        .col_expr(job::Column::UpdateUs, Expr::value(now))
        .filter(job::Column::Id.is_in(ids.iter().cloned()))
        .filter(due_condition(now))
        .exec(txn)
        .await?;
    let mut claimed = job::Entity::find()
        .filter(job::Column::Id.is_in(ids.iter().cloned()))
        .filter(job::Column::LeaseToken.eq(token))
        .order_by_asc(job::Column::NextAttemptAtUs)
        .all(txn)
        .await?;
    let mut first = Vec::new();
    let mut events = Vec::new();
    for j in claimed.iter_mut().filter(|j| !j.started) {
        j.started = true;
        first.push(j.id.clone());
        events.push(grading_started(j));
    }
    if !first.is_empty() {
        job::Entity::update_many()
            .col_expr(job::Column::Started, Expr::value(true))
            .filter(job::Column::Id.is_in(first))
            .exec(txn)
            .await?;
        salestrainer_runtime::events::enqueue_many(txn, &events).await?;
    }
    Ok(claimed)
}

/// Claims job `id` if it is due. The first claim also emits GradingStarted in the same
/// transaction.
pub async fn claim(
    db: &DatabaseConnection,
    id: &str,
    lease_ms: i64,
) -> Result<Option<(job::Model, String)>, DbErr> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let txn = begin_write(db).await?;
    let claimed = take_lease(&txn, &[id.to_owned()], &token, lease_ms).await?;
    txn.commit().await?;
    Ok(claimed.into_iter().next().map(|j| (j, token)))
}

/// Claims up to `limit` due jobs, oldest first, in one transaction: one lease token for the
/// batch, fenced like [`claim`] (a row another replica claimed in between is skipped).
pub async fn claim_due(
    db: &DatabaseConnection,
    limit: u64,
    lease_ms: i64,
) -> Result<Vec<(job::Model, String)>, DbErr> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let txn = begin_write(db).await?;
    // PostgreSQL: rows another replica is claiming right now are skipped, not waited for
    // (SQLite has no row locks and sea-query leaves the clause out there).
    let ids: Vec<String> = job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(due_condition(now_us()))
        .order_by_asc(job::Column::NextAttemptAtUs)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_tuple::<String>()
        .all(&txn)
        .await?;
    if ids.is_empty() {
        txn.rollback().await?;
        return Ok(Vec::new());
    }
    let claimed = take_lease(&txn, &ids, &token, lease_ms).await?;
    txn.commit().await?;
    Ok(claimed.into_iter().map(|j| (j, token.clone())).collect())
}

fn grading_started(j: &job::Model) -> ev::Event {
    salestrainer_runtime::events::new_event(
        &j.organization,
        crate::SERVICE,
        ev::event::Payload::GradingStarted(ev::GradingStarted {
            session: j.session.clone(),
            grading_job: job_name(&j.organization, &j.id),
            regrade: j.regrade,
        }),
    )
}

/// Extends a held lease; false when the lease was lost.
pub async fn heartbeat(
    db: &DatabaseConnection,
    id: &str,
    token: &str,
    lease_ms: i64,
) -> Result<bool, DbErr> {
    let txn = begin_write(db).await?;
    let res = job::Entity::update_many()
        .col_expr(
            job::Column::LeaseUntilUs,
            Expr::value(now_us().saturating_add(lease_ms.saturating_mul(1000))),
        )
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::LeaseToken.eq(token))
        .filter(job::Column::State.eq(JobState::Running as i32))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// Records LLM usage of a failed attempt (paid or not, it is usage).
pub async fn record_usage(
    db: &DatabaseConnection,
    rows: Vec<usage::ActiveModel>,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    if rows.is_empty() {
        return Ok(());
    }
    usage::Entity::insert_many(rows)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// One entry of a job's attempt log.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AttemptRecord {
    pub attempt: i32,
    pub start_us: i64,
    pub end_us: i64,
    pub step: i32,
    pub error: String,
    pub retryable: bool,
}

/// Keeps the 20 most recent attempts, newest first.
pub fn push_attempt(log_json: &str, rec: AttemptRecord) -> String {
    let mut log: Vec<AttemptRecord> = serde_json::from_str(log_json).unwrap_or_default();
    log.insert(0, rec);
    log.truncate(20);
    serde_json::to_string(&log).unwrap_or_else(|_| "[]".into())
}

pub fn attempt_log(log_json: &str) -> Vec<AttemptRecord> {
    serde_json::from_str(log_json).unwrap_or_default()
}

/// How an attempt ended, for [`WriteOp::Finish`].
pub enum Outcome {
    Succeeded {
        evaluation: Box<evaluation::Model>,
        event: Box<ev::Event>,
    },
    Retry {
        at_us: i64,
        error: String,
    },
    Dead {
        reason: DeadReason,
        error: String,
    },
}

/// A write a worker makes while it holds a job's lease, fenced by its lease token.
pub enum WriteOp {
    /// The checkpoint of the steps done so far (and the LLM usage rows of this step).
    Checkpoint {
        id: String,
        token: String,
        step: PipelineStep,
        checkpoint: String,
        usage_rows: Vec<usage::ActiveModel>,
    },
    /// The end of an attempt: the job's new state, the evaluation (on success) and the event.
    Finish {
        job: Box<job::Model>,
        token: String,
        attempt_start_us: i64,
        step: PipelineStep,
        outcome: Outcome,
    },
}

/// Applies `ops` in one transaction (one commit for many workers' writes). Each result says
/// whether that op's lease still held (false: nothing of it was written). Should the batch
/// fail, each op is retried in a transaction of its own so one bad op fails alone.
pub async fn write_batch(db: &DatabaseConnection, ops: &[WriteOp]) -> Vec<Result<bool, DbErr>> {
    if ops.is_empty() {
        return Vec::new();
    }
    match write_in_one_transaction(db, ops).await {
        Ok(done) => done.into_iter().map(Ok).collect(),
        Err(e) if ops.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, ops = ops.len(), "batched grading write failed; writing each alone");
            let mut out = Vec::with_capacity(ops.len());
            for op in ops {
                out.push(
                    write_in_one_transaction(db, std::slice::from_ref(op))
                        .await
                        .map(|d| d.first().copied().unwrap_or(false)),
                );
            }
            out
        }
    }
}

async fn write_in_one_transaction(
    db: &DatabaseConnection,
    ops: &[WriteOp],
) -> Result<Vec<bool>, DbErr> {
    let txn = begin_write(db).await?;
    let mut done = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    let mut graded = Vec::new();
    for op in ops {
        done.push(match op {
            WriteOp::Checkpoint {
                id,
                token,
                step,
                checkpoint,
                usage_rows,
            } => apply_checkpoint(&txn, id, token, *step, checkpoint, usage_rows).await?,
            WriteOp::Finish {
                job,
                token,
                attempt_start_us,
                step,
                outcome,
            } => {
                let applied =
                    apply_finish(&txn, job, token, *attempt_start_us, *step, outcome).await?;
                if applied && let Outcome::Succeeded { evaluation, .. } = outcome {
                    graded.push(evaluation.as_ref());
                }
                applied
            }
        });
    }
    let mut supersedes = insert_evaluations(&txn, &graded).await?.into_iter();
    for (op, applied) in ops.iter().zip(&done) {
        let WriteOp::Finish { job, outcome, .. } = op else {
            continue;
        };
        if !applied {
            continue;
        }
        match outcome {
            Outcome::Succeeded { event, .. } => {
                let mut event = event.as_ref().clone();
                // Known only now: the evaluation this one replaces.
                if let (Some(Some(prev)), Some(ev::event::Payload::SessionGraded(g))) =
                    (supersedes.next(), event.payload.as_mut())
                {
                    g.supersedes = evaluation_name(&job.organization, &prev);
                }
                events.push(event);
            }
            Outcome::Dead { reason, error } => events.push(grading_failed(job, *reason, error)),
            Outcome::Retry { .. } => {}
        }
    }
    salestrainer_runtime::events::enqueue_many(&txn, &events).await?;
    txn.commit().await?;
    Ok(done)
}

/// Inserts the batch's new evaluations, each superseding its session's current one (read
/// once for the whole batch; two in one batch for the same session chain in order). Returns
/// the id each one supersedes, in order.
async fn insert_evaluations<C: ConnectionTrait>(
    txn: &C,
    graded: &[&evaluation::Model],
) -> Result<Vec<Option<String>>, DbErr> {
    if graded.is_empty() {
        return Ok(Vec::new());
    }
    let sessions: std::collections::BTreeSet<&str> =
        graded.iter().map(|e| e.session.as_str()).collect();
    let mut current: std::collections::HashMap<String, String> = evaluation::Entity::find()
        .select_only()
        .column(evaluation::Column::Session)
        .column(evaluation::Column::Id)
        .filter(evaluation::Column::Session.is_in(sessions))
        .filter(evaluation::Column::SupersededBy.is_null())
        .order_by_asc(evaluation::Column::CreateUs)
        .into_tuple::<(String, String)>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    let mut rows: Vec<evaluation::Model> = Vec::with_capacity(graded.len());
    let mut stored_superseded: Vec<(String, String)> = Vec::new();
    for e in graded {
        let mut row = (*e).clone();
        row.supersedes = current.insert(e.session.clone(), e.id.clone());
        if let Some(prev) = &row.supersedes {
            match rows.iter_mut().find(|r| &r.id == prev) {
                Some(earlier) => earlier.superseded_by = Some(row.id.clone()),
                None => stored_superseded.push((prev.clone(), row.id.clone())),
            }
        }
        rows.push(row);
    }
    let supersedes = rows.iter().map(|r| r.supersedes.clone()).collect();
    // The superseded rows first: from here an override of them is refused, so the overrides
    // carried onto their successors are the last ones.
    for (prev, by) in stored_superseded {
        evaluation::Entity::update_many()
            .col_expr(evaluation::Column::SupersededBy, Expr::value(Some(by)))
            .filter(evaluation::Column::Id.eq(prev))
            .exec(txn)
            .await?;
    }
    overrides::carry_over(txn, &mut rows).await?;
    evaluation::Entity::insert_many(rows.into_iter().map(evaluation::ActiveModel::from))
        .exec_without_returning(txn)
        .await?;
    Ok(supersedes)
}

fn grading_failed(j: &job::Model, reason: DeadReason, error: &str) -> ev::Event {
    salestrainer_runtime::events::new_event(
        &j.organization,
        crate::SERVICE,
        ev::event::Payload::GradingFailed(ev::GradingFailed {
            session: j.session.clone(),
            grading_job: job_name(&j.organization, &j.id),
            reason: reason as i32,
            last_error: error.to_owned(),
            attempts: j.attempts,
            trainee: j.trainee.clone(),
            scenario: j.scenario.clone(),
        }),
    )
}

async fn apply_checkpoint<C: ConnectionTrait>(
    txn: &C,
    id: &str,
    token: &str,
    step: PipelineStep,
    checkpoint: &str,
    usage_rows: &[usage::ActiveModel],
) -> Result<bool, DbErr> {
    let res = job::Entity::update_many()
        .col_expr(job::Column::Checkpoint, Expr::value(checkpoint.to_owned()))
        .col_expr(job::Column::CurrentStep, Expr::value(step as i32))
        .col_expr(job::Column::Version, Expr::col(job::Column::Version).add(1))
        .col_expr(job::Column::UpdateUs, Expr::value(now_us()))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::LeaseToken.eq(token))
        .filter(job::Column::State.eq(JobState::Running as i32))
        .exec(txn)
        .await?;
    // No row updated means the lease is gone and nothing else of this op is written.
    if res.rows_affected != 1 {
        return Ok(false);
    }
    if !usage_rows.is_empty() {
        usage::Entity::insert_many(usage_rows.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(true)
}

/// The job row's side of [`WriteOp::Finish`]; the evaluation and events follow per batch.
async fn apply_finish<C: ConnectionTrait>(
    txn: &C,
    j: &job::Model,
    token: &str,
    attempt_start_us: i64,
    step: PipelineStep,
    outcome: &Outcome,
) -> Result<bool, DbErr> {
    let now = now_us();
    let mut upd = job::Entity::update_many()
        .col_expr(job::Column::LeaseToken, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LeaseUntilUs, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::CurrentStep, Expr::value(step as i32))
        .col_expr(job::Column::Version, Expr::col(job::Column::Version).add(1))
        .col_expr(job::Column::UpdateUs, Expr::value(now))
        .filter(job::Column::Id.eq(j.id.as_str()))
        .filter(job::Column::LeaseToken.eq(token))
        .filter(job::Column::State.eq(JobState::Running as i32));
    let (error, retryable) = match outcome {
        Outcome::Succeeded { .. } => (String::new(), false),
        Outcome::Retry { error, .. } => (error.clone(), true),
        Outcome::Dead { error, .. } => (error.clone(), false),
    };
    // The log as read at claim time plus this attempt: only the lease holder writes it, and
    // not reading first keeps this transaction a writer from its first statement (SQLite would
    // refuse to upgrade a stale read snapshot).
    let log = push_attempt(
        &j.attempt_log,
        AttemptRecord {
            attempt: j.attempts,
            start_us: attempt_start_us,
            end_us: now,
            step: step as i32,
            error,
            retryable,
        },
    );
    upd = upd.col_expr(job::Column::AttemptLog, Expr::value(log));
    upd = match outcome {
        Outcome::Succeeded { evaluation, .. } => upd
            .col_expr(job::Column::State, Expr::value(JobState::Succeeded as i32))
            .col_expr(
                job::Column::Evaluation,
                Expr::value(Some(evaluation.id.clone())),
            )
            .col_expr(job::Column::LastError, Expr::value(Option::<String>::None)),
        Outcome::Retry { at_us, error } => upd
            .col_expr(job::Column::State, Expr::value(JobState::Retrying as i32))
            .col_expr(job::Column::NextAttemptAtUs, Expr::value(*at_us))
            // Due again at `at_us`: the scheduler must put it on the stream then.
            .col_expr(job::Column::EnqueuedAtUs, Expr::value(Option::<i64>::None))
            .col_expr(job::Column::LastError, Expr::value(Some(error.clone()))),
        Outcome::Dead { reason, error } => upd
            .col_expr(job::Column::State, Expr::value(JobState::Dead as i32))
            .col_expr(job::Column::DeadReason, Expr::value(*reason as i32))
            .col_expr(job::Column::LastError, Expr::value(Some(error.clone()))),
    };
    // No row updated means the lease is gone and nothing else of this op is written.
    Ok(upd.exec(txn).await?.rows_affected == 1)
}

/// Puts a DEAD job back in the queue (attempts reset), or runs a RETRYING job now.
/// Returns None when the job is in another state.
pub async fn requeue(db: &DatabaseConnection, id: &str) -> Result<Option<job::Model>, DbErr> {
    let txn = begin_write(db).await?;
    let now = now_us();
    let res = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Queued as i32))
        .col_expr(job::Column::NextAttemptAtUs, Expr::value(now))
        .col_expr(
            job::Column::DeadReason,
            Expr::value(DeadReason::Unspecified as i32),
        )
        .col_expr(job::Column::EnqueuedAtUs, Expr::value(Option::<i64>::None))
        .col_expr(
            job::Column::Attempts,
            Expr::case(job::Column::State.eq(JobState::Dead as i32), Expr::value(0))
                .finally(Expr::col(job::Column::Attempts))
                .into(),
        )
        .col_expr(job::Column::Version, Expr::col(job::Column::Version).add(1))
        .col_expr(job::Column::UpdateUs, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.is_in([JobState::Dead as i32, JobState::Retrying as i32]))
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    let j = find_job(&txn, id).await?;
    txn.commit().await?;
    Ok(j)
}

pub async fn mark_enqueued(db: &DatabaseConnection, ids: &[String]) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    if ids.is_empty() {
        return Ok(());
    }
    job::Entity::update_many()
        .col_expr(job::Column::EnqueuedAtUs, Expr::value(now_us()))
        .filter(job::Column::Id.is_in(ids.iter().cloned()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Jobs per state, for the metrics.
pub async fn count_by_state(db: &DatabaseConnection) -> Result<Vec<(i32, i64)>, DbErr> {
    job::Entity::find()
        .select_only()
        .column(job::Column::State)
        .column_as(job::Column::Id.count(), "n")
        .group_by(job::Column::State)
        .into_tuple::<(i32, i64)>()
        .all(db)
        .await
}
