//! Retell webhooks into [`WebhookEvent`]s.

use serde_json::Value;

use super::{
    CallAnalysis, CallEnded, CallStatus, EventKind, ParseError, Provider, Segment, WebhookEvent,
    num_at, parse_json, str_at, to_ms,
};
use crate::domain::transcript::Speaker;

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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

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
}
