//! The `SocialPlatform` custom resource (`agora.dev/v1alpha1`, short name `sp`): one
//! whole Agora social network. A minimal resource is `metadata.name` plus `spec.host`;
//! every other field has a default the API server fills in. Bounds, enums, the host
//! pattern and the cross-field rules (CEL) are in the schema, so the API server itself
//! refuses an invalid platform before the operator ever sees it.

use crate::backup::resource::PlatformBackupStatus;
use crate::backup::spec::{BackupSpec, RestoreSpec};
use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The services of a platform, each with a database of its own, in the order they are
/// listed everywhere.
pub const SERVICES: [&str; 6] = [
    "auth",
    "users",
    "photos",
    "relations",
    "events",
    "notifications",
];

/// Every workload: the services, then the gateway (no database). In a cluster the
/// ingress routes each service's area straight to it; the gateway answers what belongs
/// to no service: the merged OpenAPI document and problem+json for unknown API paths.
pub const WORKLOADS: [&str; 7] = [
    "auth",
    "users",
    "photos",
    "relations",
    "events",
    "notifications",
    "gateway",
];

/// A whole Agora social network.
// kube's `printcolumn(...)` is repeated once per column, by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "agora.dev",
    version = "v1alpha1",
    kind = "SocialPlatform",
    namespaced,
    shortname = "sp",
    category = "agora",
    status = "SocialPlatformStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.services.photos.replicas) || self.services.photos.replicas <= 1 || has(self.photos.storage.s3)"
).message("more than one photos replica needs S3 photo storage (a PVC is ReadWriteOnce)"))]
#[x_kube(validation = Rule::new(
    "!has(self.services.photos.autoscaling) || self.services.photos.autoscaling.maxReplicas <= 1 || has(self.photos.storage.s3)"
).message("autoscaling photos beyond one replica needs S3 photo storage (a PVC is ReadWriteOnce)"))]
#[x_kube(validation = Rule::new(
    "!has(self.restore) || has(self.restore.backup) || has(self.restore.encryptionKeySecret) || has(self.backup)"
).message("spec.restore from s3 needs restore.encryptionKeySecret (or spec.backup's) to open the backup's sealed keys"))]
#[x_kube(validation = Rule::new("has(self.restore) == has(oldSelf.restore)")
    .message("spec.restore can only be set when the platform is created"))]
#[x_kube(validation = Rule::new(
    "!has(self.restore) || !has(self.restore.targetTime) || (self.database.mode == 'CloudNativePG' && has(self.restore.backup))"
).message("restore.targetTime needs database.mode CloudNativePG and restore.backup (the backup whose platform's WAL archive, photos and keys are used)"))]
#[x_kube(validation = Rule::new(
    "self.database.mode != 'CloudNativePG' || !has(self.backup) || has(self.backup.destination.s3)"
).message("in the CloudNativePG mode backups go to an object store (its WAL archive): backup.destination.s3"))]
#[x_kube(validation = Rule::new(
    "self.database.mode != 'CloudNativePG' || !has(self.backup) || (!has(self.backup.retention.count) && has(self.backup.retention.maxAge) && !self.backup.retention.maxAge.endsWith('h'))"
).message("CloudNativePG keeps backups by age: backup.retention needs maxAge in days or weeks, and no count, in the CloudNativePG mode"))]
pub struct SocialPlatformSpec {
    /// Default image tag of every service.
    #[serde(default = "default_version")]
    #[schemars(length(min = 1, max = 128))]
    pub version: String,
    /// Images are `<imageRepository>/<service>:<version>` unless a service overrides it.
    #[serde(default = "default_image_repository")]
    #[schemars(length(min = 1, max = 255))]
    pub image_repository: String,
    /// The public host name of the platform (DNS name, lower case).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host: String,
    /// How clients reach the platform.
    #[serde(default)]
    pub edge: Edge,
    /// Where the services' databases live.
    #[serde(default)]
    pub database: Database,
    /// Where photo bytes are stored.
    #[serde(default)]
    pub photos: Photos,
    /// Per-service settings.
    #[serde(default)]
    pub services: Services,
    /// Traces, metrics scraping and alerts.
    #[serde(default)]
    pub observability: Observability,
    /// Scheduled backups (on-demand ones are `SocialPlatformBackup` objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
    /// Fill this new platform from a backup before any service starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
}

/// Traces, metrics scraping and alerts: all off by default.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Observability {
    /// Export every workload's spans by OTLP (sets the standard `OTEL_*` variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// A `ServiceMonitor` (Prometheus Operator) for every workload's ops port.
    #[serde(default)]
    pub metrics: MetricsScraping,
    /// A `PrometheusRule` with the platform's alerts (runbooks in docs/runbooks.md).
    #[serde(default)]
    pub alerts: bool,
    /// When the alerts fire.
    #[serde(default)]
    pub alert_thresholds: AlertThresholds,
}

