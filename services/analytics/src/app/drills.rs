//! GetDrillImpact: whether drills lift the criterion they drill (see `domain::drills`).

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiResult, Principal};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{TraineeScope, db_err},
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
    // Trainees see only their own: no trainee means "me".
    let scope = TraineeScope::check(
        p,
        &req.organization,
        &req.trainee,
        req.start_time.as_ref(),
        req.end_time.as_ref(),
        app.settings.max_range_days,
    )?;
    let key = format!("drills|{}", scope.key());
    let TraineeScope {
        org,
        trainee,
        range,
    } = scope;
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
