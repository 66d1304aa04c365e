//! The service runtime: everything a Salestrainer service needs besides its own logic, so no
//! service repeats server plumbing.

pub mod access;
pub mod api;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod cache;
pub mod changes;
pub mod conn;
pub mod consumer;
pub mod context;
pub mod crypto;
pub mod db;
pub mod drain;
pub mod error;
pub mod events;
pub mod limits;
pub mod metrics;
pub mod names;
pub mod paging;
pub mod probes;
pub mod ready;
pub mod redact;
pub mod redis;
pub mod server;
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod time;

pub use auth::{Principal, Role};
pub use context::{Context, Peer};
pub use error::{ApiError, ApiResult, FieldViolation, Violations};
pub use ready::Ready;
pub use settings::Settings;

/// Installs the process-wide TLS crypto provider (ring) used by outbound HTTPS clients.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
