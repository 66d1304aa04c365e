//! The summary cache of distributed mode against a real Redis (SALESTRAINER_TEST_REDIS_URL,
//! default redis://127.0.0.1:6379; fails, not skips, without it): two replicas share answers,
//! a bump on either makes every cached answer of that organization unreachable at once, other
//! organizations keep theirs, and entries carry the TTL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use salestrainer_analytics::app::summary_cache::SummaryCache;

async fn pool() -> deadpool_redis::Pool {
    let pool = salestrainer_runtime::redis::pool(&salestrainer_tests::redis_url()).unwrap();
    salestrainer_runtime::redis::ping(&pool)
        .await
        .expect("Redis must be running for this test");
    pool
}

#[tokio::test]
async fn replicas_share_answers_and_a_bump_invalidates_them_everywhere() {
    let pool = pool().await;
    let ttl = Duration::from_secs(30);
    let a = SummaryCache::new(ttl, 100, Some(pool.clone()));
    let b = SummaryCache::new(ttl, 100, Some(pool.clone()));
    let run = uuid::Uuid::new_v4().simple().to_string();
    let org = format!("organizations/cache-{run}");
    let other = format!("organizations/other-{run}");

    let key = a.key(&org, "summary?days=30").await.expect("key");
    assert!(b.get(&key).await.is_none());
    a.put(key.clone(), b"answer-1".to_vec()).await;
    // The other replica computes the same key and finds the answer.
    assert_eq!(
        b.key(&org, "summary?days=30").await.as_deref(),
        Some(key.as_str())
    );
    assert_eq!(b.get(&key).await.as_deref(), Some(&b"answer-1"[..]));
    // Stored with the TTL.
    let mut conn = pool.get().await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 25_000 && pttl <= 30_000, "{pttl}");

    let other_key = a.key(&other, "summary?days=30").await.unwrap();
    a.put(other_key.clone(), b"other".to_vec()).await;

    // An ingest on replica B bumps the version: replica A's next key misses.
    b.bump(&org).await;
    let after = a.key(&org, "summary?days=30").await.unwrap();
    assert_ne!(after, key);
    assert!(a.get(&after).await.is_none());
    // Another organization's answers are untouched.
    assert_eq!(
        a.key(&other, "summary?days=30").await,
        Some(other_key.clone())
    );
    assert_eq!(a.get(&other_key).await.as_deref(), Some(&b"other"[..]));

    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&other_key)
        .arg(format!("salestrainer:analytics:version:{org}"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
