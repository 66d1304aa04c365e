//! The optional Redis pool of distributed mode.

use deadpool_redis::{Config, Pool, Runtime};

pub fn pool(url: &str) -> anyhow::Result<Pool> {
    Ok(Config::from_url(url).create_pool(Some(Runtime::Tokio1))?)
}

/// Fails unless Redis answers a PING.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    anyhow::ensure!(pong == "PONG", "unexpected PING reply {pong:?}");
    Ok(())
}
