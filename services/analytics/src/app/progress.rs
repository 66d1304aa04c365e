//! GetAssignmentProgress: the read model's attempts per assignee, completed with the
//! assignment's terms from the config service.

use std::collections::BTreeSet;

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Violations,
    time::{self, micros, now_us},
};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{RankedPage, authorize_org, db_err, is_trainee, organization_of, own_member},
};
use crate::store::query;

pub async fn get_assignment_progress(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetAssignmentProgressRequest,
) -> ApiResult<pb::GetAssignmentProgressResponse> {
    let org = organization_of(
        "assignment",
        &req.assignment,
        "assignments",
        "must be organizations/{organization}/assignments/{assignment}",
    )?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let page = RankedPage::parse(&mut v, req.page_size, &req.page_token, &[&req.assignment]);
    v.into_result()?;
    let db = app.db.get()?;
    // Not cached: "overdue" moves with the clock, and the rows are few.
    let rows = query::assignment_progress(db, &org, &req.assignment)
        .await
        .map_err(db_err)?;
    let terms = app.config.assignment(&req.assignment).await;
    if terms.is_none() && rows.is_empty() {
        return Err(ApiError::NotFound(req.assignment));
    }
    let required = terms
        .as_ref()
        .map_or(1, |a| i64::from(a.required_attempts.max(1)));
    let passing_milli = terms
        .as_ref()
        .filter(|a| a.passing_score > 0.0)
        .map(|a| crate::domain::score_to_milli(a.passing_score));
    let due_us = terms
        .as_ref()
        .and_then(|a| a.due_time.as_ref())
        .and_then(micros);
    let mut assignees: BTreeSet<String> = rows.iter().map(|r| r.trainee.clone()).collect();
    if let Some(a) = &terms {
        assignees.extend(a.assignees.iter().cloned());
    }
    if is_trainee(p) {
        let me = own_member(p);
        assignees.retain(|a| *a == me);
    }
    let now = now_us();
    let progress: Vec<pb::AssigneeProgress> = assignees
        .into_iter()
        .map(|trainee| {
            let row = rows.iter().find(|r| r.trainee == trainee);
            let attempts = row.map_or(0, |r| r.attempts);
            let best = row.map_or(0, |r| r.best_milli);
            let good = match passing_milli {
                Some(pass) => best >= pass,
                // 0 means the rubric's passing score, which the grader's verdict applies.
                None => row.is_some_and(|r| r.passed_any),
            };
            let passed = attempts >= required && good;
            pb::AssigneeProgress {
                display_name: String::new(),
                trainee,
                attempts: clamp_i32(attempts),
                best_score: best as f64 / 1000.0,
                passed,
                overdue: !passed && due_us.is_some_and(|due| now > due),
                last_attempt_time: row.and_then(|r| r.last_attempt_us).map(time::timestamp),
            }
        })
        .collect();
    let passed_count = progress.iter().filter(|a| a.passed).count();
    let overdue_count = progress.iter().filter(|a| a.overdue).count();
    let total = progress.len();
    let mut shown: Vec<_> = progress
        .into_iter()
        .skip(page.offset)
        .take(page.size)
        .collect();
    let trainees: Vec<String> = shown.iter().map(|a| a.trainee.clone()).collect();
    let names = query::display_names(db, &trainees).await.map_err(db_err)?;
    for a in &mut shown {
        a.display_name = names.get(&a.trainee).cloned().unwrap_or_default();
    }
    Ok(pb::GetAssignmentProgressResponse {
        next_page_token: page.next_token(shown.len(), total),
        assignment: req.assignment,
        assignees: shown,
        assignee_count: clamp_i32(total as i64),
        passed_count: clamp_i32(passed_count as i64),
        overdue_count: clamp_i32(overdue_count as i64),
    })
}
