//! Backups of a platform and restores into a new one: the `spec.backup`/`spec.restore`
//! types (`spec`), the `SocialPlatformBackup` resource (`resource`), the schedule, the
//! backups' volume and the backup Job (`jobs`).

pub mod controller;
pub mod jobs;
pub mod resource;
pub mod spec;

pub use resource::{
    BackupPhase, SocialPlatformBackup, SocialPlatformBackupSpec, SocialPlatformBackupStatus,
};
