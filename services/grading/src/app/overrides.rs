//! OverrideEvaluation and ListEvaluationOverrides: a manager's scores beside the grader's.
//!
//! The grader's numbers in an evaluation never change; an override adds `ScoreOverride`s and
//! the effective numbers that follow (`domain::overrides`), writes one audit row per changed
//! field and an EvaluationOverridden event for analytics, all in one transaction.

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

/// The overall score in force before this change.
fn effective_now(e: &evaluation::Model, body: &pb::Evaluation) -> f64 {
    if e.override_revision > 0 {
        body.effective_score
    } else {
        body.overall_score
    }
}

impl Grading {
    pub async fn override_evaluation(
        &self,
        p: &Principal,
        r: &pb::OverrideEvaluationRequest,
    ) -> ApiResult<evaluation::Model> {
        // Not found first (another organization, another trainee's), then the role.
        let e = self.get_evaluation(p, &r.name).await?;
        if !matches!(p.role, Role::Admin | Role::Manager) {
            return Err(ApiError::PermissionDenied(
                "only managers and admins override scores".into(),
            ));
        }
        let mut body = pb::Evaluation::decode(e.body.as_slice()).map_err(ApiError::internal)?;
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
        if !r.etag.is_empty() && r.etag != evaluation_etag(&e) {
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
        let passing = match body.passing_score {
            Some(s) => s,
            None => self.rubric_passing_score(&e, &body).await?,
        };
        let engine = self.engine.get()?;
        let org = names::organization_of(&e.organization).unwrap_or_default();
        let author = names::child_name(org, "members", &p.subject);
        let reason = req.reason.trim().to_owned();
        let now = now_us();
        let name = store::evaluation_name(&e.organization, &e.id);
        let revision = e.override_revision + 1;
        let before = effective_now(&e, &body);
        let made = |criterion_id: &str, score: f64, grader_score: f64| pb::ScoreOverride {
            criterion_id: criterion_id.to_owned(),
            score,
            grader_score,
            reason: reason.clone(),
            author: author.clone(),
            update_time: Some(timestamp(now)),
            on_earlier_grade: false,
            evaluation: name.clone(),
        };
        let mut changes: Vec<(String, f64, f64)> = Vec::new();
        for (id, score) in &req.criteria {
            if let Some(c) = body
                .criterion_scores
                .iter_mut()
                .find(|c| &c.criterion_id == id)
            {
                let previous = c.r#override.as_ref().map_or(c.score, |o| o.score);
                c.r#override = Some(made(id, *score, c.score));
                changes.push((id.clone(), previous, *score));
            }
        }
        if let Some(score) = req.overall {
            changes.push((String::new(), before, score));
            body.overall_override = Some(made("", score, body.overall_score));
        }
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
            .map(|(criterion_id, previous_score, score)| audit::Model {
                id: uuid::Uuid::now_v7().simple().to_string(),
                organization: e.organization.clone(),
                evaluation: e.id.clone(),
                criterion_id,
                previous_score,
                score,
                reason: reason.clone(),
                author: author.clone(),
                revision,
                previous_effective: before,
                effective: after,
                create_us: now,
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
                evaluation: name.clone(),
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
                author: author.clone(),
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
