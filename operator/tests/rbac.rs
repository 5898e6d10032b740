//! The operator's RBAC rules (`agora_operator::rbac`) are enough for what it does: a
//! ServiceAccount bound to exactly those rules runs the controller (impersonated, on
//! the real API server): a platform is created, scaled, shrunk and moved to a Traefik
//! edge, its status written, and the leader Lease taken and released. The same calls
//! without the binding are refused, so the test can fail. The chart's copy of the rules
//! is what `agora-operator rbac` prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_kube_testenv::TestEnv;
use agora_operator::SocialPlatform;
use agora_operator::controller::{self, Context};
use agora_operator::leader::{self, Outcome, Timing};
use agora_operator::rbac;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use support::install_crd;

/// A client acting as `system:serviceaccount:<namespace>:<name>`.
fn impersonating(env: &TestEnv, namespace: &str, name: &str) -> kube::Client {
    let mut config = env.config().clone();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    kube::Client::try_from(config).unwrap()
}

/// Binds ServiceAccount `name` to the operator's rules: the cluster rules through a
/// ClusterRole named after the test namespace (removed at the end), the Lease rules in
/// the namespace.
async fn bind(env: &TestEnv, namespace: &str, name: &str) -> String {
    let cluster_role = format!("agora-operator-{namespace}");
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": cluster_role, "labels": {"agora.dev/test-env": "true"}},
        "rules": rbac::policy_rules(rbac::CLUSTER_RULES),
    }))
    .unwrap();
    Api::<ClusterRole>::all(env.client())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": cluster_role, "labels": {"agora.dev/test-env": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": subject,
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(env.client())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "agora-operator-leases"},
        "rules": rbac::policy_rules(rbac::NAMESPACE_RULES),
    }))
    .unwrap();
    Api::<Role>::namespaced(env.client(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "agora-operator-leases"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agora-operator-leases"},
        "subjects": subject,
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(env.client(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    cluster_role
}

fn condition(platform: &SocialPlatform, type_: &str) -> Option<(String, String)> {
    platform.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    })
}

#[tokio::test]
async fn the_operator_works_with_exactly_its_rbac_rules() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-rbac").await.unwrap();
    let namespace = ns.name().to_owned();
    for name in ["agora-operator", "unbound"] {
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        ns.api::<ServiceAccount>()
            .create(&PostParams::default(), &account)
            .await
            .unwrap();
    }
    let cluster_role = bind(&env, &namespace, "agora-operator").await;
    let operator = Arc::new(Context::new(impersonating(
        &env,
        &namespace,
        "agora-operator",
    )));
    let unbound = Arc::new(Context::new(impersonating(&env, &namespace, "unbound")));

    // Created (as an admin would) and reconciled by the operator's identity.
    let api: Api<SocialPlatform> = ns.api();
    let platform: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": "demo"},
        "spec": {"host": "demo.localtest.me", "edge": {"authMiddleware": "None"},
                 "services": {"events": {"enabled": true}}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &platform).await.unwrap();
    let reconcile = |ctx: &Arc<Context>| {
        let ctx = ctx.clone();
        let api = api.clone();
        async move { controller::reconcile(Arc::new(api.get("demo").await.unwrap()), ctx).await }
    };
    // Without the binding the very first call is refused: impersonation is in force.
    let refused = reconcile(&unbound).await;
    assert!(refused.is_err(), "an unbound account reconciled");

    reconcile(&operator).await.unwrap();
    reconcile(&operator).await.unwrap(); // the steady state reads back what it wrote
    let written = api.get("demo").await.unwrap();
    assert!(condition(&written, "Ready").is_some(), "status written");
    let deployments = ns.api::<Deployment>();
    assert!(deployments.get_opt("demo-photos").await.unwrap().is_some());

    // Scaled (budgets, autoscalers), shrunk (deletions), moved to a Traefik edge.
    let change = json!({"spec": {
        "edge": {"kind": "Ingress", "authMiddleware": "Traefik"},
        "services": {
            "photos": {"enabled": false},
            "users": {"replicas": 2},
            "relations": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
        },
    }});
    api.patch("demo", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    reconcile(&operator).await.unwrap();
    assert!(deployments.get_opt("demo-photos").await.unwrap().is_none());
    let moved = api.get("demo").await.unwrap();
    // Traefik's CRD is absent here: a 404 reported, not a 403.
    assert_eq!(
        condition(&moved, "EdgeReady").map(|c| c.1),
        Some("MiddlewareCRDMissing".to_owned())
    );

    // Leader election: the Lease is taken, then released when the work ends.
    let outcome = leader::lead(
        impersonating(&env, &namespace, "agora-operator"),
        &namespace,
        "rbac-test",
        Timing::default(),
        async {},
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Finished), "{outcome:?}");

    for delete in [
        Api::<ClusterRoleBinding>::all(env.client())
            .delete(&cluster_role, &DeleteParams::default())
            .await
            .map(drop),
        Api::<ClusterRole>::all(env.client())
            .delete(&cluster_role, &DeleteParams::default())
            .await
            .map(drop),
    ] {
        delete.unwrap();
    }
    ns.cleanup().await.unwrap();
}

#[test]
fn the_chart_carries_the_rules_and_the_crd_the_code_prints() {
    let chart = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/agora-operator/files"
    );
    let rules = std::fs::read_to_string(format!("{chart}/rbac.yaml")).unwrap();
    assert_eq!(
        rules,
        rbac::rules_yaml().unwrap(),
        "charts/agora-operator/files/rbac.yaml is stale: run `cargo run -q -p agora-operator -- rbac > charts/agora-operator/files/rbac.yaml`"
    );
    // The operator chart templates its copy; the platform chart installs its copy from
    // crds/ (see charts/agora/values.yaml).
    let charts = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts");
    for (file, generated) in agora_operator::crd_files().unwrap() {
        for copy in ["agora-operator/files/crds", "agora/crds"] {
            let crd = std::fs::read_to_string(format!("{charts}/{copy}/{file}")).unwrap();
            assert!(
                crd == generated,
                "charts/{copy}/{file} is stale: run `hack/crds.sh`"
            );
        }
    }
}
