//! Turning an attempt's outcome into writes: the evaluation and its SessionGraded event, the
//! job's next state, checkpoints and LLM usage rows, all lease-fenced.

use std::time::Instant;

use salestrainer_proto::events as ev;
use salestrainer_proto::grading::{DeadReason, PipelineStep};
use sea_orm::ActiveValue::Set;
use tokio_util::sync::CancellationToken;

use super::attempt::Failure;
use super::dispatch::Engine;
use super::pipeline::{self, Checkpoint, ms_i64};
use crate::store::{self, Outcome, evaluation, job, usage};
use salestrainer_runtime::{
    redact,
    time::{duration, now_us, timestamp},
};

impl Engine {
    /// Records how an attempt ended (unless shutdown cut it short or the lease was lost).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish(
        &self,
        j: job::Model,
        token: String,
        started: i64,
        clock: Instant,
        step: PipelineStep,
        result: Result<(evaluation::Model, ev::Event), Failure>,
        stop: &CancellationToken,
    ) {
        let outcome = match result {
            Ok((evaluation, event)) => Outcome::Succeeded {
                evaluation: Box::new(evaluation),
                event: Box::new(event),
            },
            Err(Failure::LeaseLost) => return,
            // Errors are stored on the job, in its attempt log and in GradingFailed: scrubbed
            // of anything key-like first (provider text quotes keys).
            Err(Failure::Retry { after, error }) => Outcome::Retry {
                at_us: now_us()
                    .saturating_add(i64::try_from(after.as_micros()).unwrap_or(i64::MAX / 2)),
                error: redact::scrub_patterns(&error),
            },
            Err(Failure::Dead { reason, error }) => Outcome::Dead {
                reason,
                error: redact::scrub_patterns(&error),
            },
        };
        let label = match &outcome {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Retry { .. } => "retrying",
            Outcome::Dead { .. } => "dead",
        };
        if stop.is_cancelled() && !matches!(outcome, Outcome::Succeeded { .. }) {
            // Cut short by shutdown: leave the lease to expire so the job is taken up again
            // without counting a failure.
            return;
        }
        let id = j.id.clone();
        // The job row moves into the op: it carries the checkpoint, transcript and all.
        let op = store::WriteOp::Finish {
            job: Box::new(j),
            token,
            attempt_start_us: started,
            step,
            outcome,
        };
        match self.commits.write(&self.db, op).await {
            Ok(true) => {
                metrics::counter!("grading_attempt_outcomes_total", "outcome" => label)
                    .increment(1);
                metrics::histogram!("grading_attempt_seconds")
                    .record(clock.elapsed().as_secs_f64());
            }
            Ok(false) => tracing::info!(job = %id, "lease lost before the attempt was recorded"),
            Err(e) => tracing::warn!(job = %id, error = %e, "recording a grading attempt failed"),
        }
        self.changed(&id);
    }

    pub(super) async fn save(
        &self,
        j: &job::Model,
        token: &str,
        step: PipelineStep,
        cp: &Checkpoint,
        usage_rows: Vec<usage::ActiveModel>,
    ) -> Result<(), Failure> {
        let json = serde_json::to_string(cp).map_err(|e| Failure::Dead {
            reason: DeadReason::Internal,
            error: format!("checkpoint: {e}"),
        })?;
        let op = store::WriteOp::Checkpoint {
            id: j.id.clone(),
            token: token.to_owned(),
            step,
            checkpoint: json,
            usage_rows,
        };
        match self.commits.write(&self.db, op).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Failure::LeaseLost),
            Err(e) => Err(self.transient(j, &format!("database: {e}"))),
        }
    }

    pub(super) fn build_result(
        &self,
        j: &job::Model,
        cp: &Checkpoint,
        g: &pipeline::GradeDto,
        close: &pipeline::CloseDto,
        m: &pipeline::MetricsDto,
    ) -> (evaluation::Model, ev::Event) {
        use prost::Message;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut body = pipeline::evaluation_pb(cp, g, close, m);
        body.session = j.session.clone();
        body.trainee = j.trainee.clone();
        body.scenario = j.scenario.clone();
        body.assignment = j.assignment.clone();
        body.grading_job = store::job_name(&j.organization, &j.id);
        let now = now_us();
        let model = evaluation::Model {
            id: id.clone(),
            organization: j.organization.clone(),
            session: j.session.clone(),
            trainee: j.trainee.clone(),
            scenario: j.scenario.clone(),
            assignment: j.assignment.clone(),
            job_id: j.id.clone(),
            overall_score: g.overall,
            passed: g.passed,
            closed: close.closed,
            supersedes: None,
            superseded_by: None,
            body: body.encode_to_vec(),
            create_us: now,
            override_revision: 0,
        };
        let event = salestrainer_runtime::events::new_event(
            &j.organization,
            crate::SERVICE,
            ev::event::Payload::SessionGraded(ev::SessionGraded {
                session: j.session.clone(),
                evaluation: store::evaluation_name(&j.organization, &id),
                trainee: j.trainee.clone(),
                scenario: j.scenario.clone(),
                assignment: j.assignment.clone(),
                session_start_time: j.session_start_us.map(timestamp),
                session_duration: j.session_duration_ms.filter(|d| *d >= 0).map(duration),
                source: j.session_source,
                overall_score: g.overall,
                passed: g.passed,
                closed: close.closed,
                skill_scores: g
                    .skills
                    .iter()
                    .map(|(skill, score)| ev::SkillScore {
                        skill: skill.clone(),
                        score: *score,
                    })
                    .collect(),
                metrics: Some(ev::MetricsSummary {
                    talk_listen_ratio: m.talk_listen_ratio,
                    questions_asked_trainee: i32::try_from(m.questions_trainee).unwrap_or(0),
                    questions_per_minute: m.questions_per_minute,
                    words_per_minute: m.words_per_minute,
                    filler_word_rate: m.filler_word_rate,
                    longest_monologue: Some(duration(ms_i64(m.longest_monologue_ms))),
                    interruptions: i32::try_from(m.interruptions).unwrap_or(0),
                    next_step_set: m.next_step_set,
                }),
                usage: Some(ev::LlmUsage {
                    prompt_tokens: i64::try_from(cp.usage.prompt_tokens).unwrap_or(0),
                    completion_tokens: i64::try_from(cp.usage.completion_tokens).unwrap_or(0),
                    cost_micros: cp.usage.cost_micros,
                    provider: cp.usage.provider.clone(),
                    model: cp.usage.model.clone(),
                    requests: i32::try_from(cp.usage.requests).unwrap_or(0),
                }),
                regrade: j.regrade,
                // Filled in at commit time, when the evaluation it replaces is known.
                supersedes: String::new(),
                criterion_scores: super::overrides::event_criteria(&body),
            }),
        );
        (model, event)
    }
}

/// One LLM call, for the llm_usage table.
#[derive(Debug)]
pub(super) struct UsageRow {
    pub(super) attempt: i32,
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) prompt_tokens: u64,
    pub(super) completion_tokens: u64,
    pub(super) cost_micros: i64,
    pub(super) latency_ms: i64,
    pub(super) outcome: String,
}

impl UsageRow {
    pub(super) fn into_active(self, j: &job::Model) -> usage::ActiveModel {
        usage::ActiveModel {
            job_id: Set(j.id.clone()),
            organization: Set(j.organization.clone()),
            session: Set(j.session.clone()),
            attempt: Set(self.attempt),
            step: Set(PipelineStep::Grade as i32),
            provider: Set(self.provider),
            model: Set(self.model),
            prompt_tokens: Set(i64::try_from(self.prompt_tokens).unwrap_or(i64::MAX)),
            completion_tokens: Set(i64::try_from(self.completion_tokens).unwrap_or(i64::MAX)),
            cost_micros: Set(self.cost_micros),
            latency_ms: Set(self.latency_ms),
            outcome: Set(self.outcome),
            create_us: Set(now_us()),
            ..Default::default()
        }
    }
}
