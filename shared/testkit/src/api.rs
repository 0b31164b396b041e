//! One HTTP client for the black-box tests of all five apps (`tests/*.rs`).
