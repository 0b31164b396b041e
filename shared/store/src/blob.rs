use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// A stored object.
#[derive(Clone, Debug)]
pub struct Object {
    pub body: Bytes,
    pub content_type: String,
}

/// What [`Blob::get_capped`] found under a key.
#[derive(Clone, Debug)]
pub enum Capped {
    Object(Object),
    /// Larger than the cap: its size, known from its metadata; the body was not read.
    TooLarge {
        size: u64,
    },
}

/// An S3-shaped object store: keys are `/`-separated strings.
#[async_trait]
pub trait Blob: Send + Sync {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<Object>>;
    /// The object if it holds at most `max` bytes. Its size is checked before its body is
    /// read, so an oversize upload costs a metadata read, never its bytes in memory.
    async fn get_capped(&self, key: &str, max: u64) -> Result<Option<Capped>>;
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
