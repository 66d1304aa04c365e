//! A bounded in-process cache with a TTL, explicit invalidation and hit/miss metrics, on moka
//! (LRU eviction, so a new entry is always admitted and the least recently used one goes).
//! Used where distributed mode has no shared cache, and in front of peer calls.

use std::{hash::Hash, sync::OnceLock, time::Duration};

use metrics::{Counter, Gauge};
use moka::{policy::EvictionPolicy, sync::Cache};

pub struct TtlCache<K, V> {
    name: &'static str,
    inner: Cache<K, V>,
    /// Registered on first use, not on every lookup.
    handles: OnceLock<Handles>,
}

struct Handles {
    hits: Counter,
    misses: Counter,
    entries: Gauge,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(name: &'static str, capacity: usize, ttl: Duration) -> Self {
        let inner = Cache::builder()
            .max_capacity(capacity.max(1) as u64)
            .time_to_live(ttl)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self {
            name,
            inner,
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            // A handle taken before the process's recorder exists would count nowhere forever.
            crate::metrics::prometheus();
            let name = self.name;
            Handles {
                hits: metrics::counter!("cache_requests_total", "cache" => name, "outcome" => "hit"),
                misses: metrics::counter!("cache_requests_total", "cache" => name, "outcome" => "miss"),
                entries: metrics::gauge!("cache_entries", "cache" => name),
            }
        })
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let hit = self.inner.get(key);
        let h = self.handles();
        if hit.is_some() {
            h.hits.increment(1);
        } else {
            h.misses.increment(1);
        }
        hit
    }

    pub fn insert(&self, key: K, value: V) {
        self.inner.insert(key, value);
        self.handles().entries.set(self.inner.entry_count() as f64);
    }

    pub fn invalidate(&self, key: &K) {
        self.inner.invalidate(key);
    }

    /// Drops every entry whose key matches (e.g. everything of one organization). A scan, but
    /// only on invalidation, which events make rare; reads never scan.
    pub fn invalidate_where(&self, pred: impl Fn(&K) -> bool) {
        for (key, _) in self.inner.iter() {
            if pred(&key) {
                self.inner.invalidate(&*key);
            }
        }
    }

    /// Entries held, after pending evictions ran.
    pub fn len(&self) -> usize {
        self.inner.run_pending_tasks();
        usize::try_from(self.inner.entry_count()).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_expiring_and_invalidated() {
        let cache = TtlCache::new("test", 2, Duration::from_millis(50));
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("c", 3);
        assert_eq!(cache.len(), 2, "capacity holds");
        assert_eq!(cache.get(&"c"), Some(3), "the newest entry is admitted");
        cache.invalidate(&"c");
        assert_eq!(cache.get(&"c"), None);
        cache.insert("d", 4);
        cache.insert("e", 5);
        cache.invalidate_where(|k| *k == "e");
        assert_eq!(cache.get(&"e"), None);
        assert_eq!(cache.get(&"d"), Some(4));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&"d"), None, "expired");
    }
}
