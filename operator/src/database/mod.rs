//! The managed database (`database.mode: Managed`): one PostgreSQL StatefulSet with its
//! headless Service and volume, and an idempotent provisioning Job that creates a role
//! and a database per enabled service from their generated Secrets. Pure builders, like
//! the rest of the build stage.

pub mod cloudnative;

use crate::build::from_secret;
use crate::crd::SocialPlatform;
use crate::owner::{DATABASE_COMPONENT, DATABASE_PORT, Owner};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, ExecAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec as CoreServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// The SQL the provisioning Job runs per service (also run by a test against a real
/// PostgreSQL).
pub const PROVISION_SQL: &str = include_str!("provision.sql");
/// The Job's script around it.
pub const PROVISION_SCRIPT: &str = include_str!("provision.sh");
/// The SQL making the backups' read-only role.
pub const READER_SQL: &str = include_str!("reader.sql");
/// The backups' read-only role (`pg_read_all_data`, CONNECT on every service database).
pub const READER_ROLE: &str = "backup_reader";
/// The PostgreSQL image when the spec names none (18+: `PGDATA` below the mount).
pub const DEFAULT_IMAGE: &str = "postgres:18";
/// PostgreSQL's port.
pub const PORT: i32 = DATABASE_PORT;
/// The `app.kubernetes.io/name` of the database's children.
pub const COMPONENT: &str = DATABASE_COMPONENT;
/// The uid and gid of the `postgres` user in the official image.
pub(crate) const POSTGRES_UID: i64 = 999;

/// `<platform>-postgres`: the StatefulSet, its headless Service (the host name
/// services connect to) and the superuser Secret.
pub fn host(owner: &Owner) -> String {
    owner.database_host()
}

pub(crate) fn image(platform: &SocialPlatform) -> String {
    platform
        .spec
        .database
        .image
        .clone()
        .unwrap_or_else(|| DEFAULT_IMAGE.to_owned())
}

pub(crate) fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

pub(crate) fn unprivileged_pod(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

pub(crate) fn no_privileges() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// The headless Service giving the StatefulSet's pod its stable name.
pub fn service(owner: &Owner) -> Service {
    Service {
        metadata: owner.meta(COMPONENT, host(owner)),
        spec: Some(CoreServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(owner.selector(COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("postgres".to_owned()),
                port: PORT,
                target_port: Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                        "postgres".to_owned(),
                    ),
                ),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..CoreServiceSpec::default()
        }),
        status: None,
    }
}

