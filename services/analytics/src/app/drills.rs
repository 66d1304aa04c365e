//! GetDrillImpact: whether drills lift the criterion they drill, in the drill and in the
//! next practice session (see `domain::drills`).

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Violations};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{
        authorize_org, check_filter, db_err, is_trainee, organization_named, own_member,
        resolve_range,
    },
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
    let org = organization_named("organization", &req.organization)?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let mut trainee = check_filter(&mut v, "trainee", &req.trainee, "members", &org);
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
    if is_trainee(p) {
        // Trainees see only their own drills: no filter means "me".
        let me = own_member(p);
        match &trainee {
            None => trainee = Some(me),
            Some(t) if *t == me => {}
            Some(_) => {
                return Err(ApiError::PermissionDenied(
                    "trainees may only see their own analytics".into(),
                ));
            }
        }
    }
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
