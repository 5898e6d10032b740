//! The pure builders of backups: the schedule (a CronJob that asks for a backup by
//! creating a `SocialPlatformBackup`, with a ServiceAccount allowed exactly that), the
//! backups' volume, and the Job that takes one backup.
//!
//! The Job runs in the database's own image, so `pg_dump` is the server's own version;
//! an init container puts the `agora` binary beside it (`agora copy-binary`: the image
//! has no shell). It reads the databases as a read-only role, the photo volume
//! read-only, and the keys from their Secret mounted as files; it has no Kubernetes
//! credentials at all.

use super::resource::SocialPlatformBackup;
use super::spec::{BackupDestination, BackupSpec};
use crate::build::{PHOTOS_DIR, from_secret};
use crate::crd::{DatabaseMode, SocialPlatform};
use crate::database::{self, env, no_privileges, unprivileged_pod};
use crate::owner::Owner;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodAffinity, PodAffinityTerm, PodSpec, PodTemplateSpec, ResourceRequirements,
    SecretVolumeSource, SecurityContext, ServiceAccount, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// The `app.kubernetes.io/name` of the backup Jobs' pods and the backups' volume.
pub const COMPONENT: &str = "backup";
/// The `app.kubernetes.io/name` of the schedule's objects.
pub const SCHEDULER: &str = "backup-scheduler";
/// The label naming a backup's platform (on `SocialPlatformBackup`s and their Jobs).
pub const PLATFORM_LABEL: &str = "agora.dev/platform";
/// The label naming the backup a Job takes.
pub const BACKUP_LABEL: &str = "agora.dev/backup";
/// The label marking backups the schedule asked for.
pub const SCHEDULED_LABEL: &str = "agora.dev/scheduled";
/// How long one backup may run before its Job is stopped (and the backup fails).
pub const DEADLINE_SECONDS: i64 = 6 * 3600;
/// Retries of a failed backup pod (each starts over: a partial attempt is cleared).
pub const RETRIES: i32 = 2;
/// The user of backup, restore and deletion Jobs: the services' own (65532), so that
/// photo files and directories they read or write stay the photos service's.
pub const JOB_UID: i64 = 65532;
/// Where the backup Job's pod finds what it reads.
pub(crate) const TOOLS: &str = "/tools";
const KEYS: &str = "/run/agora/keys";
pub(crate) const SEAL: &str = "/run/agora/encryption";
pub(crate) const BACKUPS: &str = "/backups";

/// `<platform>-backups`: the volume of `destination.pvc`. Not owned by the platform:
/// deleting the platform keeps its backups.
pub fn claim_name(platform: &str) -> String {
    format!("{platform}-backups")
}

/// `<platform>-backup-reader-database`: the read-only role's credentials (Managed mode).
pub fn reader_secret_name(owner: &Owner) -> String {
    owner.database_secret_name("backup-reader")
}

/// The agora CLI image beside the services' images.
pub fn agora_image(platform: &SocialPlatform) -> String {
    repository_image(platform, "agora")
}

/// The operator's image (the schedule's Job runs `agora-operator request-backup`).
pub fn operator_image(platform: &SocialPlatform) -> String {
    repository_image(platform, "operator")
}

fn repository_image(platform: &SocialPlatform, name: &str) -> String {
    format!(
        "{}/{name}:{}",
        platform.spec.image_repository.trim_end_matches('/'),
        platform.spec.version
    )
}

fn small(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity(memory.to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

pub(crate) fn locked_down() -> SecurityContext {
    SecurityContext {
        read_only_root_filesystem: Some(true),
        ..no_privileges()
    }
}

/// A Job's own ServiceAccount `name` for `component` (its token is mounted: it calls the
/// API server), a Role with exactly `rule`, and the binding between them.
pub(crate) fn permission(
    owner: &Owner,
    component: &str,
    name: &str,
    rule: PolicyRule,
) -> (ServiceAccount, Role, RoleBinding) {
    let meta = || owner.meta(component, name.to_owned());
    (
        ServiceAccount {
            metadata: meta(),
            automount_service_account_token: Some(true),
            ..ServiceAccount::default()
        },
        Role {
            metadata: meta(),
            rules: Some(vec![rule]),
        },
        RoleBinding {
            metadata: meta(),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "Role".to_owned(),
                name: name.to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: name.to_owned(),
                namespace: Some(owner.namespace().to_owned()),
                ..Subject::default()
            }]),
        },
    )
}

