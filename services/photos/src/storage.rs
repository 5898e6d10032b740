//! Where the bytes live: `object_store`'s one trait, with two real backends — a local
//! directory (the default; `agora up`, a PVC) or any S3-compatible store. Blobs are
//! content-addressed (`content/<sha256>`, `thumbnails/<sha256>`), so identical images
//! are stored once whoever uploads them.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};
use std::sync::Arc;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[error("photo storage: {0}")]
pub struct StorageError(#[from] object_store::Error);

/// Which copy of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The re-encoded image.
    Content,
    /// Its thumbnail.
    Thumbnail,
}

/// The configured backend.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// A directory (created if missing).
    Directory(std::path::PathBuf),
    /// An S3 bucket; credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Endpoint URL for S3-compatible stores (MinIO, …); AWS when absent.
        endpoint: Option<String>,
        /// Region (`us-east-1` when absent).
        region: Option<String>,
    },
}

/// The photo blob store.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

fn key(variant: Variant, sha256: &str) -> Path {
    let dir = match variant {
        Variant::Content => "content",
        Variant::Thumbnail => "thumbnails",
    };
    Path::from(format!("{dir}/{sha256}"))
}

impl Storage {
    /// Opens the configured backend.
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        let store: Arc<dyn ObjectStore> = match config {
            StorageConfig::Directory(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
            StorageConfig::S3 {
                bucket,
                endpoint,
                region,
            } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region.as_deref().unwrap_or("us-east-1"));
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self { store })
    }

    /// Stores both copies of a blob (idempotent: same key, same bytes).
    pub async fn put(
        &self,
        sha256: &str,
        content: Vec<u8>,
        thumbnail: Vec<u8>,
    ) -> Result<(), StorageError> {
        // The trait's own methods (not the `ObjectStoreExt` helpers): their futures are
        // `Send`, so they can run inside a database transaction's future.
        self.store
            .put_opts(
                &key(Variant::Thumbnail, sha256),
                PutPayload::from(thumbnail),
                PutOptions::default(),
            )
            .await?;
        self.store
            .put_opts(
                &key(Variant::Content, sha256),
                PutPayload::from(content),
                PutOptions::default(),
            )
            .await?;
        Ok(())
    }

    /// Streams one copy of a blob.
    pub async fn get(
        &self,
        variant: Variant,
        sha256: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let result = self
            .store
            .get_opts(&key(variant, sha256), GetOptions::default())
            .await?;
        Ok(result.into_stream().map_err(StorageError).boxed())
    }

    /// Removes both copies (a missing one is fine: deletion is retried by the sweep).
    pub async fn delete(&self, sha256: &str) -> Result<(), StorageError> {
        let keys = [
            key(Variant::Content, sha256),
            key(Variant::Thumbnail, sha256),
        ];
        let mut deleted = self
            .store
            .delete_stream(futures_util::stream::iter(keys.map(Ok)).boxed());
        while let Some(outcome) = deleted.next().await {
            match outcome {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether the content copy exists (for checks and tests).
    pub async fn exists(&self, sha256: &str) -> Result<bool, StorageError> {
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self
            .store
            .get_opts(&key(Variant::Content, sha256), head)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
