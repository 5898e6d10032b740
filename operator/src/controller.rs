//! The reconcile loop: for one `SocialPlatform`, build every child (pure, `build`,
//! `database`, `edge`, `secrets`), apply them with server-side apply under one field
//! manager, delete what the spec no longer asks for, and report what is ready in the
//! status. Children are owned (garbage-collected with the platform) and watched, so a
//! deleted or edited child is put back.

use crate::build::{self, MANAGER, Owner};
use crate::crd::{
    AuthMiddleware, DatabaseMode, EdgeKind, SERVICES, ServiceStatus, SocialPlatform,
    SocialPlatformStatus, WORKLOADS,
};
use crate::metrics::Metrics;
use crate::{database, edge, network, secrets};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a reconcile failed; it is retried with per-object backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource cannot be built (it was never stored).
    #[error(transparent)]
    Build(#[from] build::BuildError),
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// A secret could not be generated.
    #[error(transparent)]
    Random(#[from] secrets::RandomError),
}

impl Error {
    /// The metric label of the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Build(_) => "build",
            Self::Kube { .. } => "kube",
            Self::Random(_) => "random",
        }
    }
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Reconcile metrics (served on the ops port).
    pub metrics: Arc<Metrics>,
    /// Publishes Kubernetes Events about platforms.
    recorder: Recorder,
    /// Consecutive failures per platform (`namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context over `client`.
    pub fn new(client: Client) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: Arc::new(Metrics::default()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an Event about `platform` (best effort: a lost Event is only logged).
    async fn event(&self, platform: &SocialPlatform, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self
            .recorder
            .publish(&event, &platform.object_ref(&()))
            .await
        {
            tracing::warn!(%error, "cannot publish an event");
        }
    }

    fn key(platform: &SocialPlatform) -> String {
        format!(
            "{}/{}",
            platform.namespace().unwrap_or_default(),
            platform.name_any()
        )
    }

    fn failed(&self, platform: &SocialPlatform) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(Self::key(platform)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    fn succeeded(&self, platform: &SocialPlatform) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&Self::key(platform));
    }
}

/// Server-side apply under the operator's field manager (a no-op, with no new
/// resourceVersion, when nothing changed).
async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(kube_err(format!("applying {name}")))
}

/// Creates a Secret unless it exists: generated values are never overwritten.
async fn ensure_secret(
    api: &Api<Secret>,
    secret: Result<Secret, secrets::RandomError>,
    name: &str,
) -> Result<(), Error> {
    if api
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading secret {name}")))?
        .is_some()
    {
        return Ok(());
    }
    match api.create(&PostParams::default(), &secret?).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(e) => Err(kube_err(format!("creating secret {name}"))(e)),
    }
}

