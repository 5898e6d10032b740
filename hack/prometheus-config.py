#!/usr/bin/env python3
"""Prometheus configuration from ServiceMonitors and PrometheusRules, as the Prometheus
Operator would generate it, for the e2e cluster's plain Prometheus (hack/e2e.sh).

    prometheus-config.py MONITORS.json RULES.json OUT_DIR

MONITORS.json and RULES.json are `kubectl get ... -o json` lists. OUT_DIR gets
prometheus.yml and rules.yaml (JSON is YAML). The subset of the operator's semantics the
platform's objects use: selector matchLabels and matchExpressions (In, NotIn, Exists,
DoesNotExist), namespaceSelector.matchNames, endpoints' port, path, interval and
honorLabels; jobs and target labels named as the operator names them (job = the Service,
namespace, service, pod, container, endpoint).
"""
import json
import re
import sys


def label(name):
    return "__meta_kubernetes_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def present(name):
    return "__meta_kubernetes_service_labelpresent_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def scrape_configs(monitor):
    meta = monitor["metadata"]
    spec = monitor["spec"]
    namespaces = spec.get("namespaceSelector", {}).get("matchNames") or [meta["namespace"]]
    selector = spec.get("selector", {})
    keep = []
    for key, value in sorted(selector.get("matchLabels", {}).items()):
        keep.append({"action": "keep", "source_labels": [label(key)], "regex": re.escape(value)})
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        alternatives = "|".join(re.escape(v) for v in values)
        if op == "In":
            keep.append({"action": "keep", "source_labels": [label(key)], "regex": alternatives})
        elif op == "NotIn":
            keep.append({"action": "drop", "source_labels": [label(key)], "regex": alternatives})
        elif op == "Exists":
            keep.append({"action": "keep", "source_labels": [present(key)], "regex": "true"})
        elif op == "DoesNotExist":
            keep.append({"action": "drop", "source_labels": [present(key)], "regex": "true"})
        else:
            sys.exit(f"unsupported selector operator {op}")
    configs = []
    for index, endpoint in enumerate(spec.get("endpoints", [])):
        relabel = keep + [
            {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"],
             "regex": re.escape(endpoint["port"])},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
            {"target_label": "endpoint", "replacement": endpoint["port"]},
        ]
        configs.append({
            "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}",
            "honor_labels": bool(endpoint.get("honorLabels", False)),
            "metrics_path": endpoint.get("path", "/metrics"),
            "scrape_interval": endpoint.get("interval", "30s"),
            "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": namespaces}}],
            "relabel_configs": relabel,
        })
    return configs


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        monitors = json.load(f)["items"]
    with open(sys.argv[2]) as f:
        rules = json.load(f)["items"]
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["/etc/prometheus/rules.yaml"],
        "scrape_configs": [c for m in monitors for c in scrape_configs(m)],
    }
    groups = [g for r in rules for g in r["spec"].get("groups", [])]
    with open(f"{sys.argv[3]}/prometheus.yml", "w") as f:
        json.dump(config, f, indent=1)
    with open(f"{sys.argv[3]}/rules.yaml", "w") as f:
        json.dump({"groups": groups}, f, indent=1)


if __name__ == "__main__":
    main()
