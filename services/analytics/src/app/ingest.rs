//! Events in, by two doors: the bus consumers (the runtime's loop, one per topic) and the
//! IngestEvents RPC.
//! Both check events with [`crate::domain::events::parse`] and apply them through
//! [`AnalyticsApp::ingest`].

use std::sync::Arc;

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{
    ApiResult, Context, Principal, Violations,
    consumer::{self, EventHandler, Received, Subscription},
    events,
};

use super::{AnalyticsApp, messages::clamp_i32};
use crate::domain::events::parse;

/// IngestEvents: a service hands events over directly (replays, backfills).
pub async fn ingest_events(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::IngestEventsRequest,
) -> ApiResult<pb::IngestEventsResponse> {
    // The auth layer already admits only services; this keeps the rule next to the code.
    p.require_role(&[])?;
    let mut v = Violations::new();
    v.check(
        req.events.is_empty(),
        "events",
        "at least one event is required",
    );
    v.check(
        req.events.len() > 500,
        "events",
        "at most 500 events per call",
    );
    let mut parsed = Vec::with_capacity(req.events.len());
    for (i, e) in req.events.iter().enumerate() {
        match parse(e, &format!("events[{i}].")) {
            Ok(p) => parsed.push(p),
            Err(violations) => {
                for fv in violations {
                    v.add(fv.field, fv.description);
                }
            }
        }
    }
    v.into_result()?;
    let out = app.ingest(&parsed).await?;
    Ok(pb::IngestEventsResponse {
        accepted: clamp_i32(out.accepted as i64),
        duplicates: clamp_i32(out.duplicates as i64),
    })
}

/// The bus door: each batch of events from one topic is checked and applied in one
/// transaction (the inbox makes a redelivery a duplicate). An event that fails the checks
/// never will pass them, so it is logged and dropped with the batch's ack.
pub struct BusEvents(pub Arc<AnalyticsApp>);

impl EventHandler for BusEvents {
    async fn handle(&self, batch: &[Received]) -> anyhow::Result<()> {
        let mut parsed = Vec::with_capacity(batch.len());
        for r in batch {
            match parse(&r.event, "") {
                Ok(p) => parsed.push(p),
                Err(violations) => {
                    tracing::error!(parent: &r.span, event_id = %r.event.event_id, ?violations, "invalid event dropped");
                }
            }
        }
        if !parsed.is_empty() {
            self.0.ingest(&parsed).await?;
        }
        Ok(())
    }
}

/// Follows the four topics analytics reads, one consumer each, until shutdown.
pub fn spawn_consumers(app: &Arc<AnalyticsApp>, ctx: &Context) {
    let handler = Arc::new(BusEvents(Arc::clone(app)));
    for topic in [
        events::TOPIC_SESSIONS,
        events::TOPIC_GRADING,
        events::TOPIC_CONFIG,
        events::TOPIC_COMMENTS,
    ] {
        let sub = Subscription::new(topic, crate::SERVICE).batches_of(16);
        consumer::spawn(ctx, sub, Arc::clone(&handler));
    }
}
