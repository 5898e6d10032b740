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
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};
use std::sync::Arc;
use uuid::Uuid;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[error("photo storage: {0}")]
pub struct StorageError(#[from] object_store::Error);

impl StorageError {
    /// Whether the object is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self.0, object_store::Error::NotFound { .. })
    }
}

/// Which copy of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The re-encoded image.
    Content,
    /// Its thumbnail.
    Thumbnail,
}

/// The configured backend.
#[derive(Clone)]
pub enum StorageConfig {
    /// A directory (created if missing).
    Directory(std::path::PathBuf),
    /// An S3 bucket (which must exist).
    S3(S3Config),
}

/// Where and how to reach an S3-compatible bucket.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint URL for S3-compatible stores (MinIO, versitygw, …); AWS when absent.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when absent).
    pub region: Option<String>,
    /// A key prefix, so several platforms can share a bucket.
    pub prefix: Option<String>,
    /// Access key id (never logged).
    pub access_key_id: String,
    /// Secret access key (never logged).
    pub secret_access_key: String,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            // The credentials stay out of logs.
            Self::S3(s3) => f
                .debug_struct("S3")
                .field("bucket", &s3.bucket)
                .field("endpoint", &s3.endpoint)
                .field("region", &s3.region)
                .field("prefix", &s3.prefix)
                .finish_non_exhaustive(),
        }
    }
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

/// Export archives live beside the photos: `exports/<user>/<export>.zip`.
fn archive_key(user: Uuid, export: Uuid) -> Path {
    Path::from(format!("exports/{user}/{export}.zip"))
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
            StorageConfig::S3(s3) => {
                // Only what is configured here: no credentials picked up from elsewhere.
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(s3.region.as_deref().unwrap_or("us-east-1"))
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let bucket = builder.build()?;
                match s3.prefix.as_deref().filter(|p| !p.is_empty()) {
                    Some(prefix) => Arc::new(PrefixStore::new(bucket, prefix)),
                    None => Arc::new(bucket),
                }
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

    /// Stores an export archive as it streams in (a multipart upload: never whole in
    /// memory); returns its size. A failed upload is aborted.
    pub async fn put_archive<S, E>(
        &self,
        user: Uuid,
        export: Uuid,
        mut body: S,
    ) -> Result<u64, StorageError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self
            .store
            .put_multipart_opts(&archive_key(user, export), Default::default())
            .await?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    writer.abort().await?;
                    return Err(StorageError(object_store::Error::Generic {
                        store: "archive",
                        source: e.to_string().into(),
                    }));
                }
            };
            size += chunk.len() as u64;
            writer.wait_for_capacity(4).await?;
            writer.put(chunk);
        }
        writer.finish().await?;
        Ok(size)
    }

    /// Streams an export archive.
    pub async fn get_archive(
        &self,
        user: Uuid,
        export: Uuid,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let result = self
            .store
            .get_opts(&archive_key(user, export), GetOptions::default())
            .await?;
        Ok(result.into_stream().map_err(StorageError).boxed())
    }

    /// Removes the export archives of `user` (`export`: only that one).
    pub async fn delete_archives(
        &self,
        user: Uuid,
        export: Option<Uuid>,
    ) -> Result<(), StorageError> {
        let keys: Vec<Path> = match export {
            Some(export) => vec![archive_key(user, export)],
            None => {
                self.store
                    .list(Some(&Path::from(format!("exports/{user}"))))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await?
            }
        };
        let mut deleted = self
            .store
            .delete_stream(futures_util::stream::iter(keys.into_iter().map(Ok)).boxed());
        while let Some(outcome) = deleted.next().await {
            match outcome {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
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
}
