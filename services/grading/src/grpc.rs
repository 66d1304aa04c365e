//! gRPC layer of the grading service: translates protobuf to store/engine calls and errors to
//! statuses. Another organization's resources answer NOT_FOUND, never PERMISSION_DENIED, so
//! names do not leak.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use salestrainer_proto::grading as pb;
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Ready, Role, Violations, app::BoxStream,
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tonic::{Request, Response, Status};

use crate::names;
use crate::store::{self, NewJob, evaluation, job};
use crate::worker::Engine;

pub struct GradingServiceApi {
    db: Ready<DatabaseConnection>,
    engine: Ready<Arc<Engine>>,
}

impl GradingServiceApi {
    pub fn new(db: Ready<DatabaseConnection>, engine: Ready<Arc<Engine>>) -> Self {
        Self { db, engine }
    }
}

fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

fn ts_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000))
}

pub fn job_pb(j: &job::Model) -> pb::GradingJob {
    let waiting =
        j.state == pb::JobState::Queued as i32 || j.state == pb::JobState::Retrying as i32;
    pb::GradingJob {
        name: names::job_name(&j.organization, &j.id),
        session: j.session.clone(),
        state: j.state,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        next_attempt_time: waiting.then(|| ts(j.next_attempt_at)),
        current_step: j.current_step,
        dead_reason: if j.state == pb::JobState::Dead as i32 {
            j.dead_reason
        } else {
            pb::DeadReason::Unspecified as i32
        },
        last_error: j.last_error.clone().unwrap_or_default(),
        evaluation: j
            .evaluation
            .as_ref()
            .map(|e| names::evaluation_name(&j.organization, e))
            .unwrap_or_default(),
        regrade: j.regrade,
        recent_attempts: store::attempt_log(&j.attempt_log)
            .into_iter()
            .map(|a| pb::GradingAttempt {
                attempt: a.attempt,
                start_time: Some(ts(a.start_ms)),
                end_time: Some(ts(a.end_ms)),
                step: a.step,
                error: a.error,
                retryable: a.retryable,
            })
            .collect(),
        create_time: Some(ts(j.create_ms)),
        update_time: Some(ts(j.update_ms)),
        etag: format!("W/\"{}\"", j.version),
    }
}

pub fn evaluation_pb(e: &evaluation::Model) -> pb::Evaluation {
    let mut out = pb::Evaluation::decode(e.body.as_slice()).unwrap_or_default();
    out.name = names::evaluation_name(&e.organization, &e.id);
    out.supersedes = e
        .supersedes
        .as_ref()
        .map(|s| names::evaluation_name(&e.organization, s))
        .unwrap_or_default();
    out.superseded_by = e
        .superseded_by
        .as_ref()
        .map(|s| names::evaluation_name(&e.organization, s))
        .unwrap_or_default();
    out.create_time = Some(ts(e.create_ms));
    out.etag = format!("W/\"{}\"", e.id);
    out
}

fn is_staff(p: &Principal) -> bool {
    matches!(p.role, Role::Admin | Role::Manager | Role::Service)
}

/// A trainee's member name ends with their subject.
fn owns(p: &Principal, trainee: &str) -> bool {
    trainee == p.subject || trainee.rsplit('/').next() == Some(p.subject.as_str())
}

/// The caller may see resources of this organization name ("organizations/{id}").
fn check_org(p: &Principal, organization: &str, what: &str) -> ApiResult<()> {
    match names::organization_id(organization) {
        Some(id) if p.can_access_organization(id) => Ok(()),
        _ => Err(ApiError::NotFound(format!("{what} not found"))),
    }
}

fn parse_page(token: &str, size: i32) -> ApiResult<(u64, u64)> {
    let offset = if token.is_empty() {
        0
    } else {
        token
            .parse::<u64>()
            .map_err(|_| ApiError::invalid("page_token", "not a token this API returned"))?
    };
    if size < 0 {
        return Err(ApiError::invalid("page_size", "must not be negative"));
    }
    let size = match size {
        0 => 50,
        n => u64::try_from(n.min(1000)).unwrap_or(50),
    };
    Ok((offset, size))
}

fn no_filter(filter: &str) -> ApiResult<()> {
    if filter.trim().is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "filter",
            "filter expressions are not supported; use the typed fields",
        ))
    }
}

