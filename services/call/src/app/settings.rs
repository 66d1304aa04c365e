//! Call-service settings that the shared runtime settings do not cover, read from the
//! environment once at mount.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CallSettings {
    /// Base URL the voice provider reaches our webhooks at (`SALESTRAINER_PUBLIC_URL`).
    pub public_url: String,
    /// ACTIVE sessions with no activity this long are ended
    /// (`SALESTRAINER_CALL_IDLE_TIMEOUT_SECS`, default 1800).
    pub idle_timeout: Duration,
    /// How often the idle sweeper runs.
    pub sweep_interval: Duration,
    /// Concurrent Converse streams per trainee (`SALESTRAINER_CALL_MAX_STREAMS_PER_TRAINEE`).
    pub max_streams_per_trainee: usize,
    /// Longest trainee turn, in characters.
    pub max_turn_chars: usize,
    /// Conversation threads kept in Redis this long.
    pub thread_ttl: Duration,
    /// In-process thread cache bound (embedded mode).
    pub thread_cache_capacity: usize,
}

pub const MAX_TURN_CHARS: usize = 4_000;

impl CallSettings {
    pub fn from_env(listen: std::net::SocketAddr) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let public_url = var("SALESTRAINER_PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{listen}"));
        let idle_secs = var("SALESTRAINER_CALL_IDLE_TIMEOUT_SECS")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(1800);
        let max_streams = var("SALESTRAINER_CALL_MAX_STREAMS_PER_TRAINEE")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(4);
        let idle_timeout = Duration::from_secs(idle_secs);
        Self {
            public_url,
            idle_timeout,
            sweep_interval: (idle_timeout / 4)
                .clamp(Duration::from_secs(1), Duration::from_secs(30)),
            max_streams_per_trainee: max_streams,
            max_turn_chars: MAX_TURN_CHARS,
            thread_ttl: Duration::from_secs(7 * 24 * 3600),
            thread_cache_capacity: 10_000,
        }
    }
}
