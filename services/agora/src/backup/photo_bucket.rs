//! Photos kept in a bucket stay there: a backup records each blob object's key, size
//! and ETag ([`LISTING`]; a content object's key is the SHA-256 of its bytes), and a
//! restore checks, before it writes anything, that the new platform's bucket holds
//! every one of them at that size. The bucket must keep what a backup names
//! (versioning, no lifecycle rule that deletes: docs/backup.md).

use super::archive::{Archive, Location};
use super::manifest::{FileEntry, Manifest};
use super::{BackupError, Progress};
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

/// The listing's name in a backup (outside `photos/`, which holds photo files).
pub const LISTING: &str = "photos-bucket.json";
/// The photos bucket is reached with the standard variables under this prefix
/// (`PHOTOS_AWS_ACCESS_KEY_ID`, `PHOTOS_AWS_ENDPOINT_URL`, …): its credentials are not
/// the backup destination's.
pub const VARS: &str = "PHOTOS_";
/// The blob objects' folders (export archives beside them are not photos).
const FOLDERS: [&str; 2] = ["content", "thumbnails"];

/// One object of the photos bucket, as a backup saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BucketObject {
    /// Its key under the bucket's prefix.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// The store's checksum of it, when it gives one.
    #[serde(default)]
    pub e_tag: Option<String>,
}

fn store_err(bucket: &Location) -> impl FnOnce(object_store::Error) -> BackupError + '_ {
    move |source| BackupError::Store {
        what: bucket.to_string(),
        source,
    }
}

fn open(bucket: &Location) -> Result<std::sync::Arc<dyn ObjectStore>, BackupError> {
    Ok(agora_common::store::open_as(bucket, VARS)?)
}

/// Lists the bucket's blob objects into the backup's [`LISTING`]; its entry and the
/// objects.
pub async fn record(
    bucket: &Location,
    archive: &Archive,
    progress: Progress<'_>,
) -> Result<(FileEntry, Vec<BucketObject>), BackupError> {
    let store = open(bucket)?;
    let mut objects = Vec::new();
    for folder in FOLDERS {
        let mut listed = store.list(Some(&Path::from(folder)));
        while let Some(meta) = listed.try_next().await.map_err(store_err(bucket))? {
            objects.push(BucketObject {
                key: meta.location.to_string(),
                size: meta.size,
                e_tag: meta.e_tag,
            });
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let json = serde_json::to_vec(&objects)
        .map_err(|e| BackupError::Invalid(format!("{LISTING}: {e}")))?;
    let entry = archive.write_bytes(LISTING, json).await?;
    progress(&format!(
        "listed {} photo objects left in {bucket}",
        objects.len()
    ));
    Ok((entry, objects))
}

/// The listing a backup recorded (its bytes were checked against the manifest).
pub async fn recorded(
    archive: &Archive,
    manifest: &Manifest,
) -> Result<Vec<BucketObject>, BackupError> {
    let entry = manifest
        .files
        .iter()
        .find(|f| f.path == LISTING)
        .ok_or_else(|| BackupError::Corrupt {
            file: LISTING.into(),
            reason: "the manifest names a photos bucket but lists no such file".into(),
        })?;
    let mut bytes = Vec::new();
    archive.read_into(entry, &mut bytes).await?;
    serde_json::from_slice(&bytes).map_err(|e| BackupError::Corrupt {
        file: LISTING.into(),
        reason: e.to_string(),
    })
}

/// Refuses unless `bucket` holds every object of `objects` at its recorded size.
pub async fn check(
    bucket: &Location,
    objects: &[BucketObject],
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let store = open(bucket)?;
    let mut wrong = Vec::new();
    for object in objects {
        match store.head(&Path::from(object.key.as_str())).await {
            Ok(meta) if meta.size == object.size => {}
            Ok(meta) => wrong.push(format!(
                "{} is {} bytes, not {}",
                object.key, meta.size, object.size
            )),
            Err(object_store::Error::NotFound { .. }) => {
                wrong.push(format!("{} is missing", object.key));
            }
            Err(e) => return Err(store_err(bucket)(e)),
        }
    }
    if let Some(first) = wrong.first() {
        return Err(BackupError::Invalid(format!(
            "{} of the {} photo objects the backup recorded are not in {bucket} as they \
             were ({first}): bring them back from the bucket's versions first; nothing was \
             restored",
            wrong.len(),
            objects.len()
        )));
    }
    progress(&format!(
        "all {} photo objects are in {bucket}",
        objects.len()
    ));
    Ok(())
}
