//! Domain logic of the grading service: plain Rust, no I/O.

pub mod clean;
pub mod close;
pub mod conversation_metrics;
pub mod eval;
pub mod grader;
pub mod limiter;
pub mod llm;
pub mod overrides;
pub mod prompt;
pub mod retry;
pub mod text;
pub mod types;