/// The schedule's account: it may create `SocialPlatformBackup`s in its namespace,
/// nothing else (not even read them).
pub fn scheduler_permission(owner: &Owner) -> (ServiceAccount, Role, RoleBinding) {
    permission(
        owner,
        SCHEDULER,
        &owner.child_name(SCHEDULER),
        PolicyRule {
            api_groups: Some(vec!["agora.dev".to_owned()]),
            resources: Some(vec!["socialplatformbackups".to_owned()]),
            verbs: vec!["create".to_owned()],
            ..PolicyRule::default()
        },
    )
}

/// `POD_NAMESPACE` from the downward API.
pub(crate) fn pod_namespace() -> EnvVar {
    EnvVar {
        name: "POD_NAMESPACE".to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.namespace".to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The init container that puts `agora` (and a CA bundle) into the `tools` volume.
pub(crate) fn tools_container(platform: &SocialPlatform) -> Container {
    Container {
        name: "tools".to_owned(),
        image: Some(agora_image(platform)),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec!["copy-binary".to_owned(), format!("{TOOLS}/agora")]),
        resources: Some(small("10m", "32Mi")),
        security_context: Some(locked_down()),
        volume_mounts: Some(vec![mount("tools", TOOLS, false)]),
        ..Container::default()
    }
}

/// `<platform>-backup`: on `spec.backup.schedule` (UTC), a Job that creates a
/// `SocialPlatformBackup`; the operator then takes the backup (one at a time per
/// platform, whoever asked).
pub fn schedule(platform: &SocialPlatform, owner: &Owner, spec: &BackupSpec) -> CronJob {
    let labels = owner.labels(SCHEDULER);
    let container = Container {
        name: "request-backup".to_owned(),
        image: Some(operator_image(platform)),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec!["request-backup".to_owned()]),
        env: Some(vec![env("PLATFORM", owner.name()), pod_namespace()]),
        resources: Some(small("10m", "32Mi")),
        security_context: Some(locked_down()),
        ..Container::default()
    };
    CronJob {
        metadata: owner.meta(SCHEDULER, owner.child_name(COMPONENT)),
        spec: Some(CronJobSpec {
            schedule: spec.schedule.clone(),
            time_zone: Some("Etc/UTC".to_owned()),
            concurrency_policy: Some("Forbid".to_owned()),
            // A schedule missed by more than this (the controller was down) is skipped.
            starting_deadline_seconds: Some(600),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(3),
                    active_deadline_seconds: Some(300),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(PodSpec {
                            restart_policy: Some("OnFailure".to_owned()),
                            service_account_name: Some(owner.child_name(SCHEDULER)),
                            security_context: Some(unprivileged_pod(65532)),
                            containers: vec![container],
                            ..PodSpec::default()
                        }),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        status: None,
    }
}

/// The backups' volume (`destination.pvc`): labelled as the platform's, never owned by
/// it.
pub fn claim(owner: &Owner, spec: &BackupSpec) -> Option<PersistentVolumeClaim> {
    let volume = spec.destination.pvc.as_ref()?;
    let mut metadata = owner.meta(COMPONENT, claim_name(owner.name()));
    metadata.owner_references = None;
    Some(PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: volume.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    volume.size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

/// Where the auth service logs completed erasures, beside the backups: the bucket's
/// prefix (`s3://bucket/prefix`, records under `erasures/`). A volume destination has
/// none: its claim is the backup Jobs' alone.
pub fn erasure_log(spec: &BackupSpec) -> Option<String> {
    let s3 = spec.destination.s3.as_ref()?;
    Some(match &s3.prefix {
        Some(prefix) => format!("s3://{}/{prefix}", s3.bucket),
        None => format!("s3://{}", s3.bucket),
    })
}

/// Where a backup's files go: `s3://bucket/prefix/<backup>` or, on the backups'
/// volume, `pvc://<claim>/<backup>` (a directory of the Job's mount).
pub fn location(platform: &str, spec: &BackupSpec, backup: &str) -> String {
    match &spec.destination.s3 {
        Some(s3) => match &s3.prefix {
            Some(prefix) => format!("s3://{}/{prefix}/{backup}", s3.bucket),
            None => format!("s3://{}/{backup}", s3.bucket),
        },
        None => format!("pvc://{}/{backup}", claim_name(platform)),
    }
}

/// How the backup reads each service's database: `--database SERVICE=URL` arguments
/// and the variables they need. Managed: the read-only role (its password in
/// `PGPASSWORD`, which `pg_dump` reads). Other modes have no such role: each service's
/// own URL, from the variable `env:NAME` names (never on the command line).
fn database_access(
    platform: &SocialPlatform,
    owner: &Owner,
    services: &[&str],
) -> (Vec<EnvVar>, Vec<String>) {
    let mut env_vars = Vec::new();
    let mut args = Vec::new();
    let database = &platform.spec.database;
    for service in services {
        let url = match (database.mode, &database.external) {
            (DatabaseMode::Managed, _) => format!(
                "postgres://{}@{}:{}/{service}",
                database::READER_ROLE,
                database::host(owner),
                database::PORT
            ),
            (mode, external) => {
                let var = format!("DATABASE_URL_{}", service.to_uppercase());
                env_vars.push(match (mode, external) {
                    (DatabaseMode::External, Some(external)) => {
                        from_secret(&var, external.secret_ref.name.clone(), service)
                    }
                    _ => from_secret(&var, owner.database_secret_name(service), "url"),
                });
                format!("env:{var}")
            }
        };
        args.extend(["--database".to_owned(), format!("{service}={url}")]);
    }
    if database.mode == DatabaseMode::Managed {
        env_vars.push(from_secret(
            "PGPASSWORD",
            reader_secret_name(owner),
            "password",
        ));
    }
    (env_vars, args)
}

fn secret_volume(name: &str, secret: String, items: Option<Vec<(&str, &str)>>) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            default_mode: Some(0o400),
            items: items.map(|items| {
                items
                    .into_iter()
                    .map(|(key, path)| k8s_openapi::api::core::v1::KeyToPath {
                        key: key.to_owned(),
                        path: path.to_owned(),
                        mode: None,
                    })
                    .collect()
            }),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

pub(crate) fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// The Job that takes `backup` of `platform` per `spec`, owned by the backup object
/// (deleting the backup deletes its Job; deleting the platform deletes neither).
pub fn backup_job(
    platform: &SocialPlatform,
    owner: &Owner,
    spec: &BackupSpec,
    backup: &SocialPlatformBackup,
    services: &[&str],
) -> Job {
    let name = backup.name_any();
    let mut labels = owner.labels(COMPONENT);
    labels.insert(PLATFORM_LABEL.to_owned(), owner.name().to_owned());
    labels.insert(BACKUP_LABEL.to_owned(), name.clone());
    let mut volumes = vec![
        Volume {
            name: "tools".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        secret_volume(
            "keys",
            owner.keys_secret_name(),
            Some(vec![
                ("auth-signing-key", "auth-signing-key"),
                ("share-link-key", "share-link-key"),
                ("internal-token", "internal-token"),
            ]),
        ),
        secret_volume(
            "encryption",
            spec.encryption_key_secret.clone(),
            Some(vec![("key", "key")]),
        ),
    ];
    let mut mounts = vec![
        mount("tools", TOOLS, true),
        mount("keys", KEYS, true),
        mount("encryption", SEAL, true),
    ];
    let mut args = vec![
        format!("{TOOLS}/agora"),
        "backup".to_owned(),
        "--keys-dir".to_owned(),
        KEYS.to_owned(),
        "--encryption-key-file".to_owned(),
        format!("{SEAL}/key"),
        "--resume".to_owned(),
        "--report-file".to_owned(),
        "/dev/termination-log".to_owned(),
    ];
    let (mut env_vars, databases) = database_access(platform, owner, services);
    args.extend(databases);
    // The CA bundle `copy-binary` brought along (a database image may have none).
    env_vars.push(env(
        "SSL_CERT_FILE",
        &format!("{TOOLS}/ca-certificates.crt"),
    ));
    // What the manifest records of the platform.
    env_vars.push(env(
        "AGORA_BACKUP_PLATFORM",
        &serde_json::json!({
            "name": owner.name(),
            "namespace": owner.namespace(),
            "spec": platform.spec,
        })
        .to_string(),
    ));
    let mut affinity = None;
    if platform.spec.photos.storage.pvc.is_some() {
        volumes.push(Volume {
            name: "photos".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: owner.child_name("photos"),
                read_only: Some(true),
            }),
            ..Volume::default()
        });
        mounts.push(mount("photos", PHOTOS_DIR, true));
        args.extend(["--photos-dir".to_owned(), PHOTOS_DIR.to_owned()]);
        // A ReadWriteOnce volume is shared by pods of one node only: beside the photos pod.
        affinity = Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(owner.selector("photos")),
                        ..LabelSelector::default()
                    }),
                    topology_key: "kubernetes.io/hostname".to_owned(),
                    ..PodAffinityTerm::default()
                }]),
                ..PodAffinity::default()
            }),
            ..Affinity::default()
        });
    }
    if let Some((vars, photos)) = photo_bucket_access(platform) {
        env_vars.extend(vars);
        args.extend(photos);
    }
    match (&spec.destination.s3, &spec.destination.pvc) {
        (Some(s3), _) => {
            env_vars.extend(bucket_env(s3));
            args.extend(["--to".to_owned(), location(owner.name(), spec, &name)]);
        }
        (None, _) => {
            volumes.push(Volume {
                name: "backups".to_owned(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(owner.name()),
                    read_only: Some(false),
                }),
                ..Volume::default()
            });
            mounts.push(mount("backups", BACKUPS, false));
            args.extend(["--to".to_owned(), format!("{BACKUPS}/{name}")]);
        }
    }
    let mut metadata = ObjectMeta {
        name: Some(format!("{name}-backup")),
        namespace: Some(owner.namespace().to_owned()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    metadata.owner_references = backup.controller_owner_ref(&()).map(|r| vec![r]);
    let database_image = database::image(platform);
    run_once(
        metadata,
        labels,
        DEADLINE_SECONDS,
        PodSpec {
            affinity,
            init_containers: Some(vec![tools_container(platform)]),
            containers: vec![Container {
                name: "backup".to_owned(),
                image: Some(database_image),
                image_pull_policy: Some("IfNotPresent".to_owned()),
                command: Some(args),
                env: Some(env_vars),
                // Streams: dump, checksum and upload hold a few MiB whatever the
                // platform's size (docs/backup.md).
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity("100m".to_owned())),
                        ("memory".to_owned(), Quantity("64Mi".to_owned())),
                    ])),
                    limits: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity("1".to_owned())),
                        ("memory".to_owned(), Quantity("256Mi".to_owned())),
                    ])),
                    ..ResourceRequirements::default()
                }),
                security_context: Some(locked_down()),
                volume_mounts: Some(mounts),
                termination_message_policy: Some("File".to_owned()),
                ..Container::default()
            }],
            volumes: Some(volumes),
            ..PodSpec::default()
        },
    )
}

