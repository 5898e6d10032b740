//! The build stage of the reconcile: pure functions from a `SocialPlatform` to the
//! objects it should own. No I/O here, so every rule is unit-tested with plain values;
//! the apply stage sends the result with server-side apply.

use crate::crd::{DatabaseMode, ServiceSpec, SocialPlatform};
use crate::owner::{API_PORT, OPS_PORT, Owner};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Service, ServiceAccount, ServicePort,
    ServiceSpec as CoreServiceSpec, SleepAction, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// How long a terminating service pod keeps serving before its SIGTERM.
pub const PRE_STOP_SECONDS: i64 = 5;
/// Where the photos service keeps photo bytes on its volume (`PHOTOS_STORAGE_DIR`).
pub const PHOTOS_DIR: &str = "/var/lib/agora/photos";

/// The image of a service.
pub fn image(platform: &SocialPlatform, service: &str, spec: &ServiceSpec) -> String {
    spec.image.clone().unwrap_or_else(|| {
        format!(
            "{}/{service}:{}",
            platform.spec.image_repository.trim_end_matches('/'),
            platform.spec.version
        )
    })
}

/// Requests when the spec names none: small, so a laptop cluster fits the platform.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".to_owned())),
            ("memory".to_owned(), Quantity("64Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("256Mi".to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("ops".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

/// A service's ServiceAccount (no API token mounted: the services never call the
/// Kubernetes API).
pub fn service_account(owner: &Owner, service: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: owner.meta(service, owner.child_name(service)),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// A service's ClusterIP Service: the API port, and the ops port for scrapes.
pub fn service(owner: &Owner, name: &str) -> Service {
    let port = |port_name: &str, port: i32| ServicePort {
        name: Some(port_name.to_owned()),
        port,
        target_port: Some(IntOrString::String(port_name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    };
    Service {
        metadata: owner.meta(name, owner.child_name(name)),
        spec: Some(CoreServiceSpec {
            selector: Some(owner.selector(name)),
            ports: Some(vec![port("http", API_PORT), port("ops", OPS_PORT)]),
            ..CoreServiceSpec::default()
        }),
        status: None,
    }
}

/// The standard OpenTelemetry variables of a workload when the platform traces: its
/// spans go to the collector under `agora-<name>`, sampled parent-based at the ratio.
pub fn otel_env(platform: &SocialPlatform, owner: &Owner, name: &str) -> Vec<EnvVar> {
    let Some(tracing) = &platform.spec.observability.tracing else {
        return Vec::new();
    };
    let var = |name: &str, value: String| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    };
    let protocol = match tracing.protocol {
        crate::crd::OtlpProtocol::HttpProtobuf => "http/protobuf",
        crate::crd::OtlpProtocol::Grpc => "grpc",
    };
    vec![
        var("OTEL_EXPORTER_OTLP_ENDPOINT", tracing.otlp_endpoint.clone()),
        var("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        var("OTEL_SERVICE_NAME", format!("agora-{name}")),
        var(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!(
                "service.namespace={},agora.platform={}",
                owner.namespace(),
                owner.name()
            ),
        ),
        var("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
        var(
            "OTEL_TRACES_SAMPLER_ARG",
            tracing.sampling_ratio.to_string(),
        ),
    ]
}

/// A service's Deployment. `config_hash` (of its ConfigMap and Secrets) annotates the
/// pod template, so a configuration change rolls the pods.
pub fn deployment(
    platform: &SocialPlatform,
    owner: &Owner,
    name: &str,
    spec: &ServiceSpec,
    config_hash: &str,
) -> Deployment {
    let mut env = secret_env(platform, owner, name);
    // The service's own `env` wins over the tracing defaults (one entry per name).
    env.extend(
        otel_env(platform, owner, name)
            .into_iter()
            .filter(|var| spec.env.iter().all(|own| own.name != var.name)),
    );
    env.extend(spec.env.iter().cloned());
    // The photos service keeps its bytes on the platform's volume, unless they go to S3.
    let photo_volume = name == "photos" && platform.spec.photos.storage.pvc.is_some();
    let mut mounts = vec![VolumeMount {
        name: "tmp".to_owned(),
        mount_path: "/tmp".to_owned(),
        ..VolumeMount::default()
    }];
    let mut volumes = vec![Volume {
        name: "tmp".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    if photo_volume {
        mounts.push(VolumeMount {
            name: "photos".to_owned(),
            mount_path: PHOTOS_DIR.to_owned(),
            ..VolumeMount::default()
        });
        volumes.push(Volume {
            name: "photos".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: owner.child_name("photos"),
                read_only: Some(false),
            }),
            ..Volume::default()
        });
    }
    let child = owner.child_name(name);
    let container = Container {
        name: name.to_owned(),
        image: Some(image(platform, name, spec)),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".to_owned()),
                container_port: API_PORT,
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("ops".to_owned()),
                container_port: OPS_PORT,
                ..ContainerPort::default()
            },
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: child.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        readiness_probe: Some(probe("/readyz", 5, 2)),
        startup_probe: Some(probe("/healthz", 2, 30)),
        // Kubernetes removes a terminating pod from its Service's endpoints while it
        // sends SIGTERM; the pause (a kubelet sleep: the image has no shell) lets kube-proxy
        // and the ingress stop sending before the server stops accepting.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let replicas = if spec.enabled { spec.replicas } else { 0 };
    Deployment {
        metadata: owner.meta(name, child.clone()),
        spec: Some(DeploymentSpec {
            // With an autoscaler, the autoscaler owns the replica count.
            replicas: spec.autoscaling.is_none().then_some(replicas),
            selector: LabelSelector {
                match_labels: Some(owner.selector(name)),
                ..LabelSelector::default()
            },
            // A ReadWriteOnce volume cannot be held by the old and the new pod at once.
            strategy: Some(if photo_volume {
                DeploymentStrategy {
                    type_: Some("Recreate".to_owned()),
                    rolling_update: None,
                }
            } else {
                DeploymentStrategy {
                    type_: Some("RollingUpdate".to_owned()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::Int(1)),
                    }),
                }
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner.labels(name)),
                    annotations: Some(BTreeMap::from([(
                        "agora.dev/config-hash".to_owned(),
                        config_hash.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(child),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        fs_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// An environment variable read from a Secret's key (which must exist).
pub fn from_secret(var: &str, secret: String, key: &str) -> EnvVar {
    EnvVar {
        name: var.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret,
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// What a service reads from Secrets (never from its ConfigMap): its database URL (its
/// generated Secret, which names the managed or CloudNativePG host; or the External
/// Secret's key named after the service), the
/// credential of internal routes, and the keys only some services hold.
pub fn secret_env(platform: &SocialPlatform, owner: &Owner, name: &str) -> Vec<EnvVar> {
    if name == "gateway" {
        // Only public keys (fetched from auth): no database, no internal routes.
        return Vec::new();
    }
    let keys = owner.keys_secret_name();
    let mut env = vec![from_secret(
        "INTERNAL_TOKEN",
        keys.clone(),
        "internal-token",
    )];
    let database = &platform.spec.database;
    match (database.mode, &database.external) {
        (DatabaseMode::External, Some(external)) => env.push(from_secret(
            "DATABASE_URL",
            external.secret_ref.name.clone(),
            name,
        )),
        _ => env.push(from_secret(
            "DATABASE_URL",
            owner.database_secret_name(name),
            "url",
        )),
    }
    match name {
        "auth" => {
            env.push(from_secret("AUTH_SIGNING_KEY", keys, "auth-signing-key"));
            // Completed erasures are logged beside the backups, for restores.
            if let Some(backup) = &platform.spec.backup
                && let (Some(log), Some(s3)) = (
                    crate::backup::jobs::erasure_log(backup),
                    &backup.destination.s3,
                )
            {
                env.push(crate::database::env("AUTH_ERASURE_LOG", &log));
                env.extend(crate::backup::jobs::bucket_env(s3));
            }
        }
        "photos" => {
            env.push(from_secret("PHOTOS_SHARE_LINK_KEY", keys, "share-link-key"));
            if let Some(s3) = &platform.spec.photos.storage.s3 {
                let secret = s3.secret_ref.name.clone();
                env.push(from_secret(
                    "AWS_ACCESS_KEY_ID",
                    secret.clone(),
                    "accessKeyId",
                ));
                env.push(from_secret(
                    "AWS_SECRET_ACCESS_KEY",
                    secret,
                    "secretAccessKey",
                ));
            }
        }
        _ => {}
    }
    env
}

/// The photos service's volume (`photos.storage.pvc`), when photos are not in S3.
pub fn photo_claim(platform: &SocialPlatform, owner: &Owner) -> Option<PersistentVolumeClaim> {
    let pvc = platform.spec.photos.storage.pvc.as_ref()?;
    Some(PersistentVolumeClaim {
        metadata: owner.meta("photos", owner.child_name("photos")),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: pvc.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), pvc.size.clone())])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

/// Photo storage settings: the directory on the volume, or the S3 bucket (its
/// credentials come from the referenced Secret, see [`secret_env`]).
pub fn photo_settings(platform: &SocialPlatform) -> BTreeMap<String, String> {
    let storage = &platform.spec.photos.storage;
    let mut settings = BTreeMap::new();
    if let Some(s3) = &storage.s3 {
        settings.insert("PHOTOS_S3_BUCKET".to_owned(), s3.bucket.clone());
        if let Some(endpoint) = &s3.endpoint {
            settings.insert("PHOTOS_S3_ENDPOINT".to_owned(), endpoint.clone());
        }
        if let Some(region) = &s3.region {
            settings.insert("PHOTOS_S3_REGION".to_owned(), region.clone());
        }
    } else {
        settings.insert("PHOTOS_STORAGE_DIR".to_owned(), PHOTOS_DIR.to_owned());
    }
    settings
}

/// A service's ConfigMap: where it listens and how it finds the others. Secrets
/// (database URL, keys) are mounted separately, never put here.
pub fn config_map(owner: &Owner, name: &str, settings: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: owner.meta(name, owner.child_name(name)),
        data: Some(settings),
        ..ConfigMap::default()
    }
}

/// The settings every workload gets, plus the URLs of the enabled services it talks to
/// (a disabled one is left unset, which each service treats as "not deployed").
pub fn service_settings(owner: &Owner, name: &str, enabled: &[&str]) -> BTreeMap<String, String> {
    let url = |service: &str| format!("http://{}:{API_PORT}", owner.child_name(service));
    let mut settings = BTreeMap::from([
        ("LISTEN_ADDR".to_owned(), format!("0.0.0.0:{API_PORT}")),
        ("OPS_LISTEN_ADDR".to_owned(), format!("0.0.0.0:{OPS_PORT}")),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        // Behind the ingress controller: one proxy hop from inside the cluster.
        (
            "TRUSTED_PROXIES".to_owned(),
            "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16".to_owned(),
        ),
        ("TRUSTED_PROXY_HOPS".to_owned(), "1".to_owned()),
    ]);
    if enabled.contains(&"auth") {
        settings.insert(
            "AUTH_JWKS_URL".to_owned(),
            format!("{}/api/v1/auth/jwks", url("auth")),
        );
    }
    // Who calls whom: auth tells users and relations of new accounts, and every
    // service that holds something of people of an erasure (its outbox); users asks relations for visibility and photos for photo references; events
    // asks relations for friends-only events, and photos for blocks; users, relations
    // and events tell notifications what happened (their outboxes), which asks
    // relations for blocks.
    let calls: &[(&str, &str)] = match name {
        "auth" => &[
            ("USERS_URL", "users"),
            ("RELATIONS_URL", "relations"),
            ("PHOTOS_URL", "photos"),
            ("EVENTS_URL", "events"),
            ("NOTIFICATIONS_URL", "notifications"),
        ],
        "users" => &[
            ("RELATIONS_URL", "relations"),
            ("PHOTOS_URL", "photos"),
            ("NOTIFICATIONS_URL", "notifications"),
        ],
        "relations" => &[("NOTIFICATIONS_URL", "notifications")],
        "events" => &[
            ("RELATIONS_URL", "relations"),
            ("NOTIFICATIONS_URL", "notifications"),
        ],
        "photos" | "notifications" => &[("RELATIONS_URL", "relations")],
        _ => &[],
    };
    for (var, service) in calls {
        if enabled.contains(service) {
            settings.insert((*var).to_owned(), url(service));
        }
    }
    if name == "gateway" {
        // The gateway asks each upstream for its routes and OpenAPI document at start;
        // a change of this list changes the config hash, so the gateway restarts.
        let upstreams: Vec<String> = enabled
            .iter()
            .filter(|s| **s != "gateway")
            .map(|s| url(s))
            .collect();
        settings.insert("GATEWAY_UPSTREAMS".to_owned(), upstreams.join(","));
        settings.insert("GATEWAY_UPSTREAM_OPS_PORT".to_owned(), OPS_PORT.to_string());
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::platform;

    #[test]
    fn children_are_named_labelled_and_owned() {
        let p = platform(serde_json::json!({"host": "demo.example"}));
        let owner = Owner::of(&p).unwrap();
        let sa = service_account(&owner, "users");
        assert_eq!(sa.metadata.name.as_deref(), Some("demo-users"));
        assert_eq!(sa.metadata.namespace.as_deref(), Some("social"));
        let labels = sa.metadata.labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "users");
        assert_eq!(labels["app.kubernetes.io/instance"], "demo");
        assert_eq!(labels["app.kubernetes.io/part-of"], "agora");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "agora-operator");
        let owners = sa.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "SocialPlatform");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].uid, "1234");
        // Never stored: no owner reference can be made.
        let mut unsaved = p.clone();
        unsaved.metadata.uid = None;
        assert!(Owner::of(&unsaved).is_err());
    }

    #[test]
    fn deployments_probe_the_ops_port_run_unprivileged_and_roll_on_config() {
        let p = platform(serde_json::json!({"host": "demo.example", "version": "1.2.3"}));
        let owner = Owner::of(&p).unwrap();
        let d = deployment(&p, &owner, "users", &p.spec.services.users, "abc");
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        let template = spec.template;
        assert_eq!(
            template.metadata.unwrap().annotations.unwrap()["agora.dev/config-hash"],
            "abc"
        );
        let pod = template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("ghcr.io/agora-social/users:1.2.3"));
        let readiness = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(readiness.path.as_deref(), Some("/readyz"));
        assert_eq!(readiness.port, IntOrString::String("ops".into()));
        let security = c.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.run_as_non_root, Some(true));
        assert!(c.resources.as_ref().unwrap().requests.is_some());
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn photos_keep_their_bytes_on_a_volume_unless_in_s3() {
        let p = platform(serde_json::json!({"host": "demo.example"}));
        let owner = Owner::of(&p).unwrap();
        let d = deployment(&p, &owner, "photos", &p.spec.services.photos, "h")
            .spec
            .unwrap();
        assert_eq!(d.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let pod = d.template.spec.unwrap();
        let claim = pod.volumes.unwrap()[1]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, "demo-photos");
        assert_eq!(
            photo_claim(&p, &owner).unwrap().metadata.name.as_deref(),
            Some("demo-photos")
        );
        assert_eq!(photo_settings(&p)["PHOTOS_STORAGE_DIR"], PHOTOS_DIR);

        let s3 = platform(
            serde_json::json!({"host": "demo.example", "photos": {"storage": {
                "s3": {"bucket": "photos", "secretRef": {"name": "s3-creds"}}
            }}}),
        );
        let owner = Owner::of(&s3).unwrap();
        assert!(photo_claim(&s3, &owner).is_none());
        assert_eq!(photo_settings(&s3)["PHOTOS_S3_BUCKET"], "photos");
        let env: Vec<String> = secret_env(&s3, &owner, "photos")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(env.contains(&"AWS_SECRET_ACCESS_KEY".to_owned()));
        // Backups to a bucket: the auth service logs erasures beside them.
        let backed_up = &crate::fixtures::every_shape()[1];
        let auth = secret_env(backed_up, &Owner::of(backed_up).unwrap(), "auth");
        let log = auth.iter().find(|e| e.name == "AUTH_ERASURE_LOG").unwrap();
        assert_eq!(log.value.as_deref(), Some("s3://backups/agora"));
        assert!(auth.iter().any(|e| e.name == "AWS_SECRET_ACCESS_KEY"));
        assert!(
            !secret_env(&s3, &owner, "auth")
                .iter()
                .any(|e| e.name == "AUTH_ERASURE_LOG"),
            "no backups, no log"
        );
        let d = deployment(&s3, &owner, "photos", &s3.spec.services.photos, "h")
            .spec
            .unwrap();
        assert_eq!(d.strategy.unwrap().type_.as_deref(), Some("RollingUpdate"));
    }

    #[test]
    fn services_find_each_other_by_name() {
        let p = platform(serde_json::json!({"host": "demo.example"}));
        let owner = Owner::of(&p).unwrap();
        let all = ["auth", "users", "photos", "relations", "gateway"];
        let users = service_settings(&owner, "users", &all);
        assert_eq!(
            users["AUTH_JWKS_URL"],
            "http://demo-auth:8080/api/v1/auth/jwks"
        );
        assert_eq!(users["RELATIONS_URL"], "http://demo-relations:8080");
        assert_eq!(users["PHOTOS_URL"], "http://demo-photos:8080");
        let auth = service_settings(&owner, "auth", &all);
        assert_eq!(auth["USERS_URL"], "http://demo-users:8080");
        assert_eq!(auth["RELATIONS_URL"], "http://demo-relations:8080");
        // An erasure reaches every enabled service that holds something of people.
        assert_eq!(auth["PHOTOS_URL"], "http://demo-photos:8080");
        assert!(
            !auth.contains_key("EVENTS_URL"),
            "events is not enabled here"
        );
        assert!(!service_settings(&owner, "relations", &all).contains_key("USERS_URL"));
        assert_eq!(users["OPS_LISTEN_ADDR"], "0.0.0.0:9090");
        // A disabled service is not named: the caller knows it is not deployed.
        let without_photos = service_settings(&owner, "users", &["auth", "users", "relations"]);
        assert!(!without_photos.contains_key("PHOTOS_URL"));
        // The gateway discovers the enabled services, and holds no secret.
        let gateway = service_settings(&owner, "gateway", &all);
        assert_eq!(
            gateway["GATEWAY_UPSTREAMS"],
            "http://demo-auth:8080,http://demo-users:8080,http://demo-photos:8080,http://demo-relations:8080"
        );
        assert_eq!(gateway["GATEWAY_UPSTREAM_OPS_PORT"], "9090");
        assert!(secret_env(&p, &owner, "gateway").is_empty());
        assert!(
            secret_env(&p, &owner, "users")
                .iter()
                .any(|e| e.name == "DATABASE_URL")
        );
        let svc = service(&owner, "users").spec.unwrap();
        let ports: Vec<i32> = svc.ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, [API_PORT, OPS_PORT]);
        assert_eq!(svc.selector.unwrap(), owner.selector("users"));
    }
}
