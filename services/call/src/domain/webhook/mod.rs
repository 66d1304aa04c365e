//! Voice-provider webhooks: signature verification (`verify`) and parsing into domain events,
//! one file per provider (`vapi`, `retell`); this file holds the events both parse into.
//!
//! Pure functions over the raw body bytes and the few header values that matter; the HTTP
//! layer reads the headers, enforces [`MAX_WEBHOOK_BODY`] (413), maps [`VerifyError`] to 401
//! and [`ParseError`] to 400, and records each event under its idempotency key.
//!
//! Roles: at VAPI the *assistant* is our AI persona and the *user* the trainee; at Retell the
//! *agent* is the persona and the *user* the trainee.
//!
//! Parsing walks a `serde_json::Value` rather than typed structs on purpose: providers add
//! fields and occasionally change a field's type, and an odd field must not make us drop a
//! whole end-of-call report. Unknown fields are ignored; a field of an unexpected type counts
//! as missing.

mod retell;
mod vapi;
mod verify;

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use retell::parse_retell;
pub use vapi::parse_vapi;
pub use verify::*;

use super::transcript::Speaker;

/// Bodies larger than this are refused (413) before they reach this module.
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;

/// Allowed clock skew between a signature's timestamp and our clock.
pub const SIGNATURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Which voice provider sent a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Vapi,
    Retell,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Vapi => "vapi",
            Provider::Retell => "retell",
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// A webhook turned into what the call service acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub provider: Provider,
    /// The provider's call id (empty only for ignored messages that carry none).
    pub call_id: String,
    /// Our session name, from the metadata set at StartSession.
    pub session_name: Option<String>,
    /// The same for every delivery of the same event; record it to drop repeats.
    pub idempotency_key: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Status(CallStatus),
    TranscriptPartial {
        speaker: Speaker,
        text: String,
    },
    TranscriptFinal {
        speaker: Speaker,
        text: String,
    },
    Ended(CallEnded),
    Analyzed(CallAnalysis),
    /// A message type we do not handle (accepted, acknowledged, not acted on).
    Ignored {
        kind: String,
    },
}

/// A call's status at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Forwarding,
    Ended,
    Other(String),
}

impl CallStatus {
    fn parse(s: &str) -> Self {
        match s {
            "queued" | "registered" => CallStatus::Queued,
            "ringing" => CallStatus::Ringing,
            "in-progress" | "ongoing" => CallStatus::InProgress,
            "forwarding" => CallStatus::Forwarding,
            "ended" => CallStatus::Ended,
            other => CallStatus::Other(other.to_owned()),
        }
    }
}

/// The end of a call, with its final transcript.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallEnded {
    /// The provider's raw reason, e.g. VAPI "customer-ended-call", Retell "user_hangup".
    pub reason: Option<String>,
    /// Cost in millionths of a USD.
    pub cost_micros: Option<i64>,
    pub recording_url: Option<String>,
    /// Call start and end as Unix milliseconds, when the provider reports them.
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    /// The final transcript, in order; system and tool messages are left out.
    pub segments: Vec<Segment>,
}

/// One utterance of a provider's final transcript; offsets from the call's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A provider's post-call analysis (Retell `call_analyzed`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallAnalysis {
    pub summary: Option<String>,
    pub user_sentiment: Option<String>,
    pub successful: Option<bool>,
    /// The whole analysis object, for whatever else the provider sent.
    pub raw: Value,
}

/// Why a body could not be parsed. Maps to 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    TooLarge,
    InvalidJson(String),
    /// A field the event cannot do without (its JSON path).
    MissingField(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge => write!(f, "body larger than {MAX_WEBHOOK_BODY} bytes"),
            ParseError::InvalidJson(e) => write!(f, "invalid JSON: {e}"),
            ParseError::MissingField(p) => write!(f, "missing field {p}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Verification or parsing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    Unauthenticated(VerifyError),
    BadRequest(ParseError),
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::Unauthenticated(e) => write!(f, "unauthenticated: {e}"),
            WebhookError::BadRequest(e) => write!(f, "bad request: {e}"),
        }
    }
}

impl std::error::Error for WebhookError {}

/// Verifies then parses a VAPI webhook.
pub fn vapi_webhook(
    auth: &VapiAuth,
    headers: &VapiHeaders<'_>,
    body: &[u8],
    now_ms: i64,
) -> Result<WebhookEvent, WebhookError> {
    verify_vapi(auth, headers, body, now_ms).map_err(WebhookError::Unauthenticated)?;
    parse_vapi(body).map_err(WebhookError::BadRequest)
}

