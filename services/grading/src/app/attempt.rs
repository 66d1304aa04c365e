//! One attempt of a claimed job: the pipeline steps (clean → summary → grade → close →
//! metrics), checkpointed so a job taken over goes on where it stopped, under a renewed lease.

use std::time::{Duration, Instant};

use rand::Rng;
use salestrainer_proto::events as ev;
use salestrainer_proto::grading::{DeadReason, PipelineStep};
use salestrainer_runtime::time::now_us;
use tokio_util::sync::CancellationToken;

use super::dispatch::{Engine, lease_ms};
use super::inputs::{InputError, ScenarioInputs};
use super::llm_provider::{LlmFailure, cost_micros, observed, provider_label};
use super::pipeline::{self, Checkpoint, TurnDto};
use super::rate_limit::{Budget, acquire};
use super::result::UsageRow;
use crate::domain::clean::clean;
use crate::domain::llm::{parse_llm_answer, response_format};
use crate::domain::prompt::{PromptInputs, grading_messages};
use crate::domain::retry::{LocalFailure, RetryDecision};
use crate::domain::types::Speaker;
use crate::store::{self, evaluation, job};
use serde_json::Value;

/// How an attempt failed.
#[derive(Debug)]
pub(super) enum Failure {
    Retry {
        after: Duration,
        error: String,
    },
    Dead {
        reason: DeadReason,
        error: String,
    },
    /// Another worker holds the job now; write nothing.
    LeaseLost,
}

