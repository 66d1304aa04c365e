//! A bounded in-process cache with a TTL, explicit invalidation and hit/miss metrics. Used
//! where distributed mode has no shared cache, and in front of peer calls.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct TtlCache<K, V> {
    name: &'static str,
    ttl: Duration,
    capacity: usize,
    inner: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(name: &'static str, capacity: usize, ttl: Duration) -> Self {
        Self {
            name,
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let hit = match map.get(key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        };
        let outcome = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!("cache_requests_total", "cache" => self.name, "outcome" => outcome)
            .increment(1);
        hit
    }

    pub fn insert(&self, key: K, value: V) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            // Drop expired entries first; if still full, the oldest one.
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.capacity
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (Instant::now(), value));
        metrics::gauge!("cache_entries", "cache" => self.name).set(map.len() as f64);
    }

    pub fn invalidate(&self, key: &K) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }

    /// Drops every entry whose key matches (e.g. everything of one organization).
    pub fn invalidate_where(&self, pred: impl Fn(&K) -> bool) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| !pred(k));
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or_default()
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
        assert_eq!(cache.get(&"c"), Some(3));
        cache.invalidate(&"c");
        assert_eq!(cache.get(&"c"), None);
        cache.insert("d", 4);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&"d"), None, "expired");
    }
}
