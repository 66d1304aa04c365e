//! StartSession, GetSession, ListSessions, EndSession, CancelSession: validation, access,
//! the session's state rules (from `domain::session`) and the writes.

use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Role, Violations, names, paging,
    time::{duration_ms, now_us, parse_timestamp_opt},
};

use super::{CallApp, load_visible, member_name};
use crate::{
    app::persona_engine::PersonaSetup,
    domain::session::{Change, Refused, Step, transition},
    store::{self, Ending, ListQuery, session},
};

/// A started session and, for a voice session, what the browser's voice SDK needs.
pub struct Started {
    pub session: session::Model,
    pub voice: Option<VoiceAssistant>,
}

/// What a voice session's client needs to start the call, and no more: the persona's prompt
/// is served to the provider by the server (`app::webhooks`, VAPI `assistant-request`), or to
/// the session's trainee for a browser web call (`app::voice`).
pub struct VoiceAssistant {
    /// The scenario's time limit, if any.
    pub max_duration: Option<prost_types::Duration>,
    /// Where the provider sends its webhooks (and asks for the assistant).
    pub server_url: String,
}

/// A page of sessions.
pub struct Page {
    pub sessions: Vec<session::Model>,
    pub next_page_token: String,
    pub total_size: u64,
}

const MAX_ID_LEN: usize = 128;

