//! Domain logic of the call service: plain Rust, no I/O.
