//! StartSession, GetSession, ListSessions, EndSession, CancelSession: validation, access,
//! the session's state rules (from `domain::session`) and the writes.

use page_token::{decode_token, encode_token};
use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_runtime::{ApiError, ApiResult, Principal, Role, Violations};

use super::{Core, config_error, in_collection, load_visible, member_name};
use crate::{
    app::persona_engine::PersonaSetup,
    domain::session::{Change, Refused, Step, transition},
    store::{self, Ending, ListQuery, now_us, session},
};

/// A started session and, for a voice session, what the browser's voice SDK needs.
pub struct Started {
    pub session: session::Model,
    pub voice: Option<VoiceAssistant>,
}

/// The voice assistant of a voice session.
pub struct VoiceAssistant {
    pub setup: PersonaSetup,
    /// The organisation's LLM model, or empty.
    pub model: String,
    /// Where the provider sends its webhooks.
    pub server_url: String,
}

/// A page of sessions.
pub struct Page {
    pub sessions: Vec<session::Model>,
    pub next_page_token: String,
    pub total_size: u64,
}

const MAX_ID_LEN: usize = 128;

pub async fn start(core: &Core, p: &Principal, r: pb::StartSessionRequest) -> ApiResult<Started> {
    if p.is_service() {
        return Err(ApiError::PermissionDenied(
            "a session is started by the trainee who takes the call".into(),
        ));
    }
    let org = p.organization.clone();
    let mut v = Violations::new();
    let parent_ok = r.parent == format!("organizations/{org}");
    if !r.parent.starts_with("organizations/") || r.parent.split('/').count() != 2 {
        v.add("parent", "must be organizations/{organization}");
    }
    v.check(
        !in_collection(&r.scenario, &org, "scenarios"),
        "scenario",
        "must be organizations/{organization}/scenarios/{scenario} of the caller's organization",
    );
    v.check(
        !r.assignment.is_empty() && !in_collection(&r.assignment, &org, "assignments"),
        "assignment",
        "must be organizations/{organization}/assignments/{assignment} of the caller's organization",
    );
    let mode = pb::SessionMode::try_from(r.mode).unwrap_or(pb::SessionMode::Unspecified);
    v.check(
        mode == pb::SessionMode::Unspecified,
        "mode",
        "must be SESSION_MODE_VOICE or SESSION_MODE_TEXT",
    );
    v.check(
        r.request_id.len() > MAX_ID_LEN,
        "request_id",
        "at most 128 characters",
    );
    v.into_result()?;
    if !parent_ok {
        return Err(ApiError::PermissionDenied(
            "sessions can only be started in the caller's organization".into(),
        ));
    }
    let trainee = member_name(p);
    let db = core.db()?;

    if !r.request_id.is_empty()
        && let Some(existing) = store::find_by_request_id(db, &org, &trainee, &r.request_id).await?
    {
        return respond(core, existing).await;
    }

    // Validates the scenario (NOT_FOUND when it does not exist) and gives the voice config.
    let setup = core.persona_setup(&org, &r.scenario).await?;
    let scenario = core
        .config
        .scenario(&r.scenario)
        .await
        .map_err(|s| config_error(s, &format!("scenario {}", r.scenario)))?;
    if !r.assignment.is_empty() {
        let a = core.assignment(&r.assignment).await?;
        if a.scenario != r.scenario {
            return Err(ApiError::invalid(
                "assignment",
                "the assignment is for another scenario",
            ));
        }
        if a.state != cfg::AssignmentState::Open as i32 {
            return Err(ApiError::FailedPrecondition {
                reason: "ASSIGNMENT_CLOSED",
                message: "the assignment is closed".into(),
            });
        }
        if p.role == Role::Trainee && !a.assignees.contains(&trainee) {
            return Err(ApiError::PermissionDenied(
                "the caller is not an assignee of this assignment".into(),
            ));
        }
    } else if !scenario.open_to_all && p.role == Role::Trainee {
        return Err(ApiError::PermissionDenied(
            "this scenario is practised only through an assignment".into(),
        ));
    }

    let now = now_us();
    let deadline_us = setup
        .time_limit
        .filter(|d| d.seconds > 0 || d.nanos > 0)
        .map(|d| now + d.seconds.saturating_mul(1_000_000) + i64::from(d.nanos) / 1000);
    let model = session::Model {
        id: uuid::Uuid::now_v7().to_string(),
        organization: org.clone(),
        trainee: trainee.clone(),
        scenario: r.scenario.clone(),
        assignment: r.assignment.clone(),
        mode: mode as i32,
        state: pb::SessionState::Active as i32,
        request_id: (!r.request_id.is_empty()).then(|| r.request_id.clone()),
        start_us: now,
        end_us: None,
        duration_ms: None,
        deadline_us,
        last_activity_us: now,
        end_reason: 0,
        end_reason_detail: String::new(),
        voice_provider: if mode == pb::SessionMode::Voice {
            pb::VoiceProvider::Vapi as i32
        } else {
            0
        },
        provider_call_id: String::new(),
        recording_uri: String::new(),
        evaluation: String::new(),
        overall_score: 0.0,
        passed: false,
        closed: false,
        transcript_final: false,
        transcript_version: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
        llm_requests: 0,
        llm_model: String::new(),
        version: 1,
        create_us: now,
        update_us: now,
    };
    let m = match store::insert_session(db, model).await {
        Ok(m) => m,
        Err(err) => {
            // A concurrent retry with the same request id won the unique index.
            if !r.request_id.is_empty()
                && let Some(existing) =
                    store::find_by_request_id(db, &org, &trainee, &r.request_id).await?
            {
                return respond(core, existing).await;
            }
            return Err(err.into());
        }
    };
    core.changed(m.clone(), true);
    let voice = if mode == pb::SessionMode::Voice {
        Some(voice_assistant(core, &m, setup).await)
    } else {
        None
    };
    Ok(Started { session: m, voice })
}

