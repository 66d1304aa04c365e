//! ImportCall: a real customer call's transcript file becomes a session of a member (source
//! REAL_CALL), stored ENDED with its transcript, so grading grades it like a practice call,
//! on the rubric given. A scenario is optional: a real customer has no persona.
//!
//! Who: managers and admins import for any member of their organization; a trainee only for
//! themself (their own calls, to be coached on). Services may not (a call is a person's).

use salestrainer_proto::call as pb;
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Role, Violations, names,
    time::{now_us, parse_timestamp_opt},
};

use super::{CallApp, limit_message, member_name};
use crate::{
    domain::transcript_import::{self as import, Format},
    store::{self, session},
};

/// An imported call.
pub struct Imported {
    pub session: session::Model,
    pub format: Format,
    pub segment_count: usize,
}

const MAX_ID_LEN: usize = 128;
const MAX_TITLE_CHARS: usize = 200;
/// How far in the future a call time may be (clock skew between the uploader and us).
const FUTURE_SKEW_US: i64 = 5 * 60 * 1_000_000;

pub fn format_of(f: pb::TranscriptFormat) -> Option<Format> {
    match f {
        pb::TranscriptFormat::Plain => Some(Format::Plain),
        pb::TranscriptFormat::Webvtt => Some(Format::WebVtt),
        pb::TranscriptFormat::Srt => Some(Format::Srt),
        pb::TranscriptFormat::Json => Some(Format::Json),
        pb::TranscriptFormat::Unspecified => None,
    }
}

pub fn format_to_pb(f: Format) -> pb::TranscriptFormat {
    match f {
        Format::Plain => pb::TranscriptFormat::Plain,
        Format::WebVtt => pb::TranscriptFormat::Webvtt,
        Format::Srt => pb::TranscriptFormat::Srt,
        Format::Json => pb::TranscriptFormat::Json,
    }
}

