//! Domain logic of the call service: plain Rust, no I/O.

pub mod persona;
pub mod prompt;
mod text;
pub mod transcript;
pub mod webhook;

pub use transcript::Speaker;
