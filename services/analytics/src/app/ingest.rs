//! Events in, by two doors: the bus consumers (one task per topic) and the IngestEvents RPC.
//! Both check events with [`crate::domain::events::parse`] and apply them through
//! [`AnalyticsApp::ingest`].

use std::sync::Arc;

use salestrainer_bus::SubscribeOptions;
use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiResult, Context, Principal, Violations, events};
use tracing::Instrument;

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

/// Follows the three topics analytics reads, one task each, until shutdown.
pub fn spawn_consumers(app: Arc<AnalyticsApp>, ctx: &Context) {
    for topic in [
        events::TOPIC_SESSIONS,
        events::TOPIC_GRADING,
        events::TOPIC_CONFIG,
    ] {
        let app = app.clone();
        let bus = ctx.bus.clone();
        let consumer = ctx.consumer.clone();
        let shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut sub = loop {
                match bus
                    .subscribe(
                        topic,
                        crate::SERVICE,
                        &consumer,
                        SubscribeOptions::default(),
                    )
                    .await
                {
                    Ok(sub) => break sub,
                    Err(err) => {
                        tracing::warn!(topic, error = %err, "cannot subscribe; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                        }
                    }
                }
            };
            loop {
                let delivery = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = sub.next() => match next { Some(d) => d, None => return },
                };
                let event = match events::decode(&delivery.envelope) {
                    Ok(event) => event,
                    Err(err) => {
                        // Can never succeed: drop it rather than block the stream.
                        tracing::error!(topic, event_id = %delivery.envelope.event_id, error = %err, "undecodable event dropped");
                        let _ = delivery.ack().await;
                        continue;
                    }
                };
                let span = events::consumer_span(&event, crate::SERVICE);
                let parsed = match parse(&event, "") {
                    Ok(p) => p,
                    Err(violations) => {
                        tracing::error!(parent: &span, topic, event_id = %event.event_id, ?violations, "invalid event dropped");
                        let _ = delivery.ack().await;
                        continue;
                    }
                };
                match app.ingest(&[parsed]).instrument(span.clone()).await {
                    Ok(_) => {
                        if let Err(err) = delivery.ack().await {
                            tracing::warn!(parent: &span, error = %err, "ack failed; the redelivery will be a duplicate");
                        }
                    }
                    Err(err) => {
                        // Not acked: the bus redelivers it after its visibility timeout.
                        tracing::warn!(parent: &span, error = %err, "event not applied; will be redelivered");
                        drop(delivery);
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}
