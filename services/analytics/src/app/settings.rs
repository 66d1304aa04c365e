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
    /// Whether to follow the bus (off for tools that only ingest through the RPC).
    pub consume_bus: bool,
    /// Distributed mode: when Redis is found to have lost its data (restarted without
    /// persistence), the outbox relay sends again the events it sent this many seconds back
    /// (consumers' inboxes drop the ones they had); 0 sends none.
    pub relay_replay_after_loss_secs: u64,
    /// The reconciler asks grading about a session ended this long ago with no grade nor
    /// failure here, or graded without the override grading has, and applies what grading
    /// answers as the lost event would have; 0 turns it off.
    pub reconcile_after_secs: u64,
    /// The reconciler also asks grading about a session started this long ago that never
    /// ended here (its SessionEnded lost, and its SessionGraded too): longer than any session
    /// runs (a scenario's time limit is at most 4 h); 0 turns this sweep off.
    pub reconcile_unended_after_secs: u64,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            max_range_days: 366,
            cache_ttl_ms: 60_000,
            cache_capacity: 10_000,
            consume_bus: true,
            relay_replay_after_loss_secs: salestrainer_bus::REPLAY_AFTER_LOSS_SECS,
            reconcile_after_secs: 60,
            reconcile_unended_after_secs: 6 * 3600,
        }
    }
}

impl AnalyticsSettings {
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.cache_ttl_ms)
    }

    /// The reconciler's bound; `None` when it is off.
    pub fn reconcile_after(&self) -> Option<Duration> {
        (self.reconcile_after_secs > 0).then(|| Duration::from_secs(self.reconcile_after_secs))
    }

    /// How long a started session may go without ending before the reconciler asks grading
    /// about it; `None` when that sweep (or the reconciler) is off.
    pub fn reconcile_unended_after(&self) -> Option<Duration> {
        self.reconcile_after()?;
        (self.reconcile_unended_after_secs > 0)
            .then(|| Duration::from_secs(self.reconcile_unended_after_secs))
    }

    /// How often the reconciler runs: a quarter of its bound, between 1 s and 30 s.
    pub fn reconcile_interval(&self) -> Duration {
        (Duration::from_secs(self.reconcile_after_secs) / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}
