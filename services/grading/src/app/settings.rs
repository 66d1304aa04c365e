//! The grading engine's knobs: defaults, overridden by `SALESTRAINER_GRADING_*` environment
//! variables.

use std::time::Duration;

use super::dispatch::JOBS_STREAM;

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
