//! Small conversions between protobuf and stored values.

use salestrainer_proto::config as pb;
use salestrainer_runtime::{ApiError, ApiResult};

use crate::domain::{names, page};

pub type Time = chrono::DateTime<chrono::Utc>;

pub fn ts(t: Time) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn role_key(r: pb::Role) -> Option<&'static str> {
    match r {
        pb::Role::Admin => Some("admin"),
        pb::Role::Manager => Some("manager"),
        pb::Role::Trainee => Some("trainee"),
        pb::Role::Unspecified => None,
    }
}

pub fn role_from_key(s: &str) -> pb::Role {
    match s {
        "admin" => pb::Role::Admin,
        "manager" => pb::Role::Manager,
        "trainee" => pb::Role::Trainee,
        _ => pb::Role::Unspecified,
    }
}

pub fn kind_key(k: pb::ProviderKind) -> &'static str {
    match k {
        pb::ProviderKind::OpenaiCompatible => "openai_compatible",
        pb::ProviderKind::Vapi => "vapi",
        pb::ProviderKind::Retell => "retell",
        pb::ProviderKind::Unspecified => "unspecified",
    }
}

pub fn kind_from_key(s: &str) -> pb::ProviderKind {
    match s {
        "openai_compatible" => pb::ProviderKind::OpenaiCompatible,
        "vapi" => pb::ProviderKind::Vapi,
        "retell" => pb::ProviderKind::Retell,
        _ => pb::ProviderKind::Unspecified,
    }
}

pub fn outcome_key(o: pb::TestOutcome) -> &'static str {
    match o {
        pb::TestOutcome::Ok => "ok",
        pb::TestOutcome::Unauthorized => "unauthorized",
        pb::TestOutcome::Unreachable => "unreachable",
        pb::TestOutcome::Timeout => "timeout",
        pb::TestOutcome::Error => "error",
        pb::TestOutcome::Unspecified => "unspecified",
    }
}

pub fn outcome_from_key(s: &str) -> pb::TestOutcome {
    match s {
        "ok" => pb::TestOutcome::Ok,
        "unauthorized" => pb::TestOutcome::Unauthorized,
        "unreachable" => pb::TestOutcome::Unreachable,
        "timeout" => pb::TestOutcome::Timeout,
        "error" => pb::TestOutcome::Error,
        _ => pb::TestOutcome::Unspecified,
    }
}

/// `organizations/{org}` of a `parent` field.
pub fn parent(field: &str, value: &str) -> ApiResult<String> {
    names::parse_organization(value)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(field, "must be organizations/{organization}"))
}

/// `(org, id)` of a resource name in `collection`.
pub fn child(field: &str, value: &str, collection: &str) -> ApiResult<(String, String)> {
    names::parse_child(value, collection)
        .map(|(o, i)| (o.to_owned(), i.to_owned()))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("must be organizations/{{organization}}/{collection}/{{id}}"),
            )
        })
}

/// The AIP-160 `filter` string: only the typed filters are supported so far.
pub fn no_filter_expression(filter: &str) -> ApiResult<()> {
    if filter.trim().is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "filter",
            "filter expressions are not supported; use the typed filter fields",
        ))
    }
}

pub fn page_after(token: &str, query: u64) -> ApiResult<Option<String>> {
    page::decode(token, query).map_err(|e| ApiError::invalid("page_token", e))
}

pub fn next_token(next_after: Option<String>, query: u64) -> String {
    next_after
        .map(|k| page::encode(&k, query))
        .unwrap_or_default()
}

pub fn etag_aborted(resource: &str) -> ApiError {
    ApiError::Aborted(format!(
        "{resource} was changed by someone else (etag mismatch); read it again and retry"
    ))
}

pub fn required<T>(field: &str, value: Option<T>) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::invalid(field, "is required"))
}

pub fn mask(
    field: &str,
    mask: Option<&prost_types::FieldMask>,
    updatable: &'static [&'static str],
) -> ApiResult<Vec<&'static str>> {
    let paths: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
    match crate::domain::mask_paths(&paths, updatable) {
        Ok(p) => Ok(p
            .into_iter()
            .filter_map(|p| updatable.iter().copied().find(|u| *u == p))
            .collect()),
        Err(unknown) => Err(ApiError::invalid(
            field,
            format!(
                "unknown or immutable paths {}; updatable: {}",
                unknown.join(", "),
                updatable.join(", ")
            ),
        )),
    }
}
