//! Domain logic of the call service: plain Rust, no I/O.

pub mod drill;
pub mod persona;
pub mod prompt;
pub mod session;
mod text;
pub mod transcript;
pub mod transcript_import;
pub mod webhook;

pub use transcript::{Source, Speaker};
