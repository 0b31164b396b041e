//! Helpers for the sample-event tests of each function crate (`functions/*/tests/events.rs`).
