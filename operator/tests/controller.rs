//! The controller against the real control plane of `hack/k8s-env.sh` (kwok nodes make
//! pods Ready and Job pods Succeeded): a minimal platform gets every child, owned and
//! labelled, and becomes Ready; drift is corrected; spec changes roll out; disabling a
//! service removes its children; a steady state writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_kube_testenv::{TestEnv, wait_until};
use agora_operator::SocialPlatform;
use agora_operator::controller::{self, Context};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::{install_crd, volumes_for};

fn ready(platform: &SocialPlatform) -> bool {
    platform.status.as_ref().is_some_and(|s| {
        s.observed_generation == platform.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn wait_ready(api: &Api<SocialPlatform>, name: &str) -> SocialPlatform {
    wait_until(
        "the platform is Ready",
        Duration::from_secs(120),
        || async { Ok(ready(&api.get(name).await?)) },
    )
    .await
    .unwrap_or_else(|e| {
        panic!("{e:?}");
    });
    api.get(name).await.unwrap()
}

fn owned_by(object: &impl Resource, platform: &SocialPlatform) -> bool {
    object.meta().owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.uid == platform.uid().unwrap() && r.controller == Some(true))
    })
}

#[tokio::test]
async fn a_minimal_platform_comes_up_heals_scales_and_shrinks() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-controller").await.unwrap();
    volumes_for(&env, ns.name(), "demo").await;
    let namespace = ns.name().to_owned();
    let running_ctx = Arc::new(Context::new(env.client()));
    let metrics = running_ctx.metrics.clone();
    let running = tokio::spawn(async move { controller::run(running_ctx, Some(&namespace)).await });
    // The ops endpoints of the running controller.
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops_addr = ops.local_addr().unwrap();
    let serving = tokio::spawn(agora_operator::metrics::serve(ops, metrics));

    let api: Api<SocialPlatform> = ns.api();
    // The README's example, as a user applies it.
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../k8s/examples/demo.yaml");
    let platform: SocialPlatform =
        serde_saphyr::from_str(&std::fs::read_to_string(demo).unwrap()).unwrap();
    assert_eq!(platform.name_any(), "demo");
    api.create(&PostParams::default(), &platform).await.unwrap();
    let platform = wait_ready(&api, "demo").await;
    let status = platform.status.clone().unwrap();
    assert_eq!(status.url.as_deref(), Some("http://demo.localtest.me"));
    assert_eq!(status.services["users"].ready_replicas, 1);

    // Every child: owned, labelled, named per platform.
    let selector = ListParams::default().labels("app.kubernetes.io/instance=demo");
    let deployments = ns.api::<Deployment>().list(&selector).await.unwrap();
    let mut names: Vec<String> = deployments.iter().map(|d| d.name_any()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "demo-auth",
            "demo-gateway",
            "demo-notifications",
            "demo-photos",
            "demo-relations",
            "demo-users"
        ]
    );
    assert!(deployments.iter().all(|d| owned_by(d, &platform)));
    let labels: BTreeMap<String, String> = deployments.items[0].labels().clone();
    assert_eq!(labels["app.kubernetes.io/part-of"], "agora");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "agora-operator");
    assert_eq!(
        ns.api::<StatefulSet>()
            .list(&selector)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        ns.api::<Job>().list(&selector).await.unwrap().items.len(),
        1
    );
    assert_eq!(
        ns.api::<Service>()
            .list(&selector)
            .await
            .unwrap()
            .items
            .len(),
        7,
        "six workloads and the database"
    );
    assert_eq!(
        ns.api::<ServiceAccount>()
            .list(&selector)
            .await
            .unwrap()
            .items
            .len(),
        6
    );
    let ingresses = ns.api::<Ingress>().list(&selector).await.unwrap();
    let mut names: Vec<_> = ingresses.iter().map(|i| i.name_any()).collect();
    names.sort();
    assert_eq!(names, ["demo", "demo-fallback", "demo-public"]);
    assert!(ingresses.iter().all(|i| owned_by(i, &platform)));
    let policies = ns
        .api::<k8s_openapi::api::networking::v1::NetworkPolicy>()
        .list(&selector)
        .await
        .unwrap();
    let mut policy_names: Vec<String> = policies.iter().map(|p| p.name_any()).collect();
    policy_names.sort();
    assert_eq!(
        policy_names,
        [
            "demo-auth",
            "demo-gateway",
            "demo-notifications",
            "demo-photos",
            "demo-postgres",
            "demo-relations",
            "demo-users"
        ]
    );
    let secrets = ns.api::<Secret>().list(&selector).await.unwrap();
    // keys, the superuser, the backups' read-only role, one database per service.
    assert_eq!(secrets.items.len(), 8);
    let users = ns.api::<Deployment>().get("demo-users").await.unwrap();
    let env_names: Vec<String> = users.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(env_names, ["INTERNAL_TOKEN", "DATABASE_URL"]);
    let settings = ns
        .api::<ConfigMap>()
        .get("demo-users")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(settings["RELATIONS_URL"], "http://demo-relations:8080");

    // The transition to Ready is an Event; the reconciles are counted.
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    wait_until("a Ready event", Duration::from_secs(30), || async {
        Ok(events.list(&ListParams::default()).await?.iter().any(|e| {
            e.reason.as_deref() == Some("Ready")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo")
        }))
    })
    .await
    .unwrap();
    let scrape = |path: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(ops_addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    };
    let metrics_text = scrape("/metrics").await;
    assert!(metrics_text.starts_with("HTTP/1.1 200"), "{metrics_text}");
    assert!(
        metrics_text.contains("agora_operator_reconciles_total"),
        "{metrics_text}"
    );
    assert!(metrics_text.contains("agora_operator_reconcile_duration_seconds_bucket"));
    assert!(scrape("/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(scrape("/healthz").await.starts_with("HTTP/1.1 200"));

    // A steady state writes nothing: reconciling again changes no resourceVersion.
    let versions = |list: Vec<(String, Option<String>)>| list;
    let snapshot = || async {
        let mut all = Vec::new();
        for d in ns.api::<Deployment>().list(&selector).await.unwrap() {
            all.push((d.name_any(), d.resource_version()));
        }
        for s in ns.api::<Secret>().list(&selector).await.unwrap() {
            all.push((s.name_any(), s.resource_version()));
        }
        for c in ns.api::<ConfigMap>().list(&selector).await.unwrap() {
            all.push((c.name_any(), c.resource_version()));
        }
        for i in ns.api::<Ingress>().list(&selector).await.unwrap() {
            all.push((i.name_any(), i.resource_version()));
        }
        let p = api.get("demo").await.unwrap();
        all.push((p.name_any(), p.resource_version()));
        versions(all)
    };
    // Steady means: nothing changed over a few seconds (kwok and the controllers may
    // still be settling pod and Deployment statuses right after Ready).
    let mut before = snapshot().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = snapshot().await;
        if now == before {
            break;
        }
        before = now;
    }
    let ctx = Arc::new(Context::new(env.client()));
    controller::reconcile(Arc::new(api.get("demo").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    controller::reconcile(Arc::new(api.get("demo").await.unwrap()), ctx)
        .await
        .unwrap();
    assert_eq!(
        snapshot().await,
        before,
        "a steady-state reconcile wrote something"
    );

    // Drift: a deleted Deployment comes back.
    let deployments_api: Api<Deployment> = ns.api();
    let old_uid = deployments_api.get("demo-users").await.unwrap().uid();
    deployments_api
        .delete("demo-users", &DeleteParams::default())
        .await
        .unwrap();
    wait_until(
        "the users Deployment comes back",
        Duration::from_secs(60),
        || async {
            Ok(deployments_api
                .get_opt("demo-users")
                .await?
                .is_some_and(|d| d.uid() != old_uid))
        },
    )
    .await
    .unwrap();

    // A new version, users scaled to 3, photos and the gateway disabled.
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {
            "version": "0.2.0",
            "services": {"users": {"replicas": 3}, "photos": {"enabled": false},
                         "gateway": {"enabled": false}},
        }})),
    )
    .await
    .unwrap();
    wait_until(
        "users on the new image, scaled, and photos gone",
        Duration::from_secs(60),
        || async {
            let users = deployments_api.get("demo-users").await?;
            let photos = deployments_api.get_opt("demo-photos").await?;
            let spec = users.spec.unwrap_or_default();
            let image = spec
                .template
                .spec
                .and_then(|p| p.containers[0].image.clone());
            Ok(spec.replicas == Some(3)
                && image.as_deref() == Some("ghcr.io/agora-social/users:0.2.0")
                && photos.is_none())
        },
    )
    .await
    .unwrap();
    let platform = wait_ready(&api, "demo").await;
    assert_eq!(platform.status.unwrap().services.get("photos"), None);
    // Without the gateway, nothing serves the fallback prefix: its Ingress goes.
    assert!(
        ns.api::<Ingress>()
            .get_opt("demo-fallback")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ns.api::<Ingress>()
            .get_opt("demo-public")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        ns.api::<Service>()
            .get_opt("demo-photos")
            .await
            .unwrap()
            .is_none()
    );

    // Deleting the platform takes every child along (garbage collection by owner).
    api.delete("demo", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_until("every child is gone", Duration::from_secs(90), || async {
        let left = ns.api::<Deployment>().list(&selector).await?.items.len()
            + ns.api::<StatefulSet>().list(&selector).await?.items.len()
            + ns.api::<Secret>().list(&selector).await?.items.len()
            + ns.api::<Ingress>().list(&selector).await?.items.len()
            + ns.api::<ConfigMap>().list(&selector).await?.items.len();
        Ok(left == 0)
    })
    .await
    .unwrap();

    running.abort();
    serving.abort();
    for claim in ["data-demo-postgres-0", "demo-photos"] {
        let _ = Api::<PersistentVolume>::all(env.client())
            .delete(&format!("{}-{claim}", ns.name()), &DeleteParams::default())
            .await;
    }
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn two_platforms_share_a_namespace_and_a_missing_traefik_is_reported() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-two").await.unwrap();
    let api: Api<SocialPlatform> = ns.api();
    let ctx = Arc::new(Context::new(env.client()));
    for (name, middleware) in [("one", "None"), ("two", "Traefik")] {
        let platform: SocialPlatform = serde_json::from_value(json!({
            "apiVersion": "agora.dev/v1alpha1",
            "kind": "SocialPlatform",
            "metadata": {"name": name},
            "spec": {"host": format!("{name}.localtest.me"), "edge": {"authMiddleware": middleware},
                     "services": {"photos": {"enabled": false}}},
        }))
        .unwrap();
        api.create(&PostParams::default(), &platform).await.unwrap();
        controller::reconcile(Arc::new(api.get(name).await.unwrap()), ctx.clone())
            .await
            .unwrap();
    }
    for name in ["one", "two"] {
        let selector = ListParams::default().labels(&format!("app.kubernetes.io/instance={name}"));
        let deployments = ns.api::<Deployment>().list(&selector).await.unwrap();
        assert_eq!(
            deployments.items.len(),
            5,
            "{name}: auth, users, relations, notifications, gateway"
        );
        assert!(
            deployments
                .iter()
                .all(|d| d.name_any().starts_with(&format!("{name}-")))
        );
    }
    // Without CloudNativePG's CRDs, that mode is reported, not a crash loop.
    let cnpg: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": "three"},
        "spec": {"host": "three.localtest.me", "edge": {"authMiddleware": "None"},
                 "database": {"mode": "CloudNativePG"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &cnpg).await.unwrap();
    controller::reconcile(Arc::new(api.get("three").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let three = api.get("three").await.unwrap().status.unwrap();
    let db = three
        .conditions
        .iter()
        .find(|c| c.type_ == "DatabaseReady")
        .unwrap();
    assert_eq!(
        (db.status.as_str(), db.reason.as_str()),
        ("False", "CloudNativePGMissing")
    );
    let url_of = ns
        .api::<Secret>()
        .get("three-users-database")
        .await
        .unwrap();
    let url = String::from_utf8(url_of.data.unwrap()["url"].0.clone()).unwrap();
    assert!(url.contains("@three-postgres-rw:5432/users"), "{url}");

    // Nor Gateway API: a GatewayAPI edge is reported the same way.
    let routed: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": "four"},
        "spec": {"host": "four.localtest.me",
                 "edge": {"kind": "GatewayAPI", "authMiddleware": "EnvoyGateway", "gateway": {"name": "edge"}}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &routed).await.unwrap();
    controller::reconcile(Arc::new(api.get("four").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let four = api.get("four").await.unwrap().status.unwrap();
    let edge = four
        .conditions
        .iter()
        .find(|c| c.type_ == "EdgeReady")
        .unwrap();
    assert_eq!(
        (edge.status.as_str(), edge.reason.as_str()),
        ("False", "GatewayAPIMissing")
    );
    assert!(ns.api::<Ingress>().get_opt("four").await.unwrap().is_none());

    // The test control plane has no Traefik: the platform says so instead of failing.
    let two = api.get("two").await.unwrap().status.unwrap();
    let edge = two
        .conditions
        .iter()
        .find(|c| c.type_ == "EdgeReady")
        .unwrap();
    assert_eq!(
        (edge.status.as_str(), edge.reason.as_str()),
        ("False", "MiddlewareCRDMissing")
    );
    let one = api.get("one").await.unwrap().status.unwrap();
    let edge = one
        .conditions
        .iter()
        .find(|c| c.type_ == "EdgeReady")
        .unwrap();
    assert_eq!(edge.status, "True");
    ns.cleanup().await.unwrap();
}

#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over_when_it_stops() {
    use agora_operator::leader::{Outcome, Timing, lead};
    use std::sync::atomic::{AtomicBool, Ordering};
    let env = TestEnv::connect().await.unwrap();
    let ns = env.namespace("sp-lease").await.unwrap();
    let timing = Timing {
        duration: 6,
        grace: 2,
    };
    let (stop_first, first_stops) = tokio::sync::oneshot::channel::<()>();
    let first_leads = Arc::new(AtomicBool::new(false));
    let second_leads = Arc::new(AtomicBool::new(false));
    let first = {
        let (client, namespace, flag) = (env.client(), ns.name().to_owned(), first_leads.clone());
        tokio::spawn(async move {
            let work = async move {
                flag.store(true, Ordering::SeqCst);
                let _ = first_stops.await;
            };
            lead(
                client,
                &namespace,
                "first",
                timing,
                work,
                std::future::pending(),
            )
            .await
        })
    };
    wait_until(
        "the first replica leads",
        Duration::from_secs(30),
        || async { Ok(first_leads.load(Ordering::SeqCst)) },
    )
    .await
    .unwrap();
    let second = {
        let (client, namespace, flag) = (env.client(), ns.name().to_owned(), second_leads.clone());
        tokio::spawn(async move {
            let work = async move {
                flag.store(true, Ordering::SeqCst);
            };
            lead(
                client,
                &namespace,
                "second",
                timing,
                work,
                std::future::pending(),
            )
            .await
        })
    };
    // While the first holds the Lease (renewing it), the second waits.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!second_leads.load(Ordering::SeqCst), "two leaders at once");
    // The first stops and releases the Lease: the second leads well before expiry.
    let stopped_at = std::time::Instant::now();
    stop_first.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), Outcome::Finished);
    assert_eq!(second.await.unwrap().unwrap(), Outcome::Finished);
    assert!(second_leads.load(Ordering::SeqCst));
    assert!(
        stopped_at.elapsed() < Duration::from_secs(6),
        "failover took {:?}",
        stopped_at.elapsed()
    );
    ns.cleanup().await.unwrap();
}

/// `kubectl <args>` against the test control plane (the Prometheus Operator's CRDs are
/// YAML files; kubectl reads them as a person would).
fn kubectl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kubectl: {e}"))
}

#[tokio::test]
async fn monitoring_is_reported_missing_then_applied_with_the_prometheus_operator_crds() {
    let crds = std::env::var("AGORA_PROMETHEUS_CRDS").expect(
        "AGORA_PROMETHEUS_CRDS names the Prometheus Operator's CRD directory (hack/test.sh sets it: hack/monitoring.sh crds)",
    );
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    // This test owns these CRDs on the shared control plane: start without them.
    let files = [
        format!("{crds}/servicemonitors.yaml"),
        format!("{crds}/prometheusrules.yaml"),
    ];
    for file in &files {
        kubectl(&["delete", "--ignore-not-found", "--wait=true", "-f", file]);
    }
    let ns = env.namespace("sp-monitoring").await.unwrap();
    let api: Api<SocialPlatform> = ns.api();
    let ctx = Arc::new(Context::new(env.client()));
    let platform: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": "watched"},
        "spec": {"host": "watched.localtest.me", "edge": {"authMiddleware": "None"},
                 "services": {"photos": {"enabled": false}},
                 "observability": {
                     "tracing": {"otlpEndpoint": "http://jaeger.tracing:4318", "samplingRatio": 0.1},
                     "metrics": {"serviceMonitor": true, "labels": {"release": "prometheus"}},
                     "alerts": true}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &platform).await.unwrap();
    controller::reconcile(Arc::new(api.get("watched").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let condition = |platform: &SocialPlatform| {
        platform
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "MonitoringReady"))
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    assert_eq!(
        condition(&api.get("watched").await.unwrap()),
        Some(("False".into(), "PrometheusOperatorMissing".into()))
    );
    // Every workload traces to the collector, sampled at the ratio.
    let selector = ListParams::default().labels("app.kubernetes.io/instance=watched");
    let deployments = ns.api::<Deployment>().list(&selector).await.unwrap();
    assert_eq!(deployments.items.len(), 5);
    for deployment in &deployments {
        let env = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap();
        let value = |name: &str| {
            env.iter()
                .find(|v| v.name == name)
                .and_then(|v| v.value.clone())
        };
        assert_eq!(
            value("OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
            Some("http://jaeger.tracing:4318")
        );
        assert_eq!(value("OTEL_TRACES_SAMPLER_ARG").as_deref(), Some("0.1"));
        assert!(value("OTEL_SERVICE_NAME").is_some_and(|n| n.starts_with("agora-")));
    }

    // With the CRDs, the platform gets both, owned by it.
    for file in &files {
        let out = kubectl(&["apply", "--server-side", "-f", file]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for crd in [
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        let out = kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/{crd}"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let platform = api.get("watched").await.unwrap();
    controller::reconcile(Arc::new(platform.clone()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(
        condition(&api.get("watched").await.unwrap()),
        Some(("True".into(), "Monitored".into()))
    );
    let monitors = Api::<kube::api::DynamicObject>::namespaced_with(
        env.client(),
        ns.name(),
        &agora_operator::monitoring::service_monitor_resource(),
    );
    let monitor = monitors.get("watched-metrics").await.unwrap();
    assert!(owned_by(&monitor, &platform));
    assert_eq!(
        monitor.metadata.labels.as_ref().unwrap()["release"],
        "prometheus"
    );
    assert_eq!(monitor.data["spec"]["endpoints"][0]["port"], "ops");
    let rules = Api::<kube::api::DynamicObject>::namespaced_with(
        env.client(),
        ns.name(),
        &agora_operator::monitoring::prometheus_rule_resource(),
    );
    let rule = rules.get("watched-alerts").await.unwrap();
    assert!(owned_by(&rule, &platform));
    let alerts = rule.data["spec"]["groups"][0]["rules"].as_array().unwrap();
    assert!(alerts.len() >= 5);
    assert!(
        alerts
            .iter()
            .all(|a| a["annotations"]["description"].is_string()
                && a["annotations"]["runbook_url"].is_string())
    );

    // Turning alerts off removes the rule; the monitor stays.
    api.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"observability": {"alerts": false}}})),
    )
    .await
    .unwrap();
    controller::reconcile(Arc::new(api.get("watched").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    assert!(rules.get_opt("watched-alerts").await.unwrap().is_none());
    assert!(monitors.get_opt("watched-metrics").await.unwrap().is_some());
    ns.cleanup().await.unwrap();
}
