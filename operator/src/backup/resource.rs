//! The `SocialPlatformBackup` custom resource (`agora.dev/v1alpha1`, short name `spb`):
//! one backup of one platform, asked for by a person (`kubectl apply`) or by the
//! platform's schedule. Like CloudNativePG's `Backup`, the objects are the history:
//! `kubectl get socialplatformbackups`. They are not owned by their platform, so a
//! deleted platform's backups (and their files) remain to restore it from.

use super::spec::BackupDestination;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One backup of a platform.
// kube's `printcolumn(...)` is repeated once per column, by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "agora.dev",
    version = "v1alpha1",
    kind = "SocialPlatformBackup",
    namespaced,
    shortname = "spb",
    category = "agora",
    status = "SocialPlatformBackupStatus",
    printcolumn(name = "Platform", type_ = "string", json_path = ".spec.platform"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".status.sizeBytes"),
    printcolumn(name = "Started", type_ = "date", json_path = ".status.startedAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("a backup's spec cannot change"))]
pub struct SocialPlatformBackupSpec {
    /// The `SocialPlatform` to back up, in this namespace; it must have `spec.backup`
    /// (the destination and the encryption key).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub platform: String,
}

/// Where a backup is in its life.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupPhase {
    /// Waiting for its turn (one backup at a time per platform).
    Pending,
    /// Its Job runs.
    Running,
    /// Every file and the manifest are written.
    Completed,
    /// It failed; what it wrote was removed (a backup without its manifest is never
    /// restored from).
    Failed,
}

/// What the operator last saw of a backup.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SocialPlatformBackupStatus {
    /// Pending, Running, Completed or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// When its Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The bytes written (every file, the manifest's sum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Where its files are: `s3://bucket/prefix/<name>` or `pvc://<claim>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The destination as the platform's spec named it when the backup started (with
    /// the credentials Secret's name), so that it can be restored from after the
    /// platform is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<BackupDestination>,
    /// The Secret whose `key` sealed its keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key_secret: Option<String>,
    /// The Job that runs (or ran) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The `agora` image its Job used (the Job deleting its files uses it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agora_image: Option<String>,
    /// The CloudNativePG `Backup` that took the databases' base backup (CloudNativePG
    /// mode: the Job then holds the photos, the keys and logical dumps beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_backup: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `status.backup` of a `SocialPlatform`: its backups at a glance.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlatformBackupStatus {
    /// When the newest `Completed` backup completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful: Option<Time>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup: Option<String>,
    /// When the newest `Failed` backup failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed: Option<Time>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_backup: Option<String>,
    /// When the schedule next starts one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled: Option<Time>,
}
