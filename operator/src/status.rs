//! The status stage: conditions, per-service readiness and the URL, computed from what
//! the apply stage wrote and found (and, for an External database, its Secret). Small
//! pure functions, each unit-tested with plain values.

use crate::apply::Applied;
use crate::build;
use crate::children::{
    CLOUDNATIVE_PG, ENVOY_GATEWAY, GATEWAY_API, PROMETHEUS_OPERATOR, TRAEFIK, enabled_services,
};
use crate::crd::{
    AuthMiddleware, DatabaseMode, EdgeKind, ServiceStatus, SocialPlatform, SocialPlatformStatus,
    WORKLOADS,
};
use crate::database::{self, cloudnative};
use crate::owner::Owner;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// One condition's content, before it is stamped with generation and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether it holds.
    pub ok: bool,
    /// A CamelCase reason.
    pub reason: String,
    /// What a person reads.
    pub message: String,
}

impl Check {
    /// A check with its reason and message.
    pub fn new(ok: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            ok,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// Whether the databases are there: the server and the provisioning Job (Managed), the
/// cluster and its databases (CloudNativePG), or every service's URL in the Secret
/// (External: `external` is that Secret, if it exists).
pub fn database(
    platform: &SocialPlatform,
    owner: &Owner,
    applied: &Applied,
    external: Option<&Secret>,
) -> Check {
    let enabled = enabled_services(platform);
    match platform.spec.database.mode {
        DatabaseMode::External => {
            let name = platform
                .spec
                .database
                .external
                .as_ref()
                .map(|e| e.secret_ref.name.clone())
                .unwrap_or_default();
            let missing: Vec<&str> = enabled
                .iter()
                .copied()
                .filter(|s| {
                    !external
                        .and_then(|secret| secret.data.as_ref())
                        .is_some_and(|d| d.contains_key(*s))
                })
                .collect();
            if missing.is_empty() {
                Check::new(
                    true,
                    "ExternalSecretFound",
                    format!("connection URLs come from {name}"),
                )
            } else {
                Check::new(
                    false,
                    "ExternalSecretIncomplete",
                    format!("secret {name} has no URL for {}", missing.join(", ")),
                )
            }
        }
        DatabaseMode::Managed => {
            let server_ready = applied
                .get::<StatefulSet>(&database::host(owner))
                .and_then(|set| set.status)
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
                >= 1;
            let job = database::provision_job(platform, owner, &enabled);
            let job_name = job.metadata.name.unwrap_or_default();
            let provisioned = applied
                .get::<Job>(&job_name)
                .and_then(|job| job.status)
                .and_then(|s| s.succeeded)
                .unwrap_or(0)
                >= 1;
            match (server_ready, provisioned) {
                (true, true) => Check::new(
                    true,
                    "Provisioned",
                    format!("databases ready for {}", enabled.join(", ")),
                ),
                (false, _) => Check::new(
                    false,
                    "ServerNotReady",
                    "the PostgreSQL pod is not ready yet",
                ),
                (true, false) => Check::new(
                    false,
                    "Provisioning",
                    format!("job {job_name} has not completed yet"),
                ),
            }
        }
        DatabaseMode::CloudNativePg => {
            if applied.lacks(&CLOUDNATIVE_PG) {
                return Check::new(false, CLOUDNATIVE_PG.reason, CLOUDNATIVE_PG.message);
            }
            let name = database::host(owner);
            let cluster_ready = applied
                .find(&cloudnative::cluster_resource(), &name)
                .is_some_and(cloudnative::cluster_ready);
            let pending: Vec<&str> = enabled
                .iter()
                .copied()
                .filter(|s| {
                    let database = cloudnative::database(owner, s);
                    let name = database.metadata.name.unwrap_or_default();
                    !applied
                        .find(&cloudnative::database_resource(), &name)
                        .is_some_and(cloudnative::database_applied)
                })
                .collect();
            match (cluster_ready, pending.is_empty()) {
                (true, true) => Check::new(
                    true,
                    "Provisioned",
                    format!("CloudNativePG databases ready for {}", enabled.join(", ")),
                ),
                (false, _) => Check::new(
                    false,
                    "ClusterNotReady",
                    format!("CloudNativePG cluster {name} has no ready instance yet"),
                ),
                (true, false) => Check::new(
                    false,
                    "Provisioning",
                    format!("waiting for the databases of {}", pending.join(", ")),
                ),
            }
        }
    }
}

/// One workload's rollout as its applied Deployment says, and whether it is done:
/// the controller saw the latest spec, and every wanted pod is updated and ready.
pub fn workload(
    platform: &SocialPlatform,
    owner: &Owner,
    applied: &Applied,
    name: &str,
) -> Option<(ServiceStatus, bool)> {
    let spec = platform.spec.services.get(name).filter(|s| s.enabled)?;
    let deployment = applied.get::<Deployment>(&owner.child_name(name));
    let status = deployment
        .as_ref()
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    let desired = deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(spec.replicas);
    let current = deployment
        .as_ref()
        .is_some_and(|d| status.observed_generation == d.metadata.generation);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    Some((
        ServiceStatus {
            replicas: desired,
            ready_replicas: ready,
            image: build::image(platform, name, spec),
        },
        current && ready >= desired && updated >= desired,
    ))
}

/// Whether the edge routes the API: the third-party kinds it needs are installed.
pub fn edge(platform: &SocialPlatform, applied: &Applied) -> Check {
    let edge = &platform.spec.edge;
    let needed = match (edge.kind, edge.auth_middleware) {
        (EdgeKind::GatewayApi, AuthMiddleware::EnvoyGateway) => vec![&GATEWAY_API, &ENVOY_GATEWAY],
        (EdgeKind::GatewayApi, _) => vec![&GATEWAY_API],
        (_, AuthMiddleware::Traefik) => vec![&TRAEFIK],
        _ => Vec::new(),
    };
    match needed.into_iter().find(|r| applied.lacks(r)) {
        Some(missing) => Check::new(false, missing.reason, missing.message),
        None => Check::new(
            true,
            "Routed",
            format!("{} routes the API", platform.spec.host),
        ),
    }
}

/// Whether the monitoring the spec asks for exists: the Prometheus Operator's kinds are
/// installed (a platform without it still serves; only this condition is false).
pub fn monitoring(platform: &SocialPlatform, applied: &Applied) -> Check {
    let observability = &platform.spec.observability;
    if !observability.metrics.service_monitor && !observability.alerts {
        return Check::new(
            true,
            "NotRequested",
            "no ServiceMonitor or alerts were asked for",
        );
    }
    if applied.lacks(&PROMETHEUS_OPERATOR) {
        return Check::new(
            false,
            PROMETHEUS_OPERATOR.reason,
            PROMETHEUS_OPERATOR.message,
        );
    }
    Check::new(
        true,
        "Monitored",
        "the ServiceMonitor and alert rules are applied",
    )
}

/// Whether objects holding data are kept although the spec no longer wants them (a
/// database mode switch, a photos volume given up): a person decides when they go.
pub fn retained(applied: &Applied) -> Check {
    if applied.retained.is_empty() {
        Check::new(
            false,
            "NothingRetained",
            "every object holding data is in use",
        )
    } else {
        Check::new(
            true,
            "DataRetained",
            format!(
                "kept although the spec no longer uses them (they hold data): {}; delete them by hand once the data is safe",
                applied.retained.join(", ")
            ),
        )
    }
}

/// A condition; its transition time moves only when its status does.
pub fn condition(
    type_: &str,
    check: &Check,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let status = if check.ok { "True" } else { "False" };
    let last = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: check.reason.clone(),
        message: check.message.clone(),
        observed_generation: generation,
        last_transition_time: last,
    }
}

/// The whole status of a platform after an apply.
pub fn status(
    platform: &SocialPlatform,
    owner: &Owner,
    applied: &Applied,
    external: Option<&Secret>,
    restored: Option<&Check>,
    now: Timestamp,
) -> SocialPlatformStatus {
    let generation = platform.metadata.generation;
    let previous = platform
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let database = database(platform, owner, applied, external);
    let workloads: Vec<(&str, ServiceStatus, bool)> = WORKLOADS
        .into_iter()
        .filter_map(|name| {
            workload(platform, owner, applied, name).map(|(status, ok)| (name, status, ok))
        })
        .collect();
    let waiting: Vec<&str> = workloads
        .iter()
        .filter(|(_, _, ok)| !ok)
        .map(|(name, _, _)| *name)
        .collect();
    let services = if waiting.is_empty() {
        Check::new(
            true,
            "Available",
            "every enabled service has its ready replicas",
        )
    } else {
        Check::new(
            false,
            "Progressing",
            format!("waiting for {}", waiting.join(", ")),
        )
    };
    let edge = edge(platform, applied);
    let ready = database.ok && services.ok && edge.ok && restored.is_none_or(|r| r.ok);
    let overall = if ready {
        Check::new(true, "AllReady", "the platform serves its API")
    } else {
        Check::new(false, "NotReady", "see the other conditions")
    };
    let conditions = [
        ("Ready", &overall),
        ("DatabaseReady", &database),
        ("ServicesReady", &services),
        ("EdgeReady", &edge),
        ("MonitoringReady", &monitoring(platform, applied)),
        ("DataRetained", &retained(applied)),
    ]
    .into_iter()
    .chain(restored.map(|check| ("Restored", check)))
    .map(|(type_, check)| condition(type_, check, generation, previous, now))
    .collect();
    let scheme = if platform.spec.edge.tls.is_some() {
        "https"
    } else {
        "http"
    };
    SocialPlatformStatus {
        observed_generation: generation,
        conditions,
        url: Some(format!("{scheme}://{}", platform.spec.host)),
        services: workloads
            .into_iter()
            .map(|(name, status, _)| (name.to_owned(), status))
            .collect(),
        // Filled by the reconcile from the platform's backups (`backup::controller`).
        backup: None,
    }
}

/// Whether a status says Ready.
pub fn is_ready(status: &SocialPlatformStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn check(status: &SocialPlatformStatus, type_: &str) -> (String, String) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn nothing_applied_yet_is_not_ready_and_says_why() {
        let p = fixtures::platform(serde_json::json!({"host": "demo.example"}));
        let owner = Owner::of(&p).unwrap();
        let status = status(
            &p,
            &owner,
            &Applied::default(),
            None,
            None,
            Timestamp::now(),
        );
        assert!(!is_ready(&status));
        assert_eq!(
            check(&status, "DatabaseReady"),
            ("False".into(), "ServerNotReady".into())
        );
        assert_eq!(check(&status, "ServicesReady").1, "Progressing");
        assert_eq!(
            check(&status, "EdgeReady"),
            ("True".into(), "Routed".into())
        );
        assert_eq!(check(&status, "DataRetained").0, "False");
        assert_eq!(status.url.as_deref(), Some("http://demo.example"));
        // Every enabled workload has its row, with the image it will run.
        assert_eq!(
            status.services["users"].image,
            "ghcr.io/agora-social/users:0.1.0"
        );
        assert!(!status.services.contains_key("events"));
    }

    #[test]
    fn missing_third_party_apis_name_themselves() {
        let mut applied = Applied::default();
        applied.missing.push(&TRAEFIK);
        let p = fixtures::platform(serde_json::json!({"host": "demo.example"}));
        assert_eq!(edge(&p, &applied).reason, "MiddlewareCRDMissing");
        let envoy = fixtures::platform(serde_json::json!({
            "host": "demo.example",
            "edge": {"kind": "GatewayAPI", "authMiddleware": "EnvoyGateway", "gateway": {"name": "eg"}}
        }));
        // Traefik's absence does not matter to a Gateway API edge.
        assert!(edge(&envoy, &applied).ok);
        applied.missing.push(&ENVOY_GATEWAY);
        assert_eq!(edge(&envoy, &applied).reason, "EnvoyGatewayMissing");
        let cnpg = fixtures::platform(serde_json::json!({
            "host": "demo.example", "database": {"mode": "CloudNativePG"}
        }));
        let owner = Owner::of(&cnpg).unwrap();
        applied.missing.push(&CLOUDNATIVE_PG);
        assert_eq!(
            database(&cnpg, &owner, &applied, None).reason,
            "CloudNativePGMissing"
        );
    }

    #[test]
    fn an_external_secret_must_name_every_enabled_service() {
        let p = fixtures::platform(serde_json::json!({
            "host": "demo.example",
            "database": {"mode": "External", "external": {"secretRef": {"name": "urls"}}},
        }));
        let owner = Owner::of(&p).unwrap();
        let applied = Applied::default();
        let none = database(&p, &owner, &applied, None);
        assert_eq!(none.reason, "ExternalSecretIncomplete");
        assert!(none.message.contains("auth, users"), "{}", none.message);
        let secret = Secret {
            data: Some(
                ["auth", "users", "photos", "relations", "notifications"]
                    .into_iter()
                    .map(|s| {
                        (
                            s.to_owned(),
                            k8s_openapi::ByteString(b"postgres://x".to_vec()),
                        )
                    })
                    .collect(),
            ),
            ..Secret::default()
        };
        assert!(database(&p, &owner, &applied, Some(&secret)).ok);
    }

    #[test]
    fn transition_times_move_only_with_the_status() {
        let earlier = Timestamp::from_second(1_000_000).unwrap();
        let later = Timestamp::from_second(2_000_000).unwrap();
        let up = Check::new(true, "Routed", "ok");
        let first = condition("EdgeReady", &up, Some(1), &[], earlier);
        let same = condition(
            "EdgeReady",
            &up,
            Some(2),
            std::slice::from_ref(&first),
            later,
        );
        assert_eq!(same.last_transition_time, Time(earlier));
        let down = Check::new(false, "MiddlewareCRDMissing", "no");
        let changed = condition("EdgeReady", &down, Some(2), &[first], later);
        assert_eq!(changed.last_transition_time, Time(later));
    }

    #[test]
    fn retained_data_is_reported_not_hidden() {
        let mut applied = Applied::default();
        assert!(!retained(&applied).ok);
        applied
            .retained
            .push("PersistentVolumeClaim demo-photos".into());
        let kept = retained(&applied);
        assert!(kept.ok);
        assert!(kept.message.contains("demo-photos"));
    }
}
