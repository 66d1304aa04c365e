//! The sweeper: ends ACTIVE sessions idle longer than the timeout or past their scenario's
//! time limit. Stopped by the context's shutdown token.

use std::sync::Arc;

use salestrainer_proto::call as pb;
use salestrainer_runtime::{Context, time::now_us};

use super::CallApp;
use crate::store::{self, Ending};

pub fn spawn_sweeper(core: Arc<CallApp>, ctx: &Context) {
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(core.settings.sweep_interval());
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = sweep_once(&core).await {
                tracing::warn!(error = %e, "idle-session sweep failed");
            }
        }
    });
}

/// Ends every ACTIVE session idle longer than the timeout or past its time limit. Returns how
/// many it ended. Safe on several replicas: ending is conditional on ACTIVE.
pub async fn sweep_once(core: &CallApp) -> anyhow::Result<usize> {
    let db = core.db().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = now_us();
    let idle_us = i64::try_from(core.settings.idle_timeout().as_micros()).unwrap_or(i64::MAX);
    let mut ended = 0;
    loop {
        let batch = store::expired_sessions(db, now.saturating_sub(idle_us), now, 100).await?;
        if batch.is_empty() {
            return Ok(ended);
        }
        let n = batch.len();
        for m in batch {
            let over_time = m.deadline_us.is_some_and(|d| d <= now);
            let (reason, detail) = if over_time {
                (pb::EndReason::TimeLimit, "scenario time limit reached")
            } else {
                (pb::EndReason::Error, "idle timeout")
            };
            let r = core
                .end(
                    &m.id,
                    Ending {
                        state: pb::SessionState::Ended as i32,
                        reason: reason as i32,
                        detail: detail.into(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if r.changed {
                ended += 1;
            }
        }
        if n < 100 {
            return Ok(ended);
        }
    }
}
