//! Domain logic of the analytics service: plain Rust, no I/O.
