//! Voice-provider webhooks: signature verification and parsing into domain events.
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

use std::fmt;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::transcript::Speaker;

/// Bodies larger than this are refused (413) before they reach this module.
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;

/// Allowed clock skew between a signature's timestamp and our clock.
pub const SIGNATURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

pub const VAPI_SECRET_HEADER: &str = "x-vapi-secret";
pub const VAPI_SIGNATURE_HEADER: &str = "x-signature";
pub const VAPI_TIMESTAMP_HEADER: &str = "x-timestamp";
pub const RETELL_SIGNATURE_HEADER: &str = "x-retell-signature";

type HmacSha256 = Hmac<Sha256>;

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
// Verification
// ---------------------------------------------------------------------------------------------

/// How VAPI webhooks are authenticated (from the organisation's configuration).
#[derive(Clone, PartialEq, Eq)]
pub enum VapiAuth {
    /// `x-vapi-secret` must equal this secret.
    Secret(String),
    /// `x-signature` must be hex HMAC-SHA256 with this key over `{x-timestamp}.{body}`.
    Hmac(String),
}

// Secrets never reach logs.
impl fmt::Debug for VapiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VapiAuth::Secret(_) => f.write_str("VapiAuth::Secret(<redacted>)"),
            VapiAuth::Hmac(_) => f.write_str("VapiAuth::Hmac(<redacted>)"),
        }
    }
}

/// The VAPI headers that matter, as received (None when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct VapiHeaders<'a> {
    pub secret: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
}

/// Why a webhook was not authenticated. All of these map to 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No secret is configured: refuse rather than accept unauthenticated calls.
    NotConfigured,
    /// A required header is absent (its name).
    MissingHeader(&'static str),
    /// A header is present but not of the expected form (its name).
    MalformedHeader(&'static str),
    /// The secret or signature does not match.
    Mismatch,
    /// The signed timestamp is more than [`SIGNATURE_TOLERANCE_MS`] away from now.
    StaleTimestamp,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NotConfigured => f.write_str("webhook secret not configured"),
            VerifyError::MissingHeader(h) => write!(f, "missing header {h}"),
            VerifyError::MalformedHeader(h) => write!(f, "malformed header {h}"),
            VerifyError::Mismatch => f.write_str("webhook secret or signature does not match"),
            VerifyError::StaleTimestamp => f.write_str("webhook timestamp outside tolerance"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a VAPI webhook. `now_ms` is the current Unix time in milliseconds.
pub fn verify_vapi(
    auth: &VapiAuth,
    headers: &VapiHeaders<'_>,
    body: &[u8],
    now_ms: i64,
) -> Result<(), VerifyError> {
    match auth {
        VapiAuth::Secret(secret) => {
            if secret.is_empty() {
                return Err(VerifyError::NotConfigured);
            }
            let given = headers
                .secret
                .ok_or(VerifyError::MissingHeader(VAPI_SECRET_HEADER))?;
            if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err(VerifyError::Mismatch)
            }
        }
        VapiAuth::Hmac(key) => {
            if key.is_empty() {
                return Err(VerifyError::NotConfigured);
            }
            let signature = headers
                .signature
                .ok_or(VerifyError::MissingHeader(VAPI_SIGNATURE_HEADER))?;
            let timestamp = headers
                .timestamp
                .ok_or(VerifyError::MissingHeader(VAPI_TIMESTAMP_HEADER))?
                .trim();
            let ts: i64 = timestamp
                .parse()
                .map_err(|_| VerifyError::MalformedHeader(VAPI_TIMESTAMP_HEADER))?;
            // The unit of x-timestamp is not pinned down; values this large are milliseconds,
            // smaller ones seconds (10^11 s is the year 5138, 10^11 ms is 1973).
            let ts_ms = if ts.abs() >= 100_000_000_000 {
                ts
            } else {
                ts.saturating_mul(1000)
            };
            check_fresh(ts_ms, now_ms)?;
            let sig = decode_hex(signature, VAPI_SIGNATURE_HEADER)?;
            let mut mac = new_mac(key.as_bytes());
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
        }
    }
}

/// Verifies a Retell webhook: `x-retell-signature: v=<unix ms>,d=<hex digest>` where the
/// digest is HMAC-SHA256 keyed with the Retell API key (the one with the webhook badge) over
/// the raw body followed by the timestamp digits (`{body}{v}`), as Retell's SDK `verify` does;
/// 5-minute tolerance.
pub fn verify_retell(
    api_key: &str,
    signature_header: Option<&str>,
    body: &[u8],
    now_ms: i64,
) -> Result<(), VerifyError> {
    if api_key.is_empty() {
        return Err(VerifyError::NotConfigured);
    }
    let header = signature_header.ok_or(VerifyError::MissingHeader(RETELL_SIGNATURE_HEADER))?;
    let malformed = VerifyError::MalformedHeader(RETELL_SIGNATURE_HEADER);
    let mut version = None;
    let mut digest = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("v", v)) => version = Some(v.trim()),
            Some(("d", d)) => digest = Some(d.trim()),
            _ => {}
        }
    }
    let (Some(ts), Some(digest)) = (version, digest) else {
        return Err(malformed);
    };
    let ts_ms: i64 = ts.parse().map_err(|_| malformed.clone())?;
    check_fresh(ts_ms, now_ms)?;
    let sig = decode_hex(digest, RETELL_SIGNATURE_HEADER)?;
    let mut mac = new_mac(api_key.as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
}

