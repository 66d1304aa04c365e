//! AppendTranscript and GetTranscript.

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Role};
use tonic::{Request, Streaming};

use crate::{
    core::{Core, load_visible, member_name, write_error},
    domain::{Speaker, transcript::TranscriptSegment},
    store,
};

const MAX_SEGMENT_CHARS: usize = 10_000;

pub async fn append(
    core: &Core,
    req: Request<Streaming<pb::AppendTranscriptRequest>>,
) -> ApiResult<pb::AppendTranscriptResponse> {
    let p = Principal::of(&req)?.clone();
    let mut inbound = req.into_inner();
    let mut session: Option<store::session::Model> = None;
    let mut accepted = 0;
    let mut duplicates = 0;
    while let Some(msg) = inbound
        .message()
        .await
        .map_err(|s| ApiError::invalid("segment", format!("stream failed: {}", s.message())))?
    {
        let m = match &session {
            Some(m) => {
                if !msg.session.is_empty() && msg.session != store::session_name(m) {
                    return Err(ApiError::invalid(
                        "session",
                        "must stay the same on one stream",
                    ));
                }
                m.clone()
            }
            None => {
                if msg.session.is_empty() {
                    return Err(ApiError::invalid(
                        "session",
                        "required on the first message",
                    ));
                }
                let m = load_visible(core, &p, &msg.session, "session").await?;
                if !p.is_service() && p.role == Role::Trainee && m.trainee != member_name(&p) {
                    return Err(ApiError::PermissionDenied("not your session".into()));
                }
                if m.mode != pb::SessionMode::Voice as i32 {
                    return Err(ApiError::FailedPrecondition {
                        reason: "NOT_A_VOICE_SESSION",
                        message: "AppendTranscript is for VOICE sessions; text uses Converse"
                            .into(),
                    });
                }
                session = Some(m.clone());
                m
            }
        };
        let seg = to_domain(msg.segment)?;
        let db = core.db()?;
        let outcome = {
            // Queue behind this process's other SQLite writers (no-op on PostgreSQL).
            let _gate = store::SQLITE_WRITES.enter(db).await;
            store::apply_segment(db, &m.id, seg)
                .await
                .map_err(write_error)?
        };
        if outcome.changed() {
            accepted += 1;
        } else {
            duplicates += 1;
        }
    }
    let Some(m) = session else {
        return Err(ApiError::invalid("session", "no segment was sent"));
    };
    Ok(pb::AppendTranscriptResponse {
        segments_accepted: accepted,
        duplicates,
        transcript: format!("{}/transcript", store::session_name(&m)),
    })
}

fn to_domain(seg: Option<pb::TranscriptSegment>) -> ApiResult<TranscriptSegment> {
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

pub async fn get(
    core: &Core,
    req: Request<pb::GetTranscriptRequest>,
) -> ApiResult<pb::GetTranscriptResponse> {
    let p = Principal::of(&req)?.clone();
    let name = req.get_ref().name.clone();
    let session_name = name.strip_suffix("/transcript").ok_or_else(|| {
        ApiError::invalid(
            "name",
            "must be organizations/{organization}/sessions/{session}/transcript",
        )
    })?;
    // Services (grading) read any organization's transcripts; users their own organization's.
    let m = load_visible(core, &p, session_name, "name").await?;
    let segs = store::segments(core.db()?, &m.id).await?;
    Ok(pb::GetTranscriptResponse {
        transcript: Some(store::transcript_to_pb(&m, &segs)),
    })
}
