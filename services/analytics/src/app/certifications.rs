//! Certifications: who holds which, who is close, a trainee's own, and revocation. The
//! terms come from the config service (cached, dropped on ConfigChanged); the standings are
//! computed per request from the read model's current grades (`domain::certifications`), so
//! a new grade, an override or a regrade counts at once and nothing is awarded twice.

use std::collections::BTreeSet;

use salestrainer_proto::{analytics as pb, config as cfg};
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Violations, names,
    time::{self, now_us},
};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{RankedPage, authorize_org, db_err, is_trainee, organization_of, own_member},
};
use crate::domain::{
    certifications::{Standing, State, Terms, standing},
    score_to_milli,
};
use crate::store::{
    certifications::{self as stored, Revocation},
    query,
};

/// Longest revocation reason, in characters.
const MAX_REASON_CHARS: usize = 1000;

fn micros_of(d: Option<&prost_types::Duration>) -> Option<i64> {
    let d = d?;
    d.seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(i64::from(d.nanos / 1000)))
        .filter(|us| *us > 0)
}

fn terms_of(c: &cfg::Certification) -> Terms {
    Terms {
        requirements: c
            .requirements
            .iter()
            .map(|r| (r.scenario.clone(), score_to_milli(r.passing_score)))
            .collect(),
        max_attempts: usize::try_from(c.max_attempts).unwrap_or(0),
        window_us: micros_of(c.attempt_window.as_ref()),
        validity_us: micros_of(c.validity.as_ref()),
    }
}

fn state_pb(s: State) -> pb::CertificationState {
    match s {
        State::NotEarned => pb::CertificationState::NotEarned,
        State::Held => pb::CertificationState::Held,
        State::Expired => pb::CertificationState::Expired,
        State::Revoked => pb::CertificationState::Revoked,
    }
}

fn standing_pb(
    c: &cfg::Certification,
    trainee: &str,
    s: &Standing,
    revoked: Option<&Revocation>,
) -> pb::CertificationStanding {
    pb::CertificationStanding {
        certification: c.name.clone(),
        certification_display_name: c.display_name.clone(),
        trainee: trainee.to_owned(),
        display_name: String::new(),
        state: state_pb(s.state) as i32,
        earn_time: s.earned_us.map(time::timestamp),
        expire_time: s.expires_us.map(time::timestamp),
        requirements_met: clamp_i32(s.met() as i64),
        requirement_count: clamp_i32(c.requirements.len() as i64),
        requirements: c
            .requirements
            .iter()
            .zip(&s.requirements)
            .map(|(r, p)| pb::RequirementProgress {
                scenario: r.scenario.clone(),
                passing_score: r.passing_score,
                best_score: p.best_milli as f64 / 1000.0,
                attempts: clamp_i32(p.attempts as i64),
                attempts_allowed: c.max_attempts,
                met: p.met,
            })
            .collect(),
        revoke_time: revoked.map(|r| time::timestamp(r.revoked_us)),
        revoke_reason: revoked.map(|r| r.reason.clone()).unwrap_or_default(),
        revoked_by: revoked.map(|r| r.revoked_by.clone()).unwrap_or_default(),
    }
}

/// The certification's terms, NOT_FOUND when config does not know it.
async fn certification(app: &AnalyticsApp, name: &str) -> ApiResult<cfg::Certification> {
    app.config
        .certification(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(name.to_owned()))
}

/// The standing of each trainee with an attempt or a revocation (only `trainee`'s if given).
async fn standings(
    app: &AnalyticsApp,
    org: &str,
    c: &cfg::Certification,
    trainee: Option<&str>,
) -> ApiResult<Vec<pb::CertificationStanding>> {
    let db = app.db.get()?;
    let terms = terms_of(c);
    let scenarios: Vec<String> = terms.requirements.iter().map(|(s, _)| s.clone()).collect();
    let attempts = stored::attempts(db, org, &scenarios, trainee)
        .await
        .map_err(db_err)?;
    let revoked = stored::revocations(db, &c.name, trainee)
        .await
        .map_err(db_err)?;
    let mut trainees: BTreeSet<&str> = attempts.keys().map(String::as_str).collect();
    trainees.extend(revoked.keys().map(String::as_str));
    if let Some(t) = trainee {
        trainees.insert(t);
    }
    let now = now_us();
    Ok(trainees
        .into_iter()
        .map(|t| {
            let r = revoked.get(t);
            let s = standing(
                &terms,
                attempts.get(t).map_or(&[][..], Vec::as_slice),
                r.map(|r| r.revoked_us),
                now,
            );
            standing_pb(c, t, &s, r)
        })
        .collect())
}

/// Holders first, then by requirements met, then by the sum of best scores: who is close.
fn closeness(s: &pb::CertificationStanding) -> (bool, i32, i64) {
    let best: f64 = s.requirements.iter().map(|r| r.best_score).sum();
    (
        s.state == pb::CertificationState::Held as i32,
        s.requirements_met,
        (best * 1000.0) as i64,
    )
}

