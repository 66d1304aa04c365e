//! One error type for every service, mapped to gRPC statuses with `tonic-types` details.
//! Internal causes are logged with an incident id and never returned to the caller.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error we return.
pub const ERROR_DOMAIN: &str = "salestrainer.dev";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// `reason` is a stable UPPER_SNAKE code for clients; `message` names what blocks it.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    /// Optimistic concurrency lost (stale etag).
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// Anything else. The cause is logged, the caller sees only an incident id.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Whether a peer's answer may change on retry (down, overloaded, slow, not yet serving).
pub fn peer_is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unknown
            | Code::Cancelled
    )
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// A peer service's refusal as our own caller should see it, `what` naming what was
    /// asked for: NOT_FOUND and PERMISSION_DENIED pass on; a peer that is down, slow or
    /// missing is UNAVAILABLE (retry later); anything else is our bug, logged as internal.
    pub fn from_peer(status: &tonic::Status, what: &str) -> Self {
        match status.code() {
            Code::NotFound => Self::NotFound(what.to_owned()),
            Code::PermissionDenied => Self::PermissionDenied(format!("{what}: permission denied")),
            Code::FailedPrecondition => Self::FailedPrecondition {
                reason: "PEER_PRECONDITION",
                message: format!("{what}: {}", status.message()),
            },
            c if peer_is_transient(c) => Self::Unavailable(format!(
                "a peer service is unavailable while reading {what}"
            )),
            _ => Self::internal(anyhow::anyhow!("peer error reading {what}: {status}")),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Aborted(_) => Code::Aborted,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::FailedPrecondition { reason, .. } => reason,
            Self::Aborted(_) => "ETAG_MISMATCH",
            Self::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Unimplemented(_) => "UNIMPLEMENTED",
            Self::DeadlineExceeded(_) => "DEADLINE_EXCEEDED",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let mut details = ErrorDetails::new();
        let message = match &err {
            ApiError::InvalidArgument(violations) => {
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                format!("invalid argument: {}", fields.join(", "))
            }
            ApiError::Internal(cause) => {
                let incident = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(incident = %incident, error = ?cause, "internal error");
                format!("internal error (incident {incident})")
            }
            other => other.to_string(),
        };
        details.set_error_info(err.reason(), ERROR_DOMAIN, std::collections::HashMap::new());
        Status::with_error_details(code, message, details)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(api) => api,
        }
    }
}

/// Collects field violations so a request reports every bad field at once.
#[derive(Default, Debug)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }
    /// Adds a violation when `bad` holds.
    pub fn check(&mut self, bad: bool, field: &str, description: &str) {
        if bad {
            self.add(field, description);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_result(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field_violation() {
        let mut v = Violations::new();
        v.add("persona.display_name", "must not be empty");
        v.add("persona.objections", "at most 20");
        let status: Status = v.into_result().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "persona.display_name");
    }

    #[test]
    fn internal_cause_is_not_returned() {
        let err = ApiError::internal(anyhow::anyhow!("password=hunter2 connection refused"));
        let status: Status = err.into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("INTERNAL")
        );
    }
}
