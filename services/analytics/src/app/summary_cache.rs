//! Cached responses, keyed with a per-organization version that every ingest bumps where the
//! cache lives (Redis in distributed mode, this process otherwise), so a new grade shows at
//! once and the TTL only bounds memory.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use salestrainer_runtime::cache::TtlCache;

pub struct SummaryCache {
    ttl: Duration,
    local: TtlCache<String, Vec<u8>>,
    versions: Mutex<HashMap<String, u64>>,
    redis: Option<deadpool_redis::Pool>,
}

impl SummaryCache {
    pub fn new(ttl: Duration, capacity: usize, redis: Option<deadpool_redis::Pool>) -> Self {
        Self {
            ttl,
            local: TtlCache::new("analytics_summaries", capacity, ttl),
            versions: Mutex::new(HashMap::new()),
            redis,
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn version_key(org: &str) -> String {
        format!("salestrainer:analytics:version:{org}")
    }

    /// The key of `request` (a canonical string of the effective request) for `org`, or
    /// `None` when the cache is off or unreachable.
    pub async fn key(&self, org: &str, request: &str) -> Option<String> {
        if !self.enabled() {
            return None;
        }
        let version = match &self.redis {
            Some(pool) => {
                let mut conn = pool.get().await.ok()?;
                let v: Option<u64> = redis::cmd("GET")
                    .arg(Self::version_key(org))
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                v.unwrap_or(0)
            }
            None => self
                .versions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(org)
                .copied()
                .unwrap_or(0),
        };
        Some(format!("salestrainer:analytics:{org}:{version}:{request}"))
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match &self.redis {
            Some(pool) => {
                let mut conn = pool.get().await.ok()?;
                let hit: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                let outcome = if hit.is_some() { "hit" } else { "miss" };
                metrics::counter!("cache_requests_total", "cache" => "analytics_summaries", "outcome" => outcome)
                    .increment(1);
                hit
            }
            None => self.local.get(&key.to_owned()),
        }
    }

    pub async fn put(&self, key: String, value: Vec<u8>) {
        match &self.redis {
            Some(pool) => {
                let Ok(mut conn) = pool.get().await else {
                    return;
                };
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(self.ttl.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
            }
            None => self.local.insert(key, value),
        }
    }

    /// Moves `org` to a new version: every cached answer of it is unreachable from now on.
    pub async fn bump(&self, org: &str) {
        match &self.redis {
            Some(pool) => {
                let result: anyhow::Result<()> = async {
                    let mut conn = pool.get().await?;
                    let _: u64 = redis::cmd("INCR")
                        .arg(Self::version_key(org))
                        .query_async(&mut conn)
                        .await?;
                    Ok(())
                }
                .await;
                if let Err(err) = result {
                    // Stale answers may then live until their TTL; say so loudly.
                    tracing::error!(org, error = %err, "cannot bump the analytics cache version");
                }
            }
            None => {
                *self
                    .versions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(org.to_owned())
                    .or_default() += 1;
                // Old entries are unreachable anyway; dropping them frees the room at once.
                let prefix = format!("salestrainer:analytics:{org}:");
                self.local.invalidate_where(|k| k.starts_with(&prefix));
            }
        }
    }
}
