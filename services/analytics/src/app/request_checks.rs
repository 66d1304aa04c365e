//! The checks every read use case makes on its request and caller: organization access,
//! the trainee's own member, names and filters of the requested organization, time ranges,
//! UTC buckets and offset page tokens.

use salestrainer_runtime::{ApiError, ApiResult, Principal, Role, Violations};

use crate::domain::{
    events::timestamp_us,
    names,
    summary::{Range, RangeError},
};

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Another organization's resources do not exist for the caller.
pub fn authorize_org(p: &Principal, org: &str) -> ApiResult<()> {
    if p.can_access_organization(org) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("organizations/{org}")))
    }
}

pub fn is_trainee(p: &Principal) -> bool {
    p.role == Role::Trainee
}

/// The member a trainee principal is: see the crate docs.
pub fn own_member(p: &Principal) -> String {
    names::member_name(&p.organization, &p.subject)
}

pub fn check_time_zone(v: &mut Violations, field: &str, tz: &str) {
    if !(tz.is_empty() || tz.eq_ignore_ascii_case("UTC") || tz.eq_ignore_ascii_case("Etc/UTC")) {
        v.add(
            field,
            "only UTC day buckets are supported; leave empty or set \"UTC\"",
        );
    }
}

/// The organization id of a required resource name `organizations/{org}/{collection}/{id}`.
pub fn organization_of(
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
pub fn check_filter(
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

pub fn resolve_range(
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

pub fn db_err(err: sea_orm::DbErr) -> ApiError {
    ApiError::internal(err)
}

pub fn page_offset(token: &str, field: &str) -> ApiResult<usize> {
    if token.is_empty() {
        return Ok(0);
    }
    token
        .strip_prefix("o")
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| ApiError::invalid(field, "is not a token this service returned"))
}
