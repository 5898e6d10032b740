//! `database.mode: CloudNativePG`: the operator asks CloudNativePG for the database
//! instead of running one: a `Cluster` (`<platform>-postgres`) whose managed roles are
//! the services' (passwords from their generated Secrets), and one `Database` per
//! service. Services connect to the cluster's read-write Service, `<cluster>-rw`.
//! With `spec.backup` (a bucket) the cluster archives its WAL and takes base backups
//! there ([`archive`]); a platform restored with `restore.targetTime` is bootstrapped
//! by CloudNativePG's recovery from its source's archive to that instant.

use crate::backup::restore::PointInTime;
use crate::backup::spec::BackupBucket;
use crate::crd::{CloudNativePgCluster, SocialPlatform};
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

/// CloudNativePG's `Backup` API: a platform backup's base backup.
pub fn backup_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Backup"),
        "backups",
    )
}

/// The read-write Service services connect to.
pub fn host(owner: &Owner) -> String {
    format!("{}-rw", super::host(owner))
}

/// Where a cluster archives in `bucket`: `s3://<bucket>/<prefix>/cloudnative-pg`, beside
/// the platform backups, each cluster under its own name (CloudNativePG's server name).
pub fn archive(bucket: &BackupBucket) -> serde_json::Value {
    let path = match &bucket.prefix {
        Some(prefix) => format!("s3://{}/{prefix}/cloudnative-pg", bucket.bucket),
        None => format!("s3://{}/cloudnative-pg", bucket.bucket),
    };
    let key = |name: &str| serde_json::json!({"name": bucket.credentials_secret, "key": name});
    let mut store = serde_json::json!({
        "destinationPath": path,
        "s3Credentials": {
            "accessKeyId": key("AWS_ACCESS_KEY_ID"),
            "secretAccessKey": key("AWS_SECRET_ACCESS_KEY"),
        },
        "wal": {"compression": "gzip"},
        "data": {"compression": "gzip"},
    });
    if let Some(endpoint) = &bucket.endpoint {
        store["endpointURL"] = serde_json::json!(endpoint);
    }
    store
}

