//! The S3 backend of [`Blob`].

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

use crate::common::backend;
use crate::{Blob, Capped, Object, Result, StoreError, metrics};

/// S3 caps a listing page at 1000 keys.
const MAX_LIST: usize = 1000;

/// One S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Blob {
    client: Client,
    bucket: String,
}

fn map_err<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(DisplayErrorContext(&err).to_string())
}

impl S3Blob {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A presigned `PUT` of `key` with this content type and exactly `content_length` bytes,
    /// valid for `ttl`: the URL a device uploads one object to without credentials. Both
    /// headers are signed (`X-Amz-SignedHeaders`), so S3 refuses a body of any other size.
    /// Signing is local (no round trip).
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: std::time::Duration,
    ) -> Result<String> {
        let length = i64::try_from(content_length)
            .map_err(|_| StoreError::Invalid(format!("content length {content_length}")))?;
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(config)
            .await
            .map_err(map_err)?;
        Ok(req.uri().to_owned())
    }

    pub async fn create_bucket_if_missing(&self) -> Result<()> {
        metrics::hit();
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the default location and must not be named.
        if let Some(region) = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref())
            .filter(|r| *r != "us-east-1")
        {
            let location = BucketLocationConstraint::from(region);
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(location)
                    .build(),
            );
        }
        metrics::hit();
        match create.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    /// `GetObject`, pinned to `etag` when given: the body still to read and its content type,
    /// or `None` for a missing key.
    async fn open(
        &self,
        key: &str,
        etag: Option<String>,
    ) -> Result<Option<(GetObjectOutput, String)>> {
        metrics::hit();
        let get = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(etag);
        let out = match get.send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(map_err(e)),
        };
        let content_type = out
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok(Some((out, content_type)))
    }
}

#[async_trait]
impl Blob for S3Blob {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        metrics::hit();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let Some((out, content_type)) = self.open(key, None).await? else {
            return Ok(None);
        };
        let body = out.body.collect().await.map_err(backend)?.into_bytes();
        Ok(Some(Object { body, content_type }))
    }

    /// `HeadObject` first: an oversize object is refused on its `Content-Length` alone. The
    /// `GetObject` that follows is pinned to the ETag the size was read from (an object
    /// replaced in between fails, and the event is retried) and read no further than `max`.
    async fn get_capped(&self, key: &str, max: u64) -> Result<Option<Capped>> {
        metrics::hit();
        let head = self.client.head_object().bucket(&self.bucket).key(key);
        let head = match head.send().await {
            Ok(head) => head,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(None),
            Err(e) => return Err(map_err(e)),
        };
        let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        if size > max {
            return Ok(Some(Capped::TooLarge { size }));
        }
        let etag = head.e_tag().map(str::to_owned);
        let Some((mut out, content_type)) = self.open(key, etag).await? else {
            return Ok(None);
        };
        let mut body = Vec::with_capacity(size as usize);
        while let Some(chunk) = out.body.next().await {
            let chunk = chunk.map_err(backend)?;
            if (body.len() + chunk.len()) as u64 > max {
                let size = out.content_length().map_or(max + 1, |n| n as u64);
                return Ok(Some(Capped::TooLarge { size }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Capped::Object(Object {
            body: Bytes::from(body),
            content_type,
        })))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        metrics::hit();
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>)> {
        // The cursor wraps S3's continuation token, so that garbage is caught here.
        let token = crate::common::blob_cursor(cursor)?;
        let resuming = token.is_some();
        metrics::hit();
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(limit.clamp(1, MAX_LIST) as i32)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("InvalidArgument") if resuming => StoreError::BadCursor,
                _ => map_err(e),
            })?;
        let keys = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        let next = match out.is_truncated() {
            Some(true) => out
                .next_continuation_token()
                .map(|t| URL_SAFE_NO_PAD.encode(t)),
            _ => None,
        };
        Ok((keys, next))
    }

    async fn ping(&self) -> Result<()> {
        metrics::hit();
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
