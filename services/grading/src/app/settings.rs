//! The grading service's section of the settings: `[grading]` in the TOML file,
//! `SALESTRAINER_GRADING__*` in the environment (e.g. `SALESTRAINER_GRADING__WORKERS`), and the
//! engine's knobs built from it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dispatch::JOBS_STREAM;

/// `[grading]`, as written in the settings (durations in milliseconds).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GradingSettings {
    /// Attempts run at once by this replica (at least 1).
    pub workers: usize,
    /// How long a claimed job stays with its worker without a heartbeat: a dead worker's jobs
    /// are taken over this long after its last heartbeat.
    pub lease_ms: u64,
    /// How often a running attempt renews its lease (at most a third of `lease_ms`).
    pub heartbeat_ms: u64,
    /// Distributed mode: a due job put on the work stream this long ago and still not claimed
    /// is put there again (the stream lost it). At once when Redis is seen to have lost its data.
    pub requeue_after_ms: u64,
    /// Idle poll interval of embedded workers and of the distributed scheduler.
    pub poll_ms: u64,
    /// Attempts before a job goes DEAD (at least 1).
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt up to `backoff_cap_ms`.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// Deadline of one LLM request.
    pub llm_timeout_ms: u64,
    /// `max_tokens` of a grading completion.
    pub max_completion_tokens: u64,
    /// Distributed mode: when Redis is found to have lost its data (restarted without
    /// persistence), the outbox relay sends again the events it sent this many seconds back
    /// (consumers' inboxes drop the ones they had); 0 sends none.
    pub relay_replay_after_loss_secs: u64,
}

impl Default for GradingSettings {
    fn default() -> Self {
        let e = EngineConfig::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            workers: e.workers,
            lease_ms: ms(e.lease),
            heartbeat_ms: ms(e.heartbeat),
            requeue_after_ms: ms(e.requeue_after),
            poll_ms: ms(e.poll),
            max_attempts: e.max_attempts,
            backoff_base_ms: ms(e.backoff_base),
            backoff_cap_ms: ms(e.backoff_cap),
            llm_timeout_ms: ms(e.llm_timeout),
            max_completion_tokens: e.max_completion_tokens,
            relay_replay_after_loss_secs: salestrainer_bus::REPLAY_AFTER_LOSS_SECS,
        }
    }
}

impl GradingSettings {
    /// The engine's configuration.
    pub fn engine(&self) -> EngineConfig {
        // A lease shorter than a few beats would be lost by a live worker on one slow write.
        let lease = Duration::from_millis(self.lease_ms.max(300));
        EngineConfig {
            workers: self.workers.max(1),
            lease,
            heartbeat: Duration::from_millis(self.heartbeat_ms)
                .clamp(Duration::from_millis(10), lease / 3),
            requeue_after: Duration::from_millis(self.requeue_after_ms).max(lease),
            poll: Duration::from_millis(self.poll_ms),
            max_attempts: self.max_attempts.max(1),
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_cap: Duration::from_millis(self.backoff_cap_ms),
            llm_timeout: Duration::from_millis(self.llm_timeout_ms),
            max_completion_tokens: self.max_completion_tokens,
            jobs_stream: JOBS_STREAM.to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub workers: usize,
    /// How long a claimed job stays with its worker without a heartbeat.
    pub lease: Duration,
    /// How often a running attempt renews its lease; well under `lease`.
    pub heartbeat: Duration,
    /// Distributed mode: how long a due job may sit on the work stream unclaimed before it is
    /// put there again.
    pub requeue_after: Duration,
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

impl EngineConfig {
    /// The heartbeat actually used: at most a third of the lease, so two late beats in a row
    /// still keep it.
    pub fn beat(&self) -> Duration {
        self.heartbeat
            .min(self.lease / 3)
            .max(Duration::from_millis(10))
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 16,
            // Short, because it is renewed: a dead worker's jobs move on within seconds, a
            // live one renews five times per lease.
            lease: Duration::from_secs(5),
            heartbeat: Duration::from_secs(1),
            requeue_after: Duration::from_secs(30),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_always_renewed_several_times_before_it_runs_out() {
        let e = GradingSettings {
            lease_ms: 100,
            heartbeat_ms: 5_000,
            requeue_after_ms: 0,
            ..GradingSettings::default()
        }
        .engine();
        assert_eq!(e.lease, Duration::from_millis(300));
        assert_eq!(e.heartbeat, Duration::from_millis(100));
        assert_eq!(e.requeue_after, e.lease);
        let d = GradingSettings::default().engine();
        assert_eq!(d.lease, Duration::from_secs(5));
        assert_eq!(d.beat(), Duration::from_secs(1));
        // Built in code with a lease shorter than its heartbeat: the beat still fits.
        let coded = EngineConfig {
            lease: Duration::from_millis(600),
            ..EngineConfig::default()
        };
        assert_eq!(coded.beat(), Duration::from_millis(200));
    }
}
