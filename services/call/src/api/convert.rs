//! Protobuf ↔ domain and store types of the call service.

use salestrainer_proto::call as pb;
use salestrainer_runtime::{
    ApiError, ApiResult,
    time::{duration, duration_ms, timestamp},
};

use crate::{
    app::watch::Push,
    domain::{Speaker, transcript::TranscriptSegment},
    store::{
        comment, comment_name, comment_name_of, reply_to_name, segment, session, session_name,
    },
};

/// The proto view of a session row.
pub fn session_to_pb(m: &session::Model) -> pb::Session {
    pb::Session {
        name: session_name(m),
        scenario: m.scenario.clone(),
        assignment: m.assignment.clone(),
        trainee: m.trainee.clone(),
        mode: m.mode,
        state: m.state,
        start_time: Some(timestamp(m.start_us)),
        end_time: m.end_us.map(timestamp),
        duration: m.duration_ms.map(duration),
        end_reason: m.end_reason,
        end_reason_detail: m.end_reason_detail.clone(),
        voice_provider: m.voice_provider,
        provider_call_id: m.provider_call_id.clone(),
        recording_uri: m.recording_uri.clone(),
        evaluation: m.evaluation.clone(),
        overall_score: m.overall_score,
        passed: m.passed,
        closed: m.closed,
        create_time: Some(timestamp(m.create_us)),
        update_time: Some(timestamp(m.update_us)),
        etag: m.version.to_string(),
        failure_reason: m.failure_reason.clone(),
        // Rows from before sources were recorded are practice.
        source: if m.source == pb::SessionSource::RealCall as i32 {
            pb::SessionSource::RealCall as i32
        } else {
            pb::SessionSource::Practice as i32
        },
        rubric: m.rubric.clone(),
        drill_of: (!m.drill_evaluation.is_empty()).then(|| pb::DrillOf {
            evaluation: m.drill_evaluation.clone(),
            criterion: m.drill_criterion.clone(),
            skill: m.drill_skill.clone(),
            score: m.drill_score,
            objection: m.drill_objection.clone(),
        }),
        title: m.title.clone(),
    }
}

pub fn segment_to_pb(s: &segment::Model) -> pb::TranscriptSegment {
    pb::TranscriptSegment {
        segment_id: s.segment_id.clone(),
        speaker: s.speaker,
        text: s.text.clone(),
        start_offset: Some(duration(s.start_ms)),
        end_offset: Some(duration(s.end_ms)),
        r#final: s.is_final,
        source: s.source,
    }
}

pub fn transcript_to_pb(m: &session::Model, segs: &[segment::Model]) -> pb::Transcript {
    pb::Transcript {
        name: format!("{}/transcript", session_name(m)),
        segments: segs.iter().map(segment_to_pb).collect(),
        r#final: m.transcript_final,
        update_time: Some(timestamp(
            m.update_us
                .max(segs.iter().map(|s| s.create_us).max().unwrap_or(0)),
        )),
        etag: m.transcript_version.to_string(),
    }
}

/// A client's transcript segment (AppendTranscript) as a domain segment.
pub fn segment_from_pb(seg: Option<pb::TranscriptSegment>) -> ApiResult<TranscriptSegment> {
    let s = seg.ok_or_else(|| ApiError::invalid("segment", "required"))?;
    let speaker = match pb::Speaker::try_from(s.speaker) {
        Ok(pb::Speaker::Trainee) => Speaker::Trainee,
        Ok(pb::Speaker::Persona) => Speaker::Persona,
        Ok(pb::Speaker::System) => Speaker::System,
        _ => return Err(ApiError::invalid("segment.speaker", "required")),
    };
    if s.segment_id.is_empty() || s.segment_id.len() > 128 {
        return Err(ApiError::invalid(
            "segment.segment_id",
            "required, at most 128 characters",
        ));
    }
    // The text's size is a limit of the session (max_segment_bytes, RESOURCE_EXHAUSTED),
    // checked by the use case; `source` is the server's to set and is ignored here.
    let ms = |field: &str, d: Option<prost_types::Duration>| -> ApiResult<u64> {
        duration_ms(&d.unwrap_or_default())
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| ApiError::invalid(field, "must be a non-negative duration"))
    };
    Ok(TranscriptSegment {
        segment_id: s.segment_id,
        speaker,
        text: s.text,
        start_ms: ms("segment.start_offset", s.start_offset)?,
        end_ms: ms("segment.end_offset", s.end_offset)?,
        is_final: s.r#final,
    })
}

