use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};

/// W3C trace context header carried across the bus so a consumer's span joins the producer's
/// trace.
pub const HEADER_TRACEPARENT: &str = "traceparent";
pub const HEADER_TRACESTATE: &str = "tracestate";

/// One event as the bus sees it: routing metadata plus an opaque payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Globally unique; consumers deduplicate on it (see [`crate::inbox::mark_handled`]).
    pub event_id: String,
    /// Stream / queue name, e.g. `salestrainer.sessions`.
    pub topic: String,
    /// What happened, e.g. `session.ended`; lets a consumer skip events it does not care about
    /// without decoding the payload.
    pub event_type: String,
    /// Tenant the event belongs to.
    pub organization: String,
    /// Trace context (`traceparent`, `tracestate`) and any other string metadata.
    pub headers: BTreeMap<String, String>,
    /// Encoded `salestrainer.events.v1.Event` (opaque to the bus).
    pub payload: Bytes,
    pub occurred_at: DateTime<Utc>,
}

impl Envelope {
    /// An envelope stamped with the current time (to the microsecond, the precision the
    /// databases keep, so an envelope read back from the outbox compares equal) and no headers.
    pub fn new(
        event_id: impl Into<String>,
        topic: impl Into<String>,
        event_type: impl Into<String>,
        organization: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            topic: topic.into(),
            event_type: event_type.into(),
            organization: organization.into(),
            headers: BTreeMap::new(),
            payload: payload.into(),
            occurred_at: Utc::now().trunc_subsecs(6),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }

    pub(crate) fn headers_json(&self) -> String {
        // A BTreeMap<String, String> always serialises; fall back to an empty object anyway
        // rather than panic.
        serde_json::to_string(&self.headers).unwrap_or_else(|_| "{}".to_owned())
    }

    pub(crate) fn parse_headers(json: &str) -> crate::Result<BTreeMap<String, String>> {
        if json.is_empty() {
            return Ok(BTreeMap::new());
        }
        serde_json::from_str(json).map_err(|e| crate::Error::Malformed(format!("headers: {e}")))
    }
}
