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
fn the_checked_in_crds_are_what_the_code_generates() {
    for (file, generated) in agora_operator::crd_files().unwrap() {
        let path = format!("{}/../crds/{file}", env!("CARGO_MANIFEST_DIR"));
        let checked_in = std::fs::read_to_string(&path).unwrap();
        assert!(
            checked_in == generated,
            "crds/{file} is stale: run `hack/crds.sh`"
        );
    }
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
        (
            json!({"host": "x.example", "database": {"cloudNativePG": {"instances": 3}}}),
            "needs database.mode CloudNativePG",
        ),
        (
            json!({"host": "x.example", "database": {"mode": "CloudNativePG", "cloudNativePG": {"instances": 10}}}),
            "instances",
        ),
        (
            json!({"host": "x.example", "database": {"mode": "CloudNativePG", "cloudNativePG": {"instances": 2, "synchronous": {"number": 2}}}}),
            "must be below instances",
        ),
        (
            json!({"host": "x.example", "database": {"mode": "CloudNativePG", "cloudNativePG": {"synchronous": {"method": "all", "number": 1}}}}),
            "method",
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

fn backup_spec(schedule: &str) -> Value {
    json!({
        "schedule": schedule,
        "destination": {"s3": {"bucket": "backups", "credentialsSecret": "s3"}},
        "encryptionKeySecret": "backup-key",
    })
}

#[tokio::test]
async fn backup_and_restore_specs_are_checked_by_the_api_server() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-backup").await.unwrap();
    let api: Api<SocialPlatform> = ns.api();
    let host = "x.example";
    let mut cases = vec![];
    for schedule in [
        "not a cron",
        "61 * * * *",
        "0 3 * *",
        "0 24 * * *",
        "0 3 * * * *",
    ] {
        cases.push((
            json!({"host": host, "backup": backup_spec(schedule)}),
            "schedule",
        ));
    }
    let with = |path: &str, value: Value| {
        let mut spec = backup_spec("0 3 * * *");
        spec[path] = value;
        json!({"host": host, "backup": spec})
    };
    cases.extend([
        (with("retention", json!({"count": 0})), "count"),
        (with("retention", json!({})), "count or maxAge"),
        (with("retention", json!({"maxAge": "30 days"})), "maxAge"),
        (
            with(
                "destination",
                json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3"}, "pvc": {"size": "1Gi"}}),
            ),
            "exactly one of s3 and pvc",
        ),
        (with("destination", json!({})), "exactly one of s3 and pvc"),
        (
            with(
                "destination",
                json!({"s3": {"bucket": "b-1", "credentialsSecret": "s3", "prefix": "/abs"}}),
            ),
            "prefix",
        ),
        (
            json!({"host": host, "restore": {"encryptionKeySecret": "k"}}),
            "exactly one of backup",
        ),
        (
            json!({"host": host, "restore": {"backup": "b", "s3": {"bucket": "b-1", "credentialsSecret": "s3"}, "path": "p", "encryptionKeySecret": "k"}}),
            "exactly one of backup",
        ),
        (
            json!({"host": host, "restore": {"s3": {"bucket": "b-1", "credentialsSecret": "s3"}, "encryptionKeySecret": "k"}}),
            "go together",
        ),
        (
            json!({"host": host, "restore": {"s3": {"bucket": "b-1", "credentialsSecret": "s3"}, "path": "p"}}),
            "encryptionKeySecret",
        ),
        // CloudNativePG: retention by age, an object store, instants in its mode only.
        (
            json!({"host": host, "database": {"mode": "CloudNativePG"}, "backup": backup_spec("@daily")}),
            "by age",
        ),
        (
            {
                let mut spec = with("retention", json!({"maxAge": "36h"}));
                spec["database"] = json!({"mode": "CloudNativePG"});
                spec
            },
            "days or weeks",
        ),
        (
            {
                let mut spec = with("destination", json!({"pvc": {"size": "1Gi"}}));
                spec["database"] = json!({"mode": "CloudNativePG"});
                spec["backup"]["retention"] = json!({"maxAge": "30d"});
                spec
            },
            "backup.destination.s3",
        ),
        (
            json!({"host": host, "restore": {"backup": "b", "targetTime": "2026-12-07T10:00:00Z"}}),
            "targetTime needs database.mode CloudNativePG",
        ),
        (
            json!({"host": host, "database": {"mode": "CloudNativePG"}, "restore": {"s3": {"bucket": "b-1", "credentialsSecret": "s3"}, "path": "p", "encryptionKeySecret": "k", "targetTime": "2026-12-07T10:00:00Z"}}),
            "targetTime needs",
        ),
        (
            json!({"host": host, "database": {"mode": "CloudNativePG"}, "restore": {"backup": "b", "targetTime": "yesterday"}}),
            "targetTime",
        ),
    ]);
    for (i, (spec, needle)) in cases.into_iter().enumerate() {
        let message = refusal(create_raw(&api, &format!("bad-{i}"), spec.clone()).await);
        assert!(message.contains(needle), "{spec}: {message}");
    }
    // What the schema allows, with its defaults.
    for (i, schedule) in [
        "0 3 * * *",
        "*/15 * * * *",
        "@daily",
        "0 0 1 JAN,jul MON-FRI",
    ]
    .into_iter()
    .enumerate()
    {
        let created = create_raw(
            &api,
            &format!("good-{i}"),
            json!({"host": host, "backup": backup_spec(schedule)}),
        )
        .await
        .unwrap();
        let backup = created.spec.backup.unwrap();
        assert_eq!(backup.retention.count, Some(7), "{schedule}");
    }
    // The CloudNativePG mode with backups kept by age, and restored to an instant.
    let mut spec = backup_spec("@daily");
    spec["retention"] = json!({"maxAge": "30d"});
    create_raw(
        &api,
        "cnpg-backed-up",
        json!({"host": host, "database": {"mode": "CloudNativePG", "cloudNativePG": {"instances": 3, "synchronous": {"number": 1}}}, "backup": spec}),
    )
    .await
    .unwrap();
    create_raw(
        &api,
        "cnpg-restored",
        json!({"host": host, "database": {"mode": "CloudNativePG"}, "restore": {"backup": "nightly", "targetTime": "2026-12-07T10:00:00.5+01:00"}}),
    )
    .await
    .unwrap();
    // A restore is set at creation only, and never changed.
    create_raw(
        &api,
        "restored",
        json!({"host": host, "restore": {"backup": "nightly", "encryptionKeySecret": "k"}}),
    )
    .await
    .unwrap();
    for change in [
        json!({"spec": {"restore": {"backup": "other"}}}),
        json!({"spec": {"restore": null}}),
    ] {
        let refused = api
            .patch(
                "restored",
                &PatchParams::default(),
                &Patch::Merge(change.clone()),
            )
            .await;
        assert!(
            matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("restore")),
            "{change}: {refused:?}"
        );
    }
    let added = api
        .patch(
            "good-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restore": {"backup": "nightly"}}})),
        )
        .await;
    assert!(
        matches!(&added, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("when the platform is created")),
        "{added:?}"
    );
    // A backup object names its platform; its spec never changes.
    let backups: Api<agora_operator::backup::SocialPlatformBackup> = ns.api();
    let backup: agora_operator::backup::SocialPlatformBackup = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1", "kind": "SocialPlatformBackup",
        "metadata": {"name": "by-hand"}, "spec": {"platform": "good-0"},
    }))
    .unwrap();
    backups
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();
    let changed = backups
        .patch(
            "by-hand",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"platform": "good-1"}})),
        )
        .await;
    assert!(
        matches!(&changed, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("cannot change")),
        "{changed:?}"
    );
    let mut bad = backup.clone();
    bad.metadata.name = Some("bad".into());
    bad.spec.platform = "Not_A_Name".into();
    assert!(backups.create(&PostParams::default(), &bad).await.is_err());
    ns.cleanup().await.unwrap();
}