impl GradingServiceApi {
    async fn load_job(&self, p: &Principal, name: &str) -> ApiResult<job::Model> {
        let (org, id) = names::parse(name, "gradingJobs").ok_or_else(|| {
            ApiError::invalid("name", "must be organizations/{org}/gradingJobs/{job}")
        })?;
        check_org(p, org, "grading job")?;
        let db = self.db.get()?;
        let j = store::find_job(db, id)
            .await?
            .filter(|j| j.organization == org)
            .ok_or_else(|| ApiError::NotFound("grading job not found".into()))?;
        if !is_staff(p) && !owns(p, &j.trainee) {
            return Err(ApiError::NotFound("grading job not found".into()));
        }
        Ok(j)
    }

    async fn submit(&self, req: &pb::SubmitSessionRequest) -> ApiResult<(job::Model, bool)> {
        let mut v = Violations::new();
        let session_org = names::organization_of(&req.session);
        v.check(
            names::parse(&req.session, "sessions").is_none(),
            "session",
            "must be organizations/{org}/sessions/{session}",
        );
        v.check(
            session_org.as_deref() != Some(req.organization.as_str()),
            "organization",
            "must be the session's organization",
        );
        v.check(req.scenario.is_empty(), "scenario", "required");
        v.check(req.trainee.is_empty(), "trainee", "required");
        v.check(req.request_id.trim().is_empty(), "request_id", "required");
        v.into_result()?;
        let engine = self.engine.get()?;
        let n = NewJob {
            organization: req.organization.clone(),
            session: req.session.clone(),
            request_id: req.request_id.clone(),
            trainee: req.trainee.clone(),
            scenario: req.scenario.clone(),
            assignment: req.assignment.clone(),
            rubric: req.rubric.clone(),
            session_start_ms: None,
            session_duration_ms: None,
            max_attempts: engine.cfg.max_attempts,
            trace_context: Default::default(),
        };
        let (j, created) = {
            let _gate = store::write_gate(&engine.db).await;
            store::create_first_job(&engine.db, &n).await?
        };
        if created {
            engine.job_ready(&j.id).await;
        }
        Ok((j, created))
    }
}

#[tonic::async_trait]
impl pb::grading_service_server::GradingService for GradingServiceApi {
    type WatchGradingJobStream = BoxStream<pb::WatchGradingJobResponse>;

    async fn submit_session(
        &self,
        request: Request<pb::SubmitSessionRequest>,
    ) -> Result<Response<pb::SubmitSessionResponse>, Status> {
        let p = Principal::of(&request)?;
        if !p.is_service() {
            return Err(ApiError::PermissionDenied("internal method".into()).into());
        }
        let (j, created) = self.submit(request.get_ref()).await?;
        Ok(Response::new(pb::SubmitSessionResponse {
            grading_job: Some(job_pb(&j)),
            already_submitted: !created,
        }))
    }

    async fn get_grading_job(
        &self,
        request: Request<pb::GetGradingJobRequest>,
    ) -> Result<Response<pb::GetGradingJobResponse>, Status> {
        let p = Principal::of(&request)?;
        let j = self.load_job(p, &request.get_ref().name).await?;
        Ok(Response::new(pb::GetGradingJobResponse {
            grading_job: Some(job_pb(&j)),
        }))
    }

    async fn list_grading_jobs(
        &self,
        request: Request<pb::ListGradingJobsRequest>,
    ) -> Result<Response<pb::ListGradingJobsResponse>, Status> {
        let p = Principal::of(&request)?;
        let r = request.get_ref();
        if names::organization_id(&r.parent).is_none() || r.parent.matches('/').count() != 1 {
            return Err(ApiError::invalid("parent", "must be organizations/{org}").into());
        }
        check_org(p, &r.parent, "organization")?;
        no_filter(&r.filter)?;
        let (offset, size) = parse_page(&r.page_token, r.page_size)?;
        let db = self.db.get()?;
        let mut q = job::Entity::find().filter(job::Column::Organization.eq(r.parent.as_str()));
        if r.state != pb::JobState::Unspecified as i32 {
            q = q.filter(job::Column::State.eq(r.state));
        }
        if !r.session.is_empty() {
            q = q.filter(job::Column::Session.eq(r.session.as_str()));
        }
        if !is_staff(p) {
            let member = format!("{}/members/{}", r.parent, p.subject);
            q = q.filter(
                Condition::any()
                    .add(job::Column::Trainee.eq(member))
                    .add(job::Column::Trainee.eq(p.subject.as_str())),
            );
        }
        let total = q.clone().count(db).await.map_err(ApiError::from)?;
        let rows = q
            .order_by_desc(job::Column::CreateMs)
            .order_by_desc(job::Column::Id)
            .offset(offset)
            .limit(size + 1)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() as u64 > size;
        Ok(Response::new(pb::ListGradingJobsResponse {
            grading_jobs: rows.iter().take(size as usize).map(job_pb).collect(),
            next_page_token: if more {
                (offset + size).to_string()
            } else {
                String::new()
            },
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        }))
    }

