//! The apply stage: every child of [`Desired`] written to the cluster under one field
//! manager, then every object of an owned kind that carries this platform's labels and
//! owner reference but is no longer wanted removed — except objects that hold data
//! (volumes, database servers and clusters), which are kept and reported for a person
//! to confirm. The owned kinds are listed once, in [`owned_kinds`]: a new child kind is
//! a builder plus one line there.

use crate::children::{Desired, Requirement, Write};
use crate::database::cloudnative;
use crate::edge;
use crate::error::{Error, kube_err};
use crate::monitoring;
use crate::owner::{MANAGER, Owner};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// What happens to an owned object the platform no longer wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Deleted.
    Delete,
    /// Kept and reported in the status: it holds data (a spec change would orphan it,
    /// and only a person may decide that the data can go).
    Report,
    /// Kept silently: credentials of data that is kept (a disabled service's database
    /// Secret), never deleted by the operator.
    Keep,
}

/// A kind of object platforms own.
#[derive(Debug, Clone)]
pub struct OwnedKind {
    /// Its API.
    pub resource: ApiResource,
    /// What happens to an unwanted one.
    pub cleanup: Cleanup,
    /// Watched by the controller (a change or deletion wakes the platform's reconcile):
    /// Kubernetes' own kinds; third-party kinds may not be installed.
    pub watched: bool,
}

fn kind<K: Resource<DynamicType = ()>>(cleanup: Cleanup, watched: bool) -> OwnedKind {
    OwnedKind {
        resource: ApiResource::erase::<K>(&()),
        cleanup,
        watched,
    }
}

fn third_party(resource: ApiResource, cleanup: Cleanup) -> OwnedKind {
    OwnedKind {
        resource,
        cleanup,
        watched: false,
    }
}

/// Every kind of object a platform may own.
pub fn owned_kinds() -> Vec<OwnedKind> {
    vec![
        kind::<Secret>(Cleanup::Keep, true),
        kind::<PersistentVolumeClaim>(Cleanup::Report, false),
        kind::<StatefulSet>(Cleanup::Report, true),
        kind::<Job>(Cleanup::Delete, true),
        kind::<CronJob>(Cleanup::Delete, true),
        kind::<Role>(Cleanup::Delete, true),
        kind::<RoleBinding>(Cleanup::Delete, true),
        kind::<ServiceAccount>(Cleanup::Delete, true),
        kind::<ConfigMap>(Cleanup::Delete, true),
        kind::<Service>(Cleanup::Delete, true),
        kind::<NetworkPolicy>(Cleanup::Delete, true),
        kind::<Deployment>(Cleanup::Delete, true),
        kind::<PodDisruptionBudget>(Cleanup::Delete, true),
        kind::<HorizontalPodAutoscaler>(Cleanup::Delete, true),
        kind::<Ingress>(Cleanup::Delete, true),
        third_party(edge::http_route_resource(), Cleanup::Delete),
        third_party(edge::security_policy_resource(), Cleanup::Delete),
        third_party(edge::middleware_resource(), Cleanup::Delete),
        third_party(monitoring::service_monitor_resource(), Cleanup::Delete),
        third_party(monitoring::prometheus_rule_resource(), Cleanup::Delete),
        third_party(cloudnative::cluster_resource(), Cleanup::Report),
        third_party(cloudnative::database_resource(), Cleanup::Report),
    ]
}

/// What the apply stage wrote and found, for the status.
#[derive(Debug, Default)]
pub struct Applied {
    objects: Vec<(ApiResource, DynamicObject)>,
    /// Third-party APIs the platform needs that are not installed.
    pub missing: Vec<&'static Requirement>,
    /// Objects with data that the platform no longer wants, kept (`Kind name`).
    pub retained: Vec<String>,
}

impl Applied {
    /// The applied (or existing, for a create-once child) object of type `K` named
    /// `name`, as the API server answered.
    pub fn get<K>(&self, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.find(&ApiResource::erase::<K>(&()), name)
            .and_then(|object| object.clone().try_parse().ok())
    }

    /// The applied object of a third-party kind.
    pub fn find(&self, resource: &ApiResource, name: &str) -> Option<&DynamicObject> {
        self.objects
            .iter()
            .find(|(r, o)| r == resource && o.metadata.name.as_deref() == Some(name))
            .map(|(_, o)| o)
    }

