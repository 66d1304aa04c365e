//! The job engine: workers that claim grading jobs, run the pipeline and record the outcome.
//!
//! - Embedded mode: workers poll the job table (an atomic claim UPDATE) and are woken at once
//!   when a job is created here.
//! - Distributed mode: job ids go on a Redis Streams work queue read by the consumer group
//!   `grading-workers` (XREADGROUP, XACK, XAUTOCLAIM after the visibility timeout); a scheduler
//!   puts due jobs (new, retry time reached, lease expired) on it. The table stays the source of
//!   truth: a duplicate or stale stream entry finds nothing to claim.
//!
//! A worker holds a job by a lease (renewed while it runs); a worker that dies mid-job lets the
//! lease expire and another worker takes the job over from its last checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use salestrainer_bus::{Envelope, RelayNotifier, SubscribeOptions, Transport};
use salestrainer_proto::events as ev;
use salestrainer_proto::grading::{DeadReason, JobState, PipelineStep};
use sea_orm::{ActiveValue::Set, DatabaseConnection};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::clean::clean;
use crate::domain::llm::{parse_llm_answer, response_format};
use crate::domain::prompt::{PromptInputs, grading_messages};
use crate::domain::retry::{LocalFailure, RetryDecision, RetryPolicy};
use crate::domain::types::Speaker;
use crate::inputs::{GradingInputs, InputError, ScenarioInputs, TranscriptSource};
use crate::pipeline::{self, Checkpoint, TurnDto};
use crate::provider::{LlmClient, LlmFailure, cost_micros, observed, provider_label};
use crate::ratelimit::{Budget, RateLimit, acquire};
use crate::store::{self, Outcome, evaluation, job, now_ms, usage};

/// The Redis stream of job ids (distributed mode) and its consumer group.
pub const JOBS_STREAM: &str = "salestrainer.grading.jobs";
pub const JOBS_GROUP: &str = "grading-workers";

/// How long a saturated dispatcher waits for more slots to free before claiming again.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub workers: usize,
    /// How long a claimed job stays with its worker without a heartbeat.
    pub lease: Duration,
    /// Idle poll interval of embedded workers and of the distributed scheduler.
    pub poll: Duration,
    pub max_attempts: i32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub llm_timeout: Duration,
    pub max_completion_tokens: u64,
    /// Redis stream of job ids (distributed mode).
    pub jobs_stream: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 16,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            llm_timeout: Duration::from_secs(60),
            max_completion_tokens: 1500,
            jobs_stream: JOBS_STREAM.to_owned(),
        }
    }
}

fn env<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

impl EngineConfig {
    /// Defaults overridden by `SALESTRAINER_GRADING_*` environment variables.
    pub fn from_env() -> Self {
        let d = Self::default();
        let ms = |k: &str, v: Duration| env::<u64>(k).map_or(v, Duration::from_millis);
        Self {
            workers: env("SALESTRAINER_GRADING_WORKERS")
                .unwrap_or(d.workers)
                .max(1),
            lease: ms("SALESTRAINER_GRADING_LEASE_MS", d.lease),
            poll: ms("SALESTRAINER_GRADING_POLL_MS", d.poll),
            max_attempts: env("SALESTRAINER_GRADING_MAX_ATTEMPTS")
                .unwrap_or(d.max_attempts)
                .max(1),
            backoff_base: ms("SALESTRAINER_GRADING_BACKOFF_BASE_MS", d.backoff_base),
            backoff_cap: ms("SALESTRAINER_GRADING_BACKOFF_CAP_MS", d.backoff_cap),
            llm_timeout: ms("SALESTRAINER_GRADING_LLM_TIMEOUT_MS", d.llm_timeout),
            max_completion_tokens: env("SALESTRAINER_GRADING_MAX_COMPLETION_TOKENS")
                .unwrap_or(d.max_completion_tokens),
            jobs_stream: d.jobs_stream,
        }
    }
}

/// Where job ids go in distributed mode.
#[derive(Clone)]
pub struct WorkQueue {
    pub bus: Arc<dyn Transport>,
    pub consumer: String,
}

