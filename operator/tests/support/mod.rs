//! What the operator's integration tests share.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
#![allow(dead_code)]

use agora_kube_testenv::{TestEnv, wait_until};
use agora_operator::SocialPlatform;
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

/// Installs (or updates) the SocialPlatform and SocialPlatformBackup CRDs and waits
/// until they are established.
pub async fn install_crd(env: &TestEnv) {
    install(env, SocialPlatform::crd()).await;
    install(env, agora_operator::backup::SocialPlatformBackup::crd()).await;
}

async fn install(env: &TestEnv, crd: CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("agora-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    wait_until(
        "the CRD is established",
        Duration::from_secs(30),
        || async {
            let crd = crds.get(&name).await?;
            Ok(crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            }))
        },
    )
    .await
    .unwrap();
}

/// Volumes for the claims of `platform`, the database's and the photos' (the test
/// control plane has no provisioner), each bound to its claim so no other test's claim
/// can take it.
pub async fn volumes_for(env: &TestEnv, namespace: &str, platform: &str) {
    let volumes: Api<PersistentVolume> = Api::all(env.client());
    for (claim, size) in [
        (format!("data-{platform}-postgres-0"), "1Gi"),
        (format!("{platform}-photos"), "5Gi"),
    ] {
        let pv: PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": format!("{namespace}-{claim}"), "labels": {"agora.dev/test-env": "true"}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "claimRef": {"namespace": namespace, "name": claim},
                "hostPath": {"path": format!("/tmp/{namespace}-{claim}")},
            }
        }))
        .unwrap();
        volumes.create(&PostParams::default(), &pv).await.unwrap();
    }
}