/// The answer to a repeated StartSession: the session it started first.
async fn respond(core: &Core, m: session::Model) -> ApiResult<Started> {
    let voice = if m.mode == pb::SessionMode::Voice as i32 {
        let setup = core.persona_setup(&m.organization, &m.scenario).await?;
        Some(voice_assistant(core, &m, setup).await)
    } else {
        None
    };
    Ok(Started { session: m, voice })
}

async fn voice_assistant(core: &Core, m: &session::Model, setup: PersonaSetup) -> VoiceAssistant {
    // The model is a nicety; a config hiccup must not fail the call start.
    let model = core
        .llm_endpoint(&m.organization)
        .await
        .ok()
        .flatten()
        .map(|e| e.model)
        .unwrap_or_default();
    VoiceAssistant {
        setup,
        model,
        server_url: format!("{}/webhooks/vapi", core.settings.public_url),
    }
}

pub async fn get(core: &Core, p: &Principal, name: &str) -> ApiResult<session::Model> {
    load_visible(core, p, name, "name").await
}

pub async fn list(core: &Core, p: &Principal, r: pb::ListSessionsRequest) -> ApiResult<Page> {
    let mut v = Violations::new();
    let org = r
        .parent
        .strip_prefix("organizations/")
        .filter(|o| !o.is_empty() && !o.contains('/'))
        .map(str::to_owned);
    v.check(
        org.is_none(),
        "parent",
        "must be organizations/{organization}",
    );
    v.check(r.page_size < 0, "page_size", "must not be negative");
    let after = if r.page_token.is_empty() {
        None
    } else {
        let t = decode_token(&r.page_token);
        v.check(
            t.is_none(),
            "page_token",
            "not a token from a previous page",
        );
        t
    };
    let mut q = ListQuery {
        organization: org.clone().unwrap_or_default(),
        after,
        limit: match r.page_size {
            n if n <= 0 => 50,
            n => n.min(1000) as u64,
        },
        ..Default::default()
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    q.trainee = nonempty(&r.trainee);
    q.scenario = nonempty(&r.scenario);
    q.assignment = nonempty(&r.assignment);
    if r.state != 0 {
        v.check(
            pb::SessionState::try_from(r.state).is_err(),
            "state",
            "unknown session state",
        );
        q.state = Some(r.state);
    }
    q.start_from_us = r
        .start_time
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
    q.start_before_us = r
        .end_time
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
    if let Err(e) = apply_filter(&r.filter, &mut q) {
        v.add("filter", e);
    }
    v.into_result()?;
    let org = org.unwrap_or_default();
    if !p.can_access_organization(&org) {
        return Err(ApiError::PermissionDenied(
            "cannot list another organization's sessions".into(),
        ));
    }
    if p.role == Role::Trainee {
        let me = member_name(p);
        match &q.trainee {
            Some(t) if *t != me => {
                return Err(ApiError::PermissionDenied(
                    "trainees may only list their own sessions".into(),
                ));
            }
            _ => q.trainee = Some(me),
        }
    }
    let (mut rows, total) = store::list(core.db()?, &q).await?;
    let next_page_token = if rows.len() as u64 > q.limit {
        rows.truncate(q.limit as usize);
        rows.last()
            .map(|m| encode_token(m.create_us, &m.id))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Page {
        sessions: rows,
        next_page_token,
        total_size: total,
    })
}

/// A small AIP-160 subset: `field = value` terms joined by AND, over state, mode, trainee,
/// scenario and assignment.
fn apply_filter(filter: &str, q: &mut ListQuery) -> Result<(), String> {
    let f = filter.trim();
    if f.is_empty() {
        return Ok(());
    }
    for term in f.split(" AND ") {
        let (field, value) = term
            .split_once('=')
            .ok_or_else(|| format!("unsupported term {term:?}: use field = value"))?;
        let field = field.trim();
        let value = value.trim().trim_matches('"');
        match field {
            "state" => {
                let s = pb::SessionState::from_str_name(value)
                    .or_else(|| pb::SessionState::from_str_name(&format!("SESSION_STATE_{value}")))
                    .ok_or_else(|| format!("unknown state {value:?}"))?;
                q.state = Some(s as i32);
            }
            "mode" => {
                let m = pb::SessionMode::from_str_name(value)
                    .or_else(|| pb::SessionMode::from_str_name(&format!("SESSION_MODE_{value}")))
                    .ok_or_else(|| format!("unknown mode {value:?}"))?;
                q.mode = Some(m as i32);
            }
            "trainee" => q.trainee = Some(value.to_owned()),
            "scenario" => q.scenario = Some(value.to_owned()),
            "assignment" => q.assignment = Some(value.to_owned()),
            other => return Err(format!("cannot filter on {other:?}")),
        }
    }
    Ok(())
}

fn parse_etag(etag: &str) -> ApiResult<Option<i64>> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| ApiError::Aborted("etag does not match the session".into()))
}

