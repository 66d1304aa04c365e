//! The call service's section of the settings: `[call]` in the TOML file, `SALESTRAINER_CALL__*`
//! in the environment (e.g. `SALESTRAINER_CALL__IDLE_TIMEOUT_SECS`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CallSettings {
    /// Base URL the voice provider reaches our webhooks at; empty = this process's address.
    pub public_url: String,
    /// ACTIVE sessions with no activity this long are ended (0 = the default).
    pub idle_timeout_secs: u64,
    /// Concurrent Converse streams per trainee (0 = the default).
    pub max_streams_per_trainee: usize,
    /// Longest trainee turn, in characters.
    pub max_turn_chars: usize,
    /// Conversation threads are kept in Redis this long.
    pub thread_ttl_secs: u64,
    /// In-process thread cache bound (embedded mode).
    pub thread_cache_capacity: usize,
}

pub const MAX_TURN_CHARS: usize = 4_000;
const IDLE_TIMEOUT_SECS: u64 = 1800;
const MAX_STREAMS_PER_TRAINEE: usize = 4;

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            idle_timeout_secs: IDLE_TIMEOUT_SECS,
            max_streams_per_trainee: MAX_STREAMS_PER_TRAINEE,
            max_turn_chars: MAX_TURN_CHARS,
            thread_ttl_secs: 7 * 24 * 3600,
            thread_cache_capacity: 10_000,
        }
    }
}

impl CallSettings {
    /// The webhook base URL without a trailing slash; `listen` when none is configured.
    pub fn public_url(&self, listen: std::net::SocketAddr) -> String {
        match self.public_url.trim() {
            "" => format!("http://{listen}"),
            url => url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        // 0 would end every session at once; it has always meant "the default".
        Duration::from_secs(match self.idle_timeout_secs {
            0 => IDLE_TIMEOUT_SECS,
            n => n,
        })
    }

    /// How often the idle sweeper runs: a quarter of the timeout, between 1 s and 30 s.
    pub fn sweep_interval(&self) -> Duration {
        (self.idle_timeout() / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    pub fn max_streams_per_trainee(&self) -> usize {
        match self.max_streams_per_trainee {
            0 => MAX_STREAMS_PER_TRAINEE,
            n => n,
        }
    }

    pub fn thread_ttl(&self) -> Duration {
        Duration::from_secs(self.thread_ttl_secs)
    }
}
