//! `spec.restore`: a new platform filled from a backup before any service starts. The
//! controller resolves where the backup is ([`Source`]: a `SocialPlatformBackup`'s
//! recorded location, or a bucket and path); once the databases are provisioned (empty)
//! a Job restores them, the photos and the keys ([`job`]); the workloads are not created
//! until the `Restored` condition is true.
//!
//! The Job's first init container puts `agora` beside the database image's
//! `pg_restore`; the second restores each database as that service's own role (which
//! then owns what it restores), the photo bytes onto the photo volume and the key files
//! into a memory volume; the main container (the operator's image, `agora-operator
//! store-keys`) writes those into the platform's keys Secret, the only object its
//! ServiceAccount may change.

use super::jobs::{
    BACKUPS, SEAL, TOOLS, locked_down, mount, operator_image, pod_namespace, run_once,
    tools_container,
};
use super::resource::{BackupPhase, SocialPlatformBackup};
use super::spec::BackupDestination;
use crate::build::{PHOTOS_DIR, from_secret};
use crate::crd::{DatabaseMode, SocialPlatform};
use crate::database;
use crate::owner::Owner;
use crate::status::Check;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, KeyToPath, PersistentVolumeClaimVolumeSource, PodSpec,
    SecretVolumeSource, ServiceAccount, Volume,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use kube::ResourceExt;

/// The `app.kubernetes.io/name` of the restore's objects.
pub const RESTORE: &str = "restore";
const KEYS: &str = "/run/agora/restored-keys";

/// Where the backup to restore is, and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// What `agora restore --from` is given: `s3://bucket/prefix` or a directory of
    /// the backups' volume.
    pub from: String,
    /// The bucket (credentials) or the backups' volume.
    pub destination: BackupDestination,
    /// The claim holding the backup, for a volume.
    pub claim: Option<String>,
    /// The Secret whose `key` opens the backup's sealed keys.
    pub encryption_key_secret: String,
    /// `restore.targetTime`: CloudNativePG recovers the databases to that instant; the
    /// Job restores only the photos and keys.
    pub point_in_time: Option<PointInTime>,
}

/// A point-in-time recovery from another platform's WAL archive.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInTime {
    /// The instant, as PostgreSQL takes it ([`postgres_time`]).
    pub target_time: String,
    /// The bucket the source platform archived to.
    pub bucket: super::spec::BackupBucket,
    /// The source cluster's name: its archive's directory (CloudNativePG's server name).
    pub server_name: String,
}

/// Where `platform`'s restore reads from, given the `SocialPlatformBackup` its spec
/// names (if it names one): the source, or why it cannot start.
pub fn source(
    platform: &SocialPlatform,
    backup: Option<&SocialPlatformBackup>,
) -> Result<Option<Source>, Check> {
    let Some(restore) = &platform.spec.restore else {
        return Ok(None);
    };
    let fallback_key = platform
        .spec
        .backup
        .as_ref()
        .map(|b| b.encryption_key_secret.clone());
    if let (Some(bucket), Some(path)) = (&restore.s3, &restore.path) {
        let key = restore.encryption_key_secret.clone().or(fallback_key);
        return Ok(Some(Source {
            from: format!("s3://{}/{path}", bucket.bucket),
            destination: BackupDestination {
                s3: Some(bucket.clone()),
                pvc: None,
            },
            claim: None,
            encryption_key_secret: key.unwrap_or_default(),
            point_in_time: None,
        }));
    }
    let name = restore.backup.clone().unwrap_or_default();
    let Some(backup) = backup else {
        return Err(Check::new(
            false,
            "BackupNotFound",
            format!("no SocialPlatformBackup {name} in this namespace"),
        ));
    };
    let status = backup.status.clone().unwrap_or_default();
    let (Some(BackupPhase::Completed), Some(location), Some(destination)) =
        (status.phase, status.location, status.destination)
    else {
        return Err(Check::new(
            false,
            "BackupNotCompleted",
            format!("SocialPlatformBackup {name} has not completed"),
        ));
    };
    let key = restore
        .encryption_key_secret
        .clone()
        .or(status.encryption_key_secret)
        .or(fallback_key)
        .unwrap_or_default();
    let point_in_time = match &restore.target_time {
        Some(target_time) => Some(point_in_time(
            &name,
            target_time,
            &backup.spec.platform,
            status.completed_at.as_ref(),
            &destination,
        )?),
        None => None,
    };
    let (from, claim) = match location.strip_prefix("pvc://") {
        Some(path) => {
            let (claim, directory) = path.split_once('/').unwrap_or((path, &name));
            (format!("{BACKUPS}/{directory}"), Some(claim.to_owned()))
        }
        None => (location, None),
    };
    Ok(Some(Source {
        from,
        destination,
        claim,
        encryption_key_secret: key,
        point_in_time,
    }))
}

