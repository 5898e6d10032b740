#!/usr/bin/env bash
# The Prometheus side of the platform's observability, for tests and CI:
#   promtool  builds promtool (github.com/prometheus/prometheus/cmd/promtool, Apache-2.0)
#             from its Go module on first use and prints its path;
#   crds      fetches the Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule) from
#             its Go module and prints their directory;
#   check     `promtool check rules` and `promtool test rules` on the operator's alert
#             rules (operator/alerts/tests.yaml holds the synthetic series).
# Everything is cached by version under ${XDG_CACHE_HOME:-~/.cache}/agora/.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=monitoring

PROMETHEUS_VERSION=v0.316.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:?HOME is unset}/.cache}/agora"
PROMTOOL_DIR="$CACHE_ROOT/promtool-$PROMETHEUS_VERSION"
CRD_DIR="$CACHE_ROOT/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"

promtool() {
  mkdir -p "$CACHE_ROOT"
  # CI starts this build in the background; a second caller waits for it.
  exec 9>"$CACHE_ROOT/.promtool-$PROMETHEUS_VERSION.lock"
  flock 9
  if [ ! -x "$PROMTOOL_DIR/promtool" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build promtool"
    log "building promtool $PROMETHEUS_VERSION from its Go module (first run only)"
    mkdir -p "$CACHE_ROOT"
    local tmp
    tmp=$(mktemp -d "$CACHE_ROOT/.promtool.XXXXXX")
    GOBIN="$tmp" GOFLAGS=-mod=mod nice -n "${AGORA_K8S_NICE:-19}" go install \
      "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" >&2
    rm -rf "$PROMTOOL_DIR"
    mv "$tmp" "$PROMTOOL_DIR"
  fi
  echo "$PROMTOOL_DIR/promtool"
}

crds() {
  if [ ! -s "$CRD_DIR/servicemonitors.yaml" ] || [ ! -s "$CRD_DIR/prometheusrules.yaml" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to fetch the Prometheus Operator CRDs"
    log "fetching the Prometheus Operator $PROMETHEUS_OPERATOR_VERSION CRDs from its Go module (first run only)"
    local module tmp
    module=$(GOFLAGS=-mod=mod go mod download -json \
      "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$CACHE_ROOT"
    tmp=$(mktemp -d "$CACHE_ROOT/.prometheus-crds.XXXXXX")
    for kind in servicemonitors prometheusrules podmonitors; do
      cp "$module/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$tmp/$kind.yaml"
    done
    chmod u+w "$tmp"/*.yaml
    rm -rf "$CRD_DIR"
    mv "$tmp" "$CRD_DIR"
  fi
  echo "$CRD_DIR"
}

check() {
  local tool work
  tool=$(promtool)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cargo run -q -p agora-operator -- alerts > "$work/rules.yaml"
  cp operator/alerts/tests.yaml "$work/tests.yaml"
  "$tool" check rules "$work/rules.yaml"
  (cd "$work" && "$tool" test rules tests.yaml)
}

case "${1:-}" in
  promtool) promtool ;;
  crds) crds ;;
  check) check ;;
  *) die "usage: $0 promtool|crds|check" ;;
esac
