//! The summaries: GetOrganizationSummary, GetTraineeSummary and GetLeaderboard, each checked,
//! authorized, then answered from the summary cache or computed from [`super::reports`].

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Violations, time};

use super::{
    AnalyticsApp,
    messages::{clamp_i32, stats_pb},
    reports,
    request_checks::{
        RankedPage, authorize_org, check_filter, check_time_zone, db_err, is_trainee,
        organization_named, organization_of, own_member, resolve_range, scope_trainee, time_key,
    },
};
use crate::{
    domain::{
        DayStats,
        summary::{self, Range},
    },
    store::query::{self, Filters},
};

/// Which calls a summary counts: unset is practice only, so real calls never mix in.
fn real_call(v: &mut Violations, source: i32) -> bool {
    match pb::SessionSource::try_from(source) {
        Ok(pb::SessionSource::RealCall) => true,
        Ok(_) => false,
        Err(_) => {
            v.add("source", "unknown session source");
            false
        }
    }
}

pub async fn get_organization_summary(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetOrganizationSummaryRequest,
) -> ApiResult<pb::GetOrganizationSummaryResponse> {
    let org = organization_named("name", &req.name)?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let mut filters = Filters {
        trainee: check_filter(&mut v, "trainee", &req.trainee, "members", &org),
        scenario: check_filter(&mut v, "scenario", &req.scenario, "scenarios", &org),
        assignment: check_filter(&mut v, "assignment", &req.assignment, "assignments", &org),
        real_call: real_call(&mut v, req.source),
    };
    check_time_zone(&mut v, "time_zone", &req.time_zone);
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
    // Trainees see only their own numbers: no filter means "me".
    filters.trainee = scope_trainee(p, filters.trainee.take())?;
    if let Some(t) = &filters.trainee {
        app.ensure_member(p, t).await?;
    }
    let key = format!(
        "org|{}|{}|{}|{}|{}|{}",
        filters.real_call,
        filters.trainee.as_deref().unwrap_or(""),
        filters.scenario.as_deref().unwrap_or(""),
        filters.assignment.as_deref().unwrap_or(""),
        range.start_us,
        range.end_us
    );
    let resp = app
        .cached(&org, key, async {
            let db = app.db.get()?;
            let s = reports::summary(db, &org, &filters, &range)
                .await
                .map_err(db_err)?;
            Ok(pb::GetOrganizationSummaryResponse {
                summary: Some(stats_pb(&s)),
            })
        })
        .await?;
    Ok(resp)
}

pub async fn get_trainee_summary(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetTraineeSummaryRequest,
) -> ApiResult<pb::GetTraineeSummaryResponse> {
    let org = organization_of(
        "trainee",
        &req.trainee,
        "members",
        "must be organizations/{organization}/members/{member}",
    )?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let filters = Filters {
        trainee: Some(req.trainee.clone()),
        scenario: check_filter(&mut v, "scenario", &req.scenario, "scenarios", &org),
        assignment: check_filter(&mut v, "assignment", &req.assignment, "assignments", &org),
        real_call: real_call(&mut v, req.source),
    };
    check_time_zone(&mut v, "time_zone", &req.time_zone);
    v.check(
        req.recent_evaluations_limit < 0,
        "recent_evaluations_limit",
        "must not be negative",
    );
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
    if is_trainee(p) && req.trainee != own_member(p) {
        return Err(ApiError::PermissionDenied(
            "trainees may only see their own analytics".into(),
        ));
    }
    app.ensure_member(p, &req.trainee).await?;
    let limit = match req.recent_evaluations_limit {
        0 => 10,
        n => n.min(50) as u64,
    };
    let key = format!(
        "trainee|{}|{}|{}|{}|{}|{}|{limit}",
        filters.real_call,
        req.trainee,
        filters.scenario.as_deref().unwrap_or(""),
        filters.assignment.as_deref().unwrap_or(""),
        range.start_us,
        range.end_us
    );
    let resp = app
        .cached(
            &org,
            key,
            trainee_summary(app, req, org.clone(), filters, range, limit),
        )
        .await?;
    Ok(resp)
}

