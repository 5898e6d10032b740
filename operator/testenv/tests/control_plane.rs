//! Acceptance tests of the local control plane (`eval "$(hack/k8s-env.sh start)"` first).
//!
//! They FAIL, never skip, when the control plane is not running.

use std::collections::BTreeMap;
use std::time::Duration;

use agora_kube_testenv::{MANAGED_LABEL, TestEnv, wait_for_object, wait_until};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MINUTE: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32) -> Result<Deployment, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "containers": [{
                        "name": "main",
                        "image": "registry.invalid/agora/never-pulled:1"
                    }]
                }
            }
        }
    }))
}

fn deployment_available(d: &Deployment, replicas: i32) -> bool {
    let Some(status) = &d.status else {
        return false;
    };
    let available = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Available" && c.status == "True");
    available
        && status.available_replicas == Some(replicas)
        && status.ready_replicas == Some(replicas)
        && status.observed_generation == d.metadata.generation
}

fn pod_running_and_ready(p: &Pod) -> bool {
    let Some(status) = &p.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Creates a 2-replica Deployment, checks it becomes Available with 2 Running+Ready pods within
/// a minute, deletes it with `policy`, and checks its ReplicaSet and pods are garbage-collected.
async fn deployment_lifecycle(prefix: &str, policy: DeleteParams) -> TestResult {
    let env = TestEnv::connect().await?;
    let ns = env.namespace(prefix).await?;
    let deployments: Api<Deployment> = ns.api();
    let replica_sets: Api<ReplicaSet> = ns.api();
    let pods: Api<Pod> = ns.api();
    let selector = ListParams::default().labels("app=web");

    deployments
        .create(&PostParams::default(), &deployment("web", 2)?)
        .await?;
    wait_for_object(&deployments, "web", MINUTE, |d| deployment_available(d, 2)).await?;

    let running = pods.list(&selector).await?;
    assert_eq!(running.items.len(), 2, "pods: {:?}", running.items);
    for pod in &running.items {
        assert!(pod_running_and_ready(pod), "pod not Running/Ready: {pod:?}");
        assert!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| n.starts_with("kwok-node-")),
            "pod not scheduled to a kwok node: {pod:?}"
        );
    }
    let owned = replica_sets.list(&selector).await?;
    assert_eq!(owned.items.len(), 1, "replica sets: {:?}", owned.items);

    deployments.delete("web", &policy).await?;
    wait_until(
        "deployment, replica sets and pods to be garbage-collected",
        MINUTE,
        || async {
            Ok(deployments.get_opt("web").await?.is_none()
                && replica_sets.list(&selector).await?.items.is_empty()
                && pods.list(&selector).await?.items.is_empty())
        },
    )
    .await?;

    ns.cleanup().await?;
    Ok(())
}

#[tokio::test]
async fn deployment_becomes_available_and_is_garbage_collected_foreground() -> TestResult {
    deployment_lifecycle("deploy-foreground", DeleteParams::foreground()).await
}

#[tokio::test]
async fn deployment_becomes_available_and_is_garbage_collected_background() -> TestResult {
    deployment_lifecycle("deploy-background", DeleteParams::background()).await
}

#[tokio::test]
async fn job_pod_completes_and_job_succeeds() -> TestResult {
    let env = TestEnv::connect().await?;
    let ns = env.namespace("job").await?;
    let jobs: Api<Job> = ns.api();
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": "once" },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{ "name": "main", "image": "registry.invalid/agora/never-pulled:1" }]
                }
            }
        }
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    let done = wait_for_object(&jobs, "once", MINUTE, |j| {
        j.status.as_ref().is_some_and(|s| {
            s.succeeded == Some(1)
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Complete" && c.status == "True")
        })
    })
    .await?;
    assert_eq!(
        done.status.as_ref().and_then(|s| s.failed),
        None,
        "job: {done:?}"
    );

    let pods: Api<Pod> = ns.api();
    let job_pods = pods
        .list(&ListParams::default().labels("job-name=once"))
        .await?;
    assert_eq!(job_pods.items.len(), 1, "pods: {:?}", job_pods.items);
    assert_eq!(
        job_pods.items[0]
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref()),
        Some("Succeeded")
    );

    ns.cleanup().await?;
    Ok(())
}

#[tokio::test]
async fn namespace_helper_creates_and_deletes_namespaces() -> TestResult {
    let env = TestEnv::connect().await?;
    let namespaces: Api<Namespace> = Api::all(env.client());

    // Explicit cleanup: created with labels, gone afterwards.
    let ns = env.namespace("Namespace_Helper").await?;
    let name = ns.name().to_owned();
    assert!(name.starts_with("namespace-helper-"), "{name}");
    let created = namespaces.get(&name).await?;
    let labels: BTreeMap<String, String> = created.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get(MANAGED_LABEL).map(String::as_str), Some("true"));
    let other = env.namespace("Namespace_Helper").await?;
    assert_ne!(other.name(), name);
    ns.cleanup().await?;
    assert!(
        namespaces.get_opt(&name).await?.is_none(),
        "{name} still exists"
    );

    // Drop: the namespace is deleted (best-effort, without waiting).
    let other_name = other.name().to_owned();
    drop(other);
    wait_until(
        "dropped namespace to be deleted",
        Duration::from_secs(120),
        || async {
            Ok(namespaces
                .get_opt(&other_name)
                .await?
                .is_none_or(|n| n.metadata.deletion_timestamp.is_some()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn fake_nodes_are_ready() -> TestResult {
    let env = TestEnv::connect().await?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(env.client());
    let list = nodes.list(&ListParams::default()).await?;
    assert!(!list.items.is_empty(), "no nodes");
    for node in &list.items {
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        assert!(ready, "node not Ready: {node:?}");
    }
    Ok(())
}
