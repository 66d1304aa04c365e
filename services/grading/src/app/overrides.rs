//! OverrideEvaluation, ClearEvaluationOverride and ListEvaluationOverrides: a manager's
//! scores beside the grader's.
//!
//! The grader's numbers in an evaluation never change; an override adds (or a clear removes)
//! `ScoreOverride`s and the effective numbers follow (`domain::overrides`); either writes one
//! audit row per changed field and an EvaluationOverridden event for analytics, all in one
//! transaction.

use prost::Message;
use salestrainer_proto::{events as ev, grading as pb};
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Role, Violations, names, paging,
    time::{duration, now_us, timestamp},
};

use super::jobs::{Grading, KEY_UNIT, Page, check_org, page, page_after};
use crate::domain::overrides::{self as rules, Criterion};
use crate::store::{
    self, evaluation,
    overrides::{self as stored, NewOverride, Refused, audit},
};

/// An evaluation's etag: its id, and the override revision once it has one.
pub fn evaluation_etag(e: &evaluation::Model) -> String {
    if e.override_revision == 0 {
        format!("W/\"{}\"", e.id)
    } else {
        format!("W/\"{}.{}\"", e.id, e.override_revision)
    }
}

/// The audit entry's resource name.
pub fn override_name(a: &audit::Model) -> String {
    format!(
        "{}/overrides/{}",
        store::evaluation_name(&a.organization, &a.evaluation),
        a.id
    )
}

fn criteria_of(body: &pb::Evaluation) -> Vec<Criterion> {
    body.criterion_scores
        .iter()
        .map(|c| Criterion {
            id: c.criterion_id.clone(),
            skill: c.skill.clone(),
            score: c.score,
            scale_min: c.scale_min,
            scale_max: c.scale_max,
            weight: c.weight,
            override_score: c.r#override.as_ref().map(|o| o.score),
        })
        .collect()
}

/// Refuses a stale etag and a superseded evaluation.
fn check_current(e: &evaluation::Model, etag: &str) -> ApiResult<()> {
    if !etag.is_empty() && etag != evaluation_etag(e) {
        return Err(ApiError::Aborted(
            "the evaluation changed; reload it".into(),
        ));
    }
    if e.superseded_by.is_some() {
        return Err(ApiError::FailedPrecondition {
            reason: "EVALUATION_SUPERSEDED",
            message: "a regrade replaced this evaluation; override the current one".into(),
        });
    }
    Ok(())
}

/// The overall score in force before this change.
fn effective_now(e: &evaluation::Model, body: &pb::Evaluation) -> f64 {
    if e.override_revision > 0 {
        body.effective_score
    } else {
        body.overall_score
    }
}

/// The effective criterion scores an event carries: each criterion's override (if any) or
/// the grader's score, normalized onto 0–100.
pub fn event_criteria(body: &pb::Evaluation) -> Vec<ev::CriterionScore> {
    body.criterion_scores
        .iter()
        .map(|c| ev::CriterionScore {
            criterion: c.criterion_id.clone(),
            score: match &c.r#override {
                Some(o) => rules::normalized(o.score, c.scale_min, c.scale_max),
                None => c.normalized_score,
            },
        })
        .collect()
}

/// One audited field change.
struct Change {
    /// Empty for the overall score.
    criterion_id: String,
    previous: f64,
    /// None: the effective overall score that follows (a cleared overall override).
    score: Option<f64>,
    cleared: bool,
}

/// Who changes an evaluation, when and why.
struct Edit {
    author: String,
    reason: String,
    now: i64,
    name: String,
}

impl Edit {
    fn new(p: &Principal, e: &evaluation::Model, reason: &str) -> Self {
        let org = names::organization_of(&e.organization).unwrap_or_default();
        Self {
            author: names::child_name(org, "members", &p.subject),
            reason: reason.trim().to_owned(),
            now: now_us(),
            name: store::evaluation_name(&e.organization, &e.id),
        }
    }

    fn made(&self, criterion_id: &str, score: f64, grader_score: f64) -> pb::ScoreOverride {
        pb::ScoreOverride {
            criterion_id: criterion_id.to_owned(),
            score,
            grader_score,
            reason: self.reason.clone(),
            author: self.author.clone(),
            update_time: Some(timestamp(self.now)),
            on_earlier_grade: false,
            evaluation: self.name.clone(),
        }
    }
}