/// An instant as PostgreSQL's `recovery_target_time` takes it: UTC as a numeric offset.
/// CloudNativePG passes RFC 3339 on as `…Z`, and PostgreSQL refuses a time zone
/// abbreviation there (`Z` is one); a value that is not RFC 3339 it passes unchanged.
pub fn postgres_time(instant: k8s_openapi::jiff::Timestamp) -> String {
    let t = instant
        .to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
        .datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1000
    )
}

/// The recovery `restore.targetTime` asks for, from backup `name` of `platform`: its
/// photos and keys must predate the instant, and its platform archived to a bucket.
fn point_in_time(
    name: &str,
    target_time: &str,
    platform: &str,
    completed_at: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    destination: &BackupDestination,
) -> Result<PointInTime, Check> {
    let target: k8s_openapi::jiff::Timestamp = target_time.parse().map_err(|_| {
        Check::new(
            false,
            "InvalidTargetTime",
            format!("restore.targetTime {target_time} is not an RFC 3339 instant"),
        )
    })?;
    if completed_at.is_none_or(|done| done.0 > target) {
        return Err(Check::new(
            false,
            "BackupAfterTargetTime",
            format!(
                "SocialPlatformBackup {name} completed after restore.targetTime {target_time}: \
                 name a backup completed before it (its photos and keys are restored)"
            ),
        ));
    }
    let Some(bucket) = destination.s3.clone() else {
        return Err(Check::new(
            false,
            "NoArchive",
            format!(
                "SocialPlatformBackup {name} is on a volume: a point-in-time restore reads a bucket's WAL archive"
            ),
        ));
    };
    Ok(PointInTime {
        target_time: postgres_time(target),
        bucket,
        server_name: format!("{platform}-{}", crate::owner::DATABASE_COMPONENT),
    })
}

/// Whether `platform` waits for its restore: `spec.restore` and no `Restored=True` yet.
pub fn restoring(platform: &SocialPlatform) -> bool {
    platform.spec.restore.is_some() && !condition_true(platform, "Restored")
}

/// Whether the platform's stored status has `type_` true.
pub fn condition_true(platform: &SocialPlatform, type_: &str) -> bool {
    platform.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    })
}

/// `<platform>-restore`: the ServiceAccount, Role, RoleBinding and Job of the restore.
pub fn name(owner: &Owner) -> String {
    owner.child_name(RESTORE)
}

/// The restore's account: it may read and change the platform's keys Secret, nothing
/// else.
pub fn permission(owner: &Owner) -> (ServiceAccount, Role, RoleBinding) {
    super::jobs::permission(
        owner,
        RESTORE,
        &name(owner),
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".to_owned()]),
            resource_names: Some(vec![owner.keys_secret_name()]),
            verbs: vec!["get".to_owned(), "patch".to_owned()],
            ..PolicyRule::default()
        },
    )
}

/// Each service's database as its own role: `--database SERVICE=env:VAR` and the
/// variables, from the service's database Secret (or the External Secret).
fn databases(
    platform: &SocialPlatform,
    owner: &Owner,
    services: &[&str],
) -> (Vec<EnvVar>, Vec<String>) {
    let mut vars = Vec::new();
    let mut args = Vec::new();
    let database = &platform.spec.database;
    for service in services {
        let var = format!("DATABASE_URL_{}", service.to_uppercase());
        vars.push(match (database.mode, &database.external) {
            (DatabaseMode::External, Some(external)) => {
                from_secret(&var, external.secret_ref.name.clone(), service)
            }
            _ => from_secret(&var, owner.database_secret_name(service), "url"),
        });
        args.extend(["--database".to_owned(), format!("{service}=env:{var}")]);
    }
    (vars, args)
}

