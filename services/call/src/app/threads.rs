//! Where conversation threads live between turns: Redis with a 7-day TTL in distributed mode
//! (any replica can continue a session), a bounded in-process TTL cache otherwise. Failures
//! here only cost a rebuild from the transcript, so they are logged, not returned.

use std::time::Duration;

use redis::AsyncCommands;
use salestrainer_runtime::cache::TtlCache;

use super::persona_engine::Thread;

pub enum ThreadStore {
    Redis {
        pool: deadpool_redis::Pool,
        ttl: Duration,
    },
    Local(TtlCache<String, Thread>),
}

pub fn redis_key(session_id: &str) -> String {
    format!("salestrainer:call:thread:{session_id}")
}

impl ThreadStore {
    pub fn new(
        redis: Option<deadpool_redis::Pool>,
        ttl: Duration,
        capacity: usize,
        local_ttl: Duration,
    ) -> Self {
        match redis {
            Some(pool) => ThreadStore::Redis { pool, ttl },
            None => ThreadStore::Local(TtlCache::new("call_threads", capacity, local_ttl)),
        }
    }

    pub async fn get(&self, session_id: &str) -> Option<Thread> {
        match self {
            ThreadStore::Local(cache) => cache.get(&session_id.to_owned()),
            ThreadStore::Redis { pool, .. } => {
                let mut conn = match pool.get().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "thread store: redis unavailable; rebuilding from transcript");
                        return None;
                    }
                };
                let raw: Option<String> = match conn.get(redis_key(session_id)).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "thread store: redis GET failed");
                        return None;
                    }
                };
                raw.and_then(|s| serde_json::from_str(&s).ok())
            }
        }
    }

    pub async fn put(&self, session_id: &str, thread: &Thread) {
        match self {
            ThreadStore::Local(cache) => cache.insert(session_id.to_owned(), thread.clone()),
            ThreadStore::Redis { pool, ttl } => {
                let Ok(json) = serde_json::to_string(thread) else {
                    return;
                };
                let result: Result<(), String> = async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    conn.set_ex::<_, _, ()>(redis_key(session_id), json, ttl.as_secs())
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "thread store: redis SET failed");
                }
            }
        }
    }

    /// Drops a thread once its session ended: nothing per session is kept longer than needed.
    pub async fn remove(&self, session_id: &str) {
        match self {
            ThreadStore::Local(cache) => cache.invalidate(&session_id.to_owned()),
            ThreadStore::Redis { pool, .. } => {
                if let Ok(mut conn) = pool.get().await {
                    let _: Result<(), _> = conn.del(redis_key(session_id)).await;
                }
            }
        }
    }
}
