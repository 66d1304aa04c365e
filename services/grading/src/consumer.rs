//! Consumes SessionEnded events: one grading job per session, idempotent through the inbox
//! (and the job table's unique keys).

use std::sync::Arc;
use std::time::Duration;

use salestrainer_bus::{SubscribeOptions, inbox};
use salestrainer_proto::events as ev;
use salestrainer_runtime::events::{TOPIC_SESSIONS, consumer_span, decode};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::store::{self, INBOX_CONSUMER, NewJob};
use crate::worker::Engine;

fn ts_ms(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.and_then(|t| {
        t.seconds
            .checked_mul(1000)?
            .checked_add(i64::from(t.nanos / 1_000_000))
    })
}

fn dur_ms(d: Option<&prost_types::Duration>) -> Option<i64> {
    d.and_then(|d| {
        d.seconds
            .checked_mul(1000)?
            .checked_add(i64::from(d.nanos / 1_000_000))
    })
}

/// Creates the job of a SessionEnded event (or nothing, for a repeat). Returns the job id when
/// a job was created now.
pub async fn handle_session_ended(
    db: &DatabaseConnection,
    event: &ev::Event,
    max_attempts: i32,
) -> anyhow::Result<Option<String>> {
    let Some(ev::event::Payload::SessionEnded(ended)) = &event.payload else {
        return Ok(None);
    };
    let organization =
        crate::names::organization_of(&ended.session).unwrap_or_else(|| event.organization.clone());
    let n = NewJob {
        organization,
        session: ended.session.clone(),
        request_id: event.event_id.clone(),
        trainee: ended.trainee.clone(),
        scenario: ended.scenario.clone(),
        assignment: ended.assignment.clone(),
        rubric: String::new(),
        session_start_ms: ts_ms(ended.start_time.as_ref()),
        session_duration_ms: dur_ms(ended.duration.as_ref()),
        max_attempts,
    };
    let _gate = store::write_gate(db).await;
    let txn = db.begin().await?;
    if !inbox::mark_handled(&txn, INBOX_CONSUMER, &event.event_id).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    let (job, created) = store::create_first_job(&txn, &n).await?;
    txn.commit().await?;
    Ok(created.then_some(job.id))
}

/// Follows the sessions topic until shutdown.
pub fn spawn(engine: Arc<Engine>, ctx: salestrainer_runtime::Context, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut sub = loop {
            match ctx
                .bus
                .subscribe(
                    TOPIC_SESSIONS,
                    "grading",
                    &ctx.consumer,
                    SubscribeOptions {
                        batch_size: 16,
                        ..SubscribeOptions::default()
                    },
                )
                .await
            {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(error = %e, "grading cannot subscribe to session events; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            let delivery = tokio::select! {
                () = stop.cancelled() => break,
                d = sub.next() => match d { Some(d) => d, None => break },
            };
            if delivery.envelope.event_type != "session.ended" {
                let _ = delivery.ack().await;
                continue;
            }
            let event = match decode(&delivery.envelope) {
                Ok(e) => e,
                Err(e) => {
                    // A payload that cannot decode never will: drop it rather than loop on it.
                    tracing::warn!(error = %e, event_id = %delivery.envelope.event_id, "undecodable SessionEnded dropped");
                    let _ = delivery.ack().await;
                    continue;
                }
            };
            let span = consumer_span(&event, "grading");
            let res = handle_session_ended(&engine.db, &event, engine.cfg.max_attempts)
                .instrument(span)
                .await;
            match res {
                Ok(created) => {
                    if let Some(id) = created {
                        engine.job_ready(&id).await;
                    }
                    let _ = delivery.ack().await;
                }
                // Not acked: redelivered after the visibility timeout.
                Err(e) => tracing::warn!(error = %e, "handling SessionEnded failed"),
            }
        }
    });
}