impl Grading {
    /// The evaluation a manager or admin may change, and its body.
    async fn editable(
        &self,
        p: &Principal,
        name: &str,
    ) -> ApiResult<(evaluation::Model, pb::Evaluation)> {
        // Not found first (another organization, another trainee's), then the role.
        let e = self.get_evaluation(p, name).await?;
        if !matches!(p.role, Role::Admin | Role::Manager) {
            return Err(ApiError::PermissionDenied(
                "only managers and admins override scores".into(),
            ));
        }
        let body = pb::Evaluation::decode(e.body.as_slice()).map_err(ApiError::internal)?;
        Ok((e, body))
    }

    pub async fn override_evaluation(
        &self,
        p: &Principal,
        r: &pb::OverrideEvaluationRequest,
    ) -> ApiResult<evaluation::Model> {
        let (e, mut body) = self.editable(p, &r.name).await?;
        let req = rules::Request {
            overall: r.overall_score,
            criteria: r
                .criterion_overrides
                .iter()
                .map(|c| (c.criterion_id.clone(), c.score))
                .collect(),
            reason: r.reason.clone(),
        };
        let mut v = Violations::new();
        for (field, description) in rules::check(&req, &criteria_of(&body)) {
            v.add(field, description);
        }
        v.into_result()?;
        check_current(&e, &r.etag)?;
        let edit = Edit::new(p, &e, &req.reason);
        let before = effective_now(&e, &body);
        let mut changes: Vec<Change> = Vec::new();
        for (id, score) in &req.criteria {
            if let Some(c) = body
                .criterion_scores
                .iter_mut()
                .find(|c| &c.criterion_id == id)
            {
                let previous = c.r#override.as_ref().map_or(c.score, |o| o.score);
                c.r#override = Some(edit.made(id, *score, c.score));
                changes.push(Change {
                    criterion_id: id.clone(),
                    previous,
                    score: Some(*score),
                    cleared: false,
                });
            }
        }
        if let Some(score) = req.overall {
            changes.push(Change {
                criterion_id: String::new(),
                previous: before,
                score: Some(score),
                cleared: false,
            });
            body.overall_override = Some(edit.made("", score, body.overall_score));
        }
        self.write_change(e, body, before, changes, &edit).await
    }

    /// Removes overrides: the grader's scores count again for the fields named.
    pub async fn clear_override(
        &self,
        p: &Principal,
        r: &pb::ClearEvaluationOverrideRequest,
    ) -> ApiResult<evaluation::Model> {
        let (e, mut body) = self.editable(p, &r.name).await?;
        let req = rules::Clear {
            criteria: r.criterion_ids.clone(),
            overall: r.overall,
            reason: r.reason.clone(),
        };
        let (bad, bare) =
            rules::check_clear(&req, &criteria_of(&body), body.overall_override.is_some());
        let mut v = Violations::new();
        for (field, description) in bad {
            v.add(field, description);
        }
        v.into_result()?;
        check_current(&e, &r.etag)?;
        if !bare.is_empty() {
            return Err(ApiError::FailedPrecondition {
                reason: "NO_OVERRIDE",
                message: format!("no override to clear: {}", bare.join(", ")),
            });
        }
        let edit = Edit::new(p, &e, &req.reason);
        let before = effective_now(&e, &body);
        let mut changes: Vec<Change> = Vec::new();
        for id in &req.criteria {
            if let Some(c) = body
                .criterion_scores
                .iter_mut()
                .find(|c| &c.criterion_id == id)
                && let Some(o) = c.r#override.take()
            {
                changes.push(Change {
                    criterion_id: id.clone(),
                    previous: o.score,
                    score: Some(c.score),
                    cleared: true,
                });
            }
        }
        if req.overall && body.overall_override.take().is_some() {
            changes.push(Change {
                criterion_id: String::new(),
                previous: before,
                score: None,
                cleared: true,
            });
        }
        self.write_change(e, body, before, changes, &edit).await
    }

