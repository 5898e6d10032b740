//! Monitoring children (`spec.observability`): a Prometheus Operator `ServiceMonitor`
//! scraping every workload's ops port, and a `PrometheusRule` with the platform's
//! alerts, each with a description and a runbook in `docs/runbooks.md`.
//!
//! The rules name only metrics Agora exports (the services' `/metrics` and `up`, which
//! Prometheus records for every target); `hack/monitoring.sh check` runs promtool on
//! them, with the synthetic series of `operator/alerts/tests.yaml`.

use crate::crd::{AlertThresholds, SocialPlatform};
use crate::owner::Owner;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

/// Where each alert's runbook is.
pub const RUNBOOKS: &str = "https://github.com/agora-social/agora/blob/main/docs/runbooks.md";

/// The Prometheus Operator's `ServiceMonitor` API (`monitoring.coreos.com/v1`).
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// The Prometheus Operator's `PrometheusRule` API (`monitoring.coreos.com/v1`).
pub fn prometheus_rule_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

fn meta_with_labels(
    platform: &SocialPlatform,
    owner: &Owner,
    name: String,
) -> kube::api::ObjectMeta {
    let mut meta = owner.meta("monitoring", name);
    let labels = meta.labels.get_or_insert_with(Default::default);
    for (key, value) in &platform.spec.observability.metrics.labels {
        labels.insert(key.clone(), value.clone());
    }
    meta
}

/// Scrapes the ops port (`/metrics`) of every workload of the platform. The services'
/// own `service` label is kept (`honorLabels`): it names the area in every rule.
pub fn service_monitor(
    platform: &SocialPlatform,
    owner: &Owner,
    workloads: &[&str],
) -> DynamicObject {
    let name = owner.child_name("metrics");
    let mut object = DynamicObject::new(&name, &service_monitor_resource())
        .within(owner.namespace())
        .data(json!({
            "spec": {
                "selector": {
                    "matchLabels": {"app.kubernetes.io/instance": owner.name()},
                    "matchExpressions": [{
                        "key": "app.kubernetes.io/name",
                        "operator": "In",
                        "values": workloads,
                    }],
                },
                "namespaceSelector": {"matchNames": [owner.namespace()]},
                "endpoints": [{
                    "port": "ops",
                    "path": "/metrics",
                    "interval": "15s",
                    "honorLabels": true,
                }],
            }
        }));
    object.metadata = meta_with_labels(platform, owner, name);
    object
}

/// The `PrometheusRule` of the platform's alerts.
pub fn prometheus_rule(platform: &SocialPlatform, owner: &Owner) -> DynamicObject {
    let name = owner.child_name("alerts");
    let mut object = DynamicObject::new(&name, &prometheus_rule_resource())
        .within(owner.namespace())
        .data(json!({"spec": rule_groups(owner, &platform.spec.observability.alert_thresholds)}));
    object.metadata = meta_with_labels(platform, owner, name);
    object
}

fn alert(
    name: &str,
    expr: String,
    wait: &str,
    severity: &str,
    summary: &str,
    description: &str,
) -> Value {
    json!({
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": format!("{RUNBOOKS}#{}", name.to_lowercase()),
        },
    })
}

