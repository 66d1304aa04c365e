//! gRPC layer of the analytics service: requests are checked and authorized here, answered
//! by `reports`/`store`, and cached by `cache`.

use std::{collections::BTreeSet, sync::Arc};

use prost::Message;
use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Role, Violations};
use tonic::{Request, Response, Status};

use crate::{
    State,
    domain::{
        DayStats, names,
        summary::{self, Range, RangeError, Summary},
    },
    ingest::timestamp_us,
    reports,
    store::query::{self, Filters},
};

pub struct AnalyticsServiceApi {
    state: Arc<State>,
}

impl AnalyticsServiceApi {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn to_timestamp(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// Another organization's resources do not exist for the caller.
fn authorize_org(p: &Principal, org: &str) -> ApiResult<()> {
    if p.can_access_organization(org) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("organizations/{org}")))
    }
}

fn is_trainee(p: &Principal) -> bool {
    p.role == Role::Trainee
}

/// The member a trainee principal is: see the crate docs.
fn own_member(p: &Principal) -> String {
    names::member_name(&p.organization, &p.subject)
}

fn check_time_zone(v: &mut Violations, field: &str, tz: &str) {
    if !(tz.is_empty() || tz.eq_ignore_ascii_case("UTC") || tz.eq_ignore_ascii_case("Etc/UTC")) {
        v.add(
            field,
            "only UTC day buckets are supported; leave empty or set \"UTC\"",
        );
    }
}

/// The organization id of a required resource name `organizations/{org}/{collection}/{id}`.
fn organization_of(
    field: &str,
    value: &str,
    collection: &str,
    shape: &str,
) -> Result<String, ApiError> {
    names::child(value, collection)
        .map(|(org, _)| org.to_owned())
        .ok_or_else(|| ApiError::invalid(field, shape))
}

/// An optional filter naming a child of `org`.
fn check_filter(
    v: &mut Violations,
    field: &str,
    value: &str,
    collection: &str,
    org: &str,
) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    match names::child(value, collection) {
        Some((o, _)) if o == org => Some(value.to_owned()),
        Some(_) => {
            v.add(field, "must belong to the requested organization");
            None
        }
        None => {
            v.add(
                field,
                format!("must be organizations/{{organization}}/{collection}/{{id}}"),
            );
            None
        }
    }
}

fn resolve_range(
    v: &mut Violations,
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
    max_days: i64,
) -> Option<Range> {
    let mut bad_ts = false;
    let mut ts = |field: &str, t: Option<&prost_types::Timestamp>| {
        t.and_then(|t| {
            let us = timestamp_us(t);
            if us.is_none() {
                v.add(field, "is not a valid timestamp");
                bad_ts = true;
            }
            us
        })
    };
    let s = ts("start_time", start);
    let e = ts("end_time", end);
    if bad_ts {
        return None;
    }
    match Range::resolve(s, e, now_us(), max_days) {
        Ok(r) => Some(r),
        Err(RangeError::Inverted) => {
            v.add("end_time", "must be after start_time");
            None
        }
        Err(RangeError::TooLong { max_days }) => {
            v.add(
                "start_time",
                format!("the range may span at most {max_days} days"),
            );
            None
        }
    }
}

fn stats_pb(s: &Summary) -> pb::SummaryStats {
    let t = &s.totals;
    let avg_ms = t.average_duration_ms();
    pb::SummaryStats {
        sessions: clamp_i32(t.sessions),
        graded_sessions: clamp_i32(t.graded),
        average_score: t.average_score(),
        pass_rate: t.pass_rate(),
        close_rate: t.close_rate(),
        average_duration: Some(prost_types::Duration {
            seconds: (avg_ms / 1000.0).trunc() as i64,
            nanos: ((avg_ms % 1000.0) * 1_000_000.0).round() as i32,
        }),
        skills: s
            .skills
            .iter()
            .map(|k| pb::SkillAverage {
                skill: k.skill.clone(),
                average_score: k.average(),
                samples: clamp_i32(k.samples),
            })
            .collect(),
        trend: s
            .trend
            .iter()
            .map(|(day, d)| pb::DailyPoint {
                date: summary::date_string(*day),
                sessions: clamp_i32(d.sessions),
                graded: clamp_i32(d.graded),
                average_score: d.average_score(),
                pass_rate: d.pass_rate(),
                close_rate: d.close_rate(),
            })
            .collect(),
    }
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(0, i64::from(i32::MAX)) as i32
}

fn db_err(err: sea_orm::DbErr) -> ApiError {
    ApiError::internal(err)
}

fn page_offset(token: &str, field: &str) -> ApiResult<usize> {
    if token.is_empty() {
        return Ok(0);
    }
    token
        .strip_prefix("o")
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| ApiError::invalid(field, "is not a token this service returned"))
}