    /// Whether the API a requirement names is missing.
    pub fn lacks(&self, requirement: &Requirement) -> bool {
        self.missing.contains(&requirement)
    }
}

/// Writes `desired` and cleans up after it.
pub async fn apply(client: &Client, owner: &Owner, desired: &Desired) -> Result<Applied, Error> {
    let ns = owner.namespace();
    let mut applied = Applied::default();
    for child in &desired.children {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &child.resource);
        let (kind, name) = (&child.resource.kind, child.name());
        let written = match child.write {
            Write::Apply => {
                let params = PatchParams::apply(MANAGER).force();
                api.patch(name, &params, &Patch::Apply(&child.object)).await
            }
            Write::CreateOnce => create_once(&api, &child.object).await,
        };
        match written {
            Ok(object) => applied.objects.push((child.resource.clone(), object)),
            // A 404 on the type: that project's CRDs are not installed.
            Err(kube::Error::Api(status)) if status.code == 404 && child.requires.is_some() => {
                if let Some(requirement) = child.requires
                    && !applied.lacks(requirement)
                {
                    applied.missing.push(requirement);
                }
            }
            Err(e) => return Err(kube_err(format!("writing {kind} {name}"))(e)),
        }
    }
    clean_up(client, owner, desired, &mut applied).await?;
    Ok(applied)
}

/// Creates an object unless one of that name exists; either way, the stored one.
async fn create_once(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    if let Some(existing) = api.get_opt(name).await? {
        return Ok(existing);
    }
    match api.create(&PostParams::default(), object).await {
        Err(kube::Error::Api(status)) if status.is_already_exists() => api.get(name).await,
        created => created,
    }
}

/// Deletes (or, for data, reports) what carries this platform's labels and owner
/// reference but is not in `desired`.
async fn clean_up(
    client: &Client,
    owner: &Owner,
    desired: &Desired,
    applied: &mut Applied,
) -> Result<(), Error> {
    let selector = ListParams::default().labels(&owner.children_selector());
    for owned in owned_kinds() {
        if owned.cleanup == Cleanup::Keep {
            continue;
        }
        let kind = &owned.resource.kind;
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), owner.namespace(), &owned.resource);
        let objects = match api.list_metadata(&selector).await {
            Ok(list) => list.items,
            // Not installed: there is nothing of that kind to clean up.
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => return Err(kube_err(format!("listing {kind}s"))(e)),
        };
        for object in objects {
            let name = object.metadata.name.clone().unwrap_or_default();
            if !owner.controls(&object.metadata) || desired.holds(&owned.resource, &name) {
                continue;
            }
            match owned.cleanup {
                Cleanup::Delete => match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!(%kind, %name, "deleted a child the platform no longer wants")
                    }
                    Err(kube::Error::Api(status)) if status.is_not_found() => {}
                    Err(e) => return Err(kube_err(format!("deleting {kind} {name}"))(e)),
                },
                Cleanup::Report => applied.retained.push(format!("{kind} {name}")),
                Cleanup::Keep => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::desired;
    use crate::fixtures;

    #[test]
    fn every_child_the_builders_make_is_of_an_owned_kind() {
        let owned: Vec<ApiResource> = owned_kinds().into_iter().map(|k| k.resource).collect();
        for platform in fixtures::every_shape() {
            let owner = Owner::of(&platform).unwrap();
            for child in desired(&platform, &owner, None).unwrap().children {
                assert!(
                    owned.contains(&child.resource),
                    "{} {} is not of an owned kind: the clean-up would never see it",
                    child.resource.kind,
                    child.name()
                );
            }
        }
    }

    #[test]
    fn data_is_never_deleted_by_the_clean_up() {
        for owned in owned_kinds() {
            let holds_data = [
                "PersistentVolumeClaim",
                "StatefulSet",
                "Cluster",
                "Database",
            ]
            .contains(&owned.resource.kind.as_str());
            if holds_data {
                assert_eq!(owned.cleanup, Cleanup::Report, "{}", owned.resource.kind);
            }
        }
        let secrets = owned_kinds()
            .into_iter()
            .find(|k| k.resource.kind == "Secret")
            .unwrap();
        assert_eq!(secrets.cleanup, Cleanup::Keep);
    }
}