impl Engine {
    /// Runs one attempt of a claimed job and records how it ended, inside a span that
    /// continues the trace of the event that created the job.
    pub async fn run(&self, j: job::Model, token: String, stop: &CancellationToken) {
        let span = tracing::info_span!("grading.attempt", otel.name = "grading attempt", job = %j.id, session = %j.session);
        let headers: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&j.trace_context).unwrap_or_default();
        salestrainer_runtime::telemetry::set_parent_from(&span, &headers);
        tracing::Instrument::instrument(self.run_attempt(j, token, stop), span).await
    }

    async fn run_attempt(&self, j: job::Model, token: String, stop: &CancellationToken) {
        let started = now_us();
        let clock = Instant::now();
        self.changed(&j.id);
        metrics::counter!("grading_attempts_total").increment(1);
        let mut step = PipelineStep::Clean;
        let result = if j.attempts > j.max_attempts {
            // Claimed again only because the worker of its last allowed attempt was lost (a
            // crash or kill mid-job, every time): a job that takes its workers down must not
            // be handed out forever.
            Err(Failure::Dead {
                reason: DeadReason::MaxAttemptsExceeded,
                error: format!(
                    "no attempt finished in {} tries: the worker running it was lost",
                    j.max_attempts
                ),
            })
        } else {
            // Renew the lease while the attempt runs (limiter waits and LLM calls can be long).
            // Same task as the attempt, so a worker that dies stops renewing and its job is
            // taken over one lease later. A failed renewal (the database briefly away) is
            // tried again at the next beat; the attempt gives up only once the lease it last
            // renewed has run out, or when another worker holds the job.
            let heartbeat = async {
                let mut renewed = Instant::now();
                loop {
                    tokio::time::sleep(self.cfg.beat()).await;
                    match store::heartbeat(&self.db, &j.id, &token, lease_ms(self.cfg.lease)).await
                    {
                        Ok(true) => renewed = Instant::now(),
                        Ok(false) => return,
                        Err(e) => {
                            tracing::warn!(job = %j.id, error = %e, "lease renewal failed; trying again");
                            if renewed.elapsed() >= self.cfg.lease {
                                return;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                r = self.attempt(&j, &token, &mut step, stop) => r,
                () = heartbeat => Err(Failure::LeaseLost),
            }
        };
        self.finish(j, token, started, clock, step, result, stop)
            .await;
    }

    pub(super) fn transient(&self, j: &job::Model, error: &str) -> Failure {
        let p = self.policy(j.max_attempts);
        let attempt = u32::try_from(j.attempts).unwrap_or(1);
        match p.classify_local(attempt, LocalFailure::Transport, rand::rng().random()) {
            RetryDecision::Retry { after } => Failure::Retry {
                after,
                error: error.to_owned(),
            },
            RetryDecision::Fatal { reason } => Failure::Dead {
                reason: DeadReason::MaxAttemptsExceeded,
                error: format!("{error} ({reason})"),
            },
        }
    }

    fn input_failure(&self, j: &job::Model, e: InputError, permanent: DeadReason) -> Failure {
        match e {
            InputError::Permanent(error) => Failure::Dead {
                reason: permanent,
                error,
            },
            InputError::Transient(error) => self.transient(j, &error),
        }
    }

    async fn attempt(
        &self,
        j: &job::Model,
        token: &str,
        step: &mut PipelineStep,
        stop: &CancellationToken,
    ) -> Result<(evaluation::Model, ev::Event), Failure> {
        let mut cp: Checkpoint = serde_json::from_str(&j.checkpoint).unwrap_or_default();
        let inputs = self
            .inputs
            .scenario(&j.organization, &j.scenario, &j.rubric)
            .await
            .map_err(|e| self.input_failure(j, e, DeadReason::ConfigInvalid))?;
        inputs.rubric.validate().map_err(|e| Failure::Dead {
            reason: DeadReason::ConfigInvalid,
            error: format!("rubric {}: {e}", inputs.rubric_name),
        })?;

        // Which grader: needed before step 1 decides whether to checkpoint.
        let credential = if cp.grade.is_none() {
            self.inputs
                .credential(&j.organization)
                .await
                .map_err(|e| self.input_failure(j, e, DeadReason::ConfigInvalid))?
        } else {
            None
        };

        // 1. clean. Checkpointed before an LLM call, which can fail or hang, so a retry does
        // not fetch the transcript again; the built-in grader cannot fail after this step, so
        // its attempt writes once, at the end.
        *step = PipelineStep::Clean;
        if cp.turns.is_none() {
            // The sources are recorded in the evaluation: which transcript was graded.
            let (raw, sources) = self
                .transcripts
                .transcript_with_sources(&j.session)
                .await
                .map_err(|e| self.input_failure(j, e, DeadReason::InvalidTranscript))?;
            cp.sources = sources;
            let cleaned = clean(&raw);
            if !cleaned.iter().any(|t| t.speaker == Speaker::Trainee) {
                return Err(Failure::Dead {
                    reason: DeadReason::InvalidTranscript,
                    error: "the transcript has no trainee speech to grade".into(),
                });
            }
            cp.turns = Some(cleaned.iter().map(TurnDto::from).collect());
            if credential.is_some() {
                self.save(j, token, PipelineStep::Clean, &cp, Vec::new())
                    .await?;
            }
        }
        let transcript = pipeline::turns(&cp);

        // 2. summarise (cheap and deterministic: saved with the next checkpoint).
        *step = PipelineStep::Summarize;
        if cp.summary.is_none() {
            cp.summary = Some(pipeline::summarise(&transcript, &inputs));
        }

        // 3. grade.
        *step = PipelineStep::Grade;
        if cp.grade.is_none() {
            match credential {
                None => {
                    // Recomputable for free, so no checkpoint of its own.
                    let g = pipeline::grade_deterministic(&inputs, &transcript).map_err(|e| {
                        Failure::Dead {
                            reason: DeadReason::ConfigInvalid,
                            error: e.to_string(),
                        }
                    })?;
                    cp.grade = Some(g);
                }
                Some(cred) => {
                    let (g, row) = self
                        .grade_llm(j, &cred, &inputs, &cp, &transcript, stop)
                        .await?;
                    cp.usage.prompt_tokens += row.prompt_tokens;
                    cp.usage.completion_tokens += row.completion_tokens;
                    cp.usage.cost_micros += row.cost_micros;
                    cp.usage.requests += 1;
                    cp.usage.provider = provider_label(&cred.base_url);
                    cp.usage.model = cred.model.clone();
                    cp.grade = Some(g);
                    // Paid for: checkpoint it at once, with its usage row.
                    self.save(j, token, PipelineStep::Grade, &cp, vec![row.into_active(j)])
                        .await?;
                }
            }
        }
        let Some(grade) = cp.grade.clone() else {
            return Err(Failure::Dead {
                reason: DeadReason::Internal,
                error: "grade step produced nothing".into(),
            });
        };

        // 4. close decision.
        *step = PipelineStep::CloseDecision;
        if cp.close.is_none() {
            cp.close = Some(pipeline::close_decision(&inputs.goal, &transcript, &grade));
        }
        // 5. metrics.
        *step = PipelineStep::Metrics;
        if cp.metrics.is_none() {
            cp.metrics = Some(pipeline::metrics(&transcript));
        }
        let (Some(close), Some(m)) = (cp.close.clone(), cp.metrics.clone()) else {
            return Err(Failure::Dead {
                reason: DeadReason::Internal,
                error: "close or metrics step produced nothing".into(),
            });
        };
        Ok(self.build_result(j, &cp, &grade, &close, &m))
    }

    async fn grade_llm(
        &self,
        j: &job::Model,
        cred: &crate::app::inputs::Credential,
        inputs: &ScenarioInputs,
        cp: &Checkpoint,
        transcript: &[crate::domain::types::Turn],
        stop: &CancellationToken,
    ) -> Result<(pipeline::GradeDto, UsageRow), Failure> {
        let persona = inputs.persona_brief();
        let messages = grading_messages(
            inputs.template.as_ref().map(|t| t.body.as_str()),
            &PromptInputs {
                rubric_name: &inputs.rubric_name,
                rubric: &inputs.rubric,
                goal: &inputs.goal,
                product_brief: &inputs.product_brief,
                persona: &persona,
                summary: cp.summary.as_deref().unwrap_or_default(),
            },
            transcript,
        );
        let (system, user) = (messages.system, messages.user);
        let format = response_format(&inputs.rubric);
        // About 3 characters per token errs on the high side for English: safer for the budget.
        let estimate = ((system.len() + user.len() + format.to_string().len()) / 3) as u64 + 16;
        let reserve = estimate + self.llm.max_completion_tokens;
        let budget = Budget {
            rpm: cred.requests_per_minute,
            tpm: cred.tokens_per_minute,
        };
        let key = format!("{}|{}", cred.name, cred.base_url);
        let (permit, _waited) = acquire(self.limiter.as_ref(), &key, budget, reserve, stop)
            .await
            .map_err(|e| self.transient(j, &format!("rate limiter: {e}")))?;
        let (result, latency) = self.llm.complete(cred, &system, &user, &format).await;
        let attempt = u32::try_from(j.attempts).unwrap_or(1);
        let policy = self.policy(j.max_attempts);
        let random: u64 = rand::rng().random();
        let mut row = UsageRow {
            attempt: j.attempts,
            provider: provider_label(&cred.base_url),
            model: cred.model.clone(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_micros: 0,
            latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
            outcome: "ok".into(),
        };
        match result {
            Ok(ok) => {
                let prompt = ok.prompt_tokens.unwrap_or(estimate);
                let completion = ok.completion_tokens.unwrap_or(0);
                let _ = self
                    .limiter
                    .correct(&key, budget, &permit, prompt + completion)
                    .await;
                let _ = self
                    .limiter
                    .observe(&key, budget, observed(&ok.headers))
                    .await;
                metrics::counter!("grading_llm_tokens_total", "kind" => "prompt").increment(prompt);
                metrics::counter!("grading_llm_tokens_total", "kind" => "completion")
                    .increment(completion);
                row.prompt_tokens = prompt;
                row.completion_tokens = completion;
                row.cost_micros = cost_micros(&cred.model, prompt, completion);
                match parse_llm_answer(&inputs.rubric, transcript, &ok.body) {
                    Ok(answer) => {
                        let model = ok
                            .body
                            .get("model")
                            .and_then(Value::as_str)
                            .unwrap_or(cred.model.as_str())
                            .to_owned();
                        Ok((
                            pipeline::grade_from_llm(inputs, transcript, answer, &model),
                            row,
                        ))
                    }
                    Err(e) => {
                        row.outcome = "invalid answer".into();
                        let _ = store::record_usage(&self.db, vec![row.into_active(j)]).await;
                        let error = format!("invalid model answer: {e}");
                        Err(
                            match policy.classify_local(
                                attempt,
                                LocalFailure::InvalidAnswer,
                                random,
                            ) {
                                RetryDecision::Retry { after } => Failure::Retry { after, error },
                                RetryDecision::Fatal { reason } => Failure::Dead {
                                    reason: DeadReason::InvalidModelOutput,
                                    error: format!("{error} ({reason})"),
                                },
                            },
                        )
                    }
                }
            }
            Err(failure) => {
                let error = failure.to_string();
                row.outcome = error.chars().take(120).collect();
                let _ = store::record_usage(&self.db, vec![row.into_active(j)]).await;
                let decision = match &failure {
                    LlmFailure::Http {
                        status,
                        code,
                        headers,
                        ..
                    } => {
                        // A rejected request used nothing; give the reservation back.
                        if *status == 429 {
                            let _ = self.limiter.correct(&key, budget, &permit, 0).await;
                            metrics::counter!("grading_llm_429_total").increment(1);
                        }
                        let _ = self.limiter.observe(&key, budget, observed(headers)).await;
                        policy.classify(attempt, *status, code.as_deref(), headers, random)
                    }
                    LlmFailure::Timeout => {
                        policy.classify_local(attempt, LocalFailure::Timeout, random)
                    }
                    LlmFailure::Transport(_) => {
                        policy.classify_local(attempt, LocalFailure::Transport, random)
                    }
                };
                Err(match decision {
                    RetryDecision::Retry { after } => Failure::Retry { after, error },
                    RetryDecision::Fatal { reason } => Failure::Dead {
                        reason: if attempt >= policy.max_attempts {
                            DeadReason::MaxAttemptsExceeded
                        } else {
                            DeadReason::ProviderRejected
                        },
                        error: format!("{error} ({reason})"),
                    },
                })
            }
        }
    }
}
