//! BatchGetSessionOutcomes (internal): what grading has for a set of sessions — each one's
//! latest job and current evaluation, shaped as the events that announced them — so a
//! consumer that lost one of those events repairs its copy (analytics' reconciler).

use std::collections::{BTreeSet, HashMap};

use prost::Message;
use salestrainer_proto::{events as ev, grading as pb};
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Violations, names, redact,
    time::{duration, timestamp},
};

use super::{jobs::Grading, overrides::event_criteria};
use crate::store::{self, JobBrief, evaluation};

/// Most sessions one request may name.
pub const MAX_SESSIONS: usize = 100;

impl Grading {
    pub async fn session_outcomes(
        &self,
        p: &Principal,
        req: &pb::BatchGetSessionOutcomesRequest,
    ) -> ApiResult<Vec<pb::SessionOutcome>> {
        if !p.is_service() {
            return Err(ApiError::PermissionDenied("internal method".into()));
        }
        let mut v = Violations::new();
        v.check(
            req.sessions.is_empty(),
            "sessions",
            "at least one session is required",
        );
        v.check(
            req.sessions.len() > MAX_SESSIONS,
            "sessions",
            "at most 100 sessions per request",
        );
        for (i, s) in req.sessions.iter().enumerate() {
            v.check(
                names::parse_child(s, "sessions").is_none(),
                &format!("sessions[{i}]"),
                "must be organizations/{org}/sessions/{session}",
            );
        }
        v.into_result()?;
        let mut seen = BTreeSet::new();
        let sessions: Vec<String> = req
            .sessions
            .iter()
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect();
        let db = self.db.get()?;
        let jobs = store::jobs_of_sessions(db, &sessions).await?;
        let evaluations = store::current_evaluations_of_sessions(db, &sessions).await?;
        let by_id: HashMap<&str, &JobBrief> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
        let mut latest: HashMap<&str, &JobBrief> = HashMap::new();
        for j in &jobs {
            let slot = latest.entry(j.session.as_str()).or_insert(j);
            if j.generation > slot.generation {
                *slot = j;
            }
        }
        // Ordered by creation: the newest current one wins (there is one but for a race).
        let current: HashMap<&str, &evaluation::Model> = evaluations
            .iter()
            .map(|e| (e.session.as_str(), e))
            .collect();
        Ok(sessions
            .iter()
            .map(|s| {
                let job = latest.get(s.as_str()).copied();
                let eval = current.get(s.as_str()).copied();
                outcome(
                    s,
                    job,
                    eval,
                    eval.and_then(|e| by_id.get(e.job_id.as_str())),
                )
            })
            .collect())
    }
}

/// One session's outcome: its latest job `job`, its current evaluation `e` and the job that
/// produced it (`e_job`, for the session's start, duration and source).
fn outcome(
    session: &str,
    job: Option<&JobBrief>,
    e: Option<&evaluation::Model>,
    e_job: Option<&&JobBrief>,
) -> pb::SessionOutcome {
    let mut out = pb::SessionOutcome {
        session: session.to_owned(),
        job_state: job.map_or(pb::JobState::Unspecified as i32, |j| j.state),
        grading_job: job
            .map(|j| store::job_name(&j.organization, &j.id))
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(j) = job
        && j.state == pb::JobState::Dead as i32
    {
        out.failed = Some(ev::GradingFailed {
            session: session.to_owned(),
            grading_job: out.grading_job.clone(),
            reason: j.dead_reason,
            last_error: j
                .last_error
                .as_deref()
                .map(redact::scrub_patterns)
                .unwrap_or_default(),
            attempts: j.attempts,
            trainee: j.trainee.clone(),
            scenario: j.scenario.clone(),
        });
    }
    let Some(e) = e else {
        return out;
    };
    let body = pb::Evaluation::decode(e.body.as_slice()).unwrap_or_default();
    let name = store::evaluation_name(&e.organization, &e.id);
    let start = e_job.and_then(|j| j.session_start_us).map(timestamp);
    let length = e_job
        .and_then(|j| j.session_duration_ms)
        .filter(|d| *d >= 0)
        .map(duration);
    let skills = |scores: &[pb::SkillScore]| {
        scores
            .iter()
            .map(|s| ev::SkillScore {
                skill: s.skill.clone(),
                score: s.score,
            })
            .collect::<Vec<_>>()
    };
    out.graded = Some(ev::SessionGraded {
        session: e.session.clone(),
        evaluation: name.clone(),
        trainee: e.trainee.clone(),
        scenario: e.scenario.clone(),
        assignment: e.assignment.clone(),
        session_start_time: start,
        session_duration: length,
        overall_score: e.overall_score,
        passed: e.passed,
        closed: e.closed,
        skill_scores: skills(&body.skill_scores),
        metrics: None,
        // As the SessionGraded reported it (analytics counts an evaluation's usage once,
        // whichever copy comes first).
        usage: body.usage.as_ref().map(|u| ev::LlmUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cost_micros: u.cost_micros,
            provider: u.provider.clone(),
            model: u.model.clone(),
            requests: u.requests,
        }),
        regrade: e.supersedes.is_some(),
        supersedes: e
            .supersedes
            .as_ref()
            .map(|s| store::evaluation_name(&e.organization, s))
            .unwrap_or_default(),
        source: e_job.map_or(0, |j| j.session_source),
        criterion_scores: event_criteria(&body),
    });
    out.graded_time = Some(timestamp(e.create_us));
    if e.override_revision > 0 {
        out.overridden = Some(ev::EvaluationOverridden {
            session: e.session.clone(),
            evaluation: name,
            trainee: e.trainee.clone(),
            scenario: e.scenario.clone(),
            assignment: e.assignment.clone(),
            session_start_time: start,
            session_duration: length,
            overall_score: body.effective_score,
            passed: body.effective_passed,
            closed: body.closed,
            skill_scores: skills(&body.effective_skill_scores),
            revision: e.override_revision,
            grader_score: body.overall_score,
            author: String::new(),
            criterion_scores: event_criteria(&body),
        });
    }
    out
}
