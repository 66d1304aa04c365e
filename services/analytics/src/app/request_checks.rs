//! The checks every read use case makes on its request and caller: organization access,
//! the trainee's own member, names and filters of the requested organization, time ranges,
//! UTC buckets and page tokens.

use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Role, Violations, names, paging,
    time::{micros, now_us},
};

use crate::domain::summary::{Range, RangeError};

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
    names::child_name(&p.organization, "members", &p.subject)
}

/// The trainee filter the caller may use: a trainee sees only their own numbers (no filter
/// means "me", another trainee's is refused); staff any trainee, or everyone.
pub fn scope_trainee(p: &Principal, trainee: Option<String>) -> ApiResult<Option<String>> {
    if !is_trainee(p) {
        return Ok(trainee);
    }
    let me = own_member(p);
    match trainee {
        Some(t) if t != me => Err(ApiError::PermissionDenied(
            "trainees may only see their own analytics".into(),
        )),
        _ => Ok(Some(me)),
    }
}

/// What a request for one organization's figures over a range, optionally of one trainee,
/// asks for (`organization`, `trainee`, `start_time`, `end_time`), checked for the caller.
pub struct TraineeScope {
    pub org: String,
    pub trainee: Option<String>,
    pub range: Range,
}

impl TraineeScope {
    pub fn check(
        p: &Principal,
        organization: &str,
        trainee: &str,
        start: Option<&prost_types::Timestamp>,
        end: Option<&prost_types::Timestamp>,
        max_days: i64,
    ) -> ApiResult<Self> {
        let org = organization_named("organization", organization)?;
        authorize_org(p, &org)?;
        let mut v = Violations::new();
        let trainee = check_filter(&mut v, "trainee", trainee, "members", &org);
        let range = resolve_range(&mut v, start, end, max_days);
        v.into_result()?;
        let Some(range) = range else {
            return Err(ApiError::invalid("start_time", "invalid range"));
        };
        Ok(Self {
            trainee: scope_trainee(p, trainee)?,
            org,
            range,
        })
    }

    /// The part of a cache key that tells two scopes apart.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.trainee.as_deref().unwrap_or(""),
            self.range.start_us,
            self.range.end_us
        )
    }
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
    names::parse_child(value, collection)
        .map(|(org, _)| org.to_owned())
        .ok_or_else(|| ApiError::invalid(field, shape))
}

/// The organization id of a request's `organizations/{organization}` field.
pub fn organization_named(field: &str, value: &str) -> Result<String, ApiError> {
    names::parse_organization(value)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(field, "must be organizations/{organization}"))
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
    match names::parse_child(value, collection) {
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
            let us = micros(t);
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

/// One page of a ranking computed per request (leaderboard, assignment progress), in the
/// suite's page sizes and page tokens. The key a token carries is the offset into the
/// ranking; `query` fingerprints every other field of the request, so a token cannot be
/// replayed against other filters. Bad fields are added to `v`.
pub struct RankedPage {
    pub size: usize,
    pub offset: usize,
    query: u64,
}

impl RankedPage {
    pub fn parse(v: &mut Violations, page_size: i32, token: &str, query: &[&str]) -> Self {
        let query = paging::fingerprint(query);
        let size = absorb(v, paging::page_size(page_size)).unwrap_or(paging::DEFAULT_PAGE_SIZE);
        let offset = match absorb(v, paging::decode(token, query)) {
            Some(Some(key)) => key.parse::<usize>().ok().unwrap_or_else(|| {
                v.add("page_token", "malformed page token");
                0
            }),
            _ => 0,
        };
        Self {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            offset,
            query,
        }
    }

    /// The token of the page after one of `shown` rows out of `total`; empty at the end.
    pub fn next_token(&self, shown: usize, total: usize) -> String {
        let next = self.offset + shown;
        if next < total {
            paging::encode(&next.to_string(), self.query)
        } else {
            String::new()
        }
    }
}

/// The field violations of an INVALID_ARGUMENT into `v` (other errors cannot come from the
/// request checks that use it).
fn absorb<T>(v: &mut Violations, r: ApiResult<T>) -> Option<T> {
    match r {
        Ok(t) => Some(t),
        Err(ApiError::InvalidArgument(violations)) => {
            for fv in violations {
                v.add(fv.field, fv.description);
            }
            None
        }
        Err(other) => {
            v.add("request", other.to_string());
            None
        }
    }
}

/// A request's time field as part of a page-token fingerprint (empty when unset).
pub fn time_key(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(micros)
        .map(|us| us.to_string())
        .unwrap_or_default()
}
