//! The analytics service's own knobs, from `SALESTRAINER_ANALYTICS_*` environment variables
//! (the shared settings file has no analytics section).

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct AnalyticsSettings {
    /// Longest accepted query range.
    pub max_range_days: i64,
    /// How long a cached summary lives; zero disables the cache.
    pub cache_ttl: Duration,
    /// Entries of the in-process cache (embedded mode).
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
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
            leaderboard_visible_by_default: true,
            consume_bus: true,
        }
    }
}

impl AnalyticsSettings {
    pub fn from_env() -> Self {
        let mut s = Self::default();
        let var = |name: &str| std::env::var(format!("SALESTRAINER_ANALYTICS_{name}")).ok();
        if let Some(v) = var("MAX_RANGE_DAYS").and_then(|v| v.parse().ok()) {
            s.max_range_days = v;
        }
        if let Some(v) = var("CACHE_TTL_MS").and_then(|v| v.parse().ok()) {
            s.cache_ttl = Duration::from_millis(v);
        }
        if let Some(v) = var("CACHE_CAPACITY").and_then(|v| v.parse().ok()) {
            s.cache_capacity = v;
        }
        if let Some(v) = var("LEADERBOARD_VISIBLE_BY_DEFAULT").and_then(|v| v.parse().ok()) {
            s.leaderboard_visible_by_default = v;
        }
        s
    }
}
