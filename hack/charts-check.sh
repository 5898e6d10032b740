#!/usr/bin/env bash
# Packaging checks against the local control plane (run by hack/test.sh while
# hack/k8s-env.sh is up; needs KUBECONFIG):
#   - hadolint on the Dockerfile;
#   - helm lint of every chart, with its default values and with each of its ci/*.yaml;
#   - every chart rendered (default values, then each ci/*.yaml) and sent with
#     `kubectl apply --dry-run=server`, so the API server validates every object (the
#     SocialPlatform CRD's schema and CEL rules included);
#   - every file of k8s/examples through the same server-side dry run.
# The SocialPlatform CRD (from crds/) and the ServiceMonitor CRD (from the
# prometheus-operator Go module, for the chart's optional ServiceMonitor) are installed
# first; everything else is a dry run in a throwaway namespace, removed at the end.
# Drift of the chart's CRD and RBAC copies is checked by operator/tests/rbac.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
: "${KUBECONFIG:?start the control plane first: eval \"\$(hack/k8s-env.sh start)\"}"
export HOME="${HOME:-/root}"
eval "$(hack/tools.sh)"
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# kubectl is the machine's (the control plane is ours); Go is the one that built it.
command -v kubectl >/dev/null || { echo "error: kubectl is required on PATH" >&2; exit 1; }
GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || { echo "error: the Go toolchain is required (as for hack/k8s-env.sh)" >&2; exit 1; }

echo "hadolint Dockerfile" >&2
hadolint Dockerfile

echo "helm dependency build charts/agora" >&2
helm dependency build charts/agora >/dev/null

charts=(charts/agora-operator charts/agora)
for chart in "${charts[@]}"; do
  echo "helm lint $chart" >&2
  helm lint --strict "$chart" >/dev/null
  for values in "$chart"/ci/*.yaml; do
    [ -e "$values" ] || continue
    helm lint --strict "$chart" --values "$values" >/dev/null
  done
done

# CRDs the rendered objects need, really installed (a dry run cannot create a kind).
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
monitoring=$(GOFLAGS=-mod=mod "$GO" mod download -json \
  "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
kubectl apply --server-side --force-conflicts \
  -f "$monitoring/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/socialplatforms.agora.dev crd/servicemonitors.monitoring.coreos.com >/dev/null

ns="chart-check-$RANDOM$RANDOM"
kubectl create namespace "$ns" >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT

dry_run() {
  kubectl apply --server-side --force-conflicts --field-manager=chart-check --dry-run=server -n "$ns" -f - >/dev/null
}

for chart in "${charts[@]}"; do
  release=$(basename "$chart")
  echo "helm template $chart | kubectl apply --dry-run=server" >&2
  helm template "$release" "$chart" -n "$ns" | dry_run
  for values in "$chart"/ci/*.yaml; do
    [ -e "$values" ] || continue
    echo "helm template $chart --values $values | kubectl apply --dry-run=server" >&2
    helm template "$release" "$chart" -n "$ns" --values "$values" | dry_run
  done
done

for example in k8s/examples/*.yaml; do
  echo "kubectl apply --dry-run=server -f $example" >&2
  dry_run <"$example"
done
echo "charts and examples: ok" >&2
