//! The moto server that stands in for DynamoDB and S3 in tests.
//!
//! Stock `moto_server` handles requests on concurrent threads without making each write
//! atomic, so concurrent `ADD`s or conditional puts on one item can lose updates (DynamoDB
//! never does). `shared/testkit/moto_serial.py` runs moto with requests serialised; use it
//! for suites that write one item concurrently.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The moto endpoint, from `CIVIC_MOTO_URL`.
pub fn moto_url() -> String {
    std::env::var("CIVIC_MOTO_URL").unwrap_or_else(|_| {
        panic!("CIVIC_MOTO_URL is not set: start moto_server and set CIVIC_MOTO_URL, or run ./scripts/test")
    })
}

/// An SDK config pointing at moto with static test credentials.
pub async fn aws_config() -> SdkConfig {
    let creds =
        aws_credential_types::Credentials::new("testing", "testing", None, None, "civic-testkit");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(moto_url())
        .load()
        .await
}

/// A fresh name for a per-test table or bucket (lowercase, valid as an S3 bucket name).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
