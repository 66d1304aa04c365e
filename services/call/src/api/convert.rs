//! Protobuf ↔ domain and store types of the call service.

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiError, ApiResult};

use crate::{
    domain::{Speaker, transcript::TranscriptSegment},
    store::{dur_ms, segment, session, session_name, ts},
};

/// Longest transcript segment text accepted from a client, in characters.
const MAX_SEGMENT_CHARS: usize = 10_000;

/// The proto view of a session row.
pub fn session_to_pb(m: &session::Model) -> pb::Session {
    pb::Session {
        name: session_name(m),
        scenario: m.scenario.clone(),
        assignment: m.assignment.clone(),
        trainee: m.trainee.clone(),
        mode: m.mode,
        state: m.state,
        start_time: Some(ts(m.start_us)),
        end_time: m.end_us.map(ts),
        duration: m.duration_ms.map(dur_ms),
        end_reason: m.end_reason,
        end_reason_detail: m.end_reason_detail.clone(),
        voice_provider: m.voice_provider,
        provider_call_id: m.provider_call_id.clone(),
        recording_uri: m.recording_uri.clone(),
        evaluation: m.evaluation.clone(),
        overall_score: m.overall_score,
        passed: m.passed,
        closed: m.closed,
        create_time: Some(ts(m.create_us)),
        update_time: Some(ts(m.update_us)),
        etag: m.version.to_string(),
    }
}

pub fn segment_to_pb(s: &segment::Model) -> pb::TranscriptSegment {
    pb::TranscriptSegment {
        segment_id: s.segment_id.clone(),
        speaker: s.speaker,
        text: s.text.clone(),
        start_offset: Some(dur_ms(s.start_ms)),
        end_offset: Some(dur_ms(s.end_ms)),
        r#final: s.is_final,
    }
}

pub fn transcript_to_pb(m: &session::Model, segs: &[segment::Model]) -> pb::Transcript {
    pb::Transcript {
        name: format!("{}/transcript", session_name(m)),
        segments: segs.iter().map(segment_to_pb).collect(),
        r#final: m.transcript_final,
        update_time: Some(ts(m
            .update_us
            .max(segs.iter().map(|s| s.create_us).max().unwrap_or(0)))),
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
    if s.text.chars().count() > MAX_SEGMENT_CHARS {
        return Err(ApiError::invalid(
            "segment.text",
            "at most 10000 characters",
        ));
    }
    let ms = |d: Option<prost_types::Duration>| -> ApiResult<u64> {
        let d = d.unwrap_or_default();
        if d.seconds < 0 || d.nanos < 0 {
            return Err(ApiError::invalid(
                "segment.start_offset",
                "must not be negative",
            ));
        }
        Ok((d.seconds as u64).saturating_mul(1000) + (d.nanos as u64) / 1_000_000)
    };
    Ok(TranscriptSegment {
        segment_id: s.segment_id,
        speaker,
        text: s.text,
        start_ms: ms(s.start_offset)?,
        end_ms: ms(s.end_offset)?,
        is_final: s.r#final,
    })
}

/// One WatchSession message: the session as it is now.
pub fn watch_message(m: &session::Model) -> pb::WatchSessionResponse {
    pb::WatchSessionResponse {
        session: Some(session_to_pb(m)),
        state: m.state,
        change_time: Some(ts(m.update_us)),
    }
}

/// What the browser's voice SDK needs. No secret goes in here: the provider authenticates
/// its webhooks with the secret held by config.
pub fn voice_to_pb(
    m: &session::Model,
    v: &crate::app::sessions::VoiceAssistant,
) -> pb::VoiceAssistantConfig {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("session".to_owned(), session_name(m));
    metadata.insert("trainee".to_owned(), m.trainee.clone());
    metadata.insert("scenario".to_owned(), m.scenario.clone());
    pb::VoiceAssistantConfig {
        provider: pb::VoiceProvider::Vapi as i32,
        system_prompt: v.setup.system_prompt.clone(),
        first_message: v.setup.first_message(),
        voice_id: v.setup.voice_id.clone(),
        model: v.model.clone(),
        server_url: v.server_url.clone(),
        metadata,
        max_duration: v.setup.time_limit,
    }
}

/// Page tokens: opaque to clients, "create_us.id" in hex so they survive URLs.
pub fn encode_page_token(create_us: i64, id: &str) -> String {
    hex::encode(format!("{create_us}.{id}"))
}

pub fn decode_page_token(token: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (c, id) = raw.split_once('.')?;
    Some((c.parse().ok()?, id.to_owned()))
}

/// Microseconds since the epoch of a protobuf timestamp.
pub fn micros(t: prost_types::Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}
