//! Domain events on the bus: `salestrainer.events.v1.Event` protobufs inside bus envelopes,
//! with the producer's trace context so a consumer's span continues the same trace.

use prost::Message;
use salestrainer_bus::Envelope;
use salestrainer_proto::events as pb;
use sea_orm::{ConnectionTrait, DbErr};

/// SessionStarted and SessionEnded (producer: call).
pub const TOPIC_SESSIONS: &str = "salestrainer.sessions";
/// GradingStarted, SessionGraded, GradingFailed and EvaluationOverridden (producer: grading).
pub const TOPIC_GRADING: &str = "salestrainer.grading";
/// ConfigChanged (producer: config).
pub const TOPIC_CONFIG: &str = "salestrainer.config";
/// CommentAdded and CommentDeleted (producer: call). A topic of their own, so grading's
/// consumer of the sessions topic (and the autoscaling on its lag) never sees them.
pub const TOPIC_COMMENTS: &str = "salestrainer.comments";

pub fn topic_of(payload: &pb::event::Payload) -> &'static str {
    use pb::event::Payload::*;
    match payload {
        SessionStarted(_) | SessionEnded(_) => TOPIC_SESSIONS,
        GradingStarted(_) | SessionGraded(_) | GradingFailed(_) | EvaluationOverridden(_) => {
            TOPIC_GRADING
        }
        ConfigChanged(_) => TOPIC_CONFIG,
        CommentAdded(_) | CommentDeleted(_) => TOPIC_COMMENTS,
    }
}

pub fn type_of(payload: &pb::event::Payload) -> &'static str {
    use pb::event::Payload::*;
    match payload {
        SessionStarted(_) => "session.started",
        SessionEnded(_) => "session.ended",
        SessionGraded(_) => "session.graded",
        GradingStarted(_) => "grading.started",
        GradingFailed(_) => "grading.failed",
        EvaluationOverridden(_) => "evaluation.overridden",
        ConfigChanged(_) => "config.changed",
        CommentAdded(_) => "comment.added",
        CommentDeleted(_) => "comment.deleted",
    }
}

/// A new event stamped with a fresh id, the current time and the current trace context.
/// `organization` is the resource name `organizations/{id}`.
pub fn new_event(organization: &str, producer: &str, payload: pb::event::Payload) -> pb::Event {
    let now = chrono::Utc::now();
    pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        occur_time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
        organization: organization.to_owned(),
        trace_context: crate::telemetry::current_trace_context()
            .into_iter()
            .collect(),
        producer: producer.to_owned(),
        payload: Some(payload),
    }
}

pub fn to_envelope(event: &pb::Event) -> Envelope {
    let (topic, kind) = event
        .payload
        .as_ref()
        .map_or(("salestrainer.unknown", "unknown"), |p| {
            (topic_of(p), type_of(p))
        });
    let mut env = Envelope::new(
        event.event_id.clone(),
        topic,
        kind,
        event.organization.clone(),
        event.encode_to_vec(),
    );
    for (k, v) in &event.trace_context {
        env = env.with_header(k.clone(), v.clone());
    }
    env
}

/// Writes `event` to the outbox inside the caller's transaction; call the relay's
/// notifier after commit.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, event: &pb::Event) -> Result<(), DbErr> {
    salestrainer_bus::outbox::enqueue(conn, &to_envelope(event)).await
}

/// Like [`enqueue`] for several events, in one statement.
pub async fn enqueue_many<C: ConnectionTrait>(conn: &C, events: &[pb::Event]) -> Result<(), DbErr> {
    let envs: Vec<_> = events.iter().map(to_envelope).collect();
    salestrainer_bus::outbox::enqueue_many(conn, &envs).await
}

pub fn decode(env: &Envelope) -> Result<pb::Event, prost::DecodeError> {
    pb::Event::decode(env.payload.as_ref())
}

/// A span for handling `event`, continuing the producer's trace.
pub fn consumer_span(event: &pb::Event, consumer: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "event.consume",
        otel.name = %format!("consume {}", event.payload.as_ref().map_or("unknown", type_of)),
        otel.kind = "consumer",
        event_id = %event.event_id,
        consumer,
    );
    let headers = event
        .trace_context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    crate::telemetry::set_parent_from(&span, &headers);
    span
}