/// One PostgreSQL pod with its volume. Readiness asks `pg_isready` over TCP: the
/// image's first-start init server listens on the socket only, so the pod is ready
/// only once the real server is.
pub fn stateful_set(platform: &SocialPlatform, owner: &Owner) -> StatefulSet {
    let database = &platform.spec.database;
    let name = host(owner);
    let ready = Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "pg_isready".to_owned(),
                "-h".to_owned(),
                "127.0.0.1".to_owned(),
                "-U".to_owned(),
                "postgres".to_owned(),
            ]),
        }),
        period_seconds: Some(5),
        timeout_seconds: Some(3),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let container = Container {
        name: COMPONENT.to_owned(),
        image: Some(image(platform)),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some("postgres".to_owned()),
            container_port: PORT,
            ..ContainerPort::default()
        }]),
        env: Some(vec![
            from_secret("POSTGRES_PASSWORD", owner.database_host(), "password"),
            // Below the mount point, as the 18+ image expects.
            env("PGDATA", "/var/lib/postgresql/18/docker"),
        ]),
        readiness_probe: Some(ready.clone()),
        liveness_probe: Some(Probe {
            period_seconds: Some(10),
            failure_threshold: Some(6),
            ..ready
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".to_owned())),
                ("memory".to_owned(), Quantity("256Mi".to_owned())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("1Gi".to_owned()),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(no_privileges()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".to_owned(),
                mount_path: "/var/lib/postgresql".to_owned(),
                ..VolumeMount::default()
            },
            // The image writes its socket here; the volume keeps it off the image.
            VolumeMount {
                name: "run".to_owned(),
                mount_path: "/var/run/postgresql".to_owned(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    StatefulSet {
        metadata: owner.meta(COMPONENT, name.clone()),
        spec: Some(StatefulSetSpec {
            service_name: Some(name),
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(owner.selector(COMPONENT)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner.labels(COMPONENT)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(unprivileged_pod(POSTGRES_UID)),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "run".to_owned(),
                        empty_dir: Some(Default::default()),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".to_owned()),
                    labels: Some(owner.labels(COMPONENT)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    storage_class_name: database.storage_class_name.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            database.storage.clone(),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            }]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// `<platform>-postgres-provision`: the Job's script and SQL.
pub fn provision_config(owner: &Owner) -> ConfigMap {
    ConfigMap {
        metadata: owner.meta(COMPONENT, format!("{}-provision", host(owner))),
        data: Some(BTreeMap::from([
            ("provision.sh".to_owned(), PROVISION_SCRIPT.to_owned()),
            ("provision.sql".to_owned(), PROVISION_SQL.to_owned()),
            ("reader.sql".to_owned(), READER_SQL.to_owned()),
        ])),
        ..ConfigMap::default()
    }
}

/// The provisioning Job for these services. A Job's pod template cannot change, so its
/// name carries a hash of the service list and the image: enabling a service makes a
/// new Job (which provisions the new database and leaves the others as they are).
pub fn provision_job(platform: &SocialPlatform, owner: &Owner, services: &[&str]) -> Job {
    let image = image(platform);
    // `reader`: Jobs from before the backups' role existed are replaced once.
    let key = format!("{image}|{}|reader", services.join(","));
    let name = format!("{}-provision-{}", host(owner), short_hash(&key));
    let mut volumes = vec![Volume {
        name: "provision".to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: format!("{}-provision", host(owner)),
            default_mode: Some(0o555),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "provision".to_owned(),
        mount_path: "/provision".to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    let reader_secret = crate::backup::jobs::reader_secret_name(owner);
    for (service, secret) in services
        .iter()
        .map(|s| (*s, owner.database_secret_name(s)))
        .chain([(READER_ROLE, reader_secret)])
    {
        volumes.push(Volume {
            name: format!("secret-{}", service.replace('_', "-")),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret),
                default_mode: Some(0o400),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: format!("secret-{}", service.replace('_', "-")),
            mount_path: format!("/secrets/{service}"),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    Job {
        metadata: owner.meta(COMPONENT, name),
        spec: Some(JobSpec {
            backoff_limit: Some(6),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner.labels(COMPONENT)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("OnFailure".to_owned()),
                    automount_service_account_token: Some(false),
                    security_context: Some(unprivileged_pod(POSTGRES_UID)),
                    containers: vec![Container {
                        name: "provision".to_owned(),
                        image: Some(image),
                        image_pull_policy: Some("IfNotPresent".to_owned()),
                        command: Some(vec![
                            "/bin/sh".to_owned(),
                            "/provision/provision.sh".to_owned(),
                        ]),
                        env: Some(vec![
                            env("SERVICES", &services.join(" ")),
                            env("READER", READER_ROLE),
                            env("PGHOST", &host(owner)),
                            env("PGPORT", &PORT.to_string()),
                            env("PGUSER", "postgres"),
                            env("PGDATABASE", "postgres"),
                            from_secret("PGPASSWORD", owner.database_host(), "password"),
                        ]),
                        security_context: Some(SecurityContext {
                            read_only_root_filesystem: Some(true),
                            ..no_privileges()
                        }),
                        volume_mounts: Some(mounts),
                        ..Container::default()
                    }],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// A short stable hash (FNV-1a, hex) for names.
pub fn short_hash(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", hash >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> SocialPlatform {
        crate::fixtures::platform(
            serde_json::json!({"host": "demo.example", "database": {"storage": "2Gi"}}),
        )
    }

    #[test]
    fn the_database_is_one_unprivileged_pod_with_a_volume() {
        let p = platform();
        let owner = Owner::of(&p).unwrap();
        let set = stateful_set(&p, &owner);
        assert_eq!(set.metadata.name.as_deref(), Some("demo-postgres"));
        let spec = set.spec.unwrap();
        assert_eq!(spec.service_name.as_deref(), Some("demo-postgres"));
        let claim = &spec.volume_claim_templates.unwrap()[0];
        assert_eq!(
            claim
                .spec
                .as_ref()
                .unwrap()
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"],
            Quantity("2Gi".to_owned())
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.security_context.unwrap().run_as_user, Some(999));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some(DEFAULT_IMAGE));
        let password = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "POSTGRES_PASSWORD")
            .unwrap();
        let from = password
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(from.name, "demo-postgres");
        assert_eq!(
            service(&owner).spec.unwrap().cluster_ip.as_deref(),
            Some("None")
        );
    }

    #[test]
    fn the_provisioning_job_changes_name_with_the_services() {
        let p = platform();
        let owner = Owner::of(&p).unwrap();
        let two = provision_job(&p, &owner, &["auth", "users"]);
        let three = provision_job(&p, &owner, &["auth", "users", "relations"]);
        assert_ne!(two.metadata.name, three.metadata.name);
        assert_eq!(
            two.metadata.name,
            provision_job(&p, &owner, &["auth", "users"]).metadata.name
        );
        let pod = three.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let services = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "SERVICES")
            .unwrap();
        assert_eq!(services.value.as_deref(), Some("auth users relations"));
        let mounts: Vec<&str> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(
            mounts,
            [
                "/provision",
                "/secrets/auth",
                "/secrets/users",
                "/secrets/relations",
                "/secrets/backup_reader"
            ]
        );
        let reader = c.env.as_ref().unwrap().iter().find(|e| e.name == "READER");
        assert_eq!(reader.unwrap().value.as_deref(), Some(READER_ROLE));
        let secret = pod.volumes.unwrap()[1].secret.clone().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("demo-auth-database"));
    }
}