/// Server-side applies an object of a third-party kind; `None` when the API server does
/// not know the kind (a 404 on the type: its CRD is not installed), for the caller to
/// report in a condition rather than fail the reconcile.
async fn apply_optional(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    what: &str,
) -> Result<Option<DynamicObject>, Error> {
    let name = object.metadata.name.clone().unwrap_or_default();
    match api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
    {
        Ok(applied) => Ok(Some(applied)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(kube_err(format!("applying {what} {name}"))(e)),
    }
}

/// Deletes a child if it exists (and is ours: children carry the platform's labels).
async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(kube_err(format!("deleting {name}"))(e)),
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

/// What the apply stage observed, for the status.
struct Observed {
    database: (bool, String, String),
    services: Vec<(String, ServiceStatus, bool)>,
    edge: (bool, String, String),
}

/// Reconciles one platform (timed and counted).
pub async fn reconcile(platform: Arc<SocialPlatform>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = ctx.metrics.start();
    let outcome = reconcile_platform(platform, ctx.clone()).await;
    ctx.metrics
        .finish(started, outcome.as_ref().err().map(Error::reason));
    outcome
}

async fn reconcile_platform(
    platform: Arc<SocialPlatform>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let owner = Owner::of(&platform)?;
    let ns = platform.namespace().unwrap_or_default();
    let client = ctx.client.clone();
    let enabled = enabled_services(&platform);
    let workloads = enabled_workloads(&platform);

    // Secrets first: everything else refers to them.
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    ensure_secret(
        &secret_api,
        secrets::keys_secret(&owner),
        &secrets::keys_secret_name(&owner),
    )
    .await?;
    let database = reconcile_database(&platform, &owner, &ns, &client, &enabled).await?;
    let services = reconcile_services(&platform, &owner, &ns, &client, &workloads).await?;
    let edge = reconcile_edge(&platform, &owner, &ns, &client, &workloads).await?;
    let ready = update_status(
        &platform,
        &ctx,
        Observed {
            database,
            services,
            edge,
        },
    )
    .await?;
    ctx.succeeded(&platform);
    // Children's changes wake the controller; the periodic pass is a safety net.
    Ok(Action::requeue(if ready {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(15)
    }))
}

async fn reconcile_database(
    platform: &SocialPlatform,
    owner: &Owner,
    ns: &str,
    client: &Client,
    enabled: &[&str],
) -> Result<(bool, String, String), Error> {
    let mode = platform.spec.database.mode;
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    match mode {
        DatabaseMode::External => {
            let name = platform
                .spec
                .database
                .external
                .as_ref()
                .map(|e| e.secret_ref.name.clone())
                .unwrap_or_default();
            let found = secret_api
                .get_opt(&name)
                .await
                .map_err(kube_err(format!("reading secret {name}")))?;
            let missing: Vec<&str> = match &found {
                None => enabled.to_vec(),
                Some(secret) => enabled
                    .iter()
                    .copied()
                    .filter(|s| !secret.data.as_ref().is_some_and(|d| d.contains_key(*s)))
                    .collect(),
            };
            return Ok(if missing.is_empty() {
                (
                    true,
                    "ExternalSecretFound".into(),
                    format!("connection URLs come from {name}"),
                )
            } else {
                (
                    false,
                    "ExternalSecretIncomplete".into(),
                    format!("secret {name} has no URL for {}", missing.join(", ")),
                )
            });
        }
        DatabaseMode::CloudNativePg => {
            return reconcile_cloudnative(platform, owner, ns, client, enabled).await;
        }
        DatabaseMode::Managed => {}
    }
    ensure_secret(
        &secret_api,
        secrets::superuser_secret(owner),
        &secrets::superuser_secret_name(owner),
    )
    .await?;
    for service in enabled {
        ensure_secret(
            &secret_api,
            secrets::database_secret(owner, service, &database::host(owner)),
            &secrets::database_secret_name(owner, service),
        )
        .await?;
    }
    apply(
        &Api::<Service>::namespaced(client.clone(), ns),
        &database::service(owner),
    )
    .await?;
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        &database::provision_config(owner),
    )
    .await?;
    apply(
        &Api::<NetworkPolicy>::namespaced(client.clone(), ns),
        &network::database_policy(owner),
    )
    .await?;
    let set = apply(
        &Api::<StatefulSet>::namespaced(client.clone(), ns),
        &database::stateful_set(platform, owner),
    )
    .await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job = database::provision_job(platform, owner, enabled);
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let job = match jobs
        .get_opt(&job_name)
        .await
        .map_err(kube_err(format!("reading job {job_name}")))?
    {
        Some(existing) => existing,
        None => jobs
            .create(&PostParams::default(), &job)
            .await
            .map_err(kube_err(format!("creating job {job_name}")))?,
    };
    // Earlier provisioning Jobs (another service list) are done with.
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/name={}",
        owner.name(),
        database::COMPONENT
    );
    for old in jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("listing jobs"))?
    {
        if old.name_any() != job_name {
            delete_if_present(&jobs, &old.name_any()).await?;
        }
    }
    let server_ready = set
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        >= 1;
    let provisioned = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) >= 1;
    Ok(match (server_ready, provisioned) {
        (true, true) => (
            true,
            "Provisioned".into(),
            format!("databases ready for {}", enabled.join(", ")),
        ),
        (false, _) => (
            false,
            "ServerNotReady".into(),
            "the PostgreSQL pod is not ready yet".into(),
        ),
        (true, false) => (
            false,
            "Provisioning".into(),
            format!("job {job_name} has not completed yet"),
        ),
    })
}