/// The cluster: `database.cloudNativePG`'s instances, replication, volumes, resources
/// and spread; the spec's storage; a managed login role per service; its archive with
/// `spec.backup`; a recovery to `point_in_time` for a platform restored to an instant.
pub fn cluster(
    platform: &SocialPlatform,
    owner: &Owner,
    services: &[&str],
    point_in_time: Option<&PointInTime>,
) -> DynamicObject {
    let database = &platform.spec.database;
    let shape = database
        .cloud_native_pg
        .clone()
        .unwrap_or(CloudNativePgCluster {
            instances: 1,
            synchronous: None,
            wal_storage: None,
            resources: None,
            affinity: None,
            enable_pod_monitor: false,
        });
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
        "instances": shape.instances,
        "storage": storage,
        "managed": {"roles": roles},
        // A new primary at once when the old one is lost; a primary's upgrade by
        // switchover, without waiting for a person.
        "failoverDelay": 0,
        "primaryUpdateStrategy": "unsupervised",
        "monitoring": {"enablePodMonitor": shape.enable_pod_monitor},
    });
    if let Some(image) = &database.image {
        spec["imageName"] = serde_json::json!(image);
    }
    if let Some(sync) = &shape.synchronous {
        spec["postgresql"] = serde_json::json!({"synchronous": {
            "method": sync.method,
            "number": sync.number,
            "dataDurability": sync.data_durability,
        }});
    }
    if let Some(wal) = &shape.wal_storage {
        let mut storage = serde_json::json!({"size": wal.size.0});
        if let Some(class) = &wal.storage_class_name {
            storage["storageClass"] = serde_json::json!(class);
        }
        spec["walStorage"] = storage;
    }
    if let Some(resources) = &shape.resources {
        spec["resources"] = serde_json::to_value(resources).unwrap_or_default();
    }
    if let Some(affinity) = &shape.affinity {
        let mut value = serde_json::json!({
            "enablePodAntiAffinity": true,
            "podAntiAffinityType": affinity.pod_anti_affinity_type,
        });
        if let Some(key) = &affinity.topology_key {
            value["topologyKey"] = serde_json::json!(key);
        }
        spec["affinity"] = value;
    }
    if let Some(backup) = &platform.spec.backup
        && let Some(bucket) = &backup.destination.s3
    {
        // From the primary: a replica's base backup starts at its last restartpoint,
        // which may predate the archive (backups enabled on a running cluster) and
        // then cannot be restored.
        let mut value =
            serde_json::json!({"barmanObjectStore": archive(bucket), "target": "primary"});
        // The CRD allows only days and weeks here (CloudNativePG's own units).
        if let Some(age) = &backup.retention.max_age {
            value["retentionPolicy"] = serde_json::json!(age);
        }
        spec["backup"] = value;
    }
    if let Some(pit) = point_in_time {
        let mut source = archive(&pit.bucket);
        source["serverName"] = serde_json::json!(pit.server_name);
        spec["externalClusters"] =
            serde_json::json!([{"name": "origin", "barmanObjectStore": source}]);
        spec["bootstrap"] = serde_json::json!({"recovery": {
            "source": "origin",
            "recoveryTarget": {"targetTime": pit.target_time},
        }});
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

/// CloudNativePG's base backup `name` of the platform's cluster into its archive, owned
/// by the platform backup it belongs to.
pub fn base_backup(
    name: &str,
    owner: &Owner,
    backup: &crate::backup::SocialPlatformBackup,
) -> DynamicObject {
    use kube::Resource;
    let mut object = DynamicObject::new(name, &backup_resource()).data(serde_json::json!({
        "spec": {"cluster": {"name": super::host(owner)}, "method": "barmanObjectStore"}
    }));
    object.metadata = owner.meta(crate::backup::jobs::COMPONENT, name.to_owned());
    object.metadata.owner_references = backup.controller_owner_ref(&()).map(|r| vec![r]);
    object
}

/// Where a base backup is, from its `status.phase` (`completed`, `failed`, or on its way).
pub fn backup_state(backup: &DynamicObject) -> crate::backup::controller::JobState {
    use crate::backup::controller::JobState;
    let status = &backup.data["status"];
    match status["phase"].as_str() {
        Some("completed") => JobState::Complete,
        Some("failed") => JobState::Failed(format!(
            "CloudNativePG's base backup failed: {}",
            status["error"].as_str().unwrap_or("no reason given")
        )),
        _ => JobState::Active,
    }
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
        let cluster = cluster(&p, &owner, &["auth", "users"], None);
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
        assert_eq!(spec["instances"], 1);
        assert!(spec.get("postgresql").is_none(), "asynchronous by default");
    }

    #[test]
    fn the_shape_is_cloudnativepg_s_own_settings() {
        let p = crate::fixtures::platform(serde_json::json!({"host": "demo.example",
            "database": {"mode": "CloudNativePG", "storage": "3Gi", "storageClassName": "fast",
            "cloudNativePG": {"instances": 3,
                "synchronous": {"method": "any", "number": 1},
                "walStorage": {"size": "1Gi"},
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                "affinity": {"podAntiAffinityType": "required"},
                "enablePodMonitor": true}}}));
        let owner = Owner::of(&p).unwrap();
        let spec = &cluster(&p, &owner, &["auth"], None).data["spec"];
        assert_eq!(spec["instances"], 3);
        assert_eq!(
            spec["postgresql"]["synchronous"],
            serde_json::json!({"method": "any", "number": 1, "dataDurability": "required"})
        );
        assert_eq!(spec["storage"]["storageClass"], "fast");
        assert_eq!(spec["walStorage"], serde_json::json!({"size": "1Gi"}));
        assert_eq!(spec["resources"]["requests"]["memory"], "256Mi");
        assert_eq!(spec["affinity"]["podAntiAffinityType"], "required");
        assert_eq!(spec["affinity"]["enablePodAntiAffinity"], true);
        assert_eq!(spec["monitoring"]["enablePodMonitor"], true);
        assert_eq!(spec["failoverDelay"], 0);
        assert!(
            spec.get("backup").is_none(),
            "no archive without spec.backup"
        );
        assert!(spec.get("bootstrap").is_none());
    }

    #[test]
    fn backups_archive_beside_the_platform_s_and_a_restore_recovers_to_an_instant() {
        let p = crate::fixtures::platform(serde_json::json!({"host": "demo.example",
            "database": {"mode": "CloudNativePG"},
            "backup": {"schedule": "@daily", "retention": {"maxAge": "30d"},
                "destination": {"s3": {"bucket": "b-1", "prefix": "agora",
                    "endpoint": "http://s3.local:9000", "credentialsSecret": "s3"}},
                "encryptionKeySecret": "k"}}));
        let owner = Owner::of(&p).unwrap();
        let pit = PointInTime {
            target_time: "2026-12-07T10:00:00Z".into(),
            bucket: serde_json::from_value(
                serde_json::json!({"bucket": "b-0", "credentialsSecret": "old-s3"}),
            )
            .unwrap(),
            server_name: "old-postgres".into(),
        };
        let spec = &cluster(&p, &owner, &["auth"], Some(&pit)).data["spec"];
        let store = &spec["backup"]["barmanObjectStore"];
        assert_eq!(store["destinationPath"], "s3://b-1/agora/cloudnative-pg");
        assert_eq!(store["endpointURL"], "http://s3.local:9000");
        assert_eq!(
            store["s3Credentials"]["secretAccessKey"],
            serde_json::json!({"name": "s3", "key": "AWS_SECRET_ACCESS_KEY"})
        );
        assert_eq!(spec["backup"]["retentionPolicy"], "30d");
        assert_eq!(spec["backup"]["target"], "primary");
        assert_eq!(
            spec["bootstrap"]["recovery"]["recoveryTarget"]["targetTime"],
            "2026-12-07T10:00:00Z"
        );
        let origin = &spec["externalClusters"][0];
        assert_eq!(origin["name"], spec["bootstrap"]["recovery"]["source"]);
        assert_eq!(
            origin["barmanObjectStore"]["destinationPath"],
            "s3://b-0/cloudnative-pg"
        );
        assert_eq!(origin["barmanObjectStore"]["serverName"], "old-postgres");
    }
}
