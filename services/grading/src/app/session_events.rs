//! Consumes SessionEnded events: one grading job per session, idempotent through the inbox
//! (and the job table's unique keys).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use salestrainer_bus::{SubscribeOptions, inbox};
use salestrainer_proto::events as ev;
use salestrainer_runtime::events::{TOPIC_SESSIONS, consumer_span, decode};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::app::Engine;
use crate::store::{self, INBOX_CONSUMER, NewJob};

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
/// a job was created now. The job keeps the current span's trace context.
pub async fn handle_session_ended(
    db: &DatabaseConnection,
    event: &ev::Event,
    max_attempts: i32,
) -> anyhow::Result<Option<String>> {
    // No context of its own: the job takes the current span's.
    let created = handle_session_ended_batch(db, &[(event, BTreeMap::new())], max_attempts).await?;
    Ok(created.into_iter().next().flatten())
}

/// Creates the jobs of a batch of SessionEnded events in one transaction (one inbox statement
/// for the batch, one insert per new job), each job keeping the trace context given with its
/// event (an empty one: the current span's). Returns, per event, the job id when a job was created now.
pub async fn handle_session_ended_batch(
    db: &DatabaseConnection,
    events: &[(&ev::Event, BTreeMap<String, String>)],
    max_attempts: i32,
) -> anyhow::Result<Vec<Option<String>>> {
    let jobs: Vec<Option<NewJob>> = events
        .iter()
        .map(|(event, trace)| new_job(event, trace, max_attempts))
        .collect();
    let ids: Vec<&str> = events
        .iter()
        .zip(&jobs)
        .filter(|(_, j)| j.is_some())
        .map(|((e, _), _)| e.event_id.as_str())
        .collect();
    if ids.is_empty() {
        return Ok(vec![None; events.len()]);
    }
    let _gate = store::write_gate(db).await;
    let txn = db.begin().await?;
    let mut fresh = inbox::mark_handled_many(&txn, INBOX_CONSUMER, &ids).await?;
    let mut created = Vec::with_capacity(events.len());
    for ((event, _), job) in events.iter().zip(jobs) {
        // An event id seen before, or twice in this batch, creates nothing (more).
        match job {
            Some(n) if fresh.remove(&event.event_id) => {
                let (job, new) = store::create_first_job(&txn, &n).await?;
                created.push(new.then_some(job.id));
            }
            _ => created.push(None),
        }
    }
    txn.commit().await?;
    Ok(created)
}

fn new_job(
    event: &ev::Event,
    trace: &BTreeMap<String, String>,
    max_attempts: i32,
) -> Option<NewJob> {
    let Some(ev::event::Payload::SessionEnded(ended)) = &event.payload else {
        return None;
    };
    let organization = crate::domain::names::organization_of(&ended.session)
        .unwrap_or_else(|| event.organization.clone());
    Some(NewJob {
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
        trace_context: trace.clone(),
    })
}

/// SessionEnded events handled in one transaction at most.
const BATCH: usize = 16;

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
            // A burst of SessionEnded events is handled in one transaction.
            let batch = tokio::select! {
                () = stop.cancelled() => break,
                b = sub.next_batch(BATCH) => b,
            };
            if batch.is_empty() {
                break;
            }
            let mut handle = Vec::new();
            for delivery in batch {
                if delivery.envelope.event_type != "session.ended" {
                    let _ = delivery.ack().await;
                    continue;
                }
                match decode(&delivery.envelope) {
                    Ok(event) => handle.push((delivery, event)),
                    Err(e) => {
                        // A payload that cannot decode never will: drop it rather than loop.
                        tracing::warn!(error = %e, event_id = %delivery.envelope.event_id, "undecodable SessionEnded dropped");
                        let _ = delivery.ack().await;
                    }
                }
            }
            if handle.is_empty() {
                continue;
            }
            // One consume span per event, continuing its producer's trace; the job keeps it so
            // its attempts continue the same trace.
            let spans: Vec<tracing::Span> = handle
                .iter()
                .map(|(_, e)| consumer_span(e, "grading"))
                .collect();
            let events: Vec<(&ev::Event, BTreeMap<String, String>)> = handle
                .iter()
                .zip(&spans)
                .map(|((_, e), span)| {
                    (
                        e,
                        span.in_scope(salestrainer_runtime::telemetry::current_trace_context),
                    )
                })
                .collect();
            let res =
                handle_session_ended_batch(&engine.db, &events, engine.cfg.max_attempts).await;
            drop(spans);
            match res {
                Ok(created) => {
                    for id in created.into_iter().flatten() {
                        engine.job_ready(&id).await;
                    }
                    for (delivery, _) in handle {
                        let _ = delivery.ack().await;
                    }
                }
                // Not acked: redelivered after the visibility timeout.
                Err(e) => tracing::warn!(error = %e, "handling SessionEnded failed"),
            }
        }
    });
}
