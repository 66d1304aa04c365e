//! The job engine and how it hands out work: workers claim grading jobs, run an attempt
//! (`attempt`), turn its outcome into writes (`result`) committed in groups (`commit`).
//!
//! - Embedded mode: workers poll the job table (an atomic claim UPDATE) and are woken at once
//!   when a job is created here.
//! - Distributed mode: job ids go on a Redis Streams work queue read by the consumer group
//!   `grading-workers` (XREADGROUP, XACK, XAUTOCLAIM after the visibility timeout); a scheduler
//!   puts due jobs (new, retry time reached, lease expired) on it. The table stays the source of
//!   truth: a duplicate or stale stream entry finds nothing to claim.
//!
//! A worker holds a job by a lease renewed by a heartbeat while the attempt runs (`lease_ms`,
//! `heartbeat_ms`); a worker that dies mid-job stops renewing, its lease runs out within
//! seconds and another worker takes the job over from its last checkpoint. Every write of an
//! attempt is fenced by its lease token, so a worker that lost its lease writes nothing.

use std::sync::Arc;
use std::time::Duration;

use salestrainer_bus::{Envelope, RelayNotifier, SubscribeOptions, Transport};
use salestrainer_proto::grading::JobState;
use salestrainer_runtime::changes::Changes;
use salestrainer_runtime::time::now_us;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::commit::GroupCommit;
use super::inputs::{GradingInputs, TranscriptSource};
use super::llm_provider::LlmClient;
use super::rate_limit::RateLimit;
use super::settings::EngineConfig;
use crate::domain::retry::RetryPolicy;
use crate::store;

/// The Redis stream of job ids (distributed mode) and its consumer group.
pub const JOBS_STREAM: &str = "salestrainer.grading.jobs";
pub const JOBS_GROUP: &str = "grading-workers";

/// How long a saturated dispatcher waits for more slots to free before claiming again.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

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
    /// Wakes WatchGradingJob streams (here and on other replicas) when a job changes.
    pub changes: Changes,
    pub queue: Option<WorkQueue>,
    pub(super) wake: Notify,
    pub(super) commits: GroupCommit,
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
        changes: Changes,
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

    pub(super) fn policy(&self, max_attempts: i32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: u32::try_from(max_attempts).unwrap_or(1).max(1),
            base: self.cfg.backoff_base,
            cap: self.cfg.backoff_cap,
        }
    }

    pub(super) fn changed(&self, id: &str) {
        self.changes.publish(id);
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
            // Entries of a dead worker go to another one after a lease. A live worker's entry
            // taken this way finds its job leased (renewed) and is merely acked; the scheduler
            // puts the job back should that worker die later.
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

    /// Distributed mode: puts due jobs on the stream: new ones missed at creation, retries
    /// whose time came, jobs whose worker died (their lease ran out: seconds after the death,
    /// since live workers renew it), and jobs the stream lost. When Redis is seen to have lost
    /// its data (restarted without persistence), every due job goes on it again at once.
    async fn scheduler(&self, q: WorkQueue, stop: CancellationToken) {
        let requeue_after_us = lease_ms(self.cfg.requeue_after).saturating_mul(1000);
        let marker = format!("{}:{JOBS_GROUP}", self.cfg.jobs_stream);
        while !stop.is_cancelled() {
            let now = now_us();
            let lost = matches!(q.bus.intact(&marker).await, Ok(false));
            let cutoff = if lost {
                now
            } else {
                now.saturating_sub(requeue_after_us)
            };
            match store::unqueued_due_ids(&self.db, now, cutoff, 500).await {
                Ok(ids) => {
                    if lost && !ids.is_empty() {
                        tracing::warn!(
                            jobs = ids.len(),
                            "the grading work stream lost its entries; putting due jobs on it again"
                        );
                        salestrainer_runtime::metrics::count_repaired(
                            "grading_job_requeued",
                            ids.len() as u64,
                        );
                    }
                    let mut sent = Vec::new();
                    for id in ids {
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
                None => store::count_due(&self.db, now_us()).await.unwrap_or(0),
            };
            metrics::gauge!("grading_queue_depth").set(depth as f64);
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
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

pub(super) fn lease_ms(d: Duration) -> i64 {
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
