//! `spec.backup` and `spec.restore` of a `SocialPlatform`: what is backed up when, where
//! to, and what a new platform is filled from. The API server checks every bound, the
//! cron syntax and the either-or rules (CEL) before the operator sees a spec.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Scheduled backups of the whole platform: every service database, the photo bytes
/// and the keys, as one set (see docs/backup.md).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// When, as a CronJob schedule in UTC: five fields (minute, hour, day of month,
    /// month, day of week) or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[schemars(schema_with = "cron_schema")]
    pub schedule: String,
    /// Which backups are kept (absent: the newest 7). The newest `Completed` backup is
    /// never pruned.
    #[serde(default)]
    pub retention: Retention,
    /// Where backups are written.
    pub destination: BackupDestination,
    /// A Secret in the platform's namespace whose `key` (32 random bytes or more)
    /// seals the signing and share-link keys and authenticates each manifest. The same
    /// Secret is needed to restore.
    #[schemars(length(min = 1, max = 253))]
    pub encryption_key_secret: String,
}

/// Which backups are kept: both limits apply when both are set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.count) || has(self.maxAge)")
    .message("backup.retention needs count or maxAge"))]
pub struct Retention {
    /// The newest this many backups (of any phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub count: Option<i32>,
    /// Backups younger than this: a number of hours, days or weeks (`36h`, `30d`, `8w`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,4}[hdw]$"))]
    pub max_age: Option<String>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            count: Some(7),
            max_age: None,
        }
    }
}

impl Retention {
    /// `max_age` in seconds.
    pub fn max_age_seconds(&self) -> Option<i64> {
        let text = self.max_age.as_deref()?;
        let (number, unit) = text.split_at(text.len().checked_sub(1)?);
        let number: i64 = number.parse().ok()?;
        let unit = match unit {
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return None,
        };
        Some(number * unit)
    }
}

/// Exactly one of a bucket and a volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.s3) != has(self.pvc)")
    .message("backup.destination needs exactly one of s3 and pvc"))]
pub struct BackupDestination {
    /// An S3-compatible bucket: each backup under `<prefix>/<backup name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<BackupBucket>,
    /// A volume the operator claims for the platform's backups (`<platform>-backups`,
    /// not owned by the platform, so that it outlives it): each backup in a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<BackupVolume>,
}

/// An S3-compatible bucket.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupBucket {
    /// The endpoint URL (absent: AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = r"^https?://[^\s/]+(/[^\s]*)?$"))]
    pub endpoint: Option<String>,
    /// The bucket.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// A key prefix inside it (no leading or trailing `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^[^/\s]+(/[^/\s]+)*$"))]
    pub prefix: Option<String>,
    /// The region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most stores other than AWS need.
    #[serde(default)]
    pub force_path_style: bool,
    /// A Secret in the platform's namespace with `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    #[schemars(length(min = 1, max = 253))]
    pub credentials_secret: String,
}

/// The backups' volume.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupVolume {
    /// Its size.
    #[serde(default = "default_backup_volume_size")]
    pub size: Quantity,
    /// Its StorageClass (the cluster's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

fn default_backup_volume_size() -> Quantity {
    Quantity("10Gi".to_owned())
}

/// What a new platform is filled from before any service starts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.backup) != has(self.s3)")
    .message("restore needs exactly one of backup (a SocialPlatformBackup) and s3 with path"))]
#[x_kube(validation = Rule::new("has(self.s3) == has(self.path)")
    .message("restore.s3 and restore.path go together"))]
#[x_kube(validation = Rule::new("self == oldSelf")
    .message("spec.restore cannot change"))]
pub struct RestoreSpec {
    /// A `SocialPlatformBackup` in this namespace, `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub backup: Option<String>,
    /// A bucket holding a backup (one made here, elsewhere, or by `agora backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<BackupBucket>,
    /// The backup's key prefix in that bucket (the directory holding `manifest.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[^/\s]+(/[^/\s]+)*$"))]
    pub path: Option<String>,
    /// The Secret whose `key` opens the backup's sealed keys (default: the one the
    /// named backup recorded, else `spec.backup.encryptionKeySecret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub encryption_key_secret: Option<String>,
    /// CloudNativePG only: recover the databases to this instant (RFC 3339, e.g.
    /// `2026-12-07T10:15:00Z`) from the WAL archive of the named backup's platform; the
    /// photos and keys come from that backup, which must have completed before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 20, max = 40),
        regex(
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
        )
    )]
    pub target_time: Option<String>,
}

/// The pattern a schedule must match: what a CronJob accepts, each field within its
/// range (so `61 * * * *` is refused by the API server, not by a CronJob later).
pub fn cron_pattern() -> String {
    fn field(value: &str, any: bool) -> String {
        let element = format!(r"(\*|{value}(-{value})?)(/[1-9][0-9]?)?");
        let list = format!("{element}(,{element})*");
        if any {
            format!(r"(\?|{list})")
        } else {
            format!("({list})")
        }
    }
    fn names(list: &str) -> String {
        list.split(' ')
            .flat_map(|n| [n.to_owned(), n.to_lowercase()])
            .collect::<Vec<_>>()
            .join("|")
    }
    let fields = [
        field("([0-5]?[0-9])", false),
        field("([01]?[0-9]|2[0-3])", false),
        field("(0?[1-9]|[12][0-9]|3[01])", true),
        field(
            &format!(
                "(0?[1-9]|1[0-2]|{})",
                names("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC")
            ),
            false,
        ),
        field(
            &format!("([0-7]|{})", names("SUN MON TUE WED THU FRI SAT")),
            true,
        ),
    ];
    format!(
        "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|{})$",
        fields.join(" +")
    )
}

fn cron_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "maxLength": 128,
        "pattern": cron_pattern(),
    })
}
