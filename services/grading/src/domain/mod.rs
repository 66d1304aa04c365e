//! Domain logic of the grading service: plain Rust, no I/O.
