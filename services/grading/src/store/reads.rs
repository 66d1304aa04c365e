//! The reads behind the API: job and evaluation lists, evaluations by id, a session's jobs.

use salestrainer_proto::grading::JobState;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{evaluation, job};

/// A keyset page: up to `size + 1` rows (so the caller knows whether a page follows) and the
/// total count.
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub total: u64,
}

/// ListGradingJobs filters (already authorised and validated).
#[derive(Debug, Default, Clone)]
pub struct JobQuery {
    /// `organizations/{id}`.
    pub organization: String,
    pub state: Option<i32>,
    pub session: Option<String>,
    /// Only this trainee's jobs, by member name or bare subject.
    pub trainee: Option<(String, String)>,
}

/// ListEvaluations filters (already authorised and validated).
#[derive(Debug, Default, Clone)]
pub struct EvaluationQuery {
    pub organization: String,
    pub session: Option<String>,
    /// Only this trainee's evaluations, by member name or bare subject (trainees).
    pub own: Option<(String, String)>,
    /// The trainee asked for (managers).
    pub trainee: Option<String>,
    pub scenario: Option<String>,
    pub assignment: Option<String>,
    pub created_from_us: Option<i64>,
    pub created_before_us: Option<i64>,
    pub show_superseded: bool,
}

/// Newest first.
pub async fn list_jobs<C: ConnectionTrait>(
    db: &C,
    f: &JobQuery,
    after: Option<(i64, String)>,
    size: u64,
) -> Result<Rows<job::Model>, DbErr> {
    let mut q = job::Entity::find().filter(job::Column::Organization.eq(f.organization.as_str()));
    if let Some(s) = f.state {
        q = q.filter(job::Column::State.eq(s));
    }
    if let Some(s) = &f.session {
        q = q.filter(job::Column::Session.eq(s.as_str()));
    }
    if let Some((member, subject)) = &f.trainee {
        q = q.filter(
            Condition::any()
                .add(job::Column::Trainee.eq(member.as_str()))
                .add(job::Column::Trainee.eq(subject.as_str())),
        );
    }
    let total = q.clone().count(db).await?;
    if let Some((at, id)) = after {
        // Newest first: the rows after (at, id) are older, or as old with a smaller id.
        q = q.filter(
            Condition::any().add(job::Column::CreateUs.lt(at)).add(
                Condition::all()
                    .add(job::Column::CreateUs.eq(at))
                    .add(job::Column::Id.lt(id)),
            ),
        );
    }
    let rows = q
        .order_by_desc(job::Column::CreateUs)
        .order_by_desc(job::Column::Id)
        .limit(size + 1)
        .all(db)
        .await?;
    Ok(Rows { rows, total })
}

/// Newest first.
pub async fn list_evaluations<C: ConnectionTrait>(
    db: &C,
    f: &EvaluationQuery,
    after: Option<(i64, String)>,
    size: u64,
) -> Result<Rows<evaluation::Model>, DbErr> {
    let mut q = evaluation::Entity::find()
        .filter(evaluation::Column::Organization.eq(f.organization.as_str()));
    if let Some(s) = &f.session {
        q = q.filter(evaluation::Column::Session.eq(s.as_str()));
    }
    if let Some((member, subject)) = &f.own {
        q = q.filter(
            Condition::any()
                .add(evaluation::Column::Trainee.eq(member.as_str()))
                .add(evaluation::Column::Trainee.eq(subject.as_str())),
        );
    } else if let Some(t) = &f.trainee {
        q = q.filter(evaluation::Column::Trainee.eq(t.as_str()));
    }
    if let Some(s) = &f.scenario {
        q = q.filter(evaluation::Column::Scenario.eq(s.as_str()));
    }
    if let Some(a) = &f.assignment {
        q = q.filter(evaluation::Column::Assignment.eq(a.as_str()));
    }
    if let Some(t) = f.created_from_us {
        q = q.filter(evaluation::Column::CreateUs.gte(t));
    }
    if let Some(t) = f.created_before_us {
        q = q.filter(evaluation::Column::CreateUs.lt(t));
    }
    if !f.show_superseded {
        q = q.filter(evaluation::Column::SupersededBy.is_null());
    }
    let total = q.clone().count(db).await?;
    if let Some((at, id)) = after {
        // Newest first: the rows after (at, id) are older, or as old with a smaller id.
        q = q.filter(
            Condition::any()
                .add(evaluation::Column::CreateUs.lt(at))
                .add(
                    Condition::all()
                        .add(evaluation::Column::CreateUs.eq(at))
                        .add(evaluation::Column::Id.lt(id)),
                ),
        );
    }
    let rows = q
        .order_by_desc(evaluation::Column::CreateUs)
        .order_by_desc(evaluation::Column::Id)
        .limit(size + 1)
        .all(db)
        .await?;
    Ok(Rows { rows, total })
}

pub async fn find_evaluation<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<evaluation::Model>, DbErr> {
    evaluation::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The session's latest job (highest generation).
pub async fn latest_job_of_session<C: ConnectionTrait>(
    db: &C,
    session: &str,
) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find()
        .filter(job::Column::Session.eq(session))
        .order_by_desc(job::Column::Generation)
        .one(db)
        .await
}

pub async fn find_job_by_request_id<C: ConnectionTrait>(
    db: &C,
    request_id: &str,
) -> Result<Option<job::Model>, DbErr> {
    job::Entity::find()
        .filter(job::Column::RequestId.eq(request_id))
        .one(db)
        .await
}

/// A job in SUCCEEDED or DEAD: nothing more happens to it.
pub fn job_is_final(j: &job::Model) -> bool {
    j.state == JobState::Succeeded as i32 || j.state == JobState::Dead as i32
}

/// What the outcome of a session needs of a job (not its checkpoint nor its attempt log).
#[derive(Clone, Debug, sea_orm::FromQueryResult)]
pub struct JobBrief {
    pub id: String,
    pub organization: String,
    pub session: String,
    pub generation: i32,
    pub state: i32,
    pub attempts: i32,
    pub dead_reason: i32,
    pub last_error: Option<String>,
    pub trainee: String,
    pub scenario: String,
    pub session_start_us: Option<i64>,
    pub session_duration_ms: Option<i64>,
    pub session_source: i32,
}

/// Every job of `sessions` (a session has one per grading and regrade), briefly.
pub async fn jobs_of_sessions<C: ConnectionTrait>(
    db: &C,
    sessions: &[String],
) -> Result<Vec<JobBrief>, DbErr> {
    job::Entity::find()
        .select_only()
        .columns([
            job::Column::Id,
            job::Column::Organization,
            job::Column::Session,
            job::Column::Generation,
            job::Column::State,
            job::Column::Attempts,
            job::Column::DeadReason,
            job::Column::LastError,
            job::Column::Trainee,
            job::Column::Scenario,
            job::Column::SessionStartUs,
            job::Column::SessionDurationMs,
            job::Column::SessionSource,
        ])
        .filter(job::Column::Session.is_in(sessions.iter().map(String::as_str)))
        .into_model::<JobBrief>()
        .all(db)
        .await
}

/// The current (not superseded) evaluations of `sessions`.
pub async fn current_evaluations_of_sessions<C: ConnectionTrait>(
    db: &C,
    sessions: &[String],
) -> Result<Vec<evaluation::Model>, DbErr> {
    evaluation::Entity::find()
        .filter(evaluation::Column::Session.is_in(sessions.iter().map(String::as_str)))
        .filter(evaluation::Column::SupersededBy.is_null())
        .order_by_asc(evaluation::Column::CreateUs)
        .all(db)
        .await
}