async fn with_names(
    app: &AnalyticsApp,
    mut shown: Vec<pb::CertificationStanding>,
) -> ApiResult<Vec<pb::CertificationStanding>> {
    let db = app.db.get()?;
    let trainees: Vec<String> = shown.iter().map(|s| s.trainee.clone()).collect();
    let names = query::display_names(db, &trainees).await.map_err(db_err)?;
    for s in &mut shown {
        s.display_name = names.get(&s.trainee).cloned().unwrap_or_default();
    }
    Ok(shown)
}

pub async fn get_certification_progress(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetCertificationProgressRequest,
) -> ApiResult<pb::GetCertificationProgressResponse> {
    let org = organization_of(
        "certification",
        &req.certification,
        "certifications",
        "must be organizations/{organization}/certifications/{certification}",
    )?;
    authorize_org(p, &org)?;
    let mut v = Violations::new();
    let page = RankedPage::parse(
        &mut v,
        req.page_size,
        &req.page_token,
        &[&req.certification],
    );
    v.into_result()?;
    let c = certification(app, &req.certification).await?;
    let me = own_member(p);
    let mut all = standings(app, &org, &c, is_trainee(p).then_some(me.as_str())).await?;
    all.sort_by(|a, b| {
        closeness(b)
            .cmp(&closeness(a))
            .then_with(|| a.trainee.cmp(&b.trainee))
    });
    let total = all.len();
    let holders = all
        .iter()
        .filter(|s| s.state == pb::CertificationState::Held as i32)
        .count();
    let shown: Vec<_> = all.into_iter().skip(page.offset).take(page.size).collect();
    let next_page_token = page.next_token(shown.len(), total);
    Ok(pb::GetCertificationProgressResponse {
        certification: req.certification,
        standings: with_names(app, shown).await?,
        next_page_token,
        standing_count: clamp_i32(total as i64),
        holder_count: clamp_i32(holders as i64),
    })
}

pub async fn list_trainee_certifications(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::ListTraineeCertificationsRequest,
) -> ApiResult<pb::ListTraineeCertificationsResponse> {
    let org = organization_of(
        "trainee",
        &req.trainee,
        "members",
        "must be organizations/{organization}/members/{member}",
    )?;
    authorize_org(p, &org)?;
    if is_trainee(p) && req.trainee != own_member(p) {
        return Err(ApiError::PermissionDenied(
            "trainees may only see their own certifications".into(),
        ));
    }
    app.ensure_member(p, &req.trainee).await?;
    let mut out = Vec::new();
    for c in app
        .config
        .certifications(&names::organization_name(&org))
        .await?
    {
        out.extend(standings(app, &org, &c, Some(&req.trainee)).await?);
    }
    Ok(pb::ListTraineeCertificationsResponse {
        standings: with_names(app, out).await?,
    })
}

pub async fn revoke_certification_award(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::RevokeCertificationAwardRequest,
) -> ApiResult<pb::RevokeCertificationAwardResponse> {
    let org = organization_of(
        "certification",
        &req.certification,
        "certifications",
        "must be organizations/{organization}/certifications/{certification}",
    )?;
    authorize_org(p, &org)?;
    if is_trainee(p) {
        return Err(ApiError::PermissionDenied(
            "only managers and admins revoke certifications".into(),
        ));
    }
    let mut v = Violations::new();
    v.check(
        names::parse_child(&req.trainee, "members").map(|(o, _)| o) != Some(org.as_str()),
        "trainee",
        "must be organizations/{organization}/members/{member} of the certification's organization",
    );
    let reason = req.reason.trim();
    v.check(reason.is_empty(), "reason", "is required");
    v.check(
        reason.chars().count() > MAX_REASON_CHARS,
        "reason",
        "at most 1000 characters",
    );
    v.into_result()?;
    let c = certification(app, &req.certification).await?;
    let now = standings(app, &org, &c, Some(&req.trainee)).await?;
    if !now
        .iter()
        .any(|s| s.state == pb::CertificationState::Held as i32)
    {
        return Err(ApiError::FailedPrecondition {
            reason: "CERTIFICATION_NOT_HELD",
            message: format!("{} does not hold {}", req.trainee, req.certification),
        });
    }
    let db = app.db.get()?;
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    stored::revoke(
        &txn,
        &org,
        &c.name,
        &req.trainee,
        &Revocation {
            revoked_us: time::now_us(),
            reason: reason.to_owned(),
            revoked_by: own_member(p),
        },
    )
    .await
    .map_err(db_err)?;
    txn.commit().await.map_err(db_err)?;
    let after = standings(app, &org, &c, Some(&req.trainee)).await?;
    Ok(pb::RevokeCertificationAwardResponse {
        standing: with_names(app, after).await?.into_iter().next(),
    })
}
