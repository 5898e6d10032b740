//! Who a platform's children belong to: their names, labels and owner reference, and
//! the ports and names every module refers to. A leaf: it imports no other module of
//! the operator but the resource type, so builders, secrets and the database can all
//! use it without importing each other.

use crate::crd::SocialPlatform;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use std::collections::BTreeMap;

/// The port every service's API listens on.
pub const API_PORT: i32 = 8080;
/// The port of every service's operations endpoints (probes, metrics).
pub const OPS_PORT: i32 = 9090;
/// The operator's field manager and `managed-by` label value.
pub const MANAGER: &str = "agora-operator";
/// PostgreSQL's port.
pub const DATABASE_PORT: i32 = 5432;
/// The `app.kubernetes.io/name` of the managed database's children.
pub const DATABASE_COMPONENT: &str = "postgres";

/// Why a platform cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The resource has no name, namespace or uid yet (it was never stored).
    #[error("the SocialPlatform has no {0}")]
    MissingMetadata(&'static str),
}

/// What every child shares: its owner and the platform's identity.
#[derive(Debug, Clone)]
pub struct Owner {
    name: String,
    namespace: String,
    reference: OwnerReference,
}

impl Owner {
    /// The owner of `platform`'s children.
    pub fn of(platform: &SocialPlatform) -> Result<Self, BuildError> {
        let name = platform
            .metadata
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = platform
            .metadata
            .namespace
            .clone()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let reference = platform
            .controller_owner_ref(&())
            .ok_or(BuildError::MissingMetadata("uid"))?;
        Ok(Self {
            name,
            namespace,
            reference,
        })
    }

    /// The platform's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The platform's (and every child's) namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `<platform>-<service>`: several platforms share a namespace safely.
    pub fn child_name(&self, service: &str) -> String {
        format!("{}-{service}", self.name)
    }

    /// The labels of every child of `service`.
    pub fn labels(&self, service: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector(service);
        labels.insert("app.kubernetes.io/part-of".into(), "agora".into());
        labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
        labels
    }

    /// The labels that select `service`'s pods (a stable subset of [`labels`](Self::labels)).
    pub fn selector(&self, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), service.to_owned()),
            ("app.kubernetes.io/instance".to_owned(), self.name.clone()),
        ])
    }

    /// The label selector of every child of this platform (whatever its service).
    pub fn children_selector(&self) -> String {
        format!(
            "app.kubernetes.io/instance={},app.kubernetes.io/managed-by={MANAGER}",
            self.name
        )
    }

    /// Whether `meta` names this platform as its controller: the children selector
    /// alone could match another platform's object of the same name in a copied
    /// namespace, never its owner reference.
    pub fn controls(&self, meta: &ObjectMeta) -> bool {
        meta.owner_references.as_ref().is_some_and(|refs| {
            refs.iter()
                .any(|r| r.uid == self.reference.uid && r.controller == Some(true))
        })
    }

    /// `<platform>-postgres`: the managed database's StatefulSet, its headless Service
    /// (the host name services connect to) and the superuser Secret.
    pub fn database_host(&self) -> String {
        self.child_name(DATABASE_COMPONENT)
    }

    /// `<platform>-keys`: what the services share — the auth service's signing key,
    /// the credential of internal routes, and the photos service's share-link key.
    pub fn keys_secret_name(&self) -> String {
        self.child_name("keys")
    }

    /// `<platform>-<service>-database`: a service's database URL and password.
    pub fn database_secret_name(&self, service: &str) -> String {
        format!("{}-database", self.child_name(service))
    }

    /// Metadata of a child of `service` named `name`.
    pub fn meta(&self, service: &str, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(service)),
            owner_references: Some(vec![self.reference.clone()]),
            ..ObjectMeta::default()
        }
    }
}
