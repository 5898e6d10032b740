//! A backup's objects in a store (a directory here; the same layout in a bucket):
//! every object is streamed in and out with its size and SHA-256 taken on the way,
//! so nothing is held whole in memory and every byte read back is checked.

use super::BackupError;
use super::manifest::FileEntry;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes read from a source before they are handed to the store.
const CHUNK: usize = 1 << 20;
/// Parts in flight per upload: memory stays a few chunks, whatever the object's size.
const PARTS_IN_FLIGHT: usize = 2;

/// Where a backup is: a directory, or `s3://bucket/prefix` (the kit's, shared with the
/// erasure log).
pub use agora_common::store::Location;

/// Where a backup's objects are.
#[derive(Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    /// How the user named it (for messages).
    pub label: String,
}

fn store_err(what: impl Into<String>) -> impl FnOnce(object_store::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Store { what, source }
}

impl Archive {
    /// The store at `location` (a directory must exist). A bucket is reached with the
    /// standard variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`
    /// (default us-east-1) and `AWS_ENDPOINT_URL` for a store other than AWS (then
    /// path-style requests, plain HTTP allowed when the URL says so).
    pub fn open(location: &Location) -> Result<Self, BackupError> {
        let label = location.to_string();
        let store = agora_common::store::open(location)?;
        Ok(Self { store, label })
    }

    /// Whether the store holds no object.
    pub async fn is_empty(&self) -> Result<bool, BackupError> {
        let mut listed = self.store.list(None);
        match listed.next().await {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(err)) => Err(store_err(self.label.as_str())(err)),
        }
    }

    /// Deletes every object of the store (what a failed backup wrote into it).
    pub async fn clear(&self) -> Result<(), BackupError> {
        let mut listed = self.store.list(None);
        let mut names = Vec::new();
        while let Some(meta) = listed.next().await {
            names.push(meta.map_err(store_err(self.label.as_str()))?.location);
        }
        for name in names {
            match self.store.delete(&name).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(store_err(name.to_string())(err)),
            }
        }
        Ok(())
    }

    /// Writes `name` from `source`, returning its entry (size and SHA-256). The object
    /// appears only once complete: a write cut short leaves no object behind.
    pub async fn write_from(
        &self,
        name: &str,
        mut source: impl AsyncRead + Unpin,
    ) -> Result<FileEntry, BackupError> {
        let path = Path::from(name);
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(store_err(name))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match source.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(source) => {
                    let _ = writer.abort().await;
                    return Err(BackupError::Io {
                        path: name.to_owned(),
                        source,
                    });
                }
            };
            hash.update(&buf[..n]);
            size += n as u64;
            if let Err(err) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(store_err(name)(err));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(store_err(name))?;
        Ok(FileEntry {
            path: name.to_owned(),
            size,
            sha256: hex(&hash.finalize()),
        })
    }

    /// Writes a small object whole.
    pub async fn write_bytes(&self, name: &str, bytes: Vec<u8>) -> Result<FileEntry, BackupError> {
        let entry = FileEntry {
            path: name.to_owned(),
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
        };
        self.store
            .put(&Path::from(name), bytes.into())
            .await
            .map_err(store_err(name))?;
        Ok(entry)
    }

    /// Reads a small object whole, if it exists.
    pub async fn read_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, BackupError> {
        match self.store.get(&Path::from(name)).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(store_err(name))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(store_err(name)(err)),
        }
    }

    /// Streams `entry`'s object into `sink`, failing if its size or SHA-256 is not
    /// the manifest's (`sink` stays open: the caller decides whether what it got
    /// counts).
    pub async fn read_into(
        &self,
        entry: &FileEntry,
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<(), BackupError> {
        let got = match self.store.get(&Path::from(entry.path.as_str())).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BackupError::Corrupt {
                    file: entry.path.clone(),
                    reason: "missing".into(),
                });
            }
            Err(err) => return Err(store_err(entry.path.as_str())(err)),
        };
        let mut stream = got.into_stream();
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_err(entry.path.as_str()))?;
            hash.update(&chunk);
            size += chunk.len() as u64;
            if size > entry.size {
                // Not a byte past what the manifest promises.
                return check(entry, size, "");
            }
            sink.write_all(&chunk)
                .await
                .map_err(|source| BackupError::Io {
                    path: entry.path.clone(),
                    source,
                })?;
        }
        sink.flush().await.map_err(|source| BackupError::Io {
            path: entry.path.clone(),
            source,
        })?;
        check(entry, size, &hex(&hash.finalize()))
    }

    /// Checks `entry`'s object without keeping its bytes.
    pub async fn verify(&self, entry: &FileEntry) -> Result<(), BackupError> {
        self.read_into(entry, &mut tokio::io::sink()).await
    }
}

fn check(entry: &FileEntry, size: u64, sha256: &str) -> Result<(), BackupError> {
    if size != entry.size {
        return Err(BackupError::Corrupt {
            file: entry.path.clone(),
            reason: format!("{size} bytes where the manifest says {}", entry.size),
        });
    }
    if sha256 != entry.sha256 {
        return Err(BackupError::Corrupt {
            file: entry.path.clone(),
            reason: "its SHA-256 is not the manifest's (altered)".into(),
        });
    }
    Ok(())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
