//! The build stage as one value: every object a platform should have, made by the pure
//! builders (`build`, `database`, `edge`, `network`, `secrets`) from the validated
//! spec. No I/O: the apply stage (`apply`) sends the result, and removes what it no
//! longer holds.

use crate::backup::{jobs, restore};
use crate::crd::{AuthMiddleware, DatabaseMode, EdgeKind, SERVICES, SocialPlatform, WORKLOADS};
use crate::database::{self, cloudnative};
use crate::error::Error;
use crate::owner::Owner;
use crate::{build, edge, monitoring, network, scaling, secrets};
use kube::Resource;
use kube::api::{ApiResource, DynamicObject};
use serde::Serialize;

/// A kind of another project the platform needs (an ingress controller's, Gateway
/// API's, CloudNativePG's): when its API is not installed the platform says so in its
/// status instead of failing.
#[derive(Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The condition reason.
    pub reason: &'static str,
    /// The condition message.
    pub message: &'static str,
}

/// CloudNativePG, for `database.mode: CloudNativePG`.
pub const CLOUDNATIVE_PG: Requirement = Requirement {
    reason: "CloudNativePGMissing",
    message: "CloudNativePG's CRDs (postgresql.cnpg.io/v1) are not installed; install its operator or choose another database.mode",
};
/// Gateway API, for `edge.kind: GatewayAPI`.
pub const GATEWAY_API: Requirement = Requirement {
    reason: "GatewayAPIMissing",
    message: "Gateway API's CRDs (gateway.networking.k8s.io/v1) are not installed",
};
/// Envoy Gateway, for `edge.authMiddleware: EnvoyGateway`.
pub const ENVOY_GATEWAY: Requirement = Requirement {
    reason: "EnvoyGatewayMissing",
    message: "Envoy Gateway's SecurityPolicy CRD (gateway.envoyproxy.io/v1alpha1) is not installed",
};
/// Traefik, for `edge.authMiddleware: Traefik`.
pub const TRAEFIK: Requirement = Requirement {
    reason: "MiddlewareCRDMissing",
    message: "Traefik's Middleware CRD (traefik.io/v1alpha1) is not installed; install Traefik or choose another authMiddleware",
};

/// The Prometheus Operator, for `observability.metrics.serviceMonitor` and
/// `observability.alerts`.
pub const PROMETHEUS_OPERATOR: Requirement = Requirement {
    reason: "PrometheusOperatorMissing",
    message: "the Prometheus Operator's CRDs (monitoring.coreos.com/v1 ServiceMonitor, PrometheusRule) are not installed; install them or turn off observability.metrics.serviceMonitor and observability.alerts",
};

/// How the apply stage writes a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Server-side apply under the operator's field manager, every reconcile.
    Apply,
    /// Created when absent, never changed afterwards: generated credentials (a new
    /// password on every pass would lock the services out), claims (only their size
    /// may change) and Jobs (their template is immutable).
    CreateOnce,
}

/// One object of the platform, as the apply stage sends it.
#[derive(Debug, Clone)]
pub struct Child {
    /// Its API (group, version, kind, plural).
    pub resource: ApiResource,
    /// The object itself.
    pub object: DynamicObject,
    /// How it is written.
    pub write: Write,
    /// The third-party API it needs, if any.
    pub requires: Option<&'static Requirement>,
}