/// The Job that deletes `backup`'s files at `location` (retention pruned it, or a person
/// deleted it): the `agora` image alone, with access to the destination only. Built
/// from the backup's own status, so it works after its platform is gone.
pub fn delete_job(
    backup: &SocialPlatformBackup,
    destination: &BackupDestination,
    location: &str,
    image: &str,
) -> Job {
    let name = backup.name_any();
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), COMPONENT.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), "agora".to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            crate::owner::MANAGER.to_owned(),
        ),
        (PLATFORM_LABEL.to_owned(), backup.spec.platform.clone()),
        (BACKUP_LABEL.to_owned(), name.clone()),
    ]);
    let mut env_vars = Vec::new();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let target = match (&destination.s3, location.strip_prefix("pvc://")) {
        (Some(s3), _) => {
            env_vars.extend(bucket_env(s3));
            location.to_owned()
        }
        (None, Some(path)) => {
            let (claim, directory) = path.split_once('/').unwrap_or((path, &name));
            volumes.push(Volume {
                name: "backups".to_owned(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.to_owned(),
                    read_only: Some(false),
                }),
                ..Volume::default()
            });
            mounts.push(mount("backups", BACKUPS, false));
            format!("{BACKUPS}/{directory}")
        }
        (None, None) => location.to_owned(),
    };
    run_once(
        ObjectMeta {
            name: Some(format!("{name}-delete")),
            namespace: backup.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: backup.controller_owner_ref(&()).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        labels,
        3600,
        PodSpec {
            containers: vec![Container {
                name: "delete".to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: Some("IfNotPresent".to_owned()),
                args: Some(vec!["delete-backup".to_owned(), target]),
                env: Some(env_vars),
                resources: Some(small("10m", "64Mi")),
                security_context: Some(locked_down()),
                volume_mounts: Some(mounts),
                ..Container::default()
            }],
            volumes: Some(volumes),
            ..PodSpec::default()
        },
    )
}

