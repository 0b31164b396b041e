//! Picks the backends: embedded (redb + files) locally, DynamoDB + S3 in AWS.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, SdkConfig};

use crate::{Blob, DynamoTable, Result, S3Blob, Table};
#[cfg(feature = "embedded")]
use crate::{Embedded, FsBlob};

/// The storage of a process. Cheap to share; tables and the blob store are handles onto it.
#[derive(Clone)]
pub enum Backend {
    /// `<data_dir>/store.redb` and blobs under `<data_dir>/blobs`.
    /// Only civic-local and the tests build it (feature `embedded`): a Lambda function that
    /// could reach it would link redb, which is a tenth of its bootstrap (issue 20).
    #[cfg(feature = "embedded")]
    Embedded { store: Embedded, blobs: Arc<FsBlob> },
    /// DynamoDB tables (one client for all) and one S3 bucket.
    Aws {
        dynamo: aws_sdk_dynamodb::Client,
        s3: Arc<LazyS3>,
    },
}

/// The S3 bucket, whose client is made at the first [`LazyS3::get`]: only the code that
/// touches blobs calls it, so a Lambda function that does not links no S3 SDK (issue 20).
pub struct LazyS3 {
    sdk: SdkConfig,
    bucket: String,
    blobs: OnceLock<Arc<S3Blob>>,
}

impl LazyS3 {
    pub fn get(&self) -> &Arc<S3Blob> {
        self.blobs.get_or_init(|| {
            // Emulators such as moto serve buckets by path, not by virtual host. An empty
            // value is no endpoint (the SDK ignores it): `sam local` sets it so without env.json.
            let custom_endpoint = self.sdk.endpoint_url().is_some()
                || std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
            let s3_config = aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(custom_endpoint)
                .build();
            let s3 = aws_sdk_s3::Client::from_conf(s3_config);
            Arc::new(S3Blob::new(s3, self.bucket.clone()))
        })
    }
}

impl Backend {
    #[cfg(feature = "embedded")]
    pub fn embedded(data_dir: &Path) -> Result<Self> {
        Self::embedded_with_cache(data_dir, crate::DEFAULT_CACHE_BYTES)
    }

    /// The embedded store with a page cache of `cache_bytes` (`--store-cache-mb`).
    #[cfg(feature = "embedded")]
    pub fn embedded_with_cache(data_dir: &Path, cache_bytes: usize) -> Result<Self> {
        let store = Embedded::open_with_cache(data_dir, cache_bytes)?;
        let blobs = Arc::new(FsBlob::open(&data_dir.join("blobs"))?);
        Ok(Self::Embedded { store, blobs })
    }

    /// Loads the default AWS configuration (which honours `AWS_ENDPOINT_URL`).
    pub async fn aws(bucket: impl Into<String>) -> Self {
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Self::aws_with_config(&sdk, bucket)
    }

    pub fn aws_with_config(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        let s3 = LazyS3 {
            sdk: sdk.clone(),
            bucket: bucket.into(),
            blobs: OnceLock::new(),
        };
        Self::Aws {
            dynamo: aws_sdk_dynamodb::Client::new(sdk),
            s3: Arc::new(s3),
        }
    }

    pub fn table(&self, name: &str) -> Arc<dyn Table> {
        match self {
            #[cfg(feature = "embedded")]
            Self::Embedded { store, .. } => Arc::new(store.table(name)),
            Self::Aws { dynamo, .. } => Arc::new(DynamoTable::new(dynamo.clone(), name)),
        }
    }

    pub fn blob(&self) -> Arc<dyn Blob> {
        match self {
            #[cfg(feature = "embedded")]
            Self::Embedded { blobs, .. } => blobs.clone(),
            Self::Aws { s3, .. } => s3.get().clone(),
        }
    }

    /// Creates the table if needed (DynamoDB); embedded tables need no setup.
    pub async fn ensure_table(&self, name: &str) -> Result<()> {
        match self {
            #[cfg(feature = "embedded")]
            Self::Embedded { .. } => Ok(()),
            Self::Aws { dynamo, .. } => {
                DynamoTable::new(dynamo.clone(), name)
                    .create_if_missing()
                    .await
            }
        }
    }

    /// Creates the bucket if needed (S3); the embedded blob directory already exists.
    pub async fn ensure_bucket(&self) -> Result<()> {
        match self {
            #[cfg(feature = "embedded")]
            Self::Embedded { .. } => Ok(()),
            Self::Aws { s3, .. } => s3.get().create_bucket_if_missing().await,
        }
    }

    pub fn is_embedded(&self) -> bool {
        match self {
            #[cfg(feature = "embedded")]
            Self::Embedded { .. } => true,
            Self::Aws { .. } => false,
        }
    }
}