impl Child {
    fn typed<K>(object: &K, write: Write) -> Result<Self, Error>
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let resource = ApiResource::erase::<K>(&());
        let what = || {
            format!(
                "{} {}",
                resource.kind,
                object.meta().name.as_deref().unwrap_or_default()
            )
        };
        let value = serde_json::to_value(object).map_err(|source| Error::Encode {
            what: what(),
            source,
        })?;
        let object = serde_json::from_value(value).map_err(|source| Error::Encode {
            what: what(),
            source,
        })?;
        Ok(Self {
            resource,
            object,
            write,
            requires: None,
        })
    }

    fn third_party(
        resource: ApiResource,
        object: DynamicObject,
        requires: &'static Requirement,
    ) -> Self {
        Self {
            resource,
            object,
            write: Write::Apply,
            requires: Some(requires),
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Every object a platform should have, in the order they are applied (Secrets first:
/// everything else refers to them).
#[derive(Debug, Default)]
pub struct Desired {
    /// The children.
    pub children: Vec<Child>,
}

impl Desired {
    fn apply<K: Resource<DynamicType = ()> + Serialize>(
        &mut self,
        object: &K,
    ) -> Result<(), Error> {
        self.children.push(Child::typed(object, Write::Apply)?);
        Ok(())
    }

    fn create_once<K: Resource<DynamicType = ()> + Serialize>(
        &mut self,
        object: &K,
    ) -> Result<(), Error> {
        self.children.push(Child::typed(object, Write::CreateOnce)?);
        Ok(())
    }

    /// Whether a child of this kind and name is wanted.
    pub fn holds(&self, kind: &ApiResource, name: &str) -> bool {
        self.children
            .iter()
            .any(|c| c.resource == *kind && c.name() == name)
    }
}

/// The enabled services (those with a database), in the canonical order.
pub fn enabled_services(platform: &SocialPlatform) -> Vec<&'static str> {
    enabled_of(platform, SERVICES)
}

/// The enabled workloads (services and gateway), in the canonical order.
pub fn enabled_workloads(platform: &SocialPlatform) -> Vec<&'static str> {
    enabled_of(platform, WORKLOADS)
}

fn enabled_of<const N: usize>(
    platform: &SocialPlatform,
    names: [&'static str; N],
) -> Vec<&'static str> {
    names
        .into_iter()
        .filter(|s| {
            platform
                .spec
                .services
                .get(s)
                .is_some_and(|spec| spec.enabled)
        })
        .collect()
}

/// Everything `platform` should have; `restore_from` is where its `spec.restore`'s
/// backup is, once known.
pub fn desired(
    platform: &SocialPlatform,
    owner: &Owner,
    restore_from: Option<&restore::Source>,
) -> Result<Desired, Error> {
    let mut desired = Desired::default();
    if platform.spec.restore.is_some() {
        desired.create_once(&secrets::restore_keys_secret(owner))?;
    } else {
        desired.create_once(&secrets::keys_secret(owner)?)?;
    }
    let point_in_time = restore_from.and_then(|source| source.point_in_time.as_ref());
    database_children(&mut desired, platform, owner, point_in_time)?;
    let workloads = enabled_workloads(platform);
    let restoring = restore::restoring(platform);
    for name in &workloads {
        workload_children(&mut desired, platform, owner, name, &workloads, restoring)?;
    }
    if restoring {
        let (account, role, binding) = restore::permission(owner);
        desired.apply(&account)?;
        desired.apply(&role)?;
        desired.apply(&binding)?;
        // Into provisioned (empty) databases only.
        if let Some(source) = restore_from
            && restore::condition_true(platform, "DatabaseReady")
        {
            let services = enabled_services(platform);
            desired.create_once(&restore::job(platform, owner, source, &services))?;
        }
    }
    edge_children(&mut desired, platform, owner, &workloads)?;
    monitoring_children(&mut desired, platform, owner, &workloads);
    backup_children(&mut desired, platform, owner)?;
    Ok(desired)
}

/// The schedule (and its permission to ask for backups) and the backups' volume.
fn backup_children(
    desired: &mut Desired,
    platform: &SocialPlatform,
    owner: &Owner,
) -> Result<(), Error> {
    let Some(spec) = &platform.spec.backup else {
        return Ok(());
    };
    let (account, role, binding) = jobs::scheduler_permission(owner);
    desired.apply(&account)?;
    desired.apply(&role)?;
    desired.apply(&binding)?;
    desired.apply(&jobs::schedule(platform, owner, spec))?;
    if let Some(claim) = jobs::claim(owner, spec) {
        desired.create_once(&claim)?;
    }
    Ok(())
}

fn monitoring_children(
    desired: &mut Desired,
    platform: &SocialPlatform,
    owner: &Owner,
    workloads: &[&str],
) {
    let observability = &platform.spec.observability;
    if observability.metrics.service_monitor {
        desired.children.push(Child::third_party(
            monitoring::service_monitor_resource(),
            monitoring::service_monitor(platform, owner, workloads),
            &PROMETHEUS_OPERATOR,
        ));
    }
    if observability.alerts {
        desired.children.push(Child::third_party(
            monitoring::prometheus_rule_resource(),
            monitoring::prometheus_rule(platform, owner),
            &PROMETHEUS_OPERATOR,
        ));
    }
}

fn database_children(
    desired: &mut Desired,
    platform: &SocialPlatform,
    owner: &Owner,
    point_in_time: Option<&restore::PointInTime>,
) -> Result<(), Error> {
    let enabled = enabled_services(platform);
    match platform.spec.database.mode {
        // Only read: the status says whether its Secret has every URL.
        DatabaseMode::External => {}
        DatabaseMode::Managed => {
            desired.create_once(&secrets::superuser_secret(owner)?)?;
            desired.create_once(&secrets::reader_secret(owner, &database::host(owner))?)?;
            for service in &enabled {
                let secret = secrets::database_secret(owner, service, &database::host(owner))?;
                desired.create_once(&secret)?;
            }
            desired.apply(&database::service(owner))?;
            desired.apply(&database::provision_config(owner))?;
            desired.apply(&network::database_policy(owner))?;
            desired.apply(&database::stateful_set(platform, owner))?;
            // Named after the service list: a new list is a new Job (and the old one
            // is no longer wanted).
            desired.create_once(&database::provision_job(platform, owner, &enabled))?;
        }
        DatabaseMode::CloudNativePg => {
            // A cluster recovered to an instant is created with its recovery or not at
            // all: one bootstrapped empty would be filled by nothing. Once restored,
            // the source is no longer read; CloudNativePG ignores a bootstrap after
            // the first.
            let to_an_instant = platform
                .spec
                .restore
                .as_ref()
                .is_some_and(|r| r.target_time.is_some());
            if to_an_instant && restore::restoring(platform) && point_in_time.is_none() {
                return Ok(());
            }
            for service in &enabled {
                let host = cloudnative::host(owner);
                desired.create_once(&secrets::database_secret(owner, service, &host)?)?;
            }
            desired.children.push(Child::third_party(
                cloudnative::cluster_resource(),
                cloudnative::cluster(platform, owner, &enabled, point_in_time),
                &CLOUDNATIVE_PG,
            ));
            for service in &enabled {
                desired.children.push(Child::third_party(
                    cloudnative::database_resource(),
                    cloudnative::database(owner, service),
                    &CLOUDNATIVE_PG,
                ));
            }
        }
    }
    Ok(())
}

fn workload_children(
    desired: &mut Desired,
    platform: &SocialPlatform,
    owner: &Owner,
    name: &str,
    enabled: &[&str],
    restoring: bool,
) -> Result<(), Error> {
    let Some(spec) = platform.spec.services.get(name) else {
        return Ok(());
    };
    let mut settings = build::service_settings(owner, name, enabled);
    if name == "photos" {
        settings.extend(build::photo_settings(platform));
        if let Some(claim) = build::photo_claim(platform, owner) {
            desired.create_once(&claim)?;
        }
    }
    // A change of settings changes the pods' annotation: they roll.
    let hash = database::short_hash(&format!("{settings:?}"));
    desired.apply(&build::service_account(owner, name))?;
    desired.apply(&build::config_map(owner, name, settings))?;
    desired.apply(&build::service(owner, name))?;
    desired.apply(&network::service_policy(platform, owner, name))?;
    // No pod serves before the restore has filled the databases and the keys.
    if restoring {
        return Ok(());
    }
    desired.apply(&build::deployment(platform, owner, name, spec, &hash))?;
    if let Some(budget) = scaling::disruption_budget(owner, name, spec) {
        desired.apply(&budget)?;
    }
    if let Some(scaler) = scaling::autoscaler(owner, name, spec) {
        desired.apply(&scaler)?;
    }
    Ok(())
}

fn edge_children(
    desired: &mut Desired,
    platform: &SocialPlatform,
    owner: &Owner,
    enabled: &[&str],
) -> Result<(), Error> {
    let edge = &platform.spec.edge;
    let ns = owner.namespace();
    if edge.kind == EdgeKind::GatewayApi {
        let (route, public_route) = edge::http_routes(platform, owner, ns, enabled);
        for route in [route, public_route] {
            desired.children.push(Child::third_party(
                edge::http_route_resource(),
                route,
                &GATEWAY_API,
            ));
        }
        if edge.auth_middleware == AuthMiddleware::EnvoyGateway {
            desired.children.push(Child::third_party(
                edge::security_policy_resource(),
                edge::security_policy(owner, ns),
                &ENVOY_GATEWAY,
            ));
        }
        return Ok(());
    }
    let edge::Ingresses {
        protected,
        public,
        fallback,
    } = edge::ingresses(platform, owner, ns, enabled);
    desired.apply(&protected)?;
    desired.apply(&public)?;
    if let Some(fallback) = fallback {
        desired.apply(&fallback)?;
    }
    if edge.auth_middleware == AuthMiddleware::Traefik {
        desired.children.push(Child::third_party(
            edge::middleware_resource(),
            edge::traefik_middleware(owner, ns),
            &TRAEFIK,
        ));
    }
    Ok(())
}