/// The variables that reach a bucket, its credentials from their Secret.
pub(crate) fn bucket_env(s3: &super::spec::BackupBucket) -> Vec<EnvVar> {
    let secret = s3.credentials_secret.clone();
    let mut vars = vec![
        from_secret("AWS_ACCESS_KEY_ID", secret.clone(), "AWS_ACCESS_KEY_ID"),
        from_secret("AWS_SECRET_ACCESS_KEY", secret, "AWS_SECRET_ACCESS_KEY"),
        env("AWS_REGION", s3.region.as_deref().unwrap_or("us-east-1")),
    ];
    if let Some(endpoint) = &s3.endpoint {
        vars.push(env("AWS_ENDPOINT_URL", endpoint));
    }
    // `agora` reads it with a custom endpoint (AWS's own is always virtual-hosted).
    vars.push(env(
        "AWS_S3_FORCE_PATH_STYLE",
        if s3.force_path_style { "true" } else { "false" },
    ));
    vars
}

/// How a backup or restore Job reaches the photos' bucket, when photos are in one: the
/// `--photos-bucket` arguments and the `PHOTOS_`-prefixed standard variables (the photos
/// service's credentials, not the backup destination's).
pub(crate) fn photo_bucket_access(platform: &SocialPlatform) -> Option<(Vec<EnvVar>, Vec<String>)> {
    let s3 = platform.spec.photos.storage.s3.as_ref()?;
    let secret = s3.secret_ref.name.clone();
    let mut vars = vec![
        from_secret("PHOTOS_AWS_ACCESS_KEY_ID", secret.clone(), "accessKeyId"),
        from_secret("PHOTOS_AWS_SECRET_ACCESS_KEY", secret, "secretAccessKey"),
        env(
            "PHOTOS_AWS_REGION",
            s3.region.as_deref().unwrap_or("us-east-1"),
        ),
        // As the photos service asks it.
        env("PHOTOS_AWS_S3_FORCE_PATH_STYLE", "true"),
    ];
    if let Some(endpoint) = &s3.endpoint {
        vars.push(env("PHOTOS_AWS_ENDPOINT_URL", endpoint));
    }
    let args = vec!["--photos-bucket".to_owned(), format!("s3://{}", s3.bucket)];
    Some((vars, args))
}

