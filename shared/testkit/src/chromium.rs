//! Debian's Chromium as the page tests run it.

/// Headless, and quiet: no network of its own (updates, sync, QUIC) beside the page's.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];
