//! Domain logic of the config service: plain Rust, no I/O.
