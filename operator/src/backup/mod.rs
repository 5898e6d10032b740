//! Backups of a platform and restores into a new one: the `spec.backup`/`spec.restore`
//! types (`spec`), the `SocialPlatformBackup` resource (`resource`), the schedule, the
//! backups' volume, the backup and deletion Jobs (`jobs`), what retention prunes
//! (`retention`), when a schedule fires (`cron`), the controller (`controller`), and
//! restoring a new platform (`restore`).

pub mod controller;
pub mod cron;
pub mod jobs;
pub mod resource;
pub mod restore;
pub mod retention;
pub mod spec;

pub use resource::{
    BackupPhase, SocialPlatformBackup, SocialPlatformBackupSpec, SocialPlatformBackupStatus,
};