/// A Job that runs `pod` once to the end: pods never restart in place (a retry is a new
/// pod, [`RETRIES`] of them), as the services' user, without a Kubernetes token unless
/// the pod names its ServiceAccount, stopped after `deadline` seconds.
pub(crate) fn run_once(
    metadata: ObjectMeta,
    labels: BTreeMap<String, String>,
    deadline: i64,
    pod: PodSpec,
) -> Job {
    let automount = pod.service_account_name.is_some();
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(RETRIES),
            active_deadline_seconds: Some(deadline),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_owned()),
                    automount_service_account_token: Some(automount),
                    security_context: Some(unprivileged_pod(JOB_UID)),
                    ..pod
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The name of the backup the schedule asks for at `at`: `<platform>-<yyyymmddhhmmss>`
/// (UTC), unique per second and sorted by time.
pub fn scheduled_name(platform: &str, at: k8s_openapi::jiff::Timestamp) -> String {
    format!("{platform}-{}", at.strftime("%Y%m%d%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::SocialPlatformBackupSpec;
    use crate::fixtures;

    fn backed_up(destination: serde_json::Value, extra: serde_json::Value) -> SocialPlatform {
        let mut spec = serde_json::json!({"host": "demo.example", "backup": {
            "schedule": "0 3 * * *", "destination": destination,
            "encryptionKeySecret": "backup-key"}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        fixtures::platform(spec)
    }

    fn backup_object(name: &str) -> SocialPlatformBackup {
        let mut backup = SocialPlatformBackup::new(
            name,
            SocialPlatformBackupSpec {
                platform: "demo".into(),
            },
        );
        backup.metadata.namespace = Some("social".into());
        backup.metadata.uid = Some("5678".into());
        backup
    }

    #[test]
    fn the_schedule_may_only_ask_for_backups() {
        let platform = backed_up(
            serde_json::json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"}}),
            serde_json::json!({}),
        );
        let owner = Owner::of(&platform).unwrap();
        let spec = platform.spec.backup.clone().unwrap();
        let cron = schedule(&platform, &owner, &spec).spec.unwrap();
        assert_eq!(cron.schedule, "0 3 * * *");
        assert_eq!(cron.time_zone.as_deref(), Some("Etc/UTC"));
        assert_eq!(cron.concurrency_policy.as_deref(), Some("Forbid"));
        let pod = cron.job_template.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("demo-backup-scheduler")
        );
        let container = &pod.containers[0];
        assert_eq!(
            container.args.as_deref(),
            Some(&["request-backup".to_owned()][..])
        );
        assert_eq!(
            container.image.as_deref(),
            Some(
                format!(
                    "ghcr.io/agora-social/operator:{}",
                    env!("CARGO_PKG_VERSION")
                )
                .as_str()
            )
        );
        let (_, role, binding) = scheduler_permission(&owner);
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].verbs, ["create"]);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["socialplatformbackups".to_owned()][..])
        );
        assert_eq!(binding.role_ref.name, "demo-backup-scheduler");
        assert!(
            claim(&owner, &spec).is_none(),
            "no volume for an S3 destination"
        );
    }

    #[test]
    fn the_backups_volume_outlives_its_platform() {
        let platform = backed_up(serde_json::json!({"pvc": {}}), serde_json::json!({}));
        let owner = Owner::of(&platform).unwrap();
        let claim = claim(&owner, platform.spec.backup.as_ref().unwrap()).unwrap();
        assert_eq!(claim.metadata.name.as_deref(), Some("demo-backups"));
        assert!(claim.metadata.owner_references.is_none());
        let size = &claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"];
        assert_eq!(size.0, "10Gi");
    }

    #[test]
    fn a_backup_job_reads_what_it_backs_up_and_writes_only_its_destination() {
        let platform = backed_up(
            serde_json::json!({"s3": {"bucket": "b-1", "prefix": "agora/prod",
                "endpoint": "http://s3:7070", "forcePathStyle": true, "credentialsSecret": "s3"}}),
            serde_json::json!({}),
        );
        let owner = Owner::of(&platform).unwrap();
        let spec = platform.spec.backup.clone().unwrap();
        let backup = backup_object("nightly");
        let job = backup_job(&platform, &owner, &spec, &backup, &["auth", "users"]);
        assert_eq!(job.metadata.name.as_deref(), Some("nightly-backup"));
        let refs = job.metadata.owner_references.clone().unwrap();
        assert_eq!(
            refs[0].kind, "SocialPlatformBackup",
            "owned by the backup, not the platform"
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[PLATFORM_LABEL],
            "demo"
        );
        let spec_ = job.spec.unwrap();
        assert_eq!(spec_.backoff_limit, Some(RETRIES));
        assert_eq!(spec_.active_deadline_seconds, Some(DEADLINE_SECONDS));
        let pod = spec_.template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("postgres:18"),
            "the server's own pg_dump"
        );
        let args = container.command.clone().unwrap().join(" ");
        assert!(args.starts_with("/tools/agora backup "), "{args}");
        assert!(args.contains("--to s3://b-1/agora/prod/nightly"), "{args}");
        assert!(
            args.contains("--database auth=postgres://backup_reader@demo-postgres:5432/auth"),
            "{args}"
        );
        assert!(
            args.contains("--photos-dir /var/lib/agora/photos"),
            "{args}"
        );
        assert!(
            !args.contains("password"),
            "no secret on the command line: {args}"
        );
        let env: Vec<(String, String)> = container
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| {
                let from = e
                    .value_from
                    .and_then(|v| v.secret_key_ref)
                    .map(|r| format!("{}/{}", r.name, r.key));
                (e.name, e.value.or(from).unwrap_or_default())
            })
            .collect();
        for expected in [
            ("PGPASSWORD", "demo-backup-reader-database/password"),
            ("AWS_ACCESS_KEY_ID", "s3/AWS_ACCESS_KEY_ID"),
            ("AWS_SECRET_ACCESS_KEY", "s3/AWS_SECRET_ACCESS_KEY"),
            ("AWS_ENDPOINT_URL", "http://s3:7070"),
            ("AWS_S3_FORCE_PATH_STYLE", "true"),
        ] {
            assert!(
                env.contains(&(expected.0.to_owned(), expected.1.to_owned())),
                "{expected:?} in {env:?}"
            );
        }
        // Every mount is read-only but the binary's scratch dir's source: the photo
        // volume, beside the photos pod.
        for m in container.volume_mounts.as_ref().unwrap() {
            assert_eq!(m.read_only, Some(true), "{}", m.name);
        }
        let photos = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "photos")
            .unwrap();
        assert_eq!(
            photos.persistent_volume_claim.as_ref().unwrap().read_only,
            Some(true)
        );
        assert!(pod.affinity.is_some());
        assert_eq!(
            container
                .security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
    }

    #[test]
    fn other_database_modes_pass_urls_by_variable() {
        let platform = backed_up(
            serde_json::json!({"pvc": {}}),
            serde_json::json!({"database": {"mode": "External", "external": {"secretRef": {"name": "urls"}}},
                "photos": {"storage": {"s3": {"bucket": "photos", "secretRef": {"name": "s3"}}}}}),
        );
        let owner = Owner::of(&platform).unwrap();
        let spec = platform.spec.backup.clone().unwrap();
        let job = backup_job(&platform, &owner, &spec, &backup_object("b"), &["users"]);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        let args = container.command.clone().unwrap().join(" ");
        assert!(
            args.contains("--database users=env:DATABASE_URL_USERS"),
            "{args}"
        );
        assert!(args.contains("--to /backups/b"), "{args}");
        assert!(!args.contains("--photos-dir"), "photos in S3: {args}");
        // Their objects are listed with the photos service's credentials.
        assert!(args.contains("--photos-bucket s3://photos"), "{args}");
        let vars = container.env.as_ref().unwrap();
        let photos_key = vars
            .iter()
            .find(|e| e.name == "PHOTOS_AWS_ACCESS_KEY_ID")
            .and_then(|e| e.value_from.clone()?.secret_key_ref)
            .unwrap();
        assert_eq!(
            (photos_key.name.as_str(), photos_key.key.as_str()),
            ("s3", "accessKeyId")
        );
        let var = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "DATABASE_URL_USERS")
            .unwrap();
        let from = var.value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!((from.name.as_str(), from.key.as_str()), ("urls", "users"));
        assert!(pod.affinity.is_none());
        let backups = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "backups")
            .unwrap();
        assert_eq!(backups.read_only, Some(false));
    }

    #[test]
    fn deleting_a_backup_needs_its_destination_only() {
        let platform = backed_up(serde_json::json!({"pvc": {}}), serde_json::json!({}));
        let spec = platform.spec.backup.clone().unwrap();
        let backup = backup_object("old");
        let job = delete_job(
            &backup,
            &spec.destination,
            "pvc://demo-backups/old",
            "ghcr.io/agora-social/agora:0.1.0",
        );
        assert_eq!(job.metadata.name.as_deref(), Some("old-delete"));
        assert_eq!(
            job.metadata.owner_references.unwrap()[0].kind,
            "SocialPlatformBackup"
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let container = &pod.containers[0];
        assert_eq!(
            container.args.as_deref(),
            Some(&["delete-backup".to_owned(), "/backups/old".to_owned()][..])
        );
        let claim = pod.volumes.unwrap()[0]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, "demo-backups");
        let s3 = backed_up(
            serde_json::json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"}}),
            serde_json::json!({}),
        );
        let s3_spec = s3.spec.backup.unwrap();
        let job = delete_job(&backup, &s3_spec.destination, "s3://b-1/old", "agora:1");
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert!(pod.volumes.unwrap().is_empty());
        let env = pod.containers[0].env.clone().unwrap();
        assert!(env.iter().any(|e| e.name == "AWS_SECRET_ACCESS_KEY"));
    }

    #[test]
    fn scheduled_backups_are_named_after_their_time() {
        let at: k8s_openapi::jiff::Timestamp = "2026-12-06T03:00:07Z".parse().unwrap();
        assert_eq!(scheduled_name("demo", at), "demo-20261206030007");
    }
}
