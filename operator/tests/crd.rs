//! The SocialPlatform CRD: the checked-in YAML is what the code generates, and the
//! real API server of `hack/k8s-env.sh` enforces its schema (defaults, bounds, enums,
//! the host pattern and the CEL rules). These tests fail, never skip, without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_kube_testenv::TestEnv;
use agora_operator::SocialPlatform;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::install_crd;

#[test]
fn the_checked_in_crd_is_what_the_code_generates() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/socialplatforms.agora.dev.yaml"
    );
    let checked_in = std::fs::read_to_string(path).unwrap();
    let generated = agora_operator::crd_yaml().unwrap();
    assert!(
        checked_in == generated,
        "crds/socialplatforms.agora.dev.yaml is stale: run `cargo run -p agora-operator -- crd > crds/socialplatforms.agora.dev.yaml`"
    );
}

fn platform(name: &str, spec: Value) -> SocialPlatform {
    serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// Creates from raw JSON (the typed struct would fill in the defaults itself, and
/// could not express invalid specs).
async fn create_raw(
    api: &Api<SocialPlatform>,
    name: &str,
    spec: Value,
) -> Result<SocialPlatform, kube::Error> {
    let raw: Api<DynamicObject> = Api::namespaced_with(
        api.clone().into_client(),
        api.namespace().unwrap(),
        &ApiResource::erase::<SocialPlatform>(&()),
    );
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    let created = raw.create(&PostParams::default(), &object).await?;
    Ok(serde_json::from_value(serde_json::to_value(created).unwrap()).unwrap())
}

fn refusal(result: Result<SocialPlatform, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        other => panic!("expected a 422 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_minimal_platform_gets_every_default() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-defaults").await.unwrap();
    let api: Api<SocialPlatform> = ns.api();
    let created = create_raw(&api, "demo", json!({"host": "demo.localtest.me"}))
        .await
        .unwrap();
    let spec = serde_json::to_value(&created.spec).unwrap();
    assert_eq!(spec["database"]["mode"], "Managed");
    assert_eq!(spec["database"]["storage"], "1Gi");
    assert_eq!(spec["edge"]["kind"], "Ingress");
    assert_eq!(spec["edge"]["authMiddleware"], "Traefik");
    assert_eq!(spec["photos"]["storage"]["pvc"]["size"], "5Gi");
    for service in ["auth", "users", "photos", "relations"] {
        assert_eq!(spec["services"][service]["enabled"], true, "{service}");
        assert_eq!(spec["services"][service]["replicas"], 1, "{service}");
    }
    assert_eq!(spec["services"]["events"]["enabled"], false);
    assert_eq!(spec["version"], env!("CARGO_PKG_VERSION"));
    // The typed struct round-trips what the server stored.
    assert_eq!(created.spec, platform("demo", spec).spec);
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn invalid_platforms_are_refused_by_the_api_server() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-invalid").await.unwrap();
    let api: Api<SocialPlatform> = ns.api();
    let cases = [
        (
            json!({"host": "x.example", "services": {"users": {"replicas": -1}}}),
            "replicas",
        ),
        (
            json!({"host": "x.example", "services": {"users": {"replicas": 101}}}),
            "replicas",
        ),
        (json!({"host": "Not_A_Host"}), "host"),
        (
            json!({"host": "x.example", "database": {"mode": "Sqlite"}}),
            "mode",
        ),
        (
            json!({"host": "x.example", "services": {"photos": {"replicas": 2}}}),
            "needs S3",
        ),
        (
            json!({"host": "x.example", "services": {"photos": {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}}}}),
            "needs S3",
        ),
        (
            json!({"host": "x.example", "services": {"users": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}}),
            "minReplicas",
        ),
        (
            json!({"host": "x.example", "photos": {"storage": {"s3": {"secretRef": {"name": "s3"}}}}}),
            "bucket",
        ),
        (
            json!({"host": "x.example", "photos": {"storage": {"pvc": {"size": "1Gi"}, "s3": {"bucket": "pics", "secretRef": {"name": "s3"}}}}}),
            "exactly one",
        ),
        (
            json!({"host": "x.example", "database": {"mode": "External"}}),
            "secretRef",
        ),
        (
            json!({"host": "x.example", "edge": {"kind": "GatewayAPI"}}),
            "Ingress",
        ),
    ];
    for (i, (spec, needle)) in cases.into_iter().enumerate() {
        let message = refusal(create_raw(&api, &format!("bad-{i}"), spec.clone()).await);
        assert!(message.contains(needle), "{spec}: {message}");
    }
    // What the schema allows: several photos replicas on S3.
    create_raw(
        &api,
        "s3-photos",
        json!({"host": "x.example", "photos": {"storage": {"s3": {"bucket": "pics", "secretRef": {"name": "s3"}}}}, "services": {"photos": {"replicas": 3}}}),
    )
    .await
    .unwrap();
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_database_mode_cannot_change_after_creation() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-immutable").await.unwrap();
    let api: Api<SocialPlatform> = ns.api();
    create_raw(&api, "demo", json!({"host": "demo.example"}))
        .await
        .unwrap();
    let change = api
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"database": {"mode": "CloudNativePG"}}})),
        )
        .await;
    match change {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert!(
                status.message.contains("cannot change"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Other changes are fine.
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"services": {"users": {"replicas": 3}}}})),
    )
    .await
    .unwrap();
    ns.cleanup().await.unwrap();
}
