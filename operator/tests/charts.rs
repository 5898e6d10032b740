//! The Helm charts, rendered with `helm template` (the binary `hack/tools.sh` installs,
//! named by `HELM`), for the values that matter: what the operator's Deployment runs
//! with, the RBAC being exactly `agora_operator::rbac`, the CRD switches, the optional
//! objects, and the platform chart turning values into a SocialPlatform spec (and
//! refusing what the CRD would). `hack/charts-check.sh` sends the same renders to a
//! real API server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_operator::rbac;
use serde_json::{Value, json};
use std::process::Command;

const CHARTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts");

fn helm() -> String {
    match std::env::var("HELM") {
        Ok(helm) if !helm.is_empty() => helm,
        _ => panic!(
            "HELM is not set: run the tests with `hack/test.sh`, or `eval \"$(hack/tools.sh)\"` first"
        ),
    }
}

/// `helm template` of a chart with `--set` values: every rendered object, or the error.
fn render(chart: &str, sets: &[&str]) -> Result<Vec<Value>, String> {
    if chart == "agora" {
        // The operator chart as a dependency (as `helm dependency build` leaves it).
        let built = Command::new(helm())
            .args(["dependency", "build", &format!("{CHARTS}/agora")])
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let mut command = Command::new(helm());
    command.args([
        "template",
        "agora",
        &format!("{CHARTS}/{chart}"),
        "--namespace",
        "social",
    ]);
    for set in sets {
        command.args(["--set", set]);
    }
    let output = command.output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

#[test]
fn the_operator_runs_leader_elected_unprivileged_and_probed() {
    let objects = render("agora-operator", &[]).unwrap();
    let deployment = one(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2, "a standby by default");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "ghcr.io/agora-social/operator:0.1.0");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    let env: Vec<&Value> = container["env"].as_array().unwrap().iter().collect();
    let field = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["valueFrom"]["fieldRef"]["fieldPath"].clone())
    };
    assert_eq!(field("POD_NAMESPACE"), Some(json!("metadata.namespace")));
    assert_eq!(field("POD_NAME"), Some(json!("metadata.name")));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(container["resources"]["requests"].is_object());
    assert_eq!(
        pod["serviceAccountName"],
        one(&objects, "ServiceAccount")["metadata"]["name"]
    );
    assert_eq!(one(&objects, "Service")["spec"]["ports"][0]["port"], 9090);
    assert_eq!(of_kind(&objects, "NetworkPolicy").len(), 1);
    assert!(of_kind(&objects, "ServiceMonitor").is_empty());
    // The standby survives a drain and prefers another node.
    let budget = one(&objects, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );

    let objects = render(
        "agora-operator",
        &[
            "replicas=1",
            "serviceMonitor.enabled=true",
            "networkPolicy.enabled=false",
        ],
    )
    .unwrap();
    assert_eq!(one(&objects, "Deployment")["spec"]["replicas"], 1);
    assert!(
        of_kind(&objects, "PodDisruptionBudget").is_empty(),
        "one replica: no budget"
    );
    assert_eq!(
        one(&objects, "ServiceMonitor")["spec"]["endpoints"][0]["port"],
        "metrics"
    );
    assert!(of_kind(&objects, "NetworkPolicy").is_empty());
}

#[test]
fn the_operator_chart_grants_exactly_the_rules_of_the_code() {
    let objects = render("agora-operator", &[]).unwrap();
    let rules = |rules: &[rbac::Rule]| serde_json::to_value(rbac::policy_rules(rules)).unwrap();
    assert_eq!(
        one(&objects, "ClusterRole")["rules"],
        rules(rbac::CLUSTER_RULES)
    );
    let role = one(&objects, "Role");
    assert_eq!(role["rules"], rules(rbac::NAMESPACE_RULES));
    assert_eq!(role["metadata"]["namespace"], "social");
    // Both bindings name the chart's ServiceAccount in the release namespace.
    let name = &one(&objects, "ServiceAccount")["metadata"]["name"];
    let account = json!({"kind": "ServiceAccount", "name": name, "namespace": "social"});
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        assert_eq!(one(&objects, kind)["subjects"], json!([account]), "{kind}");
    }
}

#[test]
fn the_crds_are_templated_kept_or_left_out() {
    let objects = render("agora-operator", &[]).unwrap();
    let crds = of_kind(&objects, "CustomResourceDefinition");
    let mut names: Vec<&str> = crds
        .iter()
        .map(|crd| crd["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "socialplatformbackups.agora.dev",
            "socialplatforms.agora.dev"
        ]
    );
    for crd in crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }
    let unkept = render("agora-operator", &["crds.keep=false"]).unwrap();
    for crd in of_kind(&unkept, "CustomResourceDefinition") {
        assert!(
            crd["metadata"]["annotations"]
                .get("helm.sh/resource-policy")
                .is_none()
        );
    }
    let without = render("agora-operator", &["crds.install=false"]).unwrap();
    assert!(of_kind(&without, "CustomResourceDefinition").is_empty());
}

#[test]
fn the_platform_chart_renders_its_values_into_one_socialplatform() {
    let objects = render("agora", &[]).unwrap();
    let platform = one(&objects, "SocialPlatform");
    assert_eq!(platform["metadata"]["name"], "agora");
    assert_eq!(platform["metadata"]["namespace"], "social");
    // Only what is set: the operator's defaults apply to the rest.
    assert_eq!(
        platform["spec"],
        json!({"host": "agora.localtest.me", "edge": {"authMiddleware": "None"}})
    );
    // The operator comes along, without a templated CRD (the chart's crds/ has it).
    assert_eq!(of_kind(&objects, "Deployment").len(), 1);
    assert!(of_kind(&objects, "CustomResourceDefinition").is_empty());

    let objects = render(
        "agora",
        &[
            "operator.enabled=false",
            "platform.host=social.example.org",
            "platform.edge.className=traefik",
            "platform.edge.authMiddleware=Traefik",
            "platform.services.users.replicas=3",
            "platform.services.events.enabled=true",
            "platform.services.photos.replicas=2",
            "platform.photos.storage.s3.bucket=agora-photos",
            "platform.photos.storage.s3.secretRef.name=photos-s3",
        ],
    )
    .unwrap();
    assert!(of_kind(&objects, "Deployment").is_empty());
    let spec = &one(&objects, "SocialPlatform")["spec"];
    assert_eq!(spec["host"], "social.example.org");
    assert_eq!(spec["edge"]["authMiddleware"], "Traefik");
    assert_eq!(spec["edge"]["className"], "traefik");
    assert_eq!(spec["services"]["users"]["replicas"], 3);
    assert_eq!(spec["services"]["events"]["enabled"], true);
    assert_eq!(spec["photos"]["storage"]["s3"]["bucket"], "agora-photos");

    // What the CRD's rules refuse is refused at render time, with the CRD's message.
    let refused = render("agora", &["platform.services.photos.replicas=2"]).unwrap_err();
    assert!(
        refused.contains("more than one photos replica needs S3 photo storage"),
        "{refused}"
    );
    let unknown = render("agora", &["platform.services.users.replica=3"]).unwrap_err();
    assert!(unknown.contains("replica"), "{unknown}");
}