impl AnalyticsServiceApi {
    /// Answers from the cache, else computes, stores and answers.
    async fn cached<T, F>(&self, org: &str, key: String, compute: F) -> ApiResult<T>
    where
        T: Message + Default,
        F: std::future::Future<Output = ApiResult<T>>,
    {
        let cache = &self.state.cache;
        let key = cache.key(org, &key).await;
        if let Some(k) = &key
            && let Some(bytes) = cache.get(k).await
            && let Ok(hit) = T::decode(bytes.as_slice())
        {
            return Ok(hit);
        }
        let value = compute.await?;
        if let Some(k) = key {
            cache.put(k, value.encode_to_vec()).await;
        }
        Ok(value)
    }

    async fn ensure_member(&self, p: &Principal, member: &str) -> ApiResult<()> {
        if is_trainee(p) && member == own_member(p) {
            // A trainee without any session yet still gets an (empty) answer.
            return Ok(());
        }
        let db = self.state.db.get()?;
        if query::member_known(db, member).await.map_err(db_err)? {
            Ok(())
        } else {
            Err(ApiError::NotFound(member.to_owned()))
        }
    }

    async fn trainee_summary(
        &self,
        req: pb::GetTraineeSummaryRequest,
        org: String,
        filters: Filters,
        range: Range,
        limit: u64,
    ) -> ApiResult<pb::GetTraineeSummaryResponse> {
        let db = self.state.db.get()?;
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
                        create_time: Some(to_timestamp(g.graded_us)),
                    })
                })
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl pb::analytics_service_server::AnalyticsService for AnalyticsServiceApi {
    async fn get_organization_summary(
        &self,
        request: Request<pb::GetOrganizationSummaryRequest>,
    ) -> Result<Response<pb::GetOrganizationSummaryResponse>, Status> {
        let p = Principal::of(&request)?.clone();
        let req = request.into_inner();
        let Some(org) = names::org_id(&req.name).map(str::to_owned) else {
            return Err(ApiError::invalid("name", "must be organizations/{organization}").into());
        };
        authorize_org(&p, &org)?;
        let mut v = Violations::new();
        let mut filters = Filters {
            trainee: check_filter(&mut v, "trainee", &req.trainee, "members", &org),
            scenario: check_filter(&mut v, "scenario", &req.scenario, "scenarios", &org),
            assignment: check_filter(&mut v, "assignment", &req.assignment, "assignments", &org),
        };
        check_time_zone(&mut v, "time_zone", &req.time_zone);
        let range = resolve_range(
            &mut v,
            req.start_time.as_ref(),
            req.end_time.as_ref(),
            self.state.settings.max_range_days,
        );
        v.into_result()?;
        let Some(range) = range else {
            return Err(ApiError::invalid("start_time", "invalid range").into());
        };
        if is_trainee(&p) {
            // Trainees see only their own numbers: no filter means "me".
            let me = own_member(&p);
            match &filters.trainee {
                None => filters.trainee = Some(me),
                Some(t) if *t == me => {}
                Some(_) => {
                    return Err(ApiError::PermissionDenied(
                        "trainees may only see their own analytics".into(),
                    )
                    .into());
                }
            }
        }
        if let Some(t) = &filters.trainee {
            self.ensure_member(&p, t).await?;
        }
        let key = format!(
            "org|{}|{}|{}|{}|{}",
            filters.trainee.as_deref().unwrap_or(""),
            filters.scenario.as_deref().unwrap_or(""),
            filters.assignment.as_deref().unwrap_or(""),
            range.start_us,
            range.end_us
        );
        let resp = self
            .cached(&org, key, async {
                let db = self.state.db.get()?;
                let s = reports::summary(db, &org, &filters, &range)
                    .await
                    .map_err(db_err)?;
                Ok(pb::GetOrganizationSummaryResponse {
                    summary: Some(stats_pb(&s)),
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_trainee_summary(
        &self,
        request: Request<pb::GetTraineeSummaryRequest>,
    ) -> Result<Response<pb::GetTraineeSummaryResponse>, Status> {
        let p = Principal::of(&request)?.clone();
        let req = request.into_inner();
        let org = organization_of(
            "trainee",
            &req.trainee,
            "members",
            "must be organizations/{organization}/members/{member}",
        )?;
        authorize_org(&p, &org)?;
        let mut v = Violations::new();
        let filters = Filters {
            trainee: Some(req.trainee.clone()),
            scenario: check_filter(&mut v, "scenario", &req.scenario, "scenarios", &org),
            assignment: check_filter(&mut v, "assignment", &req.assignment, "assignments", &org),
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
            self.state.settings.max_range_days,
        );
        v.into_result()?;
        let Some(range) = range else {
            return Err(ApiError::invalid("start_time", "invalid range").into());
        };
        if is_trainee(&p) && req.trainee != own_member(&p) {
            return Err(ApiError::PermissionDenied(
                "trainees may only see their own analytics".into(),
            )
            .into());
        }
        self.ensure_member(&p, &req.trainee).await?;
        let limit = match req.recent_evaluations_limit {
            0 => 10,
            n => n.min(50) as u64,
        };
        let key = format!(
            "trainee|{}|{}|{}|{}|{}|{limit}",
            req.trainee,
            filters.scenario.as_deref().unwrap_or(""),
            filters.assignment.as_deref().unwrap_or(""),
            range.start_us,
            range.end_us
        );
        let resp = self
            .cached(
                &org,
                key,
                self.trainee_summary(req, org.clone(), filters, range, limit),
            )
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_leaderboard(
        &self,
        request: Request<pb::GetLeaderboardRequest>,
    ) -> Result<Response<pb::GetLeaderboardResponse>, Status> {
        let p = Principal::of(&request)?.clone();
        let req = request.into_inner();
        let Some(org) = names::org_id(&req.organization).map(str::to_owned) else {
            return Err(
                ApiError::invalid("organization", "must be organizations/{organization}").into(),
            );
        };
        authorize_org(&p, &org)?;
        let mut v = Violations::new();
        let filters = Filters {
            trainee: None,
            scenario: check_filter(&mut v, "scenario", &req.scenario, "scenarios", &org),
            assignment: check_filter(&mut v, "assignment", &req.assignment, "assignments", &org),
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
        v.check(req.page_size < 0, "page_size", "must not be negative");
        let offset = match page_offset(&req.page_token, "page_token") {
            Ok(o) => o,
            Err(_) => {
                v.add("page_token", "is not a token this service returned");
                0
            }
        };
        let range = resolve_range(
            &mut v,
            req.start_time.as_ref(),
            req.end_time.as_ref(),
            self.state.settings.max_range_days,
        );
        v.into_result()?;
        let Some(range) = range else {
            return Err(ApiError::invalid("start_time", "invalid range").into());
        };
        if is_trainee(&p) {
            let visible = self
                .state
                .config
                .leaderboard_visible(&req.organization)
                .await
                .unwrap_or(self.state.settings.leaderboard_visible_by_default);
            if !visible {
                return Err(ApiError::PermissionDenied(
                    "this organization does not show the leaderboard to trainees".into(),
                )
                .into());
            }
        }
        let page_size = match req.page_size {
            0 => 50,
            n => n.min(1000) as usize,
        };
        let key = format!(
            "leaderboard|{}|{}|{}|{}|{}|{}|{offset}|{page_size}",
            metric as i32,
            req.min_sessions,
            filters.scenario.as_deref().unwrap_or(""),
            filters.assignment.as_deref().unwrap_or(""),
            range.start_us,
            range.end_us
        );
        let min = i64::from(req.min_sessions);
        let resp = self
            .cached(&org, key, async {
                let db = self.state.db.get()?;
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
                let page: Vec<_> = ranked.into_iter().skip(offset).take(page_size).collect();
                let trainees: Vec<String> = page.iter().map(|r| r.1.clone()).collect();
                let names = query::display_names(db, &trainees).await.map_err(db_err)?;
                let next = offset + page.len();
                Ok(pb::GetLeaderboardResponse {
                    entries: page
                        .into_iter()
                        .map(|(rank, trainee, value, s)| pb::LeaderboardEntry {
                            display_name: names.get(&trainee).cloned().unwrap_or_default(),
                            trainee,
                            rank,
                            value,
                            sessions: clamp_i32(s.sessions),
                        })
                        .collect(),
                    next_page_token: if next < total {
                        format!("o{next}")
                    } else {
                        String::new()
                    },
                    total_size: clamp_i32(total as i64),
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_assignment_progress(
        &self,
        request: Request<pb::GetAssignmentProgressRequest>,
    ) -> Result<Response<pb::GetAssignmentProgressResponse>, Status> {
        let p = Principal::of(&request)?.clone();
        let req = request.into_inner();
        let org = organization_of(
            "assignment",
            &req.assignment,
            "assignments",
            "must be organizations/{organization}/assignments/{assignment}",
        )?;
        authorize_org(&p, &org)?;
        let mut v = Violations::new();
        v.check(req.page_size < 0, "page_size", "must not be negative");
        let offset = match page_offset(&req.page_token, "page_token") {
            Ok(o) => o,
            Err(_) => {
                v.add("page_token", "is not a token this service returned");
                0
            }
        };
        v.into_result()?;
        let page_size = match req.page_size {
            0 => 100,
            n => n.min(1000) as usize,
        };
        let db = self.state.db.get()?;
        // Not cached: "overdue" moves with the clock, and the rows are few.
        let rows = query::assignment_progress(db, &org, &req.assignment)
            .await
            .map_err(db_err)?;
        let terms = self.state.config.assignment(&req.assignment).await;
        if terms.is_none() && rows.is_empty() {
            return Err(ApiError::NotFound(req.assignment).into());
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
            .and_then(timestamp_us);
        let mut assignees: BTreeSet<String> = rows.iter().map(|r| r.trainee.clone()).collect();
        if let Some(a) = &terms {
            assignees.extend(a.assignees.iter().cloned());
        }
        if is_trainee(&p) {
            let me = own_member(&p);
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
                    last_attempt_time: row.and_then(|r| r.last_attempt_us).map(to_timestamp),
                }
            })
            .collect();
        let passed_count = progress.iter().filter(|a| a.passed).count();
        let overdue_count = progress.iter().filter(|a| a.overdue).count();
        let total = progress.len();
        let mut page: Vec<_> = progress.into_iter().skip(offset).take(page_size).collect();
        let trainees: Vec<String> = page.iter().map(|a| a.trainee.clone()).collect();
        let names = query::display_names(db, &trainees).await.map_err(db_err)?;
        for a in &mut page {
            a.display_name = names.get(&a.trainee).cloned().unwrap_or_default();
        }
        let next = offset + page.len();
        Ok(Response::new(pb::GetAssignmentProgressResponse {
            assignment: req.assignment,
            assignees: page,
            next_page_token: if next < total {
                format!("o{next}")
            } else {
                String::new()
            },
            assignee_count: clamp_i32(total as i64),
            passed_count: clamp_i32(passed_count as i64),
            overdue_count: clamp_i32(overdue_count as i64),
        }))
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::GetUsageResponse>, Status> {
        let p = Principal::of(&request)?.clone();
        let req = request.into_inner();
        let Some(org) = names::org_id(&req.organization).map(str::to_owned) else {
            return Err(
                ApiError::invalid("organization", "must be organizations/{organization}").into(),
            );
        };
        authorize_org(&p, &org)?;
        p.require_role(&[Role::Admin, Role::Manager])?;
        let mut v = Violations::new();
        check_time_zone(&mut v, "time_zone", &req.time_zone);
        let range = resolve_range(
            &mut v,
            req.start_time.as_ref(),
            req.end_time.as_ref(),
            self.state.settings.max_range_days,
        );
        v.into_result()?;
        let Some(range) = range else {
            return Err(ApiError::invalid("start_time", "invalid range").into());
        };
        let days = range.touched_days();
        let key = format!("usage|{}|{}|{}|{}", req.provider, req.model, days.0, days.1);
        let resp = self
            .cached(&org, key, async {
                let db = self.state.db.get()?;
                let rows = query::usage(db, &org, days, &req.provider, &req.model)
                    .await
                    .map_err(db_err)?;
                let mut totals = pb::UsageTotals::default();
                let points = rows
                    .into_iter()
                    .map(|(day, provider, model, u)| {
                        totals.prompt_tokens += u.prompt_tokens;
                        totals.completion_tokens += u.completion_tokens;
                        totals.cost_micros += u.cost_micros;
                        totals.requests += u.requests;
                        pb::UsagePoint {
                            date: summary::date_string(day),
                            provider,
                            model,
                            prompt_tokens: u.prompt_tokens,
                            completion_tokens: u.completion_tokens,
                            cost_micros: u.cost_micros,
                            requests: u.requests,
                        }
                    })
                    .collect();
                Ok(pb::GetUsageResponse {
                    points,
                    totals: Some(totals),
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let p = Principal::of(&request)?.clone();
        // The auth layer already admits only services; this keeps the rule next to the code.
        p.require_role(&[])?;
        let req = request.into_inner();
        let mut v = Violations::new();
        v.check(
            req.events.is_empty(),
            "events",
            "at least one event is required",
        );
        v.check(
            req.events.len() > 500,
            "events",
            "at most 500 events per call",
        );
        let mut parsed = Vec::with_capacity(req.events.len());
        for (i, e) in req.events.iter().enumerate() {
            match crate::ingest::parse(e, &format!("events[{i}].")) {
                Ok(p) => parsed.push(p),
                Err(violations) => {
                    for fv in violations {
                        v.add(fv.field, fv.description);
                    }
                }
            }
        }
        v.into_result()?;
        let out = self.state.ingest(&parsed).await?;
        Ok(Response::new(pb::IngestEventsResponse {
            accepted: clamp_i32(out.accepted as i64),
            duplicates: clamp_i32(out.duplicates as i64),
        }))
    }
}