pub async fn import_call(
    core: &CallApp,
    p: &Principal,
    r: pb::ImportCallRequest,
) -> ApiResult<Imported> {
    if p.is_service() {
        return Err(ApiError::PermissionDenied(
            "a real call is imported by a member of the organization".into(),
        ));
    }
    let org = p.organization.clone();
    // Another organization's names do not exist for this caller.
    for (name, collection) in [
        (&r.parent, None),
        (&r.trainee, Some("members")),
        (&r.scenario, Some("scenarios")),
        (&r.rubric, Some("rubrics")),
    ] {
        let of = match collection {
            None => names::parse_organization(name),
            Some(c) => names::parse_child(name, c).map(|(o, _)| o),
        };
        if of.is_some_and(|o| o != org) {
            return Err(ApiError::NotFound(name.clone()));
        }
    }
    let mut v = Violations::new();
    let in_org = |name: &str, collection: &str| {
        names::parse_child(name, collection).is_some_and(|(o, _)| o == org)
    };
    v.check(
        names::parse_organization(&r.parent).is_none(),
        "parent",
        "must be organizations/{organization}",
    );
    v.check(
        !in_org(&r.trainee, "members"),
        "trainee",
        "must be organizations/{organization}/members/{member} of the caller's organization",
    );
    // A real call may match no scenario (a customer has no persona); the rubric grades it.
    v.check(
        !r.scenario.is_empty() && !in_org(&r.scenario, "scenarios"),
        "scenario",
        "must be organizations/{organization}/scenarios/{scenario} of the caller's organization",
    );
    v.check(r.rubric.is_empty(), "rubric", "is required");
    v.check(
        !r.rubric.is_empty() && !in_org(&r.rubric, "rubrics"),
        "rubric",
        "must be organizations/{organization}/rubrics/{rubric} of the caller's organization",
    );
    let format = pb::TranscriptFormat::try_from(r.format);
    v.check(format.is_err(), "format", "unknown transcript format");
    v.check(r.content.trim().is_empty(), "content", "is required");
    let rep = r.rep_speaker.trim();
    v.check(rep.is_empty(), "rep_speaker", "is required");
    v.check(
        rep.chars().count() > import::MAX_LABEL_CHARS,
        "rep_speaker",
        "at most 64 characters",
    );
    v.check(
        r.title.chars().count() > MAX_TITLE_CHARS,
        "title",
        "at most 200 characters",
    );
    v.check(
        r.request_id.len() > MAX_ID_LEN,
        "request_id",
        "at most 128 characters",
    );
    v.into_result()?;
    let now = now_us();
    let call_us = parse_timestamp_opt("call_time", r.call_time.as_ref())?.unwrap_or(now);
    if call_us > now.saturating_add(FUTURE_SKEW_US) {
        return Err(ApiError::invalid("call_time", "must not be in the future"));
    }
    if p.role == Role::Trainee && r.trainee != member_name(p) {
        return Err(ApiError::PermissionDenied(
            "trainees may import only their own calls".into(),
        ));
    }
    let max_bytes = core.settings.max_import_bytes();
    if r.content.len() as u64 > max_bytes {
        return Err(ApiError::ResourceExhausted(format!(
            "content is {} bytes, over max_import_bytes = {max_bytes}; nothing was written",
            r.content.len()
        )));
    }

    let db = core.db()?;
    if !r.request_id.is_empty()
        && let Some(existing) =
            store::find_by_request_id(db, &org, &r.trainee, &r.request_id).await?
    {
        return Ok(Imported {
            segment_count: usize::try_from(existing.segment_count).unwrap_or(0),
            format: format
                .ok()
                .and_then(format_of)
                .unwrap_or_else(|| import::detect(&r.content)),
            session: existing,
        });
    }

    // The file first (no peer is asked about a file that cannot be read).
    let format = format
        .ok()
        .and_then(format_of)
        .unwrap_or_else(|| import::detect(&r.content));
    let utterances = import::parse(&r.content, format)
        .map_err(|bad| ApiError::invalid("content", bad.describe()))?;
    let Some(segments) = import::assign_speakers(&utterances, rep) else {
        return Err(ApiError::invalid(
            "rep_speaker",
            format!(
                "no line of the file is spoken by {rep:?}; its speakers are: {}",
                import::speakers(&utterances).join(", ")
            ),
        ));
    };
    let limits = core.settings.transcript_limits();
    let total: u64 = segments.iter().map(|s| s.text.len() as u64).sum();
    for s in &segments {
        limits
            .check_segment(s.text.len() as u64)
            .map_err(|e| ApiError::ResourceExhausted(limit_message(e)))?;
    }
    limits
        .check_write(
            0,
            0,
            segments.len() as u64,
            i64::try_from(total).unwrap_or(i64::MAX),
        )
        .map_err(|e| ApiError::ResourceExhausted(limit_message(e)))?;

    // The names must exist: the member, the rubric and any scenario (NOT_FOUND otherwise).
    core.config
        .member(&r.trainee)
        .await
        .map_err(|s| ApiError::from_peer(&s, &format!("member {}", r.trainee)))?;
    if !r.scenario.is_empty() {
        core.scenario(&r.scenario).await?;
    }
    core.config
        .rubric(&r.rubric)
        .await
        .map_err(|s| ApiError::from_peer(&s, &format!("rubric {}", r.rubric)))?;

    let duration_ms = segments.iter().map(|s| s.end_ms).max().unwrap_or(0);
    let model = session::Model {
        id: uuid::Uuid::now_v7().to_string(),
        organization: org.clone(),
        trainee: r.trainee.clone(),
        scenario: r.scenario.clone(),
        assignment: String::new(),
        // A customer call is spoken; nothing of the voice flow applies to a session stored ENDED.
        mode: pb::SessionMode::Voice as i32,
        state: pb::SessionState::Ended as i32,
        request_id: (!r.request_id.is_empty()).then(|| r.request_id.clone()),
        start_us: call_us,
        end_us: Some(call_us.saturating_add(i64::try_from(duration_ms).unwrap_or(0) * 1000)),
        duration_ms: Some(i64::try_from(duration_ms).unwrap_or(i64::MAX)),
        deadline_us: None,
        last_activity_us: now,
        end_reason: pb::EndReason::TraineeEnded as i32,
        end_reason_detail: "imported".into(),
        voice_provider: 0,
        provider_call_id: String::new(),
        recording_uri: String::new(),
        evaluation: String::new(),
        overall_score: 0.0,
        passed: false,
        closed: false,
        transcript_final: true,
        transcript_version: 1,
        prompt_tokens: 0,
        completion_tokens: 0,
        llm_requests: 0,
        llm_model: String::new(),
        version: 1,
        segment_count: segments.len() as i64,
        transcript_bytes: i64::try_from(total).unwrap_or(i64::MAX),
        failure_reason: String::new(),
        create_us: now,
        update_us: now,
        source: pb::SessionSource::RealCall as i32,
        rubric: r.rubric.clone(),
        title: r.title.trim().to_owned(),
        drill_evaluation: String::new(),
        drill_criterion: String::new(),
        drill_skill: String::new(),
        drill_score: 0.0,
        drill_objection: String::new(),
        score_revision: 0,
    };
    if let Err(err) = store::insert_imported(db, &model, &segments).await {
        // A concurrent retry with the same request id won the unique index.
        if !r.request_id.is_empty()
            && let Some(existing) =
                store::find_by_request_id(db, &org, &r.trainee, &r.request_id).await?
        {
            return Ok(Imported {
                segment_count: usize::try_from(existing.segment_count).unwrap_or(0),
                format,
                session: existing,
            });
        }
        return Err(err.into());
    }
    core.changed(&model, true);
    Ok(Imported {
        session: model,
        format,
        segment_count: segments.len(),
    })
}