pub async fn start(
    core: &CallApp,
    p: &Principal,
    r: pb::StartSessionRequest,
) -> ApiResult<Started> {
    if p.is_service() {
        return Err(ApiError::PermissionDenied(
            "a session is started by the trainee who takes the call".into(),
        ));
    }
    let org = p.organization.clone();
    // Another organization's names do not exist for this caller, like everywhere else.
    let foreign = |name: &str, collection: Option<&str>| {
        let of = match collection {
            None => names::parse_organization(name),
            Some(c) => names::parse_child(name, c).map(|(o, _)| o),
        };
        of.is_some_and(|o| o != org)
    };
    for (name, collection) in [
        (&r.parent, None),
        (&r.scenario, Some("scenarios")),
        (&r.assignment, Some("assignments")),
        (&r.drill, Some("evaluations")),
    ] {
        if foreign(name, collection) {
            return Err(ApiError::NotFound(name.clone()));
        }
    }
    let mut v = Violations::new();
    let parent = names::parse_organization(&r.parent);
    v.check(
        parent.is_none(),
        "parent",
        "must be organizations/{organization}",
    );
    let in_org = |name: &str, collection: &str| {
        names::parse_child(name, collection).is_some_and(|(o, _)| o == org)
    };
    let drilling = !r.drill.is_empty();
    // A drill takes its scenario from the evaluation; one given must be that one.
    v.check(
        !(in_org(&r.scenario, "scenarios") || drilling && r.scenario.is_empty()),
        "scenario",
        "must be organizations/{organization}/scenarios/{scenario} of the caller's organization",
    );
    v.check(
        drilling && !in_org(&r.drill, "evaluations"),
        "drill",
        "must be organizations/{organization}/evaluations/{evaluation} of the caller's organization",
    );
    v.check(
        drilling && !r.assignment.is_empty(),
        "assignment",
        "a drill is free practice: leave assignment empty",
    );
    v.check(
        !r.assignment.is_empty() && !in_org(&r.assignment, "assignments"),
        "assignment",
        "must be organizations/{organization}/assignments/{assignment} of the caller's organization",
    );
    let mode = if drilling {
        match super::drill::drill_mode(r.mode) {
            Ok(m) => m,
            Err(_) => {
                v.add("mode", "a drill is a TEXT session");
                pb::SessionMode::Text
            }
        }
    } else {
        pb::SessionMode::try_from(r.mode).unwrap_or(pb::SessionMode::Unspecified)
    };
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
    if parent != Some(org.as_str()) {
        // Another organization is answered as if it did not exist.
        return Err(ApiError::NotFound(format!("organization {}", r.parent)));
    }
    let trainee = member_name(p);
    let db = core.db()?;

    if !r.request_id.is_empty()
        && let Some(existing) = store::find_by_request_id(db, &org, &trainee, &r.request_id).await?
    {
        return respond(core, existing).await;
    }

    let mut r = r;
    let drill = if drilling {
        let plan = super::drill::plan(core, p, &r.drill).await?;
        if plan.scenario.is_empty() {
            // A real call imported without a scenario: the trainee names the persona.
            if r.scenario.is_empty() {
                return Err(ApiError::invalid(
                    "scenario",
                    "the drilled call has no scenario: name the scenario to drill on",
                ));
            }
        } else if !r.scenario.is_empty() && r.scenario != plan.scenario {
            return Err(ApiError::invalid(
                "scenario",
                "a drill runs on the drilled evaluation's scenario",
            ));
        } else {
            r.scenario = plan.scenario.clone();
        }
        Some(plan)
    } else {
        None
    };
    // Validates the scenario (NOT_FOUND when it does not exist) and gives the voice config.
    let setup = core.persona_setup(&org, &r.scenario).await?;
    let scenario = core.scenario(&r.scenario).await?;
    if drill.as_ref().is_some_and(|d| !d.scenario.is_empty()) {
        // The trainee practised this scenario already: the drill is theirs to take.
    } else if !r.assignment.is_empty() {
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
        .as_ref()
        .and_then(duration_ms)
        .filter(|ms| *ms > 0)
        .map(|ms| now.saturating_add(ms.saturating_mul(1000)));
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
        segment_count: 0,
        transcript_bytes: 0,
        failure_reason: String::new(),
        source: pb::SessionSource::Practice as i32,
        rubric: drill.as_ref().map(|d| d.rubric.clone()).unwrap_or_default(),
        title: String::new(),
        drill_evaluation: drill
            .as_ref()
            .map(|d| d.evaluation.clone())
            .unwrap_or_default(),
        drill_criterion: drill
            .as_ref()
            .map(|d| d.criterion.clone())
            .unwrap_or_default(),
        drill_skill: drill.as_ref().map(|d| d.skill.clone()).unwrap_or_default(),
        drill_score: drill.as_ref().map(|d| d.score).unwrap_or_default(),
        drill_objection: drill.map(|d| d.objection).unwrap_or_default(),
        score_revision: 0,
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
    core.changed(&m, true);
    let voice = if mode == pb::SessionMode::Voice {
        Some(voice_assistant(core, setup))
    } else {
        None
    };
    Ok(Started { session: m, voice })
}

/// The answer to a repeated StartSession: the session it started first.
async fn respond(core: &CallApp, m: session::Model) -> ApiResult<Started> {
    let voice = if m.mode == pb::SessionMode::Voice as i32 {
        let setup = core.persona_setup(&m.organization, &m.scenario).await?;
        Some(voice_assistant(core, setup))
    } else {
        None
    };
    Ok(Started { session: m, voice })
}

fn voice_assistant(core: &CallApp, setup: PersonaSetup) -> VoiceAssistant {
    VoiceAssistant {
        max_duration: setup.time_limit,
        server_url: format!("{}/webhooks/vapi", core.public_url),
    }
}

pub async fn get(core: &CallApp, p: &Principal, name: &str) -> ApiResult<session::Model> {
    load_visible(core, p, name, "name").await
}

pub async fn list(core: &CallApp, p: &Principal, r: pb::ListSessionsRequest) -> ApiResult<Page> {
    let mut v = Violations::new();
    let org = names::parse_organization(&r.parent).map(str::to_owned);
    v.check(
        org.is_none(),
        "parent",
        "must be organizations/{organization}",
    );
    let mut q = ListQuery {
        organization: org.clone().unwrap_or_default(),
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
    if r.source != 0 {
        v.check(
            pb::SessionSource::try_from(r.source).is_err(),
            "source",
            "unknown session source",
        );
        q.source = Some(r.source);
    }
    if let Err(e) = apply_filter(&r.filter, &mut q) {
        v.add("filter", e);
    }
    v.into_result()?;
    q.start_from_us = parse_timestamp_opt("start_time", r.start_time.as_ref())?;
    q.start_before_us = parse_timestamp_opt("end_time", r.end_time.as_ref())?;
    q.limit = paging::page_size(r.page_size)?;
    // The token belongs to the request's own filters, before the caller's scope is applied.
    let state = format!("{}/{}", r.state, r.source);
    let times = format!("{:?}/{:?}", q.start_from_us, q.start_before_us);
    let query = paging::fingerprint(&[
        &r.parent,
        &r.trainee,
        &r.scenario,
        &r.assignment,
        &state,
        &r.filter,
        &times,
    ]);
    q.after = paging::decode(&r.page_token, query)?
        .map(|k| decode_key(&k))
        .transpose()?;
    let org = org.unwrap_or_default();
    if !p.can_access_organization(&org) {
        // Another organization is answered as if it did not exist.
        return Err(ApiError::NotFound(format!("organization {}", r.parent)));
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
    let (rows, total) = store::list(core.db()?, &q).await?;
    let (sessions, next_page_token) = paging::split_page(rows, q.limit, query, |m| {
        format!("{}.{}", m.create_us, m.id)
    });
    Ok(Page {
        sessions,
        next_page_token,
        total_size: total,
    })
}

/// The (create_us, id) keyset position of a page token's key.
fn decode_key(key: &str) -> ApiResult<(i64, String)> {
    key.split_once('.')
        .and_then(|(c, id)| Some((c.parse().ok()?, id.to_owned())))
        .ok_or_else(|| ApiError::invalid("page_token", "malformed page token"))
}

/// A small AIP-160 subset: `field = value` terms joined by AND, over state, mode, source,
/// trainee, scenario and assignment.
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
            "source" => {
                let s = pb::SessionSource::from_str_name(value)
                    .or_else(|| {
                        pb::SessionSource::from_str_name(&format!("SESSION_SOURCE_{value}"))
                    })
                    .ok_or_else(|| format!("unknown source {value:?}"))?;
                q.source = Some(s as i32);
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

/// Ends a session. A VOICE session is graded on its provider's end-of-call report: ended here
/// before the report arrived, it moves to AWAITING_REPORT (nothing is submitted for grading)
/// and the report, or the sweeper after `voice_report_wait_secs`, finishes it.
pub async fn end(
    core: &CallApp,
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
    core: &CallApp,
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
