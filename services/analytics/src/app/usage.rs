//! GetUsage: LLM usage and cost per day, provider and model (staff only).

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Role, Violations};

use super::{
    AnalyticsApp,
    request_checks::{authorize_org, check_time_zone, db_err, organization_named, resolve_range},
};
use crate::{domain::summary, store::query};

pub async fn get_usage(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetUsageRequest,
) -> ApiResult<pb::GetUsageResponse> {
    let org = organization_named("organization", &req.organization)?;
    authorize_org(p, &org)?;
    p.require_role(&[Role::Admin, Role::Manager])?;
    let mut v = Violations::new();
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
    let days = range.touched_days();
    let key = format!("usage|{}|{}|{}|{}", req.provider, req.model, days.0, days.1);
    let resp = app
        .cached(&org, key, async {
            let db = app.db.get()?;
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
    Ok(resp)
}
