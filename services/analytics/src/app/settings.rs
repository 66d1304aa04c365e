//! The analytics service's own settings: the `[analytics]` section of the settings file, or
//! `SALESTRAINER_ANALYTICS__*` environment variables.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyticsSettings {
    /// Longest accepted query range, in days.
    pub max_range_days: i64,
    /// How long a cached summary lives, in milliseconds; 0 disables the cache.
    pub cache_ttl_ms: u64,
    /// Entries of the in-process summary cache (embedded mode).
    pub cache_capacity: usize,
    /// Whether trainees may see the leaderboard when the config service cannot say.
    pub leaderboard_visible_by_default: bool,
    /// Whether to follow the bus (off for tools that only ingest through the RPC).
    pub consume_bus: bool,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            max_range_days: 366,
            cache_ttl_ms: 60_000,
            cache_capacity: 10_000,
            leaderboard_visible_by_default: true,
            consume_bus: true,
        }
    }
}

impl AnalyticsSettings {
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.cache_ttl_ms)
    }
}