/// One WatchSession message: a state change (the session as it is now), a new comment or a
/// deleted one.
pub fn watch_message(push: &Push) -> pb::WatchSessionResponse {
    let (m, comment, deleted_comment, at) = match push {
        Push::State(m) => (m, None, String::new(), m.update_us),
        Push::Comment(m, c) => (m, Some(comment_to_pb(c)), String::new(), c.create_us),
        Push::CommentDeleted { session: m, id, at } => {
            (m, None, comment_name_of(&m.organization, &m.id, id), *at)
        }
    };
    pb::WatchSessionResponse {
        session: Some(session_to_pb(m)),
        state: m.state,
        change_time: Some(timestamp(at)),
        comment,
        deleted_comment,
    }
}

pub fn comment_to_pb(c: &comment::Model) -> pb::Comment {
    pb::Comment {
        name: comment_name(c),
        author: c.author.clone(),
        body: c.body.clone(),
        segment_id: c.segment_id.clone(),
        reply_to: reply_to_name(c),
        create_time: Some(timestamp(c.create_us)),
    }
}

/// What a voice client needs to start the call, and no more: no secret (the provider
/// authenticates its webhooks with the secret held by config) and not the persona — on a phone
/// call the provider asks the server for the assistant (`assistant-request`); a browser web
/// call gets it from GetVoiceSetup (`app::voice`), for the session's own trainee only.
pub fn voice_to_pb(
    m: &session::Model,
    v: &crate::app::sessions::VoiceAssistant,
) -> pb::VoiceAssistantConfig {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("session".to_owned(), session_name(m));
    pb::VoiceAssistantConfig {
        provider: pb::VoiceProvider::Vapi as i32,
        server_url: v.server_url.clone(),
        metadata,
        max_duration: v.max_duration,
        server_assistant: true,
        ..Default::default()
    }
}

/// An organization's voice practice.
pub fn voice_config_to_pb(v: crate::app::voice::VoiceConfig) -> pb::VoiceConfig {
    pb::VoiceConfig {
        name: v.name,
        provider: if v.has_provider {
            pb::VoiceProvider::Vapi as i32
        } else {
            pb::VoiceProvider::Unspecified as i32
        },
        web_calls: v.web_calls,
    }
}

/// A session's voice setup; the assistant's JSON becomes a `google.protobuf.Struct`.
pub fn voice_setup_to_pb(v: crate::app::voice::VoiceSetup) -> pb::VoiceSetup {
    let assistant = match json_to_value(v.assistant).kind {
        Some(prost_types::value::Kind::StructValue(s)) => Some(s),
        _ => None,
    };
    pb::VoiceSetup {
        name: v.name,
        provider: pb::VoiceProvider::Vapi as i32,
        public_key: v.public_key,
        api_base_url: v.api_base_url,
        assistant,
    }
}

fn json_to_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod voice_setup_tests {
    use super::*;

    #[test]
    fn the_assistant_json_becomes_a_struct() {
        let v = crate::app::voice::VoiceSetup {
            name: "organizations/o/sessions/s/voiceSetup".into(),
            public_key: "pk".into(),
            api_base_url: "https://api.vapi.ai".into(),
            assistant: serde_json::json!({
                "firstMessage": "Hi",
                "maxDurationSeconds": 300,
                "model": {"messages": [{"role": "system"}]},
                "metadata": {"session": "organizations/o/sessions/s"},
                "none": null,
            }),
        };
        let pb = voice_setup_to_pb(v);
        let a = pb.assistant.expect("a struct");
        let field = |k: &str| a.fields.get(k).and_then(|v| v.kind.clone());
        use prost_types::value::Kind;
        assert_eq!(field("firstMessage"), Some(Kind::StringValue("Hi".into())));
        assert_eq!(field("maxDurationSeconds"), Some(Kind::NumberValue(300.0)));
        assert_eq!(field("none"), Some(Kind::NullValue(0)));
        let Some(Kind::StructValue(model)) = field("model") else {
            panic!("model is a struct")
        };
        assert!(matches!(
            model.fields.get("messages").and_then(|v| v.kind.clone()),
            Some(Kind::ListValue(l)) if l.values.len() == 1
        ));
    }
}