/// Verifies then parses a Retell webhook.
pub fn retell_webhook(
    api_key: &str,
    signature_header: Option<&str>,
    body: &[u8],
    now_ms: i64,
) -> Result<WebhookEvent, WebhookError> {
    verify_retell(api_key, signature_header, body, now_ms)
        .map_err(WebhookError::Unauthenticated)?;
    parse_retell(body).map_err(WebhookError::BadRequest)
}

fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(ParseError::TooLarge);
    }
    serde_json::from_slice(body).map_err(|e| ParseError::InvalidJson(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// A number, also accepted as a numeric string (providers are not consistent).
fn num_at(v: &Value, path: &[&str]) -> Option<f64> {
    let v = path.iter().try_fold(v, |v, k| v.get(k))?;
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// Non-negative milliseconds, rounded; negatives and absurd values clamp.
fn to_ms(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // `as` saturates at u64::MAX for out-of-range floats.
        v.round() as u64
    } else {
        0
    }
}

fn usd_to_micros(usd: f64) -> Option<i64> {
    let micros = (usd * 1_000_000.0).round();
    // Outside this range it is not a real cost; better none than a saturated number.
    (micros.is_finite() && micros.abs() < 1e15).then_some(micros as i64)
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// 16 hex chars of SHA-256 over the parts (NUL-separated so ("ab","c") != ("a","bc")).
fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Sample deliveries shared by the tests of every file here.
#[cfg(test)]
mod fixtures {
    pub(super) const SECRET: &str = "s3cret-webhook";
    pub(super) const NOW_MS: i64 = 1_760_000_000_000;

    pub(super) const VAPI_STATUS: &str = r#"{"message":{"type":"status-update","status":"in-progress",
        "timestamp":1760000000000,"somethingNew":{"x":1},
        "call":{"id":"call_vapi_1","orgId":"org_1","type":"webCall",
                "metadata":{"session":"organizations/acme/sessions/s1"}}}}"#;

    pub(super) const VAPI_PARTIAL: &str = r#"{"message":{"type":"transcript","role":"user",
        "transcriptType":"partial","transcript":"Hi Dana, I",
        "call":{"id":"call_vapi_1","metadata":{"session":"organizations/acme/sessions/s1"}}}}"#;

    pub(super) const VAPI_FINAL: &str = r#"{"message":{"type":"transcript","role":"assistant",
        "transcriptType":"final","transcript":"Hi, this is Dana.",
        "call":{"id":"call_vapi_1","assistantOverrides":{"metadata":{"session":"organizations/acme/sessions/s1"}}}}}"#;

    pub(super) const VAPI_EOCR: &str =
        include_str!("../../../tests/fixtures/vapi_end_of_call_report.json");
    pub(super) const VAPI_EOCR_LEGACY: &str =
        include_str!("../../../tests/fixtures/vapi_end_of_call_report_legacy.json");
    pub(super) const RETELL_STARTED: &str =
        include_str!("../../../tests/fixtures/retell_call_started.json");
    pub(super) const RETELL_ENDED: &str =
        include_str!("../../../tests/fixtures/retell_call_ended.json");
    pub(super) const RETELL_ANALYZED: &str =
        include_str!("../../../tests/fixtures/retell_call_analyzed.json");
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn duplicate_deliveries_have_equal_keys() {
        let a = parse_vapi(VAPI_EOCR.as_bytes()).expect("parses");
        let b = parse_vapi(VAPI_EOCR.as_bytes()).expect("parses");
        assert_eq!(a.idempotency_key, b.idempotency_key);
        let t1 = parse_vapi(VAPI_PARTIAL.as_bytes()).expect("parses");
        // Same transcript re-sent with different formatting and an extra field.
        let again = VAPI_PARTIAL
            .replace("\n        ", " ")
            .replace(r#""role":"user","#, r#""role":"user","extra":true,"#);
        assert_eq!(
            t1.idempotency_key,
            parse_vapi(again.as_bytes())
                .expect("parses")
                .idempotency_key
        );
        let r1 = parse_retell(RETELL_ENDED.as_bytes()).expect("parses");
        let r2 = parse_retell(RETELL_ENDED.as_bytes()).expect("parses");
        assert_eq!(r1.idempotency_key, r2.idempotency_key);
        assert_ne!(
            r1.idempotency_key,
            parse_retell(RETELL_ANALYZED.as_bytes())
                .expect("parses")
                .idempotency_key
        );
    }

    #[test]
    fn cost_rounding() {
        assert_eq!(usd_to_micros(0.1234567), Some(123_457));
        assert_eq!(usd_to_micros(0.0), Some(0));
        assert_eq!(usd_to_micros(f64::NAN), None);
        assert_eq!(usd_to_micros(1e300), None);
    }
}
