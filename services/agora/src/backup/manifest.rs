//! `manifest.json`: what a backup holds, written last (a backup without one is
//! incomplete and is never restored).

use serde::{Deserialize, Serialize};

/// The archive layout's version; a restore refuses any other.
pub const FORMAT: &str = "agora-backup/1";
/// The manifest's object name at the top of a backup.
pub const NAME: &str = "manifest.json";
/// Its HMAC (hex), when the backup has an encryption key.
pub const MAC: &str = "manifest.mac";

/// The services whose databases a backup holds, in the order they are dumped (the
/// cut, see `docs/backup.md`): notifications first, since they name what every other
/// service holds (a notice still in a producer's outbox is delivered again after a
/// restore); auth next, because a registration commits its account and the outbox job
/// that creates the profile together; then the databases that reference photos before
/// photos; the photo bytes after the photos database.
pub const CUT: [&str; 6] = [
    "notifications",
    "auth",
    "users",
    "events",
    "relations",
    "photos",
];

/// A backup's description.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The `agora` version that wrote it.
    pub agora_version: String,
    /// `local` (`agora backup`) or `cluster` (a backup Job).
    pub source: String,
    /// The platform's spec, for a cluster backup.
    #[serde(default)]
    pub platform: Option<serde_json::Value>,
    /// The PostgreSQL server's version (`server_version`).
    pub postgres_version: String,
    /// Every database, in dump order.
    pub databases: Vec<DatabaseEntry>,
    /// The photo bytes: how many objects, how many bytes.
    pub photos: PhotoSummary,
    /// The keys object and how it is protected.
    pub keys: KeysEntry,
    /// Every object of the backup but this manifest, with its size and checksum.
    pub files: Vec<FileEntry>,
    /// When the first dump started (RFC 3339).
    pub started_at: String,
    /// When the last object was written (RFC 3339).
    pub completed_at: String,
}

/// One service's database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabaseEntry {
    /// `auth`, `users`, …
    pub service: String,
    /// The database's name on the server it came from.
    pub database: String,
    /// The newest migration applied when it was dumped.
    pub migration: Option<String>,
    /// Its dump (PostgreSQL custom format) in the backup.
    pub file: String,
}

/// The photo store's copy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PhotoSummary {
    /// Objects copied.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Photos kept in a bucket: the bucket (`s3://bucket/prefix`), whose objects the
    /// backup lists instead of copying them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

/// The signing key and the share-link key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeysEntry {
    /// The object holding them.
    pub file: String,
    /// `aes-256-gcm` (sealed with the backup's encryption key) or `none`.
    pub encryption: String,
}

/// One object of the backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Its path under the backup's root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}