    async fn retry_grading_job(
        &self,
        request: Request<pb::RetryGradingJobRequest>,
    ) -> Result<Response<pb::RetryGradingJobResponse>, Status> {
        let p = Principal::of(&request)?;
        let j = self.load_job(p, &request.get_ref().name).await?;
        if !is_staff(p) {
            return Err(
                ApiError::PermissionDenied("only managers and admins retry jobs".into()).into(),
            );
        }
        let etag = &request.get_ref().etag;
        if !etag.is_empty() && *etag != job_pb(&j).etag {
            return Err(ApiError::Aborted("the job changed; reload it".into()).into());
        }
        let engine = self.engine.get()?;
        let updated = store::requeue(&engine.db, &j.id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::FailedPrecondition {
                reason: "JOB_NOT_RETRYABLE",
                message: "only DEAD or RETRYING jobs can be retried".into(),
            })?;
        engine.job_ready(&updated.id).await;
        Ok(Response::new(pb::RetryGradingJobResponse {
            grading_job: Some(job_pb(&updated)),
        }))
    }

    async fn get_evaluation(
        &self,
        request: Request<pb::GetEvaluationRequest>,
    ) -> Result<Response<pb::GetEvaluationResponse>, Status> {
        let p = Principal::of(&request)?;
        let name = &request.get_ref().name;
        let (org, id) = names::parse(name, "evaluations").ok_or_else(|| {
            ApiError::invalid(
                "name",
                "must be organizations/{org}/evaluations/{evaluation}",
            )
        })?;
        check_org(p, org, "evaluation")?;
        let db = self.db.get()?;
        let e = evaluation::Entity::find_by_id(id.to_owned())
            .one(db)
            .await
            .map_err(ApiError::from)?
            .filter(|e| e.organization == org && (is_staff(p) || owns(p, &e.trainee)))
            .ok_or_else(|| ApiError::NotFound("evaluation not found".into()))?;
        Ok(Response::new(pb::GetEvaluationResponse {
            evaluation: Some(evaluation_pb(&e)),
        }))
    }

    async fn list_evaluations(
        &self,
        request: Request<pb::ListEvaluationsRequest>,
    ) -> Result<Response<pb::ListEvaluationsResponse>, Status> {
        let p = Principal::of(&request)?;
        let r = request.get_ref();
        if names::organization_id(&r.parent).is_none() || r.parent.matches('/').count() != 1 {
            return Err(ApiError::invalid("parent", "must be organizations/{org}").into());
        }
        check_org(p, &r.parent, "organization")?;
        no_filter(&r.filter)?;
        let (offset, size) = parse_page(&r.page_token, r.page_size)?;
        let db = self.db.get()?;
        let mut q = evaluation::Entity::find()
            .filter(evaluation::Column::Organization.eq(r.parent.as_str()));
        if !r.session.is_empty() {
            q = q.filter(evaluation::Column::Session.eq(r.session.as_str()));
        }
        if !is_staff(p) {
            // Trainees see only their own, whatever they asked for.
            let member = format!("{}/members/{}", r.parent, p.subject);
            q = q.filter(
                Condition::any()
                    .add(evaluation::Column::Trainee.eq(member))
                    .add(evaluation::Column::Trainee.eq(p.subject.as_str())),
            );
        } else if !r.trainee.is_empty() {
            q = q.filter(evaluation::Column::Trainee.eq(r.trainee.as_str()));
        }
        if !r.scenario.is_empty() {
            q = q.filter(evaluation::Column::Scenario.eq(r.scenario.as_str()));
        }
        if !r.assignment.is_empty() {
            q = q.filter(evaluation::Column::Assignment.eq(r.assignment.as_str()));
        }
        if let Some(t) = &r.start_time {
            q = q.filter(evaluation::Column::CreateMs.gte(ts_ms(t)));
        }
        if let Some(t) = &r.end_time {
            q = q.filter(evaluation::Column::CreateMs.lt(ts_ms(t)));
        }
        if !r.show_superseded {
            q = q.filter(evaluation::Column::SupersededBy.is_null());
        }
        let total = q.clone().count(db).await.map_err(ApiError::from)?;
        let rows = q
            .order_by_desc(evaluation::Column::CreateMs)
            .order_by_desc(evaluation::Column::Id)
            .offset(offset)
            .limit(size + 1)
            .all(db)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() as u64 > size;
        Ok(Response::new(pb::ListEvaluationsResponse {
            evaluations: rows.iter().take(size as usize).map(evaluation_pb).collect(),
            next_page_token: if more {
                (offset + size).to_string()
            } else {
                String::new()
            },
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        }))
    }

