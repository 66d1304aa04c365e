//! GetDrillImpact: whether drills lift the criterion they drill, in the drill and in the
//! next practice session (see `domain::drills`).

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiResult, Principal};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{TraineeScope, db_err},
};
use crate::{
    domain::drills::{Basis, DrillOutcome, impact, next_practice},
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
        let before = query::current_grades(db, &org, &drilled)
            .await
            .map_err(db_err)?;
        let trainees: Vec<&str> = facts.iter().map(|f| f.trainee.as_str()).collect();
        let since = facts.iter().filter_map(|f| f.start_us).min().unwrap_or(0);
        let later = query::practice_after(db, &org, &trainees, since)
            .await
            .map_err(db_err)?;
        let outcomes: Vec<DrillOutcome<'_>> = facts
            .iter()
            .filter_map(|f| {
                let drill = f.origin.drill.as_ref()?;
                Some(DrillOutcome {
                    drill,
                    grade: f.grade.as_ref()?,
                    drilled: before.get(&drill.evaluation),
                    next: next_practice(f, &later).and_then(|n| n.grade.as_ref()),
                })
            })
            .collect();
        Ok(pb::GetDrillImpactResponse {
            criteria: impact(&outcomes)
                .into_iter()
                .map(|i| pb::DrillImpact {
                    lift: i.lift(),
                    basis: match i.basis {
                        Basis::Criterion => pb::DrillImpactBasis::Criterion,
                        Basis::Skill => pb::DrillImpactBasis::Skill,
                    } as i32,
                    criterion: i.criterion,
                    skill: i.skill,
                    drills: clamp_i32(i.drills),
                    mean_score_before: i.mean_before,
                    mean_score_after: i.mean_after,
                    next_practice_sessions: clamp_i32(i.next_practice),
                    mean_score_next_practice: i.mean_next,
                    next_practice_lift: i.next_lift,
                })
                .collect(),
        })
    })
    .await
}