/// The restore Job (created once; owned by the platform).
pub fn job(platform: &SocialPlatform, owner: &Owner, source: &Source, services: &[&str]) -> Job {
    let labels = owner.labels(RESTORE);
    let (mut vars, database_args) = databases(platform, owner, services);
    // The CA bundle `copy-binary` brought along (a database image may have none).
    vars.push(crate::database::env(
        "SSL_CERT_FILE",
        &format!("{TOOLS}/ca-certificates.crt"),
    ));
    let mut args = vec![
        format!("{TOOLS}/agora"),
        "restore".to_owned(),
        "--from".to_owned(),
        source.from.clone(),
        "--keys-dir".to_owned(),
        KEYS.to_owned(),
        "--encryption-key-file".to_owned(),
        format!("{SEAL}/key"),
        "--report-file".to_owned(),
        "/dev/termination-log".to_owned(),
    ];
    args.extend(database_args);
    if source.point_in_time.is_some() {
        // CloudNativePG recovered them; the logged erasures still apply.
        args.push("--databases-recovered".to_owned());
    }
    // Erasures logged after the backup started are applied again before the new
    // platform serves (a bucket: the log sits at the prefix the backup is under).
    if let Some((log, _backup)) = source
        .from
        .strip_prefix("s3://")
        .and_then(|_| source.from.rsplit_once('/'))
        .filter(|(log, _)| log.len() > "s3://".len())
    {
        args.extend(["--erasure-log".to_owned(), log.to_owned()]);
    }
    let mut volumes = vec![
        Volume {
            name: "tools".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        // The keys pass through memory only.
        Volume {
            name: "keys".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "encryption".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(source.encryption_key_secret.clone()),
                default_mode: Some(0o400),
                items: Some(vec![KeyToPath {
                    key: "key".to_owned(),
                    path: "key".to_owned(),
                    mode: None,
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        mount("tools", TOOLS, true),
        mount("keys", KEYS, false),
        mount("encryption", SEAL, true),
    ];
    if platform.spec.photos.storage.pvc.is_some() {
        volumes.push(Volume {
            name: "photos".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: owner.child_name("photos"),
                read_only: Some(false),
            }),
            ..Volume::default()
        });
        mounts.push(mount("photos", PHOTOS_DIR, false));
        args.extend(["--photos-dir".to_owned(), PHOTOS_DIR.to_owned()]);
    }
    if let Some(claim) = &source.claim {
        volumes.push(Volume {
            name: "backups".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(true),
            }),
            ..Volume::default()
        });
        mounts.push(mount("backups", BACKUPS, true));
    }
    if let Some(s3) = &source.destination.s3 {
        vars.extend(super::jobs::bucket_env(s3));
    }
    if let Some((photo_vars, photos)) = super::jobs::photo_bucket_access(platform) {
        vars.extend(photo_vars);
        args.extend(photos);
    }
    let store = Container {
        name: "store-keys".to_owned(),
        image: Some(operator_image(platform)),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec![
            "store-keys".to_owned(),
            KEYS.to_owned(),
            owner.keys_secret_name(),
        ]),
        env: Some(vec![pod_namespace()]),
        security_context: Some(locked_down()),
        volume_mounts: Some(vec![mount("keys", KEYS, true)]),
        ..Container::default()
    };
    // A failed restore empties what it filled: each retry starts over cleanly.
    run_once(
        owner.meta(RESTORE, name(owner)),
        labels,
        6 * 3600,
        PodSpec {
            service_account_name: Some(name(owner)),
            init_containers: Some(vec![
                tools_container(platform),
                Container {
                    name: RESTORE.to_owned(),
                    image: Some(database::image(platform)),
                    image_pull_policy: Some("IfNotPresent".to_owned()),
                    command: Some(args),
                    env: Some(vars),
                    security_context: Some(locked_down()),
                    volume_mounts: Some(mounts),
                    termination_message_policy: Some("File".to_owned()),
                    ..Container::default()
                },
            ]),
            containers: vec![store],
            volumes: Some(volumes),
            ..PodSpec::default()
        },
    )
}