/// Where spans go.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// The collector's OTLP endpoint, e.g. `http://jaeger-collector.tracing:4318`.
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^https?://[^\s]+$"))]
    pub otlp_endpoint: String,
    /// `http/protobuf` (port 4318, the default) or `grpc` (port 4317).
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// The share of traces started here that are kept (a caller's sampled trace is
    /// always continued).
    #[serde(default = "default_sampling_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sampling_ratio: f64,
}

fn default_sampling_ratio() -> f64 {
    1.0
}

/// The OTLP transport.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC.
    #[serde(rename = "grpc")]
    Grpc,
}

/// Scraping by the Prometheus Operator.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsScraping {
    /// Create the `ServiceMonitor`.
    #[serde(default)]
    pub service_monitor: bool,
    /// Extra labels on the `ServiceMonitor` and `PrometheusRule`, so that a Prometheus
    /// selects them (e.g. `release: kube-prometheus-stack`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Alert thresholds.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertThresholds {
    /// Share of requests answered with a 5xx, per area, over 5 minutes.
    #[serde(default = "default_error_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub error_ratio: f64,
    /// 99th percentile latency per area, in seconds.
    #[serde(default = "default_latency_p99_seconds")]
    #[schemars(range(min = 0.001, max = 600.0))]
    pub latency_p99_seconds: f64,
    /// Age of the oldest outbox job, in seconds.
    #[serde(default = "default_outbox_oldest_seconds")]
    #[schemars(range(min = 1, max = 604800))]
    pub outbox_oldest_seconds: u32,
    /// Failed logins per second across the platform.
    #[serde(default = "default_failed_logins_per_second")]
    #[schemars(range(min = 0.01, max = 100000.0))]
    pub failed_logins_per_second: f64,
}

fn default_error_ratio() -> f64 {
    0.05
}
fn default_latency_p99_seconds() -> f64 {
    1.0
}
fn default_outbox_oldest_seconds() -> u32 {
    300
}
fn default_failed_logins_per_second() -> f64 {
    5.0
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            error_ratio: default_error_ratio(),
            latency_p99_seconds: default_latency_p99_seconds(),
            outbox_oldest_seconds: default_outbox_oldest_seconds(),
            failed_logins_per_second: default_failed_logins_per_second(),
        }
    }
}

fn default_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn default_image_repository() -> String {
    "ghcr.io/agora-social".to_owned()
}

/// The edge: ingress-based routes with auth middleware.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "self.kind == 'Ingress' || !(self.authMiddleware in ['Traefik', 'Nginx'])"
).message("the Traefik and Nginx auth middlewares need edge.kind Ingress"))]
#[x_kube(validation = Rule::new(
    "self.kind == 'GatewayAPI' || self.authMiddleware != 'EnvoyGateway'"
).message("the EnvoyGateway auth middleware needs edge.kind GatewayAPI"))]
#[x_kube(validation = Rule::new("self.kind != 'GatewayAPI' || has(self.gateway)")
    .message("edge.kind GatewayAPI needs edge.gateway (the parent Gateway)"))]
pub struct Edge {
    /// `Ingress` (with an ingress class) or `GatewayAPI` (`HTTPRoute`s).
    #[serde(default)]
    pub kind: EdgeKind,
    /// The IngressClass (Ingress only); the cluster's default class when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Who checks tokens at the edge before requests reach the services (they check
    /// them again themselves).
    #[serde(default)]
    pub auth_middleware: AuthMiddleware,
    /// Serve HTTPS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// The parent Gateway of the `HTTPRoute`s (GatewayAPI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayRef>,
}

impl Default for Edge {
    fn default() -> Self {
        Self {
            kind: EdgeKind::Ingress,
            class_name: None,
            auth_middleware: AuthMiddleware::Traefik,
            tls: None,
            gateway: None,
        }
    }
}

/// How routes are published.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeKind {
    /// `networking.k8s.io/v1` Ingress.
    #[default]
    Ingress,
    /// Gateway API `HTTPRoute`s.
    #[serde(rename = "GatewayAPI")]
    GatewayApi,
}

/// The edge's token check.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMiddleware {
    /// A Traefik `Middleware` with forwardAuth to the auth service's `/verify`.
    #[default]
    Traefik,
    /// ingress-nginx `auth-url` annotations (legacy: ingress-nginx is retired).
    Nginx,
    /// An Envoy Gateway `SecurityPolicy` checking JWTs against the JWKS.
    EnvoyGateway,
    /// No edge check; the services still verify every token.
    None,
}

/// A TLS certificate.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// A `kubernetes.io/tls` Secret in the platform's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// A Gateway API parent.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Its name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Its namespace (default: the platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// The services' databases.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode == oldSelf.mode")
    .message("database.mode cannot change after creation"))]