/// The `x-retell-signature` value Retell would send; for tests and local tooling.
pub fn sign_retell(api_key: &str, body: &[u8], timestamp_ms: i64) -> String {
    let ts = timestamp_ms.to_string();
    let mut mac = new_mac(api_key.as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    format!("v={ts},d={}", hex::encode(mac.finalize().into_bytes()))
}

/// The VAPI `x-signature` for `timestamp` and `body`; for tests and local tooling.
pub fn sign_vapi(key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = new_mac(key.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails; the fallback keeps us panic-free.
    HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()))
}

fn check_fresh(ts_ms: i64, now_ms: i64) -> Result<(), VerifyError> {
    if now_ms.abs_diff(ts_ms) > SIGNATURE_TOLERANCE_MS.unsigned_abs() {
        Err(VerifyError::StaleTimestamp)
    } else {
        Ok(())
    }
}

fn decode_hex(s: &str, header: &'static str) -> Result<Vec<u8>, VerifyError> {
    let s = s.trim();
    let s = s.strip_prefix("sha256=").unwrap_or(s);
    hex::decode(s).map_err(|_| VerifyError::MalformedHeader(header))
}

/// Equality that takes the same time wherever the inputs differ, and does not reveal the
/// secret's length: both sides are hashed first, then compared without early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

// ---------------------------------------------------------------------------------------------
// Events
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

/// Parses a VAPI server message (`{"message": {"type": ..., "call": {...}, ...}}`).
pub fn parse_vapi(body: &[u8]) -> Result<WebhookEvent, ParseError> {
    let root = parse_json(body)?;
    let msg = root
        .get("message")
        .ok_or(ParseError::MissingField("message"))?;
    let raw_type = str_at(msg, &["type"]).ok_or(ParseError::MissingField("message.type"))?;
    // VAPI also names the final-only transcript subscription `transcript[transcriptType="final"]`.
    let msg_type = if raw_type.starts_with("transcript[") {
        "transcript"
    } else {
        raw_type
    };
    let call_id = str_at(msg, &["call", "id"]).unwrap_or_default().to_owned();
    let session_name = [
        &["call", "metadata", "session"][..],
        &["call", "assistantOverrides", "metadata", "session"],
        &["call", "assistant", "metadata", "session"],
        &["assistant", "metadata", "session"],
    ]
    .iter()
    .find_map(|p| str_at(msg, p))
    .map(str::to_owned);

    let handled = matches!(
        msg_type,
        "status-update" | "transcript" | "end-of-call-report"
    );
    if handled && call_id.is_empty() {
        return Err(ParseError::MissingField("message.call.id"));
    }

    let mut key = format!("vapi:{call_id}:{msg_type}");
    let kind = match msg_type {
        "status-update" => {
            let status =
                str_at(msg, &["status"]).ok_or(ParseError::MissingField("message.status"))?;
            // Each status of a call is its own event; the type alone would collapse them.
            key.push(':');
            key.push_str(status);
            EventKind::Status(CallStatus::parse(status))
        }
        "transcript" => {
            let role = str_at(msg, &["role"]).unwrap_or_default();
            let text = str_at(msg, &["transcript"]).unwrap_or_default().to_owned();
            let is_final =
                str_at(msg, &["transcriptType"]) == Some("final") || raw_type.contains("final");
            let tt = if is_final { "final" } else { "partial" };
            // Many transcript messages per call: the content tells deliveries apart.
            key.push(':');
            key.push_str(&short_hash(&[role, tt, &text]));
            let speaker = vapi_speaker(role);
            if is_final {
                EventKind::TranscriptFinal { speaker, text }
            } else {
                EventKind::TranscriptPartial { speaker, text }
            }
        }
        "end-of-call-report" => EventKind::Ended(vapi_ended(msg)),
        other => EventKind::Ignored {
            kind: other.to_owned(),
        },
    };
    Ok(WebhookEvent {
        provider: Provider::Vapi,
        call_id,
        session_name,
        idempotency_key: key,
        kind,
    })
}

