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
    /// How long a claimed job stays with its worker without a heartbeat.
    pub lease_ms: u64,
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
}

impl Default for GradingSettings {
    fn default() -> Self {
        let e = EngineConfig::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            workers: e.workers,
            lease_ms: ms(e.lease),
            poll_ms: ms(e.poll),
            max_attempts: e.max_attempts,
            backoff_base_ms: ms(e.backoff_base),
            backoff_cap_ms: ms(e.backoff_cap),
            llm_timeout_ms: ms(e.llm_timeout),
            max_completion_tokens: e.max_completion_tokens,
        }
    }
}

impl GradingSettings {
    /// The engine's configuration.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            workers: self.workers.max(1),
            lease: Duration::from_millis(self.lease_ms),
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
