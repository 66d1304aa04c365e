//! The consumer of grading's events: moves a session to GRADING / GRADED / FAILED (the rules
//! are `domain::session`'s, applied by the store) and tells watchers. Stopped by the context's
//! shutdown token.

use std::{sync::Arc, time::Duration};

use salestrainer_bus::{SubscribeOptions, inbox};
use salestrainer_proto::events as ev;
use salestrainer_runtime::{
    Context,
    events::{TOPIC_GRADING, consumer_span, decode},
};
use sea_orm::TransactionTrait;
use tracing::Instrument;

use super::{Core, parse_session_name};
use crate::store::{self, GradingUpdate};

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