fn vapi_speaker(role: &str) -> Speaker {
    match role {
        "user" | "customer" => Speaker::Trainee,
        "assistant" | "bot" => Speaker::Persona,
        _ => Speaker::System,
    }
}

fn vapi_ended(msg: &Value) -> CallEnded {
    let artifact = msg.get("artifact");
    let messages = artifact
        .and_then(|a| a.get("messages"))
        .and_then(Value::as_array)
        .or_else(|| msg.get("messages").and_then(Value::as_array));
    let call_start_ms = messages.into_iter().flatten().find_map(|m| {
        let time = num_at(m, &["time"])?;
        let from_start = num_at(m, &["secondsFromStart"])?;
        Some(time - from_start * 1000.0)
    });
    let segments = messages
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let speaker = match str_at(m, &["role"])? {
                "user" => Speaker::Trainee,
                "bot" | "assistant" => Speaker::Persona,
                // The system prompt and tool calls are not part of the conversation.
                _ => return None,
            };
            let text = str_at(m, &["message"])
                .or_else(|| str_at(m, &["content"]))?
                .trim();
            if text.is_empty() {
                return None;
            }
            let start = num_at(m, &["secondsFromStart"])
                .map(|s| s * 1000.0)
                .or_else(|| Some(num_at(m, &["time"])? - call_start_ms?))
                .unwrap_or(0.0);
            let duration = num_at(m, &["duration"])
                .or_else(|| Some(num_at(m, &["endTime"])? - num_at(m, &["time"])?))
                .unwrap_or(0.0);
            let start_ms = to_ms(start);
            Some(Segment {
                speaker,
                text: text.to_owned(),
                start_ms,
                end_ms: start_ms.saturating_add(to_ms(duration)),
            })
        })
        .collect();
    let recording_url = artifact
        .and_then(|a| str_at(a, &["recordingUrl"]))
        .or_else(|| str_at(msg, &["recordingUrl"]))
        .or_else(|| artifact.and_then(|a| str_at(a, &["recording", "mono", "combinedUrl"])))
        .map(str::to_owned);
    CallEnded {
        reason: str_at(msg, &["endedReason"])
            .or_else(|| str_at(msg, &["call", "endedReason"]))
            .map(str::to_owned),
        cost_micros: num_at(msg, &["cost"])
            .or_else(|| num_at(msg, &["call", "cost"]))
            .and_then(usd_to_micros),
        recording_url,
        started_at_ms: str_at(msg, &["startedAt"])
            .and_then(rfc3339_ms)
            .or_else(|| call_start_ms.map(|v| v.round() as i64)),
        ended_at_ms: str_at(msg, &["endedAt"]).and_then(rfc3339_ms),
        segments,
    }
}

/// Parses a Retell webhook (`{"event": ..., "call": {...}}`).
pub fn parse_retell(body: &[u8]) -> Result<WebhookEvent, ParseError> {
    let root = parse_json(body)?;
    let event = str_at(&root, &["event"]).ok_or(ParseError::MissingField("event"))?;
    let call = root.get("call").unwrap_or(&Value::Null);
    let call_id = str_at(call, &["call_id"]).unwrap_or_default().to_owned();
    let session_name = [
        &["metadata", "session"][..],
        &["retell_llm_dynamic_variables", "session"],
    ]
    .iter()
    .find_map(|p| str_at(call, p))
    .map(str::to_owned);
    let handled = matches!(event, "call_started" | "call_ended" | "call_analyzed");
    if handled && call_id.is_empty() {
        return Err(ParseError::MissingField("call.call_id"));
    }
    let kind = match event {
        "call_started" => EventKind::Status(CallStatus::InProgress),
        "call_ended" => EventKind::Ended(retell_ended(call)),
        "call_analyzed" => {
            let analysis = call.get("call_analysis").cloned().unwrap_or(Value::Null);
            EventKind::Analyzed(CallAnalysis {
                summary: str_at(&analysis, &["call_summary"]).map(str::to_owned),
                user_sentiment: str_at(&analysis, &["user_sentiment"]).map(str::to_owned),
                successful: analysis.get("call_successful").and_then(Value::as_bool),
                raw: analysis,
            })
        }
        other => EventKind::Ignored {
            kind: other.to_owned(),
        },
    };
    Ok(WebhookEvent {
        provider: Provider::Retell,
        idempotency_key: format!("retell:{call_id}:{event}"),
        call_id,
        session_name,
        kind,
    })
}