#[x_kube(validation = Rule::new("self.mode != 'External' || has(self.external)")
    .message("database.mode External needs database.external.secretRef"))]
#[x_kube(validation = Rule::new("self.mode == 'CloudNativePG' || !has(self.cloudNativePG)")
    .message("database.cloudNativePG needs database.mode CloudNativePG"))]
pub struct Database {
    /// `Managed` (a PostgreSQL StatefulSet run by the operator), `CloudNativePG`
    /// (`Cluster` and `Database` resources), or `External` (connection URLs from a
    /// Secret).
    #[serde(default)]
    pub mode: DatabaseMode,
    /// Volume size of the managed or CloudNativePG cluster.
    #[serde(default = "default_database_storage")]
    pub storage: Quantity,
    /// StorageClass of that volume (the cluster's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// PostgreSQL image of the managed database, or of the CloudNativePG cluster (an
    /// image CloudNativePG accepts: its tag starts with the major version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub image: Option<String>,
    /// Where the connection URLs are (External only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatabase>,
    /// The CloudNativePG cluster's shape (CloudNativePG only; absent: one instance).
    #[serde(
        default,
        rename = "cloudNativePG",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_native_pg: Option<CloudNativePgCluster>,
}

/// A CloudNativePG cluster: one primary and streaming replicas, which CloudNativePG
/// promotes when the primary is lost. Its size and class are `database.storage` and
/// `database.storageClassName`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.synchronous) || self.synchronous.number < self.instances")
    .message("database.cloudNativePG.synchronous.number must be below instances (the primary is not a standby)"))]
pub struct CloudNativePgCluster {
    /// PostgreSQL instances (pods): the primary and `instances - 1` replicas.
    #[serde(default = "default_instances")]
    #[schemars(range(min = 1, max = 9))]
    pub instances: i32,
    /// Synchronous replication: a commit is acknowledged once this many standbys have
    /// it, so a failover loses no acknowledged write (absent: asynchronous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous: Option<Synchronous>,
    /// A separate volume for the write-ahead log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_storage: Option<WalStorage>,
    /// Requests and limits of every PostgreSQL pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How instances spread over nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<InstanceAffinity>,
    /// A `PodMonitor` for the instances' metrics (Prometheus Operator).
    #[serde(default)]
    pub enable_pod_monitor: bool,
}

fn default_instances() -> i32 {
    1
}

/// CloudNativePG's quorum-based synchronous replication.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Synchronous {
    /// `any` (quorum: any `number` standbys) or `first` (priority: the first `number`).
    #[serde(default)]
    pub method: SyncMethod,
    /// Standbys that must confirm a commit.
    #[schemars(range(min = 1, max = 8))]
    pub number: i32,
    /// `required`: writes wait while too few standbys are up; `preferred`: the primary
    /// goes on alone rather than stop writing (a failover may then lose writes).
    #[serde(default)]
    pub data_durability: DataDurability,
}

/// How synchronous standbys are chosen.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    /// Any `number` of the standbys (quorum commit).
    #[default]
    Any,
    /// The first `number` in order (priority).
    First,
}

/// What a primary does without enough synchronous standbys.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataDurability {
    /// Wait for them: no acknowledged write is ever on one instance only.
    #[default]
    Required,
    /// Go on without them.
    Preferred,
}

/// The write-ahead log's own volume.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WalStorage {
    /// Its size.
    pub size: Quantity,
    /// Its StorageClass (the cluster's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

/// Instances' anti-affinity (CloudNativePG's own settings).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceAffinity {
    /// `required`: never two instances in one topology domain (a pod stays Pending
    /// without one free); `preferred` (CloudNativePG's default): spread when possible.
    #[serde(default)]
    pub pod_anti_affinity_type: AntiAffinityType,
    /// The node label whose values are the domains (default `kubernetes.io/hostname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 317))]
    pub topology_key: Option<String>,
}

/// How strictly instances are kept apart.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AntiAffinityType {
    /// Spread when possible.
    #[default]
    Preferred,
    /// Always (needs as many domains as instances).
    Required,
}

fn default_database_storage() -> Quantity {
    Quantity("1Gi".to_owned())
}

impl Default for Database {
    fn default() -> Self {
        Self {
            mode: DatabaseMode::Managed,
            storage: default_database_storage(),
            storage_class_name: None,
            image: None,
            external: None,
            cloud_native_pg: None,
        }
    }
}

/// Who runs PostgreSQL.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DatabaseMode {
    /// The operator: one StatefulSet, a database and role per service.
    #[default]
    Managed,
    /// CloudNativePG (its CRDs must be installed).
    #[serde(rename = "CloudNativePG")]
    CloudNativePg,
    /// Somebody else; the operator only reads the URLs.
    External,
}

