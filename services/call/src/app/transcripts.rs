//! AppendTranscript (a voice call's live segments) and GetTranscript.
//!
//! Provenance: AppendTranscript is the trainee's client. Only the session's own trainee may
//! call it, every segment it writes is recorded as TRANSCRIPT_SOURCE_TRAINEE_CLIENT, and it
//! writes only the trainee's side: a segment for the persona (or the system) is
//! PERMISSION_DENIED — the request is well formed, the caller is just not allowed to speak for
//! anyone but themself, so no change to the request would make it succeed (which is what
//! INVALID_ARGUMENT would suggest). The refused segment and everything after it on the stream
//! are not written. For voice sessions, this text is for live display only: grading uses the
//! provider's end-of-call report (see `store::end_session`).

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, db::begin_write};

use super::{CallApp, limit_message, load_visible, member_name, write_error};
use crate::{
    domain::{Source, transcript::TranscriptSegment},
    store::{self, segment, session},
};

/// One AppendTranscript stream: the session named by its first message, then its segments.
pub struct Append<'a> {
    core: &'a CallApp,
    p: &'a Principal,
    session: Option<session::Model>,
    accepted: i32,
    duplicates: i32,
}

/// What an AppendTranscript stream did.
pub struct Appended {
    pub accepted: i32,
    pub duplicates: i32,
    /// The transcript's resource name.
    pub transcript: String,
}

impl<'a> Append<'a> {
    pub fn new(core: &'a CallApp, p: &'a Principal) -> Self {
        Self {
            core,
            p,
            session: None,
            accepted: 0,
            duplicates: 0,
        }
    }

    /// Checks the session a message names: required first, the same after.
    pub async fn open(&mut self, name: &str) -> ApiResult<()> {
        if let Some(m) = &self.session {
            if !name.is_empty() && name != store::session_name(m) {
                return Err(ApiError::invalid(
                    "session",
                    "must stay the same on one stream",
                ));
            }
            return Ok(());
        }
        if name.is_empty() {
            return Err(ApiError::invalid(
                "session",
                "required on the first message",
            ));
        }
        let p = self.p;
        let m = load_visible(self.core, p, name, "session").await?;
        // The trainee's client, and nobody else: a manager or a service identity has no side
        // of this call to write.
        if p.is_service() || m.trainee != member_name(p) {
            return Err(ApiError::PermissionDenied(
                "only the session's trainee writes to its transcript".into(),
            ));
        }
        if m.mode != pb::SessionMode::Voice as i32 {
            return Err(ApiError::FailedPrecondition {
                reason: "NOT_A_VOICE_SESSION",
                message: "AppendTranscript is for VOICE sessions; text uses Converse".into(),
            });
        }
        self.session = Some(m);
        Ok(())
    }

    /// Folds one segment into the open session's transcript.
    pub async fn segment(&mut self, seg: TranscriptSegment) -> ApiResult<()> {
        let Some(m) = &self.session else {
            return Err(ApiError::invalid(
                "session",
                "required on the first message",
            ));
        };
        if !Source::TraineeClient.may_write(seg.speaker) {
            return Err(ApiError::PermissionDenied(
                "a trainee's client writes only the trainee's side: segment.speaker must be \
                 SPEAKER_TRAINEE"
                    .into(),
            ));
        }
        let limits = self.core.settings.transcript_limits();
        // Refused before a transaction is opened; the store checks again against the counters.
        limits
            .check_segment(seg.text.len() as u64)
            .map_err(|e| ApiError::ResourceExhausted(limit_message(e)))?;
        let txn = begin_write(self.core.db()?).await?;
        let outcome = store::apply_segment(&txn, &m.id, seg, Source::TraineeClient, &limits)
            .await
            .map_err(write_error)?;
        txn.commit().await?;
        if outcome.changed() {
            self.accepted += 1;
        } else {
            self.duplicates += 1;
        }
        Ok(())
    }

    pub fn finish(self) -> ApiResult<Appended> {
        let Some(m) = self.session else {
            return Err(ApiError::invalid("session", "no segment was sent"));
        };
        Ok(Appended {
            accepted: self.accepted,
            duplicates: self.duplicates,
            transcript: format!("{}/transcript", store::session_name(&m)),
        })
    }
}

/// A session's transcript: the session and its segments in order.
pub async fn get(
    core: &CallApp,
    p: &Principal,
    name: &str,
) -> ApiResult<(session::Model, Vec<segment::Model>)> {
    let session_name = name.strip_suffix("/transcript").ok_or_else(|| {
        ApiError::invalid(
            "name",
            "must be organizations/{organization}/sessions/{session}/transcript",
        )
    })?;
    // Services (grading) read any organization's transcripts; users their own organization's.
    let m = load_visible(core, p, session_name, "name").await?;
    let segs = store::segments(core.db()?, &m.id).await?;
    Ok((m, segs))
}