    /// Recomputes the effective numbers of `body` (its overrides already changed), then
    /// writes it with one audit row per change and EvaluationOverridden, in one transaction.
    async fn write_change(
        &self,
        e: evaluation::Model,
        mut body: pb::Evaluation,
        before: f64,
        changes: Vec<Change>,
        edit: &Edit,
    ) -> ApiResult<evaluation::Model> {
        let passing = match body.passing_score {
            Some(s) => s,
            None => self.rubric_passing_score(&e, &body).await?,
        };
        let engine = self.engine.get()?;
        let revision = e.override_revision + 1;
        let criteria = criteria_of(&body);
        body.effective_score = rules::effective_overall(
            body.overall_score,
            &criteria,
            body.overall_override.as_ref().map(|o| o.score),
        );
        body.effective_passed = body.effective_score >= passing;
        body.effective_skill_scores = rules::effective_skills(
            &body
                .skill_scores
                .iter()
                .map(|s| (s.skill.clone(), s.score))
                .collect::<Vec<_>>(),
            &criteria,
        )
        .into_iter()
        .map(|(skill, score)| pb::SkillScore { skill, score })
        .collect();
        body.override_revision = revision;
        let after = body.effective_score;
        let audit_rows = changes
            .into_iter()
            .map(|c| audit::Model {
                id: uuid::Uuid::now_v7().simple().to_string(),
                organization: e.organization.clone(),
                evaluation: e.id.clone(),
                criterion_id: c.criterion_id,
                previous_score: c.previous,
                score: c.score.unwrap_or(after),
                reason: edit.reason.clone(),
                author: edit.author.clone(),
                revision,
                previous_effective: before,
                effective: after,
                create_us: edit.now,
                cleared: c.cleared,
            })
            .collect();
        let job = store::find_job(&engine.db, &e.job_id)
            .await
            .map_err(ApiError::from)?;
        let event = salestrainer_runtime::events::new_event(
            &e.organization,
            crate::SERVICE,
            ev::event::Payload::EvaluationOverridden(ev::EvaluationOverridden {
                session: e.session.clone(),
                evaluation: edit.name.clone(),
                trainee: e.trainee.clone(),
                scenario: e.scenario.clone(),
                assignment: e.assignment.clone(),
                session_start_time: job.as_ref().and_then(|j| j.session_start_us).map(timestamp),
                session_duration: job
                    .as_ref()
                    .and_then(|j| j.session_duration_ms)
                    .filter(|d| *d >= 0)
                    .map(duration),
                overall_score: after,
                passed: body.effective_passed,
                closed: body.closed,
                skill_scores: body
                    .effective_skill_scores
                    .iter()
                    .map(|s| ev::SkillScore {
                        skill: s.skill.clone(),
                        score: s.score,
                    })
                    .collect(),
                revision,
                grader_score: body.overall_score,
                author: edit.author.clone(),
                criterion_scores: event_criteria(&body),
            }),
        );
        let mut updated = e.clone();
        updated.body = body.encode_to_vec();
        updated.override_revision = revision;
        let written = stored::apply(
            &engine.db,
            NewOverride {
                evaluation: e.id.clone(),
                from_revision: e.override_revision,
                body,
                audit: audit_rows,
                event,
            },
        )
        .await
        .map_err(ApiError::from)?;
        match written {
            Ok(()) => {
                // Publish the event now rather than at the relay's next tick.
                if let Some(n) = &engine.notifier {
                    n.notify();
                }
                Ok(updated)
            }
            Err(Refused::Changed) => Err(ApiError::Aborted(
                "the evaluation changed meanwhile (another override or a regrade); reload it"
                    .into(),
            )),
        }
    }

    /// The rubric's passing score, for evaluations graded before it was recorded in them.
    async fn rubric_passing_score(
        &self,
        e: &evaluation::Model,
        body: &pb::Evaluation,
    ) -> ApiResult<f64> {
        let engine = self.engine.get()?;
        let inputs = engine
            .inputs
            .scenario(&e.organization, &e.scenario, &body.rubric)
            .await
            .map_err(|err| {
                ApiError::Unavailable(format!("the rubric's passing score is unknown: {err}"))
            })?;
        Ok(inputs.rubric.passing_score)
    }

    pub async fn list_overrides(
        &self,
        p: &Principal,
        r: &pb::ListEvaluationOverridesRequest,
    ) -> ApiResult<Page<audit::Model>> {
        let (org, _) = names::parse_child(&r.parent, "evaluations").ok_or_else(|| {
            ApiError::invalid(
                "parent",
                "must be organizations/{org}/evaluations/{evaluation}",
            )
        })?;
        check_org(p, org, "evaluation")?;
        let size = paging::page_size(r.page_size)?;
        let query = paging::fingerprint(&[KEY_UNIT, &r.parent]);
        let after = page_after(&r.page_token, query)?;
        // Visible to staff and to the evaluation's trainee (NOT_FOUND for anyone else).
        let e = self.get_evaluation(p, &r.parent).await?;
        let db = self.db.get()?;
        let rows = stored::list(db, &e.id, after, size).await?;
        Ok(page(rows, size, query, |a| (a.create_us, &a.id)))
    }
}
