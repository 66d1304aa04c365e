//! StartSession with `drill`: the evaluation is asked of grading (with the call service's
//! identity; grading answers any evaluation to a service, so the owner check is here), its
//! weakest criterion and moment picked (`domain::drill`), and the new session marked as that
//! criterion's drill: same scenario (persona) and rubric, a persona that opens with the
//! objection, and at most `drill_max_turns` trainee turns. A real call imported without a
//! scenario has no persona: the trainee names the scenario to drill on (`sessions::start`).

use salestrainer_proto::{call as pb, grading as gpb};
use salestrainer_runtime::{
    ApiError, ApiResult, Context, Peer, Principal, context::ServiceAuth, names,
};
use tonic::{codegen::InterceptedService, transport::Channel};

use super::{CallApp, member_name};
use crate::{
    domain::{
        Speaker,
        drill::{self, Line, Quote, Scored},
    },
    store,
};

pub type GradingClient =
    gpb::grading_service_client::GradingServiceClient<InterceptedService<Channel, ServiceAuth>>;

pub fn grading_client(ctx: &Context) -> anyhow::Result<GradingClient> {
    Ok(
        gpb::grading_service_client::GradingServiceClient::with_interceptor(
            ctx.peer_channel(Peer::Grading)?,
            ctx.service_auth(crate::SERVICE),
        ),
    )
}

/// What a drill session practises.
pub struct DrillPlan {
    pub evaluation: String,
    pub scenario: String,
    pub rubric: String,
    pub criterion: String,
    pub skill: String,
    pub score: f64,
    pub objection: String,
}

fn speaker_of(s: i32) -> Speaker {
    match gpb::Speaker::try_from(s) {
        Ok(gpb::Speaker::Trainee) => Speaker::Trainee,
        Ok(gpb::Speaker::Persona) => Speaker::Persona,
        _ => Speaker::System,
    }
}

/// The plan of a drill of `evaluation` for the caller. Another member's evaluation, or one of
/// another organization, is NOT_FOUND (it does not exist for this caller).
pub async fn plan(core: &CallApp, p: &Principal, evaluation: &str) -> ApiResult<DrillPlan> {
    let not_found = || ApiError::NotFound(format!("evaluation {evaluation}"));
    match names::parse_child(evaluation, "evaluations") {
        Some((org, _)) if org == p.organization => {}
        Some(_) => return Err(not_found()),
        None => {
            return Err(ApiError::invalid(
                "drill",
                "must be organizations/{organization}/evaluations/{evaluation}",
            ));
        }
    }
    let eval = core
        .grading
        .clone()
        .get_evaluation(gpb::GetEvaluationRequest {
            name: evaluation.to_owned(),
        })
        .await
        .map_err(|s| ApiError::from_peer(&s, &format!("evaluation {evaluation}")))?
        .into_inner()
        .evaluation
        .ok_or_else(not_found)?;
    if eval.trainee != member_name(p) {
        return Err(not_found());
    }
    let criteria: Vec<Scored> = eval
        .criterion_scores
        .iter()
        .map(|c| Scored {
            criterion: c.criterion_id.clone(),
            skill: c.skill.clone(),
            normalized: c.normalized_score,
            evidence: c
                .evidence
                .iter()
                .map(|q| Quote {
                    speaker: speaker_of(q.speaker),
                    text: q.text.clone(),
                    segment_id: q.segment_id.clone(),
                })
                .collect(),
        })
        .collect();
    let Some(weakest) = drill::weakest(&criteria) else {
        return Err(ApiError::FailedPrecondition {
            reason: "NOTHING_TO_DRILL",
            message: "the evaluation scored no criterion".into(),
        });
    };
    // The drilled session's transcript is ours: find the customer's words at that moment.
    let transcript: Vec<Line> = match names::parse_child(&eval.session, "sessions") {
        Some((_, id)) => store::segments(core.db()?, id)
            .await?
            .into_iter()
            .map(|s| Line {
                segment_id: s.segment_id,
                speaker: store::speaker_from_i32(s.speaker),
                text: s.text,
            })
            .collect(),
        None => Vec::new(),
    };
    let objection = drill::objection(weakest, &transcript)
        .or_else(|| drill::fallback_objection(&transcript))
        .unwrap_or_else(|| "I'm still not convinced. Why should I change anything?".into());
    Ok(DrillPlan {
        evaluation: evaluation.to_owned(),
        scenario: eval.scenario,
        rubric: eval.rubric,
        criterion: weakest.criterion.clone(),
        skill: weakest.skill.clone(),
        score: weakest.normalized,
        objection,
    })
}

/// A drill is a short TEXT session: VOICE is refused, unset means TEXT.
pub fn drill_mode(mode: i32) -> ApiResult<pb::SessionMode> {
    match pb::SessionMode::try_from(mode) {
        Ok(pb::SessionMode::Text | pb::SessionMode::Unspecified) => Ok(pb::SessionMode::Text),
        _ => Err(ApiError::invalid("mode", "a drill is a TEXT session")),
    }
}