pub async fn end(
    core: &Core,
    p: &Principal,
    r: pb::EndSessionRequest,
) -> ApiResult<session::Model> {
    let m = load_visible(core, p, &r.name, "name").await?;
    // Ending an ended (or graded) session again answers it as it is; the store applies the
    // same rule inside its transaction.
    if let Some(Err(Refused::Cancelled)) =
        store::state_of(m.state).map(|s| transition(s, Change::End))
    {
        return Err(ApiError::FailedPrecondition {
            reason: "SESSION_CANCELLED",
            message: "a cancelled session cannot be ended".into(),
        });
    }
    let ended = core
        .end(
            &m.id,
            Ending {
                state: pb::SessionState::Ended as i32,
                reason: pb::EndReason::TraineeEnded as i32,
                etag: parse_etag(&r.etag)?,
                ..Default::default()
            },
        )
        .await?;
    Ok(ended.session)
}

pub async fn cancel(
    core: &Core,
    p: &Principal,
    r: pb::CancelSessionRequest,
) -> ApiResult<session::Model> {
    let m = load_visible(core, p, &r.name, "name").await?;
    match store::state_of(m.state).map(|s| transition(s, Change::Cancel)) {
        // Cancelling twice answers the cancelled session.
        Some(Ok(Step::Stay)) => return Ok(m),
        Some(Ok(Step::To(_))) => {}
        _ => {
            return Err(ApiError::FailedPrecondition {
                reason: "SESSION_NOT_ACTIVE",
                message: "only an active session can be cancelled".into(),
            });
        }
    }
    let ended = core
        .end(
            &m.id,
            Ending {
                state: pb::SessionState::Cancelled as i32,
                reason: pb::EndReason::Cancelled as i32,
                etag: parse_etag(&r.etag)?,
                ..Default::default()
            },
        )
        .await?;
    if !ended.changed && ended.session.state != pb::SessionState::Cancelled as i32 {
        return Err(ApiError::FailedPrecondition {
            reason: "SESSION_NOT_ACTIVE",
            message: "the session ended before it could be cancelled".into(),
        });
    }
    Ok(ended.session)
}

/// Page tokens: opaque to clients, "create_us.id" in hex so they survive URLs.
mod page_token {
    pub fn encode_token(create_us: i64, id: &str) -> String {
        hex::encode(format!("{create_us}.{id}"))
    }

    pub fn decode_token(token: &str) -> Option<(i64, String)> {
        let raw = String::from_utf8(hex::decode(token).ok()?).ok()?;
        let (c, id) = raw.split_once('.')?;
        Some((c.parse().ok()?, id.to_owned()))
    }
}