async fn trainee_summary(
    app: &AnalyticsApp,
    req: pb::GetTraineeSummaryRequest,
    org: String,
    filters: Filters,
    range: Range,
    limit: u64,
) -> ApiResult<pb::GetTraineeSummaryResponse> {
    let db = app.db.get()?;
    let previous = range.previous();
    let (current, previous, recent, names) = futures::try_join!(
        reports::summary(db, &org, &filters, &range),
        reports::summary(db, &org, &filters, &previous),
        query::recent_graded(db, &org, &range, &filters, limit),
        query::display_names(db, std::slice::from_ref(&req.trainee)),
    )
    .map_err(db_err)?;
    let (c, p) = (&current.totals, &previous.totals);
    let mut weakest = current.skills.clone();
    weakest.reverse();
    weakest.truncate(3);
    Ok(pb::GetTraineeSummaryResponse {
        display_name: names.get(&req.trainee).cloned().unwrap_or_default(),
        trainee: req.trainee,
        summary: Some(stats_pb(&current)),
        change: Some(pb::PeriodDelta {
            sessions: clamp_i32(c.sessions) - clamp_i32(p.sessions),
            average_score: c.average_score() - p.average_score(),
            pass_rate: c.pass_rate() - p.pass_rate(),
            close_rate: c.close_rate() - p.close_rate(),
        }),
        weakest_skills: weakest
            .iter()
            .map(|k| pb::SkillAverage {
                skill: k.skill.clone(),
                average_score: k.average(),
                samples: clamp_i32(k.samples),
            })
            .collect(),
        recent_evaluations: recent
            .into_iter()
            .filter_map(|f| {
                let g = f.grade?;
                Some(pb::EvaluationBrief {
                    evaluation: g.evaluation,
                    session: f.session,
                    scenario: f.scenario,
                    overall_score: g.score_milli as f64 / 1000.0,
                    passed: g.passed,
                    closed: g.closed,
                    create_time: Some(time::timestamp(g.graded_us)),
                })
            })
            .collect(),
    })
}

pub async fn get_leaderboard(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetLeaderboardRequest,
) -> ApiResult<pb::GetLeaderboardResponse> {
    let org = organization_named("organization", &req.organization)?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let filters = Filters {
        trainee: None,
        scenario: check_filter(&mut v, "scenario", &req.scenario, "scenarios", &org),
        assignment: check_filter(&mut v, "assignment", &req.assignment, "assignments", &org),
        real_call: real_call(&mut v, req.source),
    };
    let metric = match pb::LeaderboardMetric::try_from(req.metric) {
        Ok(pb::LeaderboardMetric::Unspecified) => pb::LeaderboardMetric::AverageScore,
        Ok(m) => m,
        Err(_) => {
            v.add("metric", "unknown metric");
            pb::LeaderboardMetric::AverageScore
        }
    };
    v.check(req.min_sessions < 0, "min_sessions", "must not be negative");
    let page = RankedPage::parse(
        &mut v,
        req.page_size,
        &req.page_token,
        &[
            &req.organization,
            &req.metric.to_string(),
            &req.min_sessions.to_string(),
            &req.scenario,
            &req.assignment,
            &time_key(req.start_time.as_ref()),
            &time_key(req.end_time.as_ref()),
            &req.source.to_string(),
        ],
    );
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
        // Fails closed: no answer from config is not "visible".
        if !app.config.leaderboard_visible(&req.organization).await? {
            return Err(ApiError::PermissionDenied(
                "this organization does not show the leaderboard to trainees".into(),
            ));
        }
    }
    let key = format!(
        "leaderboard|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        filters.real_call,
        metric as i32,
        req.min_sessions,
        filters.scenario.as_deref().unwrap_or(""),
        filters.assignment.as_deref().unwrap_or(""),
        range.start_us,
        range.end_us,
        page.offset,
        page.size
    );
    let min = i64::from(req.min_sessions);
    let resp = app
        .cached(&org, key, async {
            let db = app.db.get()?;
            let totals = reports::per_trainee(db, &org, &filters, &range)
                .await
                .map_err(db_err)?;
            let rows: Vec<(String, f64, DayStats)> = totals
                .into_iter()
                .filter(|(_, s)| {
                    s.graded >= min
                        && (metric == pb::LeaderboardMetric::Sessions || s.graded > 0)
                        && s.sessions > 0
                })
                .map(|(t, s)| {
                    let value = match metric {
                        pb::LeaderboardMetric::Sessions => s.sessions as f64,
                        pb::LeaderboardMetric::CloseRate => s.close_rate(),
                        _ => s.average_score(),
                    };
                    (t, value, s)
                })
                .collect();
            let ranked = summary::rank(rows);
            let total = ranked.len();
            let shown: Vec<_> = ranked
                .into_iter()
                .skip(page.offset)
                .take(page.size)
                .collect();
            let trainees: Vec<String> = shown.iter().map(|r| r.1.clone()).collect();
            let names = query::display_names(db, &trainees).await.map_err(db_err)?;
            Ok(pb::GetLeaderboardResponse {
                next_page_token: page.next_token(shown.len(), total),
                entries: shown
                    .into_iter()
                    .map(|(rank, trainee, value, s)| pb::LeaderboardEntry {
                        display_name: names.get(&trainee).cloned().unwrap_or_default(),
                        trainee,
                        rank,
                        value,
                        sessions: clamp_i32(s.sessions),
                    })
                    .collect(),
                total_size: clamp_i32(total as i64),
            })
        })
        .await?;
    Ok(resp)
}
