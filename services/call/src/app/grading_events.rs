//! The consumer of grading's events: moves a session to GRADING / GRADED / FAILED (the rules
//! are `domain::session`'s, applied by the store), copies a manager's override onto the
//! session's score, and tells watchers. The runtime's consumer
//! loop runs it (see `CallApp::start`).

use std::sync::Arc;

use salestrainer_bus::inbox;
use salestrainer_proto::events as ev;
use salestrainer_runtime::{
    consumer::{EventHandler, Received},
    db::begin_write,
    names,
};

use super::CallApp;
use crate::store::{self, GradingUpdate};

/// The consumer group (and inbox consumer name) of the call service.
pub const GROUP: &str = "call";

/// The grading events that move a session.
pub const EVENT_TYPES: &[&str] = &[
    "grading.started",
    "session.graded",
    "grading.failed",
    "evaluation.overridden",
];

pub struct GradingEvents(pub Arc<CallApp>);

impl EventHandler for GradingEvents {
    /// Applies a batch exactly once (inbox, same transaction), then tells watchers.
    async fn handle(&self, batch: &[Received]) -> anyhow::Result<()> {
        let db = self.0.db().map_err(|e| anyhow::anyhow!("{e}"))?;
        let txn = begin_write(db).await?;
        let mut changed = Vec::new();
        for r in batch {
            if !inbox::mark_handled(&txn, GROUP, &r.event.event_id).await? {
                continue;
            }
            if let Some((id, update)) = update_of(&r.event)
                && let Some(m) = store::apply_grading(&txn, id, &update).await?
            {
                changed.push(m);
            }
        }
        txn.commit().await?;
        for m in changed {
            self.0.changed(&m, false);
        }
        Ok(())
    }
}

/// The session id an event is about and what it does to it; `None` for anything else.
fn update_of(event: &ev::Event) -> Option<(&str, GradingUpdate)> {
    let (session, update) = match &event.payload {
        Some(ev::event::Payload::GradingStarted(e)) => (&e.session, GradingUpdate::Started),
        Some(ev::event::Payload::SessionGraded(e)) => (
            &e.session,
            GradingUpdate::Graded {
                evaluation: e.evaluation.clone(),
                score: e.overall_score,
                passed: e.passed,
                closed: e.closed,
                revision: 0,
            },
        ),
        Some(ev::event::Payload::GradingFailed(e)) => (&e.session, GradingUpdate::Failed),
        Some(ev::event::Payload::EvaluationOverridden(e)) => (
            &e.session,
            GradingUpdate::Overridden {
                evaluation: e.evaluation.clone(),
                score: e.overall_score,
                passed: e.passed,
                revision: e.revision,
            },
        ),
        _ => return None,
    };
    let (_, id) = names::parse_child(session, "sessions")?;
    Some((id, update))
}