fn retell_ended(call: &Value) -> CallEnded {
    let segments = call
        .get("transcript_object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| {
            let speaker = match str_at(u, &["role"])? {
                "agent" => Speaker::Persona,
                "user" => Speaker::Trainee,
                // Tool-call entries and anything new are not conversation.
                _ => return None,
            };
            let text = str_at(u, &["content"])?.trim();
            if text.is_empty() {
                return None;
            }
            // Word timings are seconds from the call's start.
            let words = u.get("words").and_then(Value::as_array);
            let first = words.and_then(|w| w.first());
            let last = words.and_then(|w| w.last());
            let start_ms = first
                .and_then(|w| num_at(w, &["start"]))
                .map_or(0, |s| to_ms(s * 1000.0));
            let end_ms = last
                .and_then(|w| num_at(w, &["end"]))
                .map_or(start_ms, |s| to_ms(s * 1000.0))
                .max(start_ms);
            Some(Segment {
                speaker,
                text: text.to_owned(),
                start_ms,
                end_ms,
            })
        })
        .collect();
    CallEnded {
        reason: str_at(call, &["disconnection_reason"]).map(str::to_owned),
        // Retell's cost fields vary by API version (and are in cents); left to a later pass
        // rather than guessed.
        cost_micros: None,
        recording_url: str_at(call, &["recording_url"]).map(str::to_owned),
        started_at_ms: num_at(call, &["start_timestamp"]).map(|v| v.round() as i64),
        ended_at_ms: num_at(call, &["end_timestamp"]).map(|v| v.round() as i64),
        segments,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-webhook";
    const NOW_MS: i64 = 1_760_000_000_000;

    const VAPI_STATUS: &str = r#"{"message":{"type":"status-update","status":"in-progress",
        "timestamp":1760000000000,"somethingNew":{"x":1},
        "call":{"id":"call_vapi_1","orgId":"org_1","type":"webCall",
                "metadata":{"session":"organizations/acme/sessions/s1"}}}}"#;

    const VAPI_PARTIAL: &str = r#"{"message":{"type":"transcript","role":"user",
        "transcriptType":"partial","transcript":"Hi Dana, I",
        "call":{"id":"call_vapi_1","metadata":{"session":"organizations/acme/sessions/s1"}}}}"#;

    const VAPI_FINAL: &str = r#"{"message":{"type":"transcript","role":"assistant",
        "transcriptType":"final","transcript":"Hi, this is Dana.",
        "call":{"id":"call_vapi_1","assistantOverrides":{"metadata":{"session":"organizations/acme/sessions/s1"}}}}}"#;

    const VAPI_EOCR: &str = include_str!("../../tests/fixtures/vapi_end_of_call_report.json");
    const VAPI_EOCR_LEGACY: &str =
        include_str!("../../tests/fixtures/vapi_end_of_call_report_legacy.json");
    const RETELL_STARTED: &str = include_str!("../../tests/fixtures/retell_call_started.json");
    const RETELL_ENDED: &str = include_str!("../../tests/fixtures/retell_call_ended.json");
    const RETELL_ANALYZED: &str = include_str!("../../tests/fixtures/retell_call_analyzed.json");

    fn secret_headers(secret: &str) -> VapiHeaders<'_> {
        VapiHeaders {
            secret: Some(secret),
            ..Default::default()
        }
    }

    #[test]
    fn vapi_secret_good_bad_missing_unconfigured() {
        let auth = VapiAuth::Secret(SECRET.into());
        let body = VAPI_STATUS.as_bytes();
        assert_eq!(
            verify_vapi(&auth, &secret_headers(SECRET), body, NOW_MS),
            Ok(())
        );
        assert_eq!(
            verify_vapi(&auth, &secret_headers("s3cret-webhooK"), body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vapi(&auth, &secret_headers(""), body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vapi(&auth, &VapiHeaders::default(), body, NOW_MS),
            Err(VerifyError::MissingHeader(VAPI_SECRET_HEADER))
        );
        assert_eq!(
            verify_vapi(
                &VapiAuth::Secret(String::new()),
                &secret_headers(""),
                body,
                NOW_MS
            ),
            Err(VerifyError::NotConfigured)
        );
        assert!(!format!("{auth:?}").contains(SECRET));
    }

    #[test]
    fn vapi_hmac_good_bad_missing_stale() {
        let auth = VapiAuth::Hmac(SECRET.into());
        let body = VAPI_STATUS.as_bytes();
        let ts_s = (NOW_MS / 1000).to_string();
        let sig = sign_vapi(SECRET, &ts_s, body);
        let h = VapiHeaders {
            signature: Some(&sig),
            timestamp: Some(&ts_s),
            secret: None,
        };
        assert_eq!(verify_vapi(&auth, &h, body, NOW_MS), Ok(()));
        // Milliseconds work too, and so does upper-case hex.
        let ts_ms = NOW_MS.to_string();
        let sig_ms = sign_vapi(SECRET, &ts_ms, body).to_uppercase();
        let h_ms = VapiHeaders {
            signature: Some(&sig_ms),
            timestamp: Some(&ts_ms),
            secret: None,
        };
        assert_eq!(verify_vapi(&auth, &h_ms, body, NOW_MS), Ok(()));
        // Tampered body, wrong key.
        assert_eq!(
            verify_vapi(&auth, &h, b"{}", NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vapi(&VapiAuth::Hmac("other".into()), &h, body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        // Missing or malformed headers.
        let no_sig = VapiHeaders {
            signature: None,
            ..h
        };
        assert_eq!(
            verify_vapi(&auth, &no_sig, body, NOW_MS),
            Err(VerifyError::MissingHeader(VAPI_SIGNATURE_HEADER))
        );
        let no_ts = VapiHeaders {
            timestamp: None,
            ..h
        };
        assert_eq!(
            verify_vapi(&auth, &no_ts, body, NOW_MS),
            Err(VerifyError::MissingHeader(VAPI_TIMESTAMP_HEADER))
        );
        let bad_hex = VapiHeaders {
            signature: Some("zz"),
            ..h
        };
        assert_eq!(
            verify_vapi(&auth, &bad_hex, body, NOW_MS),
            Err(VerifyError::MalformedHeader(VAPI_SIGNATURE_HEADER))
        );
        // Stale: 5 minutes and one second away, either direction.
        assert_eq!(
            verify_vapi(&auth, &h, body, NOW_MS + 301_000),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify_vapi(&auth, &h, body, NOW_MS - 301_000),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(verify_vapi(&auth, &h, body, NOW_MS + 299_000), Ok(()));
    }

    #[test]
    fn retell_signature_good_bad_missing_stale() {
        let body = RETELL_ENDED.as_bytes();
        let sig = sign_retell(SECRET, body, NOW_MS);
        assert!(sig.starts_with(&format!("v={NOW_MS},d=")));
        assert_eq!(
            verify_retell(SECRET, Some(&sig), body, NOW_MS + 1000),
            Ok(())
        );
        assert_eq!(
            verify_retell("wrong", Some(&sig), body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_retell(SECRET, Some(&sig), b"{\"event\":\"x\"}", NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_retell(SECRET, None, body, NOW_MS),
            Err(VerifyError::MissingHeader(RETELL_SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_retell(SECRET, Some("d=abcd"), body, NOW_MS),
            Err(VerifyError::MalformedHeader(RETELL_SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_retell(SECRET, Some(&sig), body, NOW_MS + 300_001),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify_retell("", Some(&sig), body, NOW_MS),
            Err(VerifyError::NotConfigured)
        );
        // The combined entry point refuses before parsing.
        assert!(matches!(
            retell_webhook(SECRET, Some("v=1,d=00"), body, NOW_MS),
            Err(WebhookError::Unauthenticated(VerifyError::StaleTimestamp))
        ));
    }

    /// Vectors computed independently with Python's hmac module pin the exact signed strings:
    /// Retell `{body}{timestamp}`, VAPI `{timestamp}.{body}`.
    #[test]
    fn known_vectors() {
        let body = br#"{"a":1}"#;
        assert_eq!(
            sign_retell("key", body, 1_700_000_000_000),
            "v=1700000000000,d=46f0d18373b429dbd5e12aa60fa869be1f92b0c6678e187ac782827e7126ca0c"
        );
        assert_eq!(
            sign_vapi("key", "1700000000", body),
            "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn vapi_status_update() {
        let e = parse_vapi(VAPI_STATUS.as_bytes()).expect("parses");
        assert_eq!(e.provider, Provider::Vapi);
        assert_eq!(e.call_id, "call_vapi_1");
        assert_eq!(
            e.session_name.as_deref(),
            Some("organizations/acme/sessions/s1")
        );
        assert_eq!(e.kind, EventKind::Status(CallStatus::InProgress));
        assert_eq!(
            e.idempotency_key,
            "vapi:call_vapi_1:status-update:in-progress"
        );
    }

    #[test]
    fn vapi_transcripts_partial_and_final() {
        let p = parse_vapi(VAPI_PARTIAL.as_bytes()).expect("parses");
        assert_eq!(
            p.kind,
            EventKind::TranscriptPartial {
                speaker: Speaker::Trainee,
                text: "Hi Dana, I".into()
            }
        );
        let f = parse_vapi(VAPI_FINAL.as_bytes()).expect("parses");
        assert_eq!(
            f.kind,
            EventKind::TranscriptFinal {
                speaker: Speaker::Persona,
                text: "Hi, this is Dana.".into()
            }
        );
        assert_eq!(
            f.session_name.as_deref(),
            Some("organizations/acme/sessions/s1")
        );
        assert_ne!(p.idempotency_key, f.idempotency_key);
        assert!(
            f.idempotency_key
                .starts_with("vapi:call_vapi_1:transcript:")
        );
        // The bracketed type name VAPI uses for final-only subscriptions.
        let bracket = VAPI_FINAL.replace(
            r#""type":"transcript""#,
            r#""type":"transcript[transcriptType=\"final\"]""#,
        );
        assert_eq!(parse_vapi(bracket.as_bytes()).expect("parses").kind, f.kind);
    }

    #[test]
    fn vapi_end_of_call_report() {
        let e = parse_vapi(VAPI_EOCR.as_bytes()).expect("parses");
        assert_eq!(e.idempotency_key, "vapi:call_vapi_1:end-of-call-report");
        assert_eq!(
            e.session_name.as_deref(),
            Some("organizations/acme/sessions/s1")
        );
        let EventKind::Ended(end) = e.kind else {
            panic!("not ended: {:?}", e.kind)
        };
        assert_eq!(end.reason.as_deref(), Some("customer-ended-call"));
        assert_eq!(end.cost_micros, Some(123_457));
        assert_eq!(
            end.recording_url.as_deref(),
            Some("https://storage.vapi.ai/call_vapi_1-mono.wav")
        );
        assert_eq!(end.started_at_ms, Some(1_760_000_000_000));
        let got: Vec<_> = end
            .segments
            .iter()
            .map(|s| (s.speaker, s.text.as_str(), s.start_ms, s.end_ms))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Speaker::Persona,
                    "Hi, this is Dana from Northwind.",
                    1_200,
                    3_400
                ),
                (
                    Speaker::Trainee,
                    "Hi Dana, how do you plan your routes today?",
                    4_000,
                    6_500
                ),
                (Speaker::Persona, "By hand, in spreadsheets.", 7_100, 8_600),
            ]
        );
    }

    #[test]
    fn vapi_legacy_top_level_messages_and_recording() {
        let e = parse_vapi(VAPI_EOCR_LEGACY.as_bytes()).expect("parses");
        let EventKind::Ended(end) = e.kind else {
            panic!("not ended")
        };
        assert_eq!(
            end.recording_url.as_deref(),
            Some("https://example.com/legacy.wav")
        );
        // No secondsFromStart on the turns: offsets come from `time` against the call start
        // (derived from the system message); the blank turn is dropped.
        let got: Vec<_> = end
            .segments
            .iter()
            .map(|s| (s.speaker, s.start_ms, s.end_ms))
            .collect();
        assert_eq!(
            got,
            [
                (Speaker::Persona, 1_000, 2_000),
                (Speaker::Trainee, 2_500, 3_500)
            ]
        );
        assert_eq!(end.reason.as_deref(), Some("assistant-ended-call"));
        assert_eq!(end.cost_micros, Some(50_000));
        assert_eq!(
            e.session_name.as_deref(),
            Some("organizations/acme/sessions/legacy")
        );
    }

    #[test]
    fn vapi_unknown_type_ignored_and_bad_bodies() {
        let body = r#"{"message":{"type":"speech-update","status":"started","role":"user","call":{"id":"c1"}}}"#;
        let e = parse_vapi(body.as_bytes()).expect("parses");
        assert_eq!(
            e.kind,
            EventKind::Ignored {
                kind: "speech-update".into()
            }
        );
        let hang = r#"{"message":{"type":"hang","weird":[1,2,3]}}"#;
        assert!(matches!(
            parse_vapi(hang.as_bytes()).expect("parses").kind,
            EventKind::Ignored { .. }
        ));
        assert!(matches!(
            parse_vapi(b"not json"),
            Err(ParseError::InvalidJson(_))
        ));
        assert_eq!(parse_vapi(b"{}"), Err(ParseError::MissingField("message")));
        assert_eq!(
            parse_vapi(br#"{"message":{"type":"status-update","status":"ended"}}"#),
            Err(ParseError::MissingField("message.call.id"))
        );
        let big = vec![b' '; MAX_WEBHOOK_BODY + 1];
        assert_eq!(parse_vapi(&big), Err(ParseError::TooLarge));
    }

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
    fn retell_call_started() {
        let e = parse_retell(RETELL_STARTED.as_bytes()).expect("parses");
        assert_eq!(e.provider, Provider::Retell);
        assert_eq!(e.call_id, "call_retell_1");
        assert_eq!(
            e.session_name.as_deref(),
            Some("organizations/acme/sessions/s2")
        );
        assert_eq!(e.kind, EventKind::Status(CallStatus::InProgress));
        assert_eq!(e.idempotency_key, "retell:call_retell_1:call_started");
    }

    #[test]
    fn retell_call_ended_with_word_timings() {
        let body = RETELL_ENDED.as_bytes();
        let sig = sign_retell(SECRET, body, NOW_MS);
        let e = retell_webhook(SECRET, Some(&sig), body, NOW_MS).expect("verifies and parses");
        let EventKind::Ended(end) = e.kind else {
            panic!("not ended")
        };
        assert_eq!(end.reason.as_deref(), Some("user_hangup"));
        assert_eq!(
            end.recording_url.as_deref(),
            Some("https://retell-recordings.example/call_retell_1.wav")
        );
        assert_eq!(end.started_at_ms, Some(1_760_000_000_000));
        assert_eq!(end.ended_at_ms, Some(1_760_000_095_000));
        let got: Vec<_> = end
            .segments
            .iter()
            .map(|s| (s.speaker, s.text.as_str(), s.start_ms, s.end_ms))
            .collect();
        assert_eq!(
            got,
            [
                (Speaker::Persona, "Hello, Dana speaking.", 500, 1_900),
                (
                    Speaker::Trainee,
                    "Hi Dana, quick question about routing.",
                    2_600,
                    5_150
                ),
            ]
        );
    }

    #[test]
    fn retell_call_analyzed_and_unknown_event() {
        let e = parse_retell(RETELL_ANALYZED.as_bytes()).expect("parses");
        let EventKind::Analyzed(a) = e.kind else {
            panic!("not analyzed")
        };
        assert_eq!(
            a.summary.as_deref(),
            Some("The rep booked a demo for Tuesday.")
        );
        assert_eq!(a.successful, Some(true));
        assert_eq!(a.user_sentiment.as_deref(), Some("Positive"));
        let unknown = r#"{"event":"transfer_started","call":{"call_id":"c9"}}"#;
        let e = parse_retell(unknown.as_bytes()).expect("parses");
        assert_eq!(
            e.kind,
            EventKind::Ignored {
                kind: "transfer_started".into()
            }
        );
        assert_eq!(
            parse_retell(br#"{"call":{}}"#),
            Err(ParseError::MissingField("event"))
        );
        assert_eq!(
            parse_retell(br#"{"event":"call_ended","call":{}}"#),
            Err(ParseError::MissingField("call.call_id"))
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
