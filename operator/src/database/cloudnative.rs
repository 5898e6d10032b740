//! `database.mode: CloudNativePG`: the operator asks CloudNativePG for the database
//! instead of running one: a `Cluster` (`<platform>-postgres`) whose managed roles are
//! the services' (passwords from their generated Secrets), and one `Database` per
//! service. Services connect to the cluster's read-write Service, `<cluster>-rw`.

use crate::crd::SocialPlatform;
use crate::owner::Owner;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

/// CloudNativePG's `Cluster` API.
pub fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster"),
        "clusters",
    )
}

/// CloudNativePG's `Database` API (1.25+).
pub fn database_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Database"),
        "databases",
    )
}

/// The read-write Service services connect to.
pub fn host(owner: &Owner) -> String {
    format!("{}-rw", super::host(owner))
}

/// The cluster: one instance, the spec's storage, a managed login role per service.
pub fn cluster(platform: &SocialPlatform, owner: &Owner, services: &[&str]) -> DynamicObject {
    let database = &platform.spec.database;
    let roles: Vec<serde_json::Value> = services
        .iter()
        .map(|service| {
            serde_json::json!({
                "name": service,
                "ensure": "present",
                "login": true,
                "passwordSecret": {"name": owner.database_secret_name(service)},
            })
        })
        .collect();
    let mut storage = serde_json::json!({"size": database.storage.0});
    if let Some(class) = &database.storage_class_name {
        storage["storageClass"] = serde_json::json!(class);
    }
    let mut spec = serde_json::json!({
        "instances": 1,
        "storage": storage,
        "managed": {"roles": roles},
    });
    if let Some(image) = &database.image {
        spec["imageName"] = serde_json::json!(image);
    }
    let mut object = DynamicObject::new(&super::host(owner), &cluster_resource())
        .data(serde_json::json!({"spec": spec}));
    object.metadata = owner.meta(super::COMPONENT, super::host(owner));
    object
}

/// A service's database, owned by its role.
pub fn database(owner: &Owner, service: &str) -> DynamicObject {
    let name = format!("{}-{service}", super::host(owner));
    let mut object = DynamicObject::new(&name, &database_resource()).data(serde_json::json!({
        "spec": {
            "name": service,
            "owner": service,
            "ensure": "present",
            "cluster": {"name": super::host(owner)},
        }
    }));
    object.metadata = owner.meta(super::COMPONENT, name);
    object
}

/// Whether the cluster has a ready instance, from its status.
pub fn cluster_ready(cluster: &DynamicObject) -> bool {
    cluster.data["status"]["readyInstances"]
        .as_i64()
        .unwrap_or(0)
        >= 1
}

/// Whether CloudNativePG has created a database, from its status.
pub fn database_applied(database: &DynamicObject) -> bool {
    database.data["status"]["applied"].as_bool() == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_role_and_one_database_per_service() {
        let p = crate::fixtures::platform(serde_json::json!(
            {"host": "demo.example", "database": {"mode": "CloudNativePG", "storage": "3Gi"}}
        ));
        let owner = Owner::of(&p).unwrap();
        let cluster = cluster(&p, &owner, &["auth", "users"]);
        assert_eq!(cluster.metadata.name.as_deref(), Some("demo-postgres"));
        let spec = &cluster.data["spec"];
        assert_eq!(spec["storage"]["size"], "3Gi");
        assert_eq!(spec["managed"]["roles"][1]["name"], "users");
        assert_eq!(
            spec["managed"]["roles"][1]["passwordSecret"]["name"],
            "demo-users-database"
        );
        let db = database(&owner, "users");
        assert_eq!(db.data["spec"]["cluster"]["name"], "demo-postgres");
        assert_eq!(db.data["spec"]["owner"], "users");
        assert_eq!(host(&owner), "demo-postgres-rw");
        assert!(!cluster_ready(&cluster));
    }
}
