//! `SocialPlatform`s for the unit tests: one place to make them, as the API server
//! would store them (name, namespace, uid, generation).

use crate::crd::SocialPlatform;
use crate::owner::Owner;

/// A stored platform `demo` in namespace `social` with this spec.
pub fn platform(spec: serde_json::Value) -> SocialPlatform {
    let mut platform: SocialPlatform = serde_json::from_value(serde_json::json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": "demo", "namespace": "social", "uid": "1234"},
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("not a SocialPlatform spec: {e}"));
    platform.metadata.generation = Some(1);
    platform
}

/// The minimal platform (`host` only: every default).
pub fn minimal() -> SocialPlatform {
    platform(serde_json::json!({"host": "demo.example"}))
}

/// The owner of [`minimal`]'s children.
pub fn owner() -> Owner {
    Owner::of(&minimal()).unwrap_or_else(|e| panic!("{e}"))
}

/// One platform of each shape the builders branch on: every database mode, every
/// edge, photos on a volume and in S3, services disabled, replicas and autoscaling.
pub fn every_shape() -> Vec<SocialPlatform> {
    [
        serde_json::json!({"host": "demo.example"}),
        serde_json::json!({"host": "demo.example", "backup": {"schedule": "0 3 * * *",
            "destination": {"s3": {"bucket": "backups", "prefix": "agora", "endpoint": "http://s3:7070",
                "forcePathStyle": true, "credentialsSecret": "backup-s3"}},
            "encryptionKeySecret": "backup-key"}}),
        serde_json::json!({"host": "demo.example", "database": {"mode": "CloudNativePG"},
            "services": {"events": {"enabled": true}, "users": {"replicas": 3},
                "relations": {"autoscaling": {"minReplicas": 2, "maxReplicas": 5}}}}),
        serde_json::json!({"host": "demo.example",
            "database": {"mode": "External", "external": {"secretRef": {"name": "urls"}}},
            "photos": {"storage": {"s3": {"bucket": "photos", "secretRef": {"name": "s3"}}}},
            "edge": {"authMiddleware": "Nginx", "className": "nginx"},
            "backup": {"schedule": "@daily", "destination": {"pvc": {}},
                "encryptionKeySecret": "backup-key"}}),
        serde_json::json!({"host": "demo.example",
            "edge": {"kind": "GatewayAPI", "authMiddleware": "EnvoyGateway", "gateway": {"name": "eg"}},
            "services": {"gateway": {"enabled": false}, "photos": {"enabled": false}}}),
    ]
    .into_iter()
    .map(platform)
    .collect()
}