/// The `Restored` condition: from the stored one once true (the Job is gone then),
/// else from where the restore is.
pub fn check(
    platform: &SocialPlatform,
    source: &Result<Option<Source>, Check>,
    job: Option<&Job>,
    database_ready: bool,
    failure: Option<&str>,
) -> Option<Check> {
    platform.spec.restore.as_ref()?;
    if condition_true(platform, "Restored") {
        return Some(Check::new(true, "Restored", "restored from the backup"));
    }
    if let Err(problem) = source {
        return Some(problem.clone());
    }
    let conditions = job
        .and_then(|j| j.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let failed = conditions
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    Some(match (job, failed) {
        (_, Some(failed)) => Check::new(
            false,
            "RestoreFailed",
            format!(
                "the restore Job failed ({}): {}",
                failed.reason.as_deref().unwrap_or("Failed"),
                failure.map_or_else(
                    || format!(
                        "kubectl logs job/{} -c restore",
                        job.map(|j| j.name_any()).unwrap_or_default()
                    ),
                    str::to_owned
                )
            ),
        ),
        (Some(j), None) if j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) >= 1 => {
            Check::new(true, "Restored", "restored from the backup")
        }
        (Some(_), None) => Check::new(false, "Restoring", "the restore Job runs"),
        (None, None) if !database_ready => Check::new(
            false,
            "WaitingForDatabases",
            "the restore starts once the databases are provisioned",
        ),
        (None, None) => Check::new(false, "Restoring", "the restore Job is being created"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::SocialPlatformBackupSpec;
    use crate::backup::resource::SocialPlatformBackupStatus;
    use crate::children::desired;
    use crate::fixtures;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use kube::Resource;

    fn restored(restore: serde_json::Value) -> SocialPlatform {
        fixtures::platform(serde_json::json!({"host": "demo.example", "restore": restore}))
    }

    fn completed(location: &str, destination: serde_json::Value) -> SocialPlatformBackup {
        let mut backup = SocialPlatformBackup::new(
            "nightly",
            SocialPlatformBackupSpec {
                platform: "old".into(),
            },
        );
        backup.status = Some(SocialPlatformBackupStatus {
            phase: Some(BackupPhase::Completed),
            location: Some(location.into()),
            destination: serde_json::from_value(destination).unwrap(),
            encryption_key_secret: Some("old-key".into()),
            ..SocialPlatformBackupStatus::default()
        });
        backup
    }

    fn with_condition(mut platform: SocialPlatform, type_: &str) -> SocialPlatform {
        let mut status = platform.status.take().unwrap_or_default();
        status.conditions.push(Condition {
            type_: type_.into(),
            status: "True".into(),
            reason: "Test".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ),
        });
        platform.status = Some(status);
        platform
    }

    /// The restore container's command line.
    fn restore_command(job: Job) -> String {
        job.spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .init_containers
            .unwrap()[1]
            .command
            .clone()
            .unwrap()
            .join(" ")
    }

    /// A backup of platform `old` in bucket `b-1`, completed at 09:00 UTC on 2026-12-07.
    fn in_a_bucket_at_nine() -> SocialPlatformBackup {
        let mut backup = completed(
            "s3://b-1/nightly",
            serde_json::json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"}}),
        );
        backup.status.as_mut().unwrap().completed_at =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-12-07T09:00:00Z".parse().unwrap(),
            ));
        backup
    }

    #[test]
    fn an_instant_is_recovered_from_the_backup_s_platform_archive() {
        let platform = fixtures::platform(serde_json::json!({"host": "demo.example",
            "database": {"mode": "CloudNativePG"},
            "restore": {"backup": "nightly", "targetTime": "2026-12-07T11:00:00.25+01:00"}}));
        let backup = in_a_bucket_at_nine();
        let source = source(&platform, Some(&backup)).unwrap().unwrap();
        let pit = source.point_in_time.clone().unwrap();
        // UTC with a numeric offset: PostgreSQL refuses `Z` in recovery_target_time.
        assert_eq!(pit.target_time, "2026-12-07 10:00:00.250000+00");
        assert_eq!(pit.server_name, "old-postgres");
        assert_eq!(pit.bucket.bucket, "b-1");
        let owner = Owner::of(&platform).unwrap();
        let job = super::job(&platform, &owner, &source, &["auth"]);
        let args = restore_command(job);
        assert!(args.contains("--databases-recovered"), "{args}");
        // The cluster is recovered to that instant.
        let children = desired(&platform, &owner, Some(&source)).unwrap();
        let cluster = children
            .children
            .iter()
            .find_map(|c| {
                c.object.data["spec"]["bootstrap"]["recovery"]
                    .as_object()
                    .cloned()
            })
            .expect("a cluster with a recovery");
        assert_eq!(
            cluster["recoveryTarget"]["targetTime"],
            "2026-12-07 10:00:00.250000+00"
        );
        // Without its source resolved, no cluster at all (it would start empty).
        let unresolved = desired(&platform, &owner, None).unwrap();
        let has_cluster = |d: &crate::children::Desired| {
            d.children
                .iter()
                .any(|c| c.object.data["spec"]["instances"].is_number())
        };
        assert!(!has_cluster(&unresolved));
        // Once restored the source is not read any more: the cluster stays.
        let restored = with_condition(platform, "Restored");
        assert!(has_cluster(&desired(&restored, &owner, None).unwrap()));
    }

    #[test]
    fn an_instant_before_the_backup_or_a_backup_on_a_volume_is_refused() {
        let platform = fixtures::platform(serde_json::json!({"host": "demo.example",
            "database": {"mode": "CloudNativePG"},
            "restore": {"backup": "nightly", "targetTime": "2000-01-01T00:00:00Z"}}));
        let backup = in_a_bucket_at_nine();
        let refused = source(&platform, Some(&backup)).unwrap_err();
        assert_eq!(refused.reason, "BackupAfterTargetTime");
        let platform = fixtures::platform(serde_json::json!({"host": "demo.example",
            "database": {"mode": "CloudNativePG"},
            "restore": {"backup": "nightly", "targetTime": "2999-01-01T00:00:00Z"}}));
        let mut on_a_volume = completed(
            "pvc://old-backups/nightly",
            serde_json::json!({"pvc": {"size": "1Gi"}}),
        );
        on_a_volume.status.as_mut().unwrap().completed_at =
            in_a_bucket_at_nine().status.unwrap().completed_at;
        let refused = source(&platform, Some(&on_a_volume)).unwrap_err();
        assert_eq!(refused.reason, "NoArchive");
    }

    #[test]
    fn a_backup_object_says_where_its_files_are() {
        let platform = restored(serde_json::json!({"backup": "nightly"}));
        assert!(source(&platform, None).is_err(), "named but absent");
        let mut running = completed(
            "s3://b-1/nightly",
            serde_json::json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"}}),
        );
        running.status.as_mut().unwrap().phase = Some(BackupPhase::Running);
        let refused = source(&platform, Some(&running)).unwrap_err();
        assert_eq!(refused.reason, "BackupNotCompleted");
        let on_volume = completed("pvc://old-backups/nightly", serde_json::json!({"pvc": {}}));
        let found = source(&platform, Some(&on_volume)).unwrap().unwrap();
        assert_eq!(found.from, "/backups/nightly");
        assert_eq!(found.claim.as_deref(), Some("old-backups"));
        assert_eq!(
            found.encryption_key_secret, "old-key",
            "the key the backup used"
        );
        let in_bucket = restored(
            serde_json::json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"},
            "path": "demo/nightly", "encryptionKeySecret": "k"}),
        );
        let found = source(&in_bucket, None).unwrap().unwrap();
        assert_eq!(found.from, "s3://b-1/demo/nightly");
        assert_eq!(found.encryption_key_secret, "k");
    }

    #[test]
    fn nothing_serves_until_the_restore_is_done() {
        let platform = restored(serde_json::json!({"backup": "nightly"}));
        let owner = Owner::of(&platform).unwrap();
        let from = source(
            &platform,
            Some(&completed(
                "s3://b-1/nightly",
                serde_json::json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"}}),
            )),
        )
        .unwrap()
        .unwrap();
        let kinds = |p: &SocialPlatform| {
            desired(p, &owner, Some(&from))
                .unwrap()
                .children
                .into_iter()
                .map(|c| (c.resource.kind.clone(), c.name().to_owned()))
                .collect::<Vec<_>>()
        };
        let waiting = kinds(&platform);
        let deployment = Deployment::kind(&()).to_string();
        assert!(
            !waiting.iter().any(|(k, _)| *k == deployment),
            "{waiting:?}"
        );
        assert!(waiting.contains(&("Role".into(), "demo-restore".into())));
        assert!(
            !waiting.contains(&("Job".into(), "demo-restore".into())),
            "not before the databases"
        );
        let keys = desired(&platform, &owner, Some(&from)).unwrap();
        let secret = keys
            .children
            .iter()
            .find(|c| c.name() == "demo-keys")
            .unwrap();
        assert!(
            secret
                .object
                .data
                .get("stringData")
                .is_none_or(|d| d.as_object().unwrap().is_empty())
        );
        let provisioned = with_condition(platform.clone(), "DatabaseReady");
        assert!(kinds(&provisioned).contains(&("Job".into(), "demo-restore".into())));
        let done = with_condition(provisioned, "Restored");
        let serving = kinds(&done);
        assert!(serving.iter().any(|(k, _)| *k == deployment));
        assert!(
            !serving.iter().any(|(_, n)| n == "demo-restore"),
            "{serving:?}"
        );
    }

    #[test]
    fn a_failed_restore_says_why() {
        let platform = restored(serde_json::json!({"backup": "nightly"}));
        let source = Ok(None);
        let mut failed = Job::default();
        failed.metadata.name = Some("demo-restore".into());
        failed.status = Some(
            serde_json::from_value(serde_json::json!({"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}))
            .unwrap(),
        );
        let why = "backup file databases/users.dump is damaged: 100 bytes, the manifest says 200";
        let check = check(&platform, &source, Some(&failed), true, Some(why)).unwrap();
        assert!(!check.ok);
        assert_eq!(check.reason, "RestoreFailed");
        assert!(check.message.contains("BackoffLimitExceeded") && check.message.contains(why));
        let bare = super::check(&platform, &source, Some(&failed), true, None).unwrap();
        assert!(
            bare.message.contains("kubectl logs job/demo-restore"),
            "{}",
            bare.message
        );
        let waiting = super::check(&platform, &source, None, false, None).unwrap();
        assert_eq!(waiting.reason, "WaitingForDatabases");
        let done = with_condition(platform, "Restored");
        assert!(super::check(&done, &source, None, true, None).unwrap().ok);
    }

    #[test]
    fn the_restore_job_writes_only_the_keys_secret() {
        let platform = restored(serde_json::json!({"backup": "nightly"}));
        let owner = Owner::of(&platform).unwrap();
        let from = source(
            &platform,
            Some(&completed(
                "pvc://old-backups/nightly",
                serde_json::json!({"pvc": {}}),
            )),
        )
        .unwrap()
        .unwrap();
        let (_, role, _) = permission(&owner);
        let rules = role.rules.unwrap();
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(&["demo-keys".to_owned()][..])
        );
        assert_eq!(rules[0].verbs, ["get", "patch"]);
        let job = job(&platform, &owner, &from, &["auth", "users"]);
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("demo-restore"));
        let inits = pod.init_containers.unwrap();
        let restore = &inits[1];
        let args = restore.command.clone().unwrap().join(" ");
        assert!(args.contains("restore --from /backups/nightly"), "{args}");
        assert!(
            args.contains("--database auth=env:DATABASE_URL_AUTH"),
            "{args}"
        );
        assert!(
            args.contains("--photos-dir /var/lib/agora/photos"),
            "{args}"
        );
        assert!(
            !args.contains("--erasure-log"),
            "a volume keeps no erasure log: {args}"
        );
        // From a bucket: the erasure log at the prefix the backup is under.
        let in_bucket = Source {
            from: "s3://b-1/demo/nightly".into(),
            ..from.clone()
        };
        assert!(!args.contains("--databases-recovered"));
        let bucket_job = super::job(&platform, &owner, &in_bucket, &["auth", "users"]);
        let bucket_args = restore_command(bucket_job);
        assert!(
            bucket_args.contains("--erasure-log s3://b-1/demo"),
            "{bucket_args}"
        );
        let backups = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "backups")
            .unwrap();
        assert_eq!(
            backups.persistent_volume_claim.as_ref().unwrap().claim_name,
            "old-backups"
        );
        let keys = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "keys")
            .unwrap();
        assert_eq!(
            keys.empty_dir.as_ref().unwrap().medium.as_deref(),
            Some("Memory")
        );
        assert_eq!(
            pod.containers[0].args.as_deref(),
            Some(
                &[
                    "store-keys".to_owned(),
                    KEYS.to_owned(),
                    "demo-keys".to_owned()
                ][..]
            )
        );
    }
}
