//! Request fields read the same way by every use case: resource names, required fields,
//! update masks and the unsupported filter expression. Each bad field becomes an
//! INVALID_ARGUMENT naming it, so the use cases can check them in their own order.

use salestrainer_runtime::{ApiError, ApiResult, names};

/// `organizations/{org}` of a `parent` field.
pub fn parent(field: &str, value: &str) -> ApiResult<String> {
    names::parse_organization(value)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(field, "must be organizations/{organization}"))
}

/// `(org, id)` of a resource name in `collection`.
pub fn child(field: &str, value: &str, collection: &str) -> ApiResult<(String, String)> {
    child_ref(field, value, collection).map(|(o, i)| (o.to_owned(), i.to_owned()))
}

/// [`child`], borrowed from `value`.
pub fn child_ref<'a>(
    field: &str,
    value: &'a str,
    collection: &str,
) -> ApiResult<(&'a str, &'a str)> {
    names::parse_child(value, collection).ok_or_else(|| {
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
    match super::mask_paths(&paths, updatable) {
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
