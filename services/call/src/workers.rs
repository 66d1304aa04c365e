//! Background work of the call service, stopped by the context's shutdown token:
//! the consumer of grading's events (session GRADING / GRADED / FAILED) and the sweeper that
//! ends idle sessions and sessions past their scenario's time limit.

use std::{sync::Arc, time::Duration};

use salestrainer_bus::{SubscribeOptions, inbox};
use salestrainer_proto::{call as pb, events as ev};
use salestrainer_runtime::{
    Context,
    events::{TOPIC_GRADING, consumer_span, decode},
};
use sea_orm::TransactionTrait;
use tracing::Instrument;

use crate::{
    core::{Core, parse_session_name},
    store::{self, Ending, GradingUpdate, now_us},
};

/// The consumer group (and inbox consumer name) of the call service.
pub const GROUP: &str = "call";

pub fn spawn_grading_consumer(core: Arc<Core>, ctx: &Context) {
    let bus = ctx.bus.clone();
    let consumer = ctx.consumer.clone();
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        let mut sub = loop {
            match bus
                .subscribe(TOPIC_GRADING, GROUP, &consumer, SubscribeOptions::default())
                .await
            {
                Ok(sub) => break sub,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to grading events; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        };
        loop {
            let delivery = tokio::select! {
                () = shutdown.cancelled() => return,
                d = sub.next() => match d { Some(d) => d, None => return },
            };
            let event = match decode(&delivery.envelope) {
                Ok(e) => e,
                Err(e) => {
                    // Undecodable forever: acknowledge so it does not block the group.
                    tracing::warn!(error = %e, event_id = %delivery.envelope.event_id, "undecodable grading event dropped");
                    let _ = delivery.ack().await;
                    continue;
                }
            };
            let span = consumer_span(&event, GROUP);
            match handle(&core, &event).instrument(span).await {
                Ok(()) => {
                    let _ = delivery.ack().await;
                }
                Err(e) => {
                    // Not acked: the bus redelivers it after the visibility timeout.
                    tracing::warn!(error = %e, event_id = %event.event_id, "grading event not applied; will be redelivered");
                }
            }
        }
    });
}

/// Applies one grading event exactly once (inbox), then tells watchers.
pub async fn handle(core: &Core, event: &ev::Event) -> anyhow::Result<()> {
    let (session, update) = match &event.payload {
        Some(ev::event::Payload::GradingStarted(e)) => (e.session.clone(), GradingUpdate::Started),
        Some(ev::event::Payload::SessionGraded(e)) => (
            e.session.clone(),
            GradingUpdate::Graded {
                evaluation: e.evaluation.clone(),
                score: e.overall_score,
                passed: e.passed,
                closed: e.closed,
            },
        ),
        Some(ev::event::Payload::GradingFailed(e)) => (e.session.clone(), GradingUpdate::Failed),
        _ => return Ok(()),
    };
    let Some((_, id)) = parse_session_name(&session) else {
        return Ok(());
    };
    let db = core.db().map_err(|e| anyhow::anyhow!("{e}"))?;
    let _gate = store::SQLITE_WRITES.enter(db).await;
    let txn = db.begin().await?;
    let changed = if inbox::mark_handled(&txn, GROUP, &event.event_id).await? {
        store::apply_grading(&txn, id, &update).await?
    } else {
        None
    };
    txn.commit().await?;
    if let Some(m) = changed {
        core.changed(m, false);
    }
    Ok(())
}

pub fn spawn_sweeper(core: Arc<Core>, ctx: &Context) {
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(core.settings.sweep_interval);
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
pub async fn sweep_once(core: &Core) -> anyhow::Result<usize> {
    let db = core.db().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = now_us();
    let idle_us = i64::try_from(core.settings.idle_timeout.as_micros()).unwrap_or(i64::MAX);
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
