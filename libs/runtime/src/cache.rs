//! A bounded in-process cache with a TTL, explicit invalidation and hit/miss metrics, on moka
//! (LRU eviction, so a new entry is always admitted and the least recently used one goes).
//! Used where distributed mode has no shared cache, and in front of peer calls.

use std::{hash::Hash, sync::OnceLock, time::Duration};

use metrics::{Counter, Gauge};
use moka::{Equivalent, policy::EvictionPolicy, sync::Cache};

/// A borrowed `(String, String)` key: hashes and compares like the owned tuple, so a lookup
/// builds no Strings.
#[derive(Hash)]
pub struct Pair<'a>(pub &'a str, pub &'a str);

impl Equivalent<(String, String)> for Pair<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// A borrowed `(String, String, String)` key, like [`Pair`].
#[derive(Hash)]
pub struct Triple<'a>(pub &'a str, pub &'a str, pub &'a str);

impl Equivalent<(String, String, String)> for Triple<'_> {
    fn equivalent(&self, key: &(String, String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == key.2
    }
}

/// The hasher of the runtime's per-request maps and caches: seeded per process, several times
/// cheaper than SipHash on the keys looked up per call (a token is ~250 bytes).
pub type FastHash = foldhash::fast::RandomState;

pub struct TtlCache<K, V> {
    name: &'static str,
    inner: Cache<K, V, FastHash>,
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
            .build_with_hasher(FastHash::default());
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

    /// `key` is a `&K` or a borrowed form of it ([`Pair`], [`Triple`]).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Equivalent<K> + Hash + ?Sized,
    {
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

    pub fn invalidate<Q>(&self, key: &Q)
    where
        Q: Equivalent<K> + Hash + ?Sized,
    {
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

    #[test]
    fn borrowed_keys_find_owned_ones() {
        let pairs = TtlCache::new("test-pairs", 10, Duration::from_secs(60));
        pairs.insert(("acme".to_owned(), "dana".to_owned()), 1);
        assert_eq!(pairs.get(&Pair("acme", "dana")), Some(1));
        assert_eq!(pairs.get(&Pair("acmed", "ana")), None);
        assert_eq!(pairs.get(&Pair("dana", "acme")), None);
        pairs.invalidate(&Pair("acme", "dana"));
        assert_eq!(pairs.get(&("acme".to_owned(), "dana".to_owned())), None);
        let triples = TtlCache::new("test-triples", 10, Duration::from_secs(60));
        triples.insert(("a".to_owned(), "b".to_owned(), "c".to_owned()), 2);
        assert_eq!(triples.get(&Triple("a", "b", "c")), Some(2));
        assert_eq!(triples.get(&Triple("a", "bc", "")), None);
    }
}
