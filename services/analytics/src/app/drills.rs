//! GetDrillImpact: whether drills lift the criterion they drill (see `domain::drills`).

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Violations};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{
        authorize_org, check_filter, db_err, organization_named, resolve_range, scope_trainee,
    },
};
use crate::{
    domain::drills::{DrillOutcome, impact},
    store::query,
};

pub async fn get_drill_impact(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetDrillImpactRequest,
) -> ApiResult<pb::GetDrillImpactResponse> {
    let org = organization_named("organization", &req.organization)?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let trainee = check_filter(&mut v, "trainee", &req.trainee, "members", &org);
    let range = resolve_range(
        &mut v,
        req.start_time.as_ref(),
        req.end_time.as_ref(),
        app.settings.max_range_days,
    );
    v.into_result()?;
    let Some(range) = range else {
        return Err(ApiError::invalid("start_time", "invalid range"));
    };
    // Trainees see only their own: no filter means "me".
    let trainee = scope_trainee(p, trainee)?;
    let key = format!(
        "drills|{}|{}|{}",
        trainee.as_deref().unwrap_or(""),
        range.start_us,
        range.end_us
    );
    app.cached(&org, key, async {
        let db = app.db.get()?;
        let facts = query::graded_drills(db, &org, &range, trainee.as_deref())
            .await
            .map_err(db_err)?;
        let drilled: Vec<String> = facts
            .iter()
            .filter_map(|f| Some(f.origin.drill.as_ref()?.evaluation.clone()))
            .collect();
        let before = query::current_skills(db, &org, &drilled)
            .await
            .map_err(db_err)?;
        let outcomes: Vec<DrillOutcome<'_>> = facts
            .iter()
            .filter_map(|f| {
                let drill = f.origin.drill.as_ref()?;
                Some(DrillOutcome {
                    drill,
                    skills: &f.grade.as_ref()?.skills,
                    drilled_skills: before.get(&drill.evaluation).map(Vec::as_slice),
                })
            })
            .collect();
        Ok(pb::GetDrillImpactResponse {
            criteria: impact(&outcomes)
                .into_iter()
                .map(|i| pb::DrillImpact {
                    lift: i.lift(),
                    criterion: i.criterion,
                    skill: i.skill,
                    drills: clamp_i32(i.drills),
                    mean_score_before: i.mean_before,
                    mean_score_after: i.mean_after,
                })
                .collect(),
        })
    })
    .await
}
