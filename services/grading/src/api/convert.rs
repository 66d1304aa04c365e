//! Protobuf views of the grading service's stored jobs and evaluations.

use prost::Message;
use salestrainer_proto::grading as pb;
use salestrainer_runtime::time::timestamp;

use crate::app::jobs::job_etag;
use crate::app::overrides::{evaluation_etag, override_name};
use crate::store::{self, evaluation, job, overrides::audit};

pub fn job_pb(j: &job::Model) -> pb::GradingJob {
    let waiting =
        j.state == pb::JobState::Queued as i32 || j.state == pb::JobState::Retrying as i32;
    pb::GradingJob {
        name: store::job_name(&j.organization, &j.id),
        session: j.session.clone(),
        state: j.state,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        next_attempt_time: waiting.then(|| timestamp(j.next_attempt_at_us)),
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
            .map(|e| store::evaluation_name(&j.organization, e))
            .unwrap_or_default(),
        regrade: j.regrade,
        recent_attempts: store::attempt_log(&j.attempt_log)
            .into_iter()
            .map(|a| pb::GradingAttempt {
                attempt: a.attempt,
                start_time: Some(timestamp(a.start_us)),
                end_time: Some(timestamp(a.end_us)),
                step: a.step,
                error: a.error,
                retryable: a.retryable,
            })
            .collect(),
        create_time: Some(timestamp(j.create_us)),
        update_time: Some(timestamp(j.update_us)),
        etag: job_etag(j),
    }
}

pub fn evaluation_pb(e: &evaluation::Model) -> pb::Evaluation {
    let mut out = pb::Evaluation::decode(e.body.as_slice()).unwrap_or_default();
    out.name = store::evaluation_name(&e.organization, &e.id);
    out.supersedes = e
        .supersedes
        .as_ref()
        .map(|s| store::evaluation_name(&e.organization, s))
        .unwrap_or_default();
    out.superseded_by = e
        .superseded_by
        .as_ref()
        .map(|s| store::evaluation_name(&e.organization, s))
        .unwrap_or_default();
    out.create_time = Some(timestamp(e.create_us));
    out.etag = evaluation_etag(e);
    out.override_revision = e.override_revision;
    if e.override_revision == 0 {
        // No override: the grader's numbers are the effective ones.
        out.effective_score = out.overall_score;
        out.effective_passed = out.passed;
        out.effective_skill_scores = out.skill_scores.clone();
    }
    out
}

pub fn override_pb(a: &audit::Model) -> pb::EvaluationOverride {
    pb::EvaluationOverride {
        name: override_name(a),
        criterion_id: a.criterion_id.clone(),
        previous_score: a.previous_score,
        score: a.score,
        reason: a.reason.clone(),
        author: a.author.clone(),
        create_time: Some(timestamp(a.create_us)),
        revision: a.revision,
        previous_effective_score: a.previous_effective,
        effective_score: a.effective,
        cleared: a.cleared,
    }
}

pub fn watch_pb(j: &job::Model) -> pb::WatchGradingJobResponse {
    pb::WatchGradingJobResponse {
        grading_job: Some(job_pb(j)),
        change_time: Some(timestamp(j.update_us)),
    }
}
