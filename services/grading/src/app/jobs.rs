//! The grading service's use cases behind its API: submitting a session, reading and retrying
//! jobs, reading evaluations, regrading, watching a job. Another organization's resources answer
//! NOT_FOUND, never PERMISSION_DENIED, so names do not leak.

use std::sync::Arc;

use salestrainer_proto::grading as pb;
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Ready, Role, Violations,
    backoff::Backoff,
    db::begin_write,
    names, paging, redact,
    time::{duration_ms, parse_timestamp_opt},
};
use sea_orm::DatabaseConnection;
use tokio_stream::wrappers::ReceiverStream;

use super::Engine;
use crate::store::{self, EvaluationQuery, JobQuery, NewJob, evaluation, job};

/// The service object: the database and the engine, both ready once started.
pub struct Grading {
    pub(super) db: Ready<DatabaseConnection>,
    pub(super) engine: Ready<Arc<Engine>>,
}

/// One page of a list.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
    pub total_size: u64,
}

/// A job's etag: its version, weak (the body is not compared).
pub fn job_etag(j: &job::Model) -> String {
    format!("W/\"{}\"", j.version)
}

pub(super) fn is_staff(p: &Principal) -> bool {
    matches!(p.role, Role::Admin | Role::Manager | Role::Service)
}

/// A trainee's member name ends with their subject.
pub(super) fn owns(p: &Principal, trainee: &str) -> bool {
    trainee == p.subject || trainee.rsplit('/').next() == Some(p.subject.as_str())
}

/// The caller may see resources of organization `org` (an id).
pub(super) fn check_org(p: &Principal, org: &str, what: &str) -> ApiResult<()> {
    if p.can_access_organization(org) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("{what} not found")))
    }
}

/// The organization id of a List request's `parent`.
fn check_parent(parent: &str) -> ApiResult<&str> {
    names::parse_organization(parent)
        .ok_or_else(|| ApiError::invalid("parent", "must be organizations/{org}"))
}

/// Part of every page token's fingerprint: the unit of its key. Tokens made while the store
/// kept milliseconds fingerprint without it and are refused (INVALID_ARGUMENT), not misread.
pub(super) const KEY_UNIT: &str = "create_us";

