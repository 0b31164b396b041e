use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// A stored object.
#[derive(Clone, Debug)]
pub struct Object {
    pub body: Bytes,
    pub content_type: String,
}

/// An S3-shaped object store: keys are `/`-separated strings.
#[async_trait]
pub trait Blob: Send + Sync {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<Object>>;
    /// Deleting a missing key is not an error (as in S3).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Keys under `prefix` in byte order, at most `limit`, after the opaque `cursor`.
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>)>;
    /// A cheap call that proves the backend answers (health checks).
    async fn ping(&self) -> Result<()>;
}