pub struct Engine {
    pub db: DatabaseConnection,
    pub cfg: EngineConfig,
    pub inputs: Arc<dyn GradingInputs>,
    pub transcripts: Arc<dyn TranscriptSource>,
    pub limiter: Arc<dyn RateLimit>,
    pub llm: LlmClient,
    pub notifier: Option<RelayNotifier>,
    /// Job ids whose state changed (WatchGradingJob).
    pub changes: broadcast::Sender<String>,
    pub queue: Option<WorkQueue>,
    wake: Notify,
    commits: GroupCommit,
}

/// How an attempt failed.
#[derive(Debug)]
enum Failure {
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        cfg: EngineConfig,
        inputs: Arc<dyn GradingInputs>,
        transcripts: Arc<dyn TranscriptSource>,
        limiter: Arc<dyn RateLimit>,
        notifier: Option<RelayNotifier>,
        changes: broadcast::Sender<String>,
        queue: Option<WorkQueue>,
    ) -> anyhow::Result<Arc<Self>> {
        let llm = LlmClient::new(cfg.llm_timeout, cfg.max_completion_tokens)?;
        Ok(Arc::new(Self {
            db,
            cfg,
            inputs,
            transcripts,
            limiter,
            llm,
            notifier,
            changes,
            queue,
            wake: Notify::new(),
            commits: GroupCommit::default(),
        }))
    }

    fn policy(&self, max_attempts: i32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: u32::try_from(max_attempts).unwrap_or(1).max(1),
            base: self.cfg.backoff_base,
            cap: self.cfg.backoff_cap,
        }
    }

    fn changed(&self, id: &str) {
        let _ = self.changes.send(id.to_owned());
        if let Some(n) = &self.notifier {
            n.notify();
        }
    }

    /// Tells the workers a job is ready now (created or requeued here).
    pub async fn job_ready(&self, id: &str) {
        self.changed(id);
        if let Some(q) = &self.queue {
            if publish_job(q, &self.cfg.jobs_stream, id).await.is_ok() {
                let _ = store::mark_enqueued(&self.db, &[id.to_owned()]).await;
            }
        } else {
            self.wake.notify_waiters();
            self.wake.notify_one();
        }
    }

    /// Starts the workers (and, distributed, the scheduler) until `shutdown`.
    pub fn start(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        match self.queue.clone() {
            Some(q) => {
                for i in 0..self.cfg.workers {
                    let this = Arc::clone(self);
                    let stop = shutdown.clone();
                    let q = q.clone();
                    handles.push(tokio::spawn(
                        async move { this.stream_worker(i, q, stop).await },
                    ));
                }
                let this = Arc::clone(self);
                let stop = shutdown.clone();
                handles.push(tokio::spawn(async move { this.scheduler(q, stop).await }));
            }
            None => {
                let this = Arc::clone(self);
                let stop = shutdown.clone();
                handles.push(tokio::spawn(
                    async move { this.table_dispatcher(stop).await },
                ));
            }
        }
        let this = Arc::clone(self);
        handles.push(tokio::spawn(async move { this.gauges(shutdown).await }));
        handles
    }

    /// Embedded mode: claims due jobs straight from the table, as many at once as there are
    /// free worker slots (one transaction per batch), and runs each as a task of its own.
    /// The attempts belong to this task's JoinSet, so aborting it aborts them too.
    async fn table_dispatcher(self: Arc<Self>, stop: CancellationToken) {
        let mut running = tokio::task::JoinSet::new();
        let slots = self.cfg.workers.max(1);
        while !stop.is_cancelled() {
            while let Some(done) = running.try_join_next() {
                reap(done);
            }
            let free = slots.saturating_sub(running.len());
            let mut claimed_all = false;
            if free > 0 {
                match store::claim_due(&self.db, free as u64, lease_ms(self.cfg.lease)).await {
                    Ok(batch) => {
                        claimed_all = batch.len() == free;
                        for (j, token) in batch {
                            let this = Arc::clone(&self);
                            let stop = stop.clone();
                            running.spawn(async move { this.run(j, token, &stop).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming grading jobs failed"),
                }
            }
            if claimed_all {
                // Every slot taken: wait for one to free up, then briefly for half of them, so
                // a busy queue is claimed in batches rather than one transaction per job.
                tokio::select! {
                    () = stop.cancelled() => break,
                    Some(done) = running.join_next() => reap(done),
                }
                let until = tokio::time::Instant::now() + CLAIM_GATHER;
                while slots.saturating_sub(running.len()) < slots.div_ceil(2) {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        Some(done) = running.join_next() => reap(done),
                        () = tokio::time::sleep_until(until) => break,
                    }
                }
                continue;
            }
            // Nothing more due now: wait for a new job, a finished attempt or the poll.
            tokio::select! {
                () = stop.cancelled() => break,
                Some(done) = running.join_next(), if !running.is_empty() => reap(done),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
        // Attempts see `stop` themselves; let them end (or leave their lease to expire).
        while let Some(done) = running.join_next().await {
            reap(done);
        }
    }

    /// Distributed mode: job ids from the Redis stream.
    async fn stream_worker(&self, index: usize, q: WorkQueue, stop: CancellationToken) {
        let consumer = format!("{}-w{index}", q.consumer);
        let opts = SubscribeOptions {
            batch_size: 1,
            block: Duration::from_millis(500),
            // Entries of a dead worker go to another one after a lease.
            visibility_timeout: self.cfg.lease,
            claim_interval: (self.cfg.lease / 4).max(Duration::from_millis(100)),
            ..SubscribeOptions::default()
        };
        let mut sub = loop {
            match q
                .bus
                .subscribe(&self.cfg.jobs_stream, JOBS_GROUP, &consumer, opts.clone())
                .await
            {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot join the grading work queue; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            let delivery = tokio::select! {
                () = stop.cancelled() => break,
                d = sub.next() => match d { Some(d) => d, None => break },
            };
            let id = String::from_utf8_lossy(&delivery.envelope.payload).into_owned();
            match store::claim(&self.db, &id, lease_ms(self.cfg.lease)).await {
                Ok(Some((j, token))) => self.run(j, token, &stop).await,
                Ok(None) => {}
                Err(e) => {
                    // Not acked: the entry comes back after the visibility timeout.
                    tracing::warn!(error = %e, "claiming a grading job failed");
                    continue;
                }
            }
            if stop.is_cancelled() {
                // The run may have been cut short; let the entry be reclaimed.
                break;
            }
            let _ = delivery.ack().await;
        }
    }

    /// Distributed mode: puts due jobs on the stream (new ones missed at creation, retries
    /// whose time came, jobs whose worker died).
    async fn scheduler(&self, q: WorkQueue, stop: CancellationToken) {
        let republish_after = lease_ms(self.cfg.lease);
        while !stop.is_cancelled() {
            let now = now_ms();
            match store::due_job_ids(&self.db, now, 500).await {
                Ok(ids) => {
                    let fresh: Vec<String> =
                        match store::enqueued_before(&self.db, &ids, now - republish_after).await {
                            Ok(f) => f,
                            Err(_) => ids,
                        };
                    let mut sent = Vec::new();
                    for id in fresh {
                        if publish_job(&q, &self.cfg.jobs_stream, &id).await.is_ok() {
                            sent.push(id);
                        }
                    }
                    let _ = store::mark_enqueued(&self.db, &sent).await;
                }
                Err(e) => tracing::warn!(error = %e, "grading scheduler cannot read due jobs"),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
    }

    /// Queue depth and jobs by state, every few seconds.
    async fn gauges(&self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            if let Ok(counts) = store::count_by_state(&self.db).await {
                for s in [
                    JobState::Queued,
                    JobState::Running,
                    JobState::Retrying,
                    JobState::Succeeded,
                    JobState::Dead,
                ] {
                    let n = counts
                        .iter()
                        .find(|(k, _)| *k == s as i32)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("grading_jobs", "state" => s.as_str_name()).set(n as f64);
                }
            }
            let depth = match &self.queue {
                Some(q) => q
                    .bus
                    .queue_depth(&self.cfg.jobs_stream, JOBS_GROUP)
                    .await
                    .map(|d| d.total())
                    .unwrap_or(0),
                None => store::count_due(&self.db, now_ms()).await.unwrap_or(0),
            };
            metrics::gauge!("grading_queue_depth").set(depth as f64);
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

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
        let started = now_ms();
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
            // Renew the lease while the attempt runs (limiter waits can be long). Same task as
            // the attempt, so a worker that dies stops renewing and the lease runs out.
            let heartbeat = async {
                loop {
                    tokio::time::sleep(self.cfg.lease / 3).await;
                    if !matches!(
                        store::heartbeat(&self.db, &j.id, &token, lease_ms(self.cfg.lease)).await,
                        Ok(true)
                    ) {
                        return;
                    }
                }
            };
            tokio::select! {
                r = self.attempt(&j, &token, &mut step, stop) => r,
                () = heartbeat => Err(Failure::LeaseLost),
            }
        };
        let outcome = match result {
            Ok((evaluation, event)) => Outcome::Succeeded {
                evaluation: Box::new(evaluation),
                event: Box::new(event),
            },
            Err(Failure::LeaseLost) => return,
            Err(Failure::Retry { after, error }) => Outcome::Retry {
                at_ms: now_ms() + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2),
                error,
            },
            Err(Failure::Dead { reason, error }) => Outcome::Dead { reason, error },
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
            attempt_start_ms: started,
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

    async fn save(
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

    fn transient(&self, j: &job::Model, error: &str) -> Failure {
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
            let raw = self
                .transcripts
                .transcript(&j.session)
                .await
                .map_err(|e| self.input_failure(j, e, DeadReason::InvalidTranscript))?;
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

    fn build_result(
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
        body.grading_job = crate::names::job_name(&j.organization, &j.id);
        let now = now_ms();
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
            create_ms: now,
        };
        let event = salestrainer_runtime::events::new_event(
            &j.organization,
            crate::SERVICE,
            ev::event::Payload::SessionGraded(ev::SessionGraded {
                session: j.session.clone(),
                evaluation: crate::names::evaluation_name(&j.organization, &id),
                trainee: j.trainee.clone(),
                scenario: j.scenario.clone(),
                assignment: j.assignment.clone(),
                session_start_time: j.session_start_ms.map(|ms| prost_types::Timestamp {
                    seconds: ms.div_euclid(1000),
                    nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
                }),
                session_duration: j
                    .session_duration_ms
                    .and_then(|d| u64::try_from(d).ok())
                    .map(pipeline::duration),
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
                    longest_monologue: Some(pipeline::duration(m.longest_monologue_ms)),
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
            }),
        );
        (model, event)
    }

    async fn grade_llm(
        &self,
        j: &job::Model,
        cred: &crate::inputs::Credential,
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

/// One LLM call, for the llm_usage table.
#[derive(Debug)]
struct UsageRow {
    attempt: i32,
    provider: String,
    model: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_micros: i64,
    latency_ms: i64,
    outcome: String,
}

impl UsageRow {
    fn into_active(self, j: &job::Model) -> usage::ActiveModel {
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
            create_ms: Set(now_ms()),
            ..Default::default()
        }
    }
}

/// Logs an attempt task that panicked; its lease runs out and another attempt takes over.
fn reap(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "a grading attempt panicked");
    }
}

fn lease_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(60_000)
}

async fn publish_job(q: &WorkQueue, stream: &str, id: &str) -> salestrainer_bus::Result<()> {
    let env = Envelope::new(
        uuid::Uuid::new_v4().simple().to_string(),
        stream,
        "grading.job",
        "",
        id.as_bytes().to_vec(),
    );
    q.bus.publish(&env).await
}

/// A queued write and where its result goes.
type QueuedWrite = (store::WriteOp, oneshot::Sender<Result<bool, String>>);

/// Group commit of the workers' lease-fenced writes: a writer queues its op, then whoever takes
/// the lock next commits everything queued so far in one transaction. On SQLite (one writer at
/// a time) this turns one commit per job into one per batch; on PostgreSQL it saves round trips.
#[derive(Default)]
struct GroupCommit {
    queue: std::sync::Mutex<Vec<QueuedWrite>>,
    turn: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    async fn write(&self, db: &DatabaseConnection, op: store::WriteOp) -> Result<bool, String> {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((op, tx));
        let turn = self.turn.lock().await;
        // A writer before us may have committed our op with its batch.
        if let Ok(done) = rx.try_recv() {
            return done;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let (ops, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        metrics::histogram!("grading_write_batch_size").record(ops.len() as f64);
        let results = store::write_batch(db, &ops).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result.map_err(|e| e.to_string()));
        }
        drop(turn);
        rx.await
            .unwrap_or_else(|_| Err("the batch holding this write was abandoned".into()))
    }
}
