//! VAPI server messages into [`WebhookEvent`]s.

use serde_json::Value;

use super::{
    CallEnded, CallStatus, EventKind, ParseError, Provider, Segment, WebhookEvent, num_at,
    parse_json, rfc3339_ms, short_hash, str_at, to_ms, usd_to_micros,
};
use crate::domain::transcript::Speaker;

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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

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
}
