//! The grading service: the grading pipeline: jobs, attempts, evaluations.
//!
//! Rooms, the same in every service:
//! - `api`: protobuf to domain types and errors to statuses, nothing else;
//! - `app`: the use cases: the service object ([`app::GradingApp`], the service's
//!   description), the SessionEnded handler, the job engine (dispatch, attempt, result, group
//!   commit), the pipeline, the LLM client and its limiter, settings;
//! - `domain`: plain Rust, no I/O (the grader and its LLM prompt, the labelled set's rules, cleaning, close decision, metrics, retry and
//!   limiter rules);
//! - `store`: the entities, migrations and queries of the tables this service owns.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use salestrainer_runtime::{Context, app::Starter, server::ServerBuilder};

pub use app::production_engine;

/// The service's name: its database, its logs, its metrics, its settings section.
pub const SERVICE: &str = "grading";

/// Mounts the grading service with the settings of its `[grading]` section.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    salestrainer_runtime::service::mount::<app::GradingApp>(server, ctx).await
}