    async fn regrade_session(
        &self,
        request: Request<pb::RegradeSessionRequest>,
    ) -> Result<Response<pb::RegradeSessionResponse>, Status> {
        let p = Principal::of(&request)?;
        let r = request.get_ref();
        let (org, _) = names::parse(&r.session, "sessions").ok_or_else(|| {
            ApiError::invalid("session", "must be organizations/{org}/sessions/{session}")
        })?;
        check_org(p, org, "session")?;
        if !is_staff(p) {
            return Err(
                ApiError::PermissionDenied("only managers and admins regrade".into()).into(),
            );
        }
        if !r.rubric.is_empty() && names::parse(&r.rubric, "rubrics").map(|(o, _)| o) != Some(org) {
            return Err(ApiError::invalid(
                "rubric",
                "must be a rubric of the session's organization",
            )
            .into());
        }
        let engine = self.engine.get()?;
        let last = job::Entity::find()
            .filter(job::Column::Session.eq(r.session.as_str()))
            .order_by_desc(job::Column::Generation)
            .one(&engine.db)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("the session was never graded".into()))?;
        let request_id = if r.request_id.trim().is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            format!("regrade:{}:{}", r.session, r.request_id)
        };
        // A retried request returns its job, whatever state that job is in.
        if let Some(existing) = job::Entity::find()
            .filter(job::Column::RequestId.eq(request_id.as_str()))
            .one(&engine.db)
            .await
            .map_err(ApiError::from)?
        {
            return Ok(Response::new(pb::RegradeSessionResponse {
                grading_job: Some(job_pb(&existing)),
            }));
        }
        if last.state != pb::JobState::Succeeded as i32 && last.state != pb::JobState::Dead as i32 {
            return Err(ApiError::FailedPrecondition {
                reason: "GRADING_IN_PROGRESS",
                message: "the session is being graded; regrade once that finishes".into(),
            }
            .into());
        }
        let n = NewJob {
            organization: last.organization.clone(),
            session: last.session.clone(),
            request_id,
            trainee: last.trainee.clone(),
            scenario: last.scenario.clone(),
            assignment: last.assignment.clone(),
            rubric: r.rubric.clone(),
            session_start_ms: last.session_start_ms,
            session_duration_ms: last.session_duration_ms,
            max_attempts: engine.cfg.max_attempts,
            trace_context: Default::default(),
        };
        let (j, created) = store::create_regrade_job(&engine.db, &n)
            .await
            .map_err(ApiError::from)?;
        if created {
            engine.job_ready(&j.id).await;
        }
        Ok(Response::new(pb::RegradeSessionResponse {
            grading_job: Some(job_pb(&j)),
        }))
    }

    async fn watch_grading_job(
        &self,
        request: Request<pb::WatchGradingJobRequest>,
    ) -> Result<Response<Self::WatchGradingJobStream>, Status> {
        let p = Principal::of(&request)?;
        let first = self.load_job(p, &request.get_ref().name).await?;
        let engine = self.engine.get()?.clone();
        let mut changes = engine.changes.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let terminal = |j: &job::Model| {
                j.state == pb::JobState::Succeeded as i32 || j.state == pb::JobState::Dead as i32
            };
            let send = |j: &job::Model| pb::WatchGradingJobResponse {
                grading_job: Some(job_pb(j)),
                change_time: Some(ts(j.update_ms)),
            };
            let mut version = first.version;
            if tx.send(Ok(send(&first))).await.is_err() || terminal(&first) {
                return;
            }
            loop {
                // Local changes wake us at once; the tick covers workers of other replicas.
                tokio::select! {
                    () = tx.closed() => return,
                    c = changes.recv() => {
                        if matches!(c, Ok(ref id) if *id != first.id) {
                            continue;
                        }
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let Ok(Some(j)) = store::find_job(&engine.db, &first.id).await else {
                    continue;
                };
                if j.version != version {
                    version = j.version;
                    if tx.send(Ok(send(&j))).await.is_err() || terminal(&j) {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