/// `{groups: [...]}`: the body of the `PrometheusRule`, and a rules file for promtool.
pub fn rule_groups(owner: &Owner, t: &AlertThresholds) -> Value {
    // Every series of this platform: its namespace, and scrape jobs named after its
    // Services (`<platform>-<workload>`). Outbox gauges count one shared table, so every
    // replica reports the same value: `max`, never `sum`.
    let sel = format!(
        r#"namespace="{}",job=~"{}-.+""#,
        owner.namespace(),
        owner.name()
    );
    let backup = format!(
        r#"platform_namespace="{}",platform="{}""#,
        owner.namespace(),
        owner.name()
    );
    let rules = vec![
        alert(
            "AgoraWorkloadDown",
            format!("up{{{sel}}} == 0"),
            "2m",
            "critical",
            "An Agora workload cannot be scraped",
            "{{ $labels.job }} ({{ $labels.pod }}) has not answered its metrics scrape for 2 minutes: the pod is down or its ops port is unreachable.",
        ),
        alert(
            "AgoraWorkloadNotReady",
            format!("max by (namespace, job, pod) (agora_ready{{{sel}}}) == 0"),
            "5m",
            "warning",
            "An Agora pod is not ready",
            "{{ $labels.pod }} has answered its readiness probe with not ready for 5 minutes: a critical dependency (its database, the auth service's keys) fails; its /readyz says which.",
        ),
        alert(
            "AgoraHighErrorRatio",
            format!(
                "sum by (namespace, service) (rate(agora_http_requests_total{{{sel},status=~\"5..\"}}[5m])) \
                 / sum by (namespace, service) (rate(agora_http_requests_total{{{sel}}}[5m])) > {}",
                t.error_ratio
            ),
            "5m",
            "warning",
            "An Agora area answers too many 5xx",
            "More than {{ $value | humanizePercentage }} of the {{ $labels.service }} area's requests failed with a server error over 5 minutes.",
        ),
        alert(
            "AgoraHighLatency",
            format!(
                "histogram_quantile(0.99, sum by (namespace, service, le) \
                 (rate(agora_http_request_duration_seconds_bucket{{{sel}}}[5m]))) > {}",
                t.latency_p99_seconds
            ),
            "10m",
            "warning",
            "An Agora area is slow",
            "The 99th percentile latency of the {{ $labels.service }} area is {{ $value | humanizeDuration }}.",
        ),
        alert(
            "AgoraDatabaseUnreachable",
            format!(
                "sum by (namespace, service) (rate(agora_db_errors_total{{{sel},kind=~\"pool|unavailable\"}}[5m])) > 0"
            ),
            "2m",
            "critical",
            "An Agora service cannot reach its database",
            "{{ $labels.service }} has failed to get a database connection for 2 minutes.",
        ),
        alert(
            "AgoraOutboxBacklogGrowing",
            format!(
                "max by (namespace, service, kind) (agora_outbox_jobs{{{sel}}}) > 100 \
                 and max by (namespace, service, kind) (deriv(agora_outbox_jobs{{{sel}}}[15m])) > 0"
            ),
            "15m",
            "warning",
            "Agora's outbox is growing",
            "{{ $value }} {{ $labels.kind }} jobs are queued in {{ $labels.service }} and the queue keeps growing: a subscriber is failing or too slow.",
        ),
        alert(
            "AgoraOutboxJobTooOld",
            format!(
                "max by (namespace, service, kind) (agora_outbox_oldest_job_age_seconds{{{sel}}}) > {}",
                t.outbox_oldest_seconds
            ),
            "5m",
            "warning",
            "An Agora outbox job waits too long",
            "The oldest {{ $labels.kind }} job of {{ $labels.service }} has waited {{ $value | humanizeDuration }}: its effect (a profile, a notification) is missing meanwhile.",
        ),
        alert(
            "AgoraFailedLoginSurge",
            format!(
                "sum by (namespace) (rate(agora_http_requests_total{{{sel},service=\"auth\",route=\"/api/v1/auth/login\",status=\"401\"}}[5m])) > {}",
                t.failed_logins_per_second
            ),
            "5m",
            "warning",
            "Failed logins surge",
            "{{ $value }} failed logins per second: password guessing or credential stuffing is likely.",
        ),
        alert(
            "AgoraSpanExportFailing",
            format!(
                "sum by (namespace, service) (rate(agora_telemetry_spans_dropped_total{{{sel}}}[10m])) > 0"
            ),
            "10m",
            "info",
            "Agora drops trace spans",
            "{{ $labels.service }} drops spans: the OpenTelemetry collector is down, slow or refusing them, or the export queue is full.",
        ),
        // The operator's series about this platform's backups (it exists only with
        // spec.backup); a scrape sets `namespace` to the operator's, hence
        // `platform_namespace`.
        alert(
            "AgoraBackupFailed",
            format!(
                "max by (platform_namespace, platform) (agora_operator_backup_last_failure_timestamp_seconds{{{backup}}}) \
                 > max by (platform_namespace, platform) (agora_operator_backup_last_success_timestamp_seconds{{{backup}}}) \
                 or max by (platform_namespace, platform) (agora_operator_backup_last_failure_timestamp_seconds{{{backup}}}) \
                 unless on (platform_namespace, platform) agora_operator_backup_last_success_timestamp_seconds{{{backup}}}"
            ),
            "5m",
            "warning",
            "An Agora platform's last backup failed",
            "The newest backup of {{ $labels.platform }} failed and none has completed since: `kubectl get socialplatformbackups -n {{ $labels.platform_namespace }}` says why.",
        ),
        alert(
            "AgoraBackupTooOld",
            format!(
                "time() - max by (platform_namespace, platform) (agora_operator_backup_last_success_timestamp_seconds{{{backup}}}) \
                 > 2 * max by (platform_namespace, platform) (agora_operator_backup_schedule_period_seconds{{{backup}}})"
            ),
            "10m",
            "warning",
            "An Agora platform has no recent backup",
            "The newest completed backup of {{ $labels.platform }} is {{ $value | humanizeDuration }} old, more than twice its schedule's period.",
        ),
    ];
    json!({"groups": [{"name": format!("agora-{}", owner.name()), "rules": rules}]})
}

/// The rules of a platform `demo` in namespace `agora` with the default thresholds, as
/// a promtool rules file (`agora-operator alerts`; JSON is YAML).
pub fn reference_rules() -> Result<String, String> {
    let platform: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1",
        "kind": "SocialPlatform",
        "metadata": {"name": "demo", "namespace": "agora", "uid": "reference"},
        "spec": {"host": "demo.example"},
    }))
    .map_err(|e| e.to_string())?;
    let owner = Owner::of(&platform).map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&rule_groups(&owner, &AlertThresholds::default()))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::platform;

    #[test]
    fn every_alert_is_described_with_a_runbook() {
        let p = platform(json!({"host": "demo.example"}));
        let owner = Owner::of(&p).unwrap();
        let groups = rule_groups(&owner, &AlertThresholds::default());
        let rules = groups["groups"][0]["rules"].as_array().unwrap();
        assert!(rules.len() >= 5);
        let runbooks = include_str!("../../docs/runbooks.md").to_lowercase();
        for rule in rules {
            let name = rule["alert"].as_str().unwrap();
            assert!(
                rule["annotations"]["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
            assert!(
                runbooks.contains(&format!("## {}", name.to_lowercase())),
                "no runbook section for {name}"
            );
        }
    }

    #[test]
    fn the_service_monitor_selects_the_workloads_ops_ports_with_extra_labels() {
        let p = platform(
            json!({"host": "demo.example", "observability": {"metrics": {"serviceMonitor": true, "labels": {"release": "prom"}}}}),
        );
        let owner = Owner::of(&p).unwrap();
        let monitor = service_monitor(&p, &owner, &["users", "gateway"]);
        assert_eq!(monitor.data["spec"]["endpoints"][0]["port"], "ops");
        assert_eq!(
            monitor.data["spec"]["selector"]["matchExpressions"][0]["values"],
            json!(["users", "gateway"])
        );
        assert_eq!(monitor.metadata.labels.unwrap()["release"], "prom");
    }
}