/// A page's position: the (create_us, id) of the last row of the previous page.
pub(super) fn page_after(token: &str, query: u64) -> ApiResult<Option<(i64, String)>> {
    paging::decode(token, query)?
        .map(|k| {
            k.split_once('.')
                .and_then(|(c, id)| Some((c.parse().ok()?, id.to_owned())))
                .ok_or_else(|| ApiError::invalid("page_token", "malformed page token"))
        })
        .transpose()
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

/// Up to `size` of `rows` (fetched with one more) and the token of the next page.
pub(super) fn page<T>(
    rows: store::Rows<T>,
    size: u64,
    query: u64,
    key: impl Fn(&T) -> (i64, &str),
) -> Page<T> {
    let (items, next_page_token) = paging::split_page(rows.rows, size, query, |r| {
        let (at, id) = key(r);
        format!("{at}.{id}")
    });
    Page {
        items,
        next_page_token,
        total_size: rows.total,
    }
}

/// A job as `p` may see it. Error text is provider text: managers and admins (and services)
/// see it scrubbed of anything key-like (rows written before scrubbing existed included); a
/// trainee sees the category only (state, dead reason, step, retryable), no detail.
pub fn shown_to(p: &Principal, mut j: job::Model) -> job::Model {
    let staff = is_staff(p);
    j.last_error = j
        .last_error
        .filter(|_| staff)
        .map(|e| redact::scrub_patterns(&e));
    let mut log = store::attempt_log(&j.attempt_log);
    for a in &mut log {
        a.error = if staff {
            redact::scrub_patterns(&a.error)
        } else {
            String::new()
        };
    }
    j.attempt_log = serde_json::to_string(&log).unwrap_or_else(|_| "[]".into());
    j
}

/// The member name of a non-staff caller in `parent`, and their bare subject.
fn own_trainee(p: &Principal, org: &str) -> (String, String) {
    (
        names::child_name(org, "members", &p.subject),
        p.subject.clone(),
    )
}

impl Grading {
    pub fn new(db: Ready<DatabaseConnection>, engine: Ready<Arc<Engine>>) -> Self {
        Self { db, engine }
    }

    async fn load_job(&self, p: &Principal, name: &str) -> ApiResult<job::Model> {
        let (org, id) = names::parse_child(name, "gradingJobs").ok_or_else(|| {
            ApiError::invalid("name", "must be organizations/{org}/gradingJobs/{job}")
        })?;
        check_org(p, org, "grading job")?;
        let db = self.db.get()?;
        let j = store::find_job(db, id)
            .await?
            .filter(|j| j.organization == names::organization_name(org))
            .ok_or_else(|| ApiError::NotFound("grading job not found".into()))?;
        if !is_staff(p) && !owns(p, &j.trainee) {
            return Err(ApiError::NotFound("grading job not found".into()));
        }
        Ok(j)
    }

    /// SubmitSession (internal): the session's first job, once. Returns the job and whether it
    /// was created now.
    pub async fn submit(
        &self,
        p: &Principal,
        req: &pb::SubmitSessionRequest,
    ) -> ApiResult<(job::Model, bool)> {
        if !p.is_service() {
            return Err(ApiError::PermissionDenied("internal method".into()));
        }
        let mut v = Violations::new();
        let session_org = names::parse_child(&req.session, "sessions").map(|(o, _)| o);
        v.check(
            session_org.is_none(),
            "session",
            "must be organizations/{org}/sessions/{session}",
        );
        v.check(
            session_org.map(names::organization_name).as_deref() != Some(req.organization.as_str()),
            "organization",
            "must be the session's organization",
        );
        // Grading needs a rubric: the one given, else the scenario's.
        v.check(
            req.scenario.is_empty() && req.rubric.is_empty(),
            "rubric",
            "required when scenario is empty",
        );
        v.check(req.trainee.is_empty(), "trainee", "required");
        v.check(req.request_id.trim().is_empty(), "request_id", "required");
        v.check(
            pb::SessionSource::try_from(req.source).is_err(),
            "source",
            "unknown session source",
        );
        v.check(
            req.session_duration
                .as_ref()
                .is_some_and(|d| duration_ms(d).is_none_or(|ms| ms < 0)),
            "session_duration",
            "must be a valid, non-negative duration",
        );
        v.into_result()?;
        let session_start_us =
            parse_timestamp_opt("session_start_time", req.session_start_time.as_ref())?;
        let engine = self.engine.get()?;
        let n = NewJob {
            organization: req.organization.clone(),
            session: req.session.clone(),
            request_id: req.request_id.clone(),
            trainee: req.trainee.clone(),
            scenario: req.scenario.clone(),
            assignment: req.assignment.clone(),
            rubric: req.rubric.clone(),
            // As SessionEnded would have brought them (see `session_events::new_job`).
            session_start_us,
            session_duration_ms: req.session_duration.as_ref().and_then(duration_ms),
            session_source: req.source,
            max_attempts: engine.cfg.max_attempts,
            trace_context: Default::default(),
        };
        let txn = begin_write(&engine.db).await?;
        let (j, created) = store::create_first_job(&txn, &n).await?;
        txn.commit().await?;
        if created {
            engine.job_ready(&j.id).await;
        }
        Ok((shown_to(p, j), created))
    }

    pub async fn get_job(&self, p: &Principal, name: &str) -> ApiResult<job::Model> {
        Ok(shown_to(p, self.load_job(p, name).await?))
    }

    pub async fn list_jobs(
        &self,
        p: &Principal,
        r: &pb::ListGradingJobsRequest,
    ) -> ApiResult<Page<job::Model>> {
        let org = check_parent(&r.parent)?;
        check_org(p, org, "organization")?;
        no_filter(&r.filter)?;
        let size = paging::page_size(r.page_size)?;
        let state = r.state.to_string();
        let query = paging::fingerprint(&[KEY_UNIT, &r.parent, &state, &r.session]);
        let after = page_after(&r.page_token, query)?;
        let db = self.db.get()?;
        let q = JobQuery {
            organization: r.parent.clone(),
            state: (r.state != pb::JobState::Unspecified as i32).then_some(r.state),
            session: (!r.session.is_empty()).then(|| r.session.clone()),
            trainee: (!is_staff(p)).then(|| own_trainee(p, org)),
        };
        let rows = store::list_jobs(db, &q, after, size).await?;
        let mut found = page(rows, size, query, |j| (j.create_us, &j.id));
        found.items = found.items.into_iter().map(|j| shown_to(p, j)).collect();
        Ok(found)
    }

    pub async fn retry_job(
        &self,
        p: &Principal,
        r: &pb::RetryGradingJobRequest,
    ) -> ApiResult<job::Model> {
        let j = self.load_job(p, &r.name).await?;
        if !is_staff(p) {
            return Err(ApiError::PermissionDenied(
                "only managers and admins retry jobs".into(),
            ));
        }
        if !r.etag.is_empty() && r.etag != job_etag(&j) {
            return Err(ApiError::Aborted("the job changed; reload it".into()));
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
        Ok(shown_to(p, updated))
    }

    pub async fn get_evaluation(&self, p: &Principal, name: &str) -> ApiResult<evaluation::Model> {
        let (org, id) = names::parse_child(name, "evaluations").ok_or_else(|| {
            ApiError::invalid(
                "name",
                "must be organizations/{org}/evaluations/{evaluation}",
            )
        })?;
        check_org(p, org, "evaluation")?;
        let db = self.db.get()?;
        store::find_evaluation(db, id)
            .await
            .map_err(ApiError::from)?
            .filter(|e| {
                e.organization == names::organization_name(org)
                    && (is_staff(p) || owns(p, &e.trainee))
            })
            .ok_or_else(|| ApiError::NotFound("evaluation not found".into()))
    }

    pub async fn list_evaluations(
        &self,
        p: &Principal,
        r: &pb::ListEvaluationsRequest,
    ) -> ApiResult<Page<evaluation::Model>> {
        let org = check_parent(&r.parent)?;
        check_org(p, org, "organization")?;
        no_filter(&r.filter)?;
        let size = paging::page_size(r.page_size)?;
        let from_us = parse_timestamp_opt("start_time", r.start_time.as_ref())?;
        let before_us = parse_timestamp_opt("end_time", r.end_time.as_ref())?;
        let bounds = format!("{from_us:?}/{before_us:?}/{}", r.show_superseded);
        let query = paging::fingerprint(&[
            KEY_UNIT,
            &r.parent,
            &r.session,
            &r.trainee,
            &r.scenario,
            &r.assignment,
            &bounds,
        ]);
        let after = page_after(&r.page_token, query)?;
        let db = self.db.get()?;
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let q = EvaluationQuery {
            organization: r.parent.clone(),
            session: nonempty(&r.session),
            // Trainees see only their own, whatever they asked for.
            own: (!is_staff(p)).then(|| own_trainee(p, org)),
            trainee: nonempty(&r.trainee),
            scenario: nonempty(&r.scenario),
            assignment: nonempty(&r.assignment),
            created_from_us: from_us,
            created_before_us: before_us,
            show_superseded: r.show_superseded,
        };
        let rows = store::list_evaluations(db, &q, after, size).await?;
        Ok(page(rows, size, query, |e| (e.create_us, &e.id)))
    }

    pub async fn regrade(
        &self,
        p: &Principal,
        r: &pb::RegradeSessionRequest,
    ) -> ApiResult<job::Model> {
        let (org, _) = names::parse_child(&r.session, "sessions").ok_or_else(|| {
            ApiError::invalid("session", "must be organizations/{org}/sessions/{session}")
        })?;
        check_org(p, org, "session")?;
        if !is_staff(p) {
            return Err(ApiError::PermissionDenied(
                "only managers and admins regrade".into(),
            ));
        }
        if !r.rubric.is_empty()
            && names::parse_child(&r.rubric, "rubrics").map(|(o, _)| o) != Some(org)
        {
            return Err(ApiError::invalid(
                "rubric",
                "must be a rubric of the session's organization",
            ));
        }
        let engine = self.engine.get()?;
        let last = store::latest_job_of_session(&engine.db, &r.session)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("the session was never graded".into()))?;
        let request_id = if r.request_id.trim().is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            format!("regrade:{}:{}", r.session, r.request_id)
        };
        // A retried request returns its job, whatever state that job is in.
        if let Some(existing) = store::find_job_by_request_id(&engine.db, &request_id)
            .await
            .map_err(ApiError::from)?
        {
            return Ok(shown_to(p, existing));
        }
        if !store::job_is_final(&last) {
            return Err(ApiError::FailedPrecondition {
                reason: "GRADING_IN_PROGRESS",
                message: "the session is being graded; regrade once that finishes".into(),
            });
        }
        let n = NewJob {
            organization: last.organization.clone(),
            session: last.session.clone(),
            request_id,
            trainee: last.trainee.clone(),
            scenario: last.scenario.clone(),
            assignment: last.assignment.clone(),
            // A real call without a scenario has only the rubric it was submitted with.
            rubric: if r.rubric.is_empty() {
                last.rubric.clone()
            } else {
                r.rubric.clone()
            },
            session_start_us: last.session_start_us,
            session_duration_ms: last.session_duration_ms,
            session_source: last.session_source,
            max_attempts: engine.cfg.max_attempts,
            trace_context: Default::default(),
        };
        let (j, created) = store::create_regrade_job(&engine.db, &n)
            .await
            .map_err(ApiError::from)?;
        if created {
            engine.job_ready(&j.id).await;
        }
        Ok(shown_to(p, j))
    }

    /// The job as it is now, then each new version of it, until it is SUCCEEDED or DEAD.
    /// Woken by the engine's change notifier (this replica's workers at once, other replicas'
    /// through Redis pub/sub); the row is read only when woken, never on a timer.
    pub async fn watch_job(
        &self,
        p: &Principal,
        name: &str,
    ) -> ApiResult<ReceiverStream<job::Model>> {
        let engine = self.engine.get()?.clone();
        // Watch before reading so a change committed between the read and the watch is kept.
        let id = names::parse_child(name, "gradingJobs").map_or("", |(_, id)| id);
        let mut woken = engine.changes.watch(id);
        let first = self.load_job(p, name).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let viewer = p.clone();
        tokio::spawn(async move {
            let mut version = first.version;
            let id = first.id.clone();
            let done = store::job_is_final(&first);
            if tx.send(shown_to(&viewer, first)).await.is_err() || done {
                return;
            }
            let mut backoff = Backoff::reconnect();
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    () = woken.changed() => {}
                }
                // A failed read is retried: the wake that brought us here will not come again.
                let j = loop {
                    match store::find_job(&engine.db, &id).await {
                        Ok(Some(j)) => break j,
                        Ok(None) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, job = %id, "watch: reading the job failed");
                            tokio::select! {
                                () = tx.closed() => return,
                                () = tokio::time::sleep(backoff.next_delay()) => {}
                            }
                        }
                    }
                };
                backoff.reset();
                if j.version != version {
                    version = j.version;
                    let done = store::job_is_final(&j);
                    if tx.send(shown_to(&viewer, j)).await.is_err() || done {
                        return;
                    }
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}
