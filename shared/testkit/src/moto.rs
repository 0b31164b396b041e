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
    aws_config_at(&moto_url()).await
}

/// An SDK config pointing at the moto server at `url` with static test credentials.
pub async fn aws_config_at(url: &str) -> SdkConfig {
    let creds =
        aws_credential_types::Credentials::new("testing", "testing", None, None, "civic-testkit");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(url)
        .load()
        .await
}

/// A fresh name for a per-test table or bucket (lowercase, valid as an S3 bucket name).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Writes a token signing key set of one fresh key (as `civic-local provision` does)
/// as the SSM SecureString `name`, which functions with `JWT_KEYS_PARAMETER` read at init.
#[cfg(feature = "runtime-api")]
pub async fn put_jwt_keys(sdk: &SdkConfig, name: &str) {
    let set = civic_core::KeySet::generate("test").and_then(|k| k.to_json());
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(set.expect("a fresh key set"))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SSM parameter {name}: {e:?}"));
}