/// CloudNativePG: a `Cluster` with the services' roles and a `Database` each. Without
/// CloudNativePG's CRDs the platform says so (`DatabaseReady=False`), it does not fail.
async fn reconcile_cloudnative(
    platform: &SocialPlatform,
    owner: &Owner,
    ns: &str,
    client: &Client,
    enabled: &[&str],
) -> Result<(bool, String, String), Error> {
    use database::cloudnative;
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    for service in enabled {
        ensure_secret(
            &secret_api,
            secrets::database_secret(owner, service, &cloudnative::host(owner)),
            &secrets::database_secret_name(owner, service),
        )
        .await?;
    }
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &cloudnative::cluster_resource());
    let cluster = cloudnative::cluster(platform, owner, enabled);
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let Some(cluster) = apply_optional(&clusters, &cluster, "cluster").await? else {
        // No such resource type: CloudNativePG is not installed.
        return Ok((
            false,
            "CloudNativePGMissing".into(),
            "CloudNativePG's CRDs (postgresql.cnpg.io/v1) are not installed; install its operator or choose another database.mode".into(),
        ));
    };
    let databases: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &cloudnative::database_resource());
    let mut pending = Vec::new();
    for service in enabled {
        let database = cloudnative::database(owner, service);
        let name = database.metadata.name.clone().unwrap_or_default();
        let applied = databases
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&database),
            )
            .await
            .map_err(kube_err(format!("applying database {name}")))?;
        if !cloudnative::database_applied(&applied) {
            pending.push(*service);
        }
    }
    Ok(
        match (cloudnative::cluster_ready(&cluster), pending.is_empty()) {
            (true, true) => (
                true,
                "Provisioned".into(),
                format!("CloudNativePG databases ready for {}", enabled.join(", ")),
            ),
            (false, _) => (
                false,
                "ClusterNotReady".into(),
                format!("CloudNativePG cluster {name} has no ready instance yet"),
            ),
            (true, false) => (
                false,
                "Provisioning".into(),
                format!("waiting for the databases of {}", pending.join(", ")),
            ),
        },
    )
}

async fn reconcile_services(
    platform: &SocialPlatform,
    owner: &Owner,
    ns: &str,
    client: &Client,
    enabled: &[&str],
) -> Result<Vec<(String, ServiceStatus, bool)>, Error> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let scalers: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let mut observed = Vec::new();
    for name in WORKLOADS {
        let Some(spec) = platform.spec.services.get(name) else {
            continue;
        };
        let child = owner.child_name(name);
        if !spec.enabled {
            // Disabled: its workload goes (its database Secret stays with the data).
            delete_if_present(&deployments, &child).await?;
            delete_if_present(&services, &child).await?;
            delete_if_present(&maps, &child).await?;
            delete_if_present(&accounts, &child).await?;
            delete_if_present(&budgets, &child).await?;
            delete_if_present(&scalers, &child).await?;
            delete_if_present(&policies, &child).await?;
            continue;
        }
        let mut settings = build::service_settings(owner, name, enabled);
        if name == "photos" {
            settings.extend(build::photo_settings(platform));
            if let Some(claim) = build::photo_claim(platform, owner) {
                let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
                // A claim's size may grow but its other fields are fixed: create it once.
                if claims
                    .get_opt(&child)
                    .await
                    .map_err(kube_err(format!("reading claim {child}")))?
                    .is_none()
                {
                    claims
                        .create(&PostParams::default(), &claim)
                        .await
                        .map_err(kube_err(format!("creating claim {child}")))?;
                }
            }
        }
        let hash = database::short_hash(&format!("{settings:?}"));
        apply(&accounts, &build::service_account(owner, name)).await?;
        apply(&maps, &build::config_map(owner, name, settings)).await?;
        apply(&services, &build::service(owner, name)).await?;
        apply(&policies, &network::service_policy(platform, owner, name)).await?;
        let deployment = apply(
            &deployments,
            &build::deployment(platform, owner, name, spec, &hash),
        )
        .await?;
        match build::disruption_budget(owner, name, spec) {
            Some(budget) => drop(apply(&budgets, &budget).await?),
            None => delete_if_present(&budgets, &child).await?,
        }
        match build::autoscaler(owner, name, spec) {
            Some(scaler) => drop(apply(&scalers, &scaler).await?),
            None => delete_if_present(&scalers, &child).await?,
        }
        let status = deployment.status.clone().unwrap_or_default();
        let desired = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(spec.replicas);
        let current = status.observed_generation == deployment.metadata.generation;
        let ready = status.ready_replicas.unwrap_or(0);
        let updated = status.updated_replicas.unwrap_or(0);
        observed.push((
            name.to_owned(),
            ServiceStatus {
                replicas: desired,
                ready_replicas: ready,
                image: build::image(platform, name, spec),
            },
            current && ready >= desired && updated >= desired,
        ));
    }
    Ok(observed)
}

