//! Handles SessionEnded events: one grading job per session, idempotent through the inbox
//! (and the job table's unique keys). The runtime's consumer loop runs it (see
//! `GradingApp::start`).

use std::collections::BTreeMap;
use std::sync::Arc;

use salestrainer_bus::inbox;
use salestrainer_proto::events as ev;
use salestrainer_runtime::{
    consumer::{EventHandler, Received},
    db::begin_write,
    names,
    time::{duration_ms, micros},
};
use sea_orm::DatabaseConnection;

use crate::app::Engine;
use crate::store::{self, INBOX_CONSUMER, NewJob};

/// The consumer group of the grading service on the sessions topic.
pub const GROUP: &str = "grading";

/// A burst of SessionEnded events becomes its jobs in one transaction; each job keeps its
/// event's consume span context, so its attempts continue the producer's trace.
pub struct SessionEvents(pub Arc<Engine>);

impl EventHandler for SessionEvents {
    async fn handle(&self, batch: &[Received]) -> anyhow::Result<()> {
        let events: Vec<(&ev::Event, BTreeMap<String, String>)> = batch
            .iter()
            .map(|r| (&r.event, r.trace_context()))
            .collect();
        let created =
            handle_session_ended_batch(&self.0.db, &events, self.0.cfg.max_attempts).await?;
        for id in created.into_iter().flatten() {
            self.0.job_ready(&id).await;
        }
        Ok(())
    }
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
    let txn = begin_write(db).await?;
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
    let organization = names::organization_of(&ended.session)
        .map(names::organization_name)
        .unwrap_or_else(|| event.organization.clone());
    Some(NewJob {
        organization,
        session: ended.session.clone(),
        request_id: event.event_id.clone(),
        trainee: ended.trainee.clone(),
        scenario: ended.scenario.clone(),
        assignment: ended.assignment.clone(),
        rubric: ended.rubric.clone(),
        session_start_us: ended.start_time.as_ref().and_then(micros),
        session_duration_ms: ended.duration.as_ref().and_then(duration_ms),
        session_source: ended.source,
        max_attempts,
        trace_context: trace.clone(),
    })
}