/// An external database.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDatabase {
    /// A Secret with one key per service (`auth`, `users`, …) holding its
    /// `postgres://` URL.
    pub secret_ref: SecretRef,
}

/// A Secret in the platform's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Photo storage.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Photos {
    /// A volume or an S3-compatible bucket.
    #[serde(default)]
    pub storage: PhotoStorage,
}

/// Exactly one of a volume and a bucket.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.pvc) != has(self.s3)")
    .message("photos.storage needs exactly one of pvc and s3"))]
pub struct PhotoStorage {
    /// A PersistentVolumeClaim (ReadWriteOnce: one photos replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcStorage>,
    /// An S3-compatible bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
}

impl Default for PhotoStorage {
    fn default() -> Self {
        Self {
            pvc: Some(PvcStorage::default()),
            s3: None,
        }
    }
}

/// A photo volume.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PvcStorage {
    /// Its size.
    #[serde(default = "default_photo_storage")]
    pub size: Quantity,
    /// Its StorageClass (the cluster's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

fn default_photo_storage() -> Quantity {
    Quantity("5Gi".to_owned())
}

impl Default for PvcStorage {
    fn default() -> Self {
        Self {
            size: default_photo_storage(),
            storage_class_name: None,
        }
    }
}

/// An S3-compatible bucket.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// The bucket.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// The endpoint URL (absent: AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// The region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A Secret with `accessKeyId` and `secretAccessKey`.
    pub secret_ref: SecretRef,
}

/// Settings of each service.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Services {
    /// Accounts and tokens.
    #[serde(default)]
    pub auth: ServiceSpec,
    /// Profiles, posts, comments, reactions, feeds.
    #[serde(default)]
    pub users: ServiceSpec,
    /// Photo bytes and metadata.
    #[serde(default)]
    pub photos: ServiceSpec,
    /// Follows, friends, matches, blocks, suggestions.
    #[serde(default)]
    pub relations: ServiceSpec,
    /// Events and RSVPs (off unless enabled).
    #[serde(default = "ServiceSpec::disabled")]
    pub events: ServiceSpec,
    /// Notifications made from the other services' notices, and their live stream.
    #[serde(default)]
    pub notifications: ServiceSpec,
    /// The API gateway behind the edge: the merged OpenAPI document at
    /// `/api/v1/openapi.json` and problem+json answers for unknown API paths.
    #[serde(default)]
    pub gateway: ServiceSpec,
}

impl Default for Services {
    fn default() -> Self {
        Self {
            auth: ServiceSpec::default(),
            users: ServiceSpec::default(),
            photos: ServiceSpec::default(),
            relations: ServiceSpec::default(),
            events: ServiceSpec::disabled(),
            notifications: ServiceSpec::default(),
            gateway: ServiceSpec::default(),
        }
    }
}

impl Services {
    /// The settings of a service by name.
    pub fn get(&self, name: &str) -> Option<&ServiceSpec> {
        match name {
            "auth" => Some(&self.auth),
            "users" => Some(&self.users),
            "photos" => Some(&self.photos),
            "relations" => Some(&self.relations),
            "events" => Some(&self.events),
            "notifications" => Some(&self.notifications),
            "gateway" => Some(&self.gateway),
            _ => None,
        }
    }
}

/// One service's settings.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Whether it runs (every service but events is on by default; setting anything
    /// on events without `enabled: false` turns it on).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Pods (ignored while autoscaling).
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// A full image reference instead of `<imageRepository>/<service>:<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub image: Option<String>,
    /// Resource requests and limits (sensible requests when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub env: Vec<EnvVar>,
    /// A HorizontalPodAutoscaler on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

fn enabled() -> bool {
    true
}

fn one() -> i32 {
    1
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            replicas: 1,
            image: None,
            resources: None,
            env: Vec::new(),
            autoscaling: None,
        }
    }
}

impl ServiceSpec {
    /// A service that does not run.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Autoscaling on CPU utilisation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("autoscaling.minReplicas must not exceed maxReplicas"))]
pub struct Autoscaling {
    /// Fewest pods.
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most pods.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Target average CPU utilisation, in percent of the request.
    #[serde(default = "default_cpu_target")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization: i32,
}

fn default_cpu_target() -> i32 {
    75
}

/// What the operator last saw and did.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SocialPlatformStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `DatabaseReady`, `ServicesReady`, `EdgeReady`, and `DataRetained`
    /// (objects holding data that the spec no longer uses, kept for a person to
    /// delete).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Where clients reach the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Per service: desired and ready pods, and the image.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceStatus>,
    /// The platform's backups at a glance (with `spec.backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<PlatformBackupStatus>,
}

/// One service's rollout.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Pods wanted.
    pub replicas: i32,
    /// Pods ready.
    pub ready_replicas: i32,
    /// The image running.
    pub image: String,
}