async fn reconcile_edge(
    platform: &SocialPlatform,
    owner: &Owner,
    ns: &str,
    client: &Client,
    enabled: &[&str],
) -> Result<(bool, String, String), Error> {
    let edge = &platform.spec.edge;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let routes: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &edge::http_route_resource());
    let (route, public_route) = edge::http_routes(platform, owner, ns, enabled);
    if edge.kind == EdgeKind::GatewayApi {
        // The edge moved to Gateway API: the Ingresses go.
        for name in edge::ingress_names(owner) {
            delete_if_present(&ingresses, &name).await?;
        }
        for object in [&route, &public_route] {
            if apply_optional(&routes, object, "route").await?.is_none() {
                return Ok((
                    false,
                    "GatewayAPIMissing".into(),
                    "Gateway API's CRDs (gateway.networking.k8s.io/v1) are not installed".into(),
                ));
            }
        }
        if edge.auth_middleware == AuthMiddleware::EnvoyGateway {
            let policies: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &edge::security_policy_resource());
            let policy = edge::security_policy(owner, ns);
            if apply_optional(&policies, &policy, "security policy")
                .await?
                .is_none()
            {
                return Ok((false, "EnvoyGatewayMissing".into(), "Envoy Gateway's SecurityPolicy CRD (gateway.envoyproxy.io/v1alpha1) is not installed".into()));
            }
        }
        return Ok((
            true,
            "Routed".into(),
            format!("{} routes the API", platform.spec.host),
        ));
    }
    // The edge is an Ingress: routes of an earlier Gateway API edge go (if that API exists).
    for name in [owner.name().to_owned(), format!("{}-public", owner.name())] {
        match routes.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(kube_err(format!("deleting route {name}"))(e)),
        }
    }
    let edge::Ingresses {
        protected,
        public,
        fallback,
    } = edge::ingresses(platform, owner, ns, enabled);
    apply(&ingresses, &protected).await?;
    apply(&ingresses, &public).await?;
    match fallback {
        Some(fallback) => {
            apply(&ingresses, &fallback).await?;
        }
        // The gateway was disabled: its fallback goes.
        None => delete_if_present(&ingresses, &edge::ingress_names(owner)[2]).await?,
    }
    if edge.auth_middleware == AuthMiddleware::Traefik {
        let middlewares: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &edge::middleware_resource());
        let middleware = edge::traefik_middleware(owner, ns);
        if apply_optional(&middlewares, &middleware, "middleware")
            .await?
            .is_none()
        {
            return Ok((false, "MiddlewareCRDMissing".into(), "Traefik's Middleware CRD (traefik.io/v1alpha1) is not installed; install Traefik or choose another authMiddleware".into()));
        }
    }
    Ok((
        true,
        "Routed".into(),
        format!("{} routes the API", platform.spec.host),
    ))
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the status does.
    let last = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: last,
    }
}

/// Writes the status when it differs from the stored one; whether the platform is Ready.
async fn update_status(
    platform: &SocialPlatform,
    ctx: &Context,
    observed: Observed,
) -> Result<bool, Error> {
    let generation = platform.metadata.generation;
    let previous = platform.status.clone().unwrap_or_default();
    let (db_ok, db_reason, db_message) = observed.database;
    let not_ready: Vec<&str> = observed
        .services
        .iter()
        .filter(|(_, _, ok)| !ok)
        .map(|(n, _, _)| n.as_str())
        .collect();
    let services_ok = not_ready.is_empty();
    let (edge_ok, edge_reason, edge_message) = observed.edge;
    let ready = db_ok && services_ok && edge_ok;
    let conditions = vec![
        condition(
            "Ready",
            ready,
            if ready { "AllReady" } else { "NotReady" },
            if ready {
                "the platform serves its API"
            } else {
                "see the other conditions"
            },
            generation,
            &previous.conditions,
        ),
        condition(
            "DatabaseReady",
            db_ok,
            &db_reason,
            &db_message,
            generation,
            &previous.conditions,
        ),
        condition(
            "ServicesReady",
            services_ok,
            if services_ok {
                "Available"
            } else {
                "Progressing"
            },
            &if services_ok {
                "every enabled service has its ready replicas".to_owned()
            } else {
                format!("waiting for {}", not_ready.join(", "))
            },
            generation,
            &previous.conditions,
        ),
        condition(
            "EdgeReady",
            edge_ok,
            &edge_reason,
            &edge_message,
            generation,
            &previous.conditions,
        ),
    ];
    let scheme = if platform.spec.edge.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let status = SocialPlatformStatus {
        observed_generation: generation,
        conditions,
        url: Some(format!("{scheme}://{}", platform.spec.host)),
        services: observed
            .services
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect(),
    };
    let was_ready = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if ready != was_ready {
        let (type_, reason, note) = if ready {
            (
                EventType::Normal,
                "Ready",
                "the platform serves its API".to_owned(),
            )
        } else {
            let waiting: Vec<&str> = status
                .conditions
                .iter()
                .filter(|c| c.type_ != "Ready" && c.status != "True")
                .map(|c| c.message.as_str())
                .collect();
            (EventType::Warning, "NotReady", waiting.join("; "))
        };
        // The first status of a new platform is not a transition worth a warning.
        if ready || !previous.conditions.is_empty() {
            ctx.event(platform, type_, reason, note).await;
        }
    }
    if platform.status.as_ref() != Some(&status) {
        let api: Api<SocialPlatform> = Api::namespaced(
            ctx.client.clone(),
            &platform.namespace().unwrap_or_default(),
        );
        let mut patch = serde_json::json!({"status": status});
        // A merge patch keeps map keys it does not mention: gone services are nulled.
        for gone in previous
            .services
            .keys()
            .filter(|k| !status.services.contains_key(*k))
        {
            patch["status"]["services"][gone] = serde_json::Value::Null;
        }
        api.patch_status(
            &platform.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(kube_err("updating the status"))?;
    }
    Ok(ready)
}

/// Failed reconciles retry with per-object exponential backoff (1 s doubling, at most
/// 5 minutes); a success resets it.
pub fn error_policy(platform: Arc<SocialPlatform>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.failed(&platform);
    let delay = Duration::from_secs(1u64 << failures.saturating_sub(1).min(8))
        .min(Duration::from_secs(300));
    tracing::warn!(platform = %Context::key(&platform), %error, failures, retry_in_s = delay.as_secs(), "reconcile failed");
    // One Event per failure streak, not per retry.
    if failures == 1 {
        let note = error.to_string();
        tokio::spawn(async move {
            ctx.event(&platform, EventType::Warning, "ReconcileFailed", note)
                .await;
        });
    }
    Action::requeue(delay)
}

/// Runs the controller until a shutdown signal, over every namespace or one.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    // Children are watched by their managed-by label only: without it the operator would
    // cache every Secret and ConfigMap of the cluster.
    let config = watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        crate::build::MANAGER
    ));
    let c = &client;
    Controller::new(
        api::<SocialPlatform>(c, namespace),
        watcher::Config::default(),
    )
    .owns(api::<Deployment>(c, namespace), config.clone())
    .owns(api::<Service>(c, namespace), config.clone())
    .owns(api::<ConfigMap>(c, namespace), config.clone())
    .owns(api::<ServiceAccount>(c, namespace), config.clone())
    .owns(api::<StatefulSet>(c, namespace), config.clone())
    .owns(api::<Job>(c, namespace), config.clone())
    .owns(api::<Ingress>(c, namespace), config.clone())
    .owns(api::<NetworkPolicy>(c, namespace), config.clone())
    .owns(api::<Secret>(c, namespace), config.clone())
    .owns(api::<PodDisruptionBudget>(c, namespace), config.clone())
    .owns(api::<HorizontalPodAutoscaler>(c, namespace), config)
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|outcome| async move {
        match outcome {
            Ok((object, _)) => tracing::debug!(platform = %object.name, "reconciled"),
            Err(error) => tracing::debug!(%error, "reconcile pass ended with an error"),
        }
    })
    .await;
}
