#!/usr/bin/env bash
# The Prometheus side of the platform's observability, for tests and CI:
#   promtool  builds promtool and prometheus (github.com/prometheus/prometheus, Apache-2.0)
#             from their Go module on first use and prints promtool's path;
#   prometheus  the same build; prints the prometheus server's path (the e2e cluster's);
#   jaeger    builds Jaeger v2's all-in-one (github.com/jaegertracing/jaeger/cmd/jaeger,
#             Apache-2.0) with the in-memory trace storage only and prints its path;
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
PROMTOOL_DIR="$CACHE_ROOT/promtool-$PROMETHEUS_VERSION-kubernetes-sd"
CRD_DIR="$CACHE_ROOT/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
JAEGER_VERSION=v1.75.0
JAEGER_DIR="$CACHE_ROOT/jaeger-$JAEGER_VERSION-memory-only"
JAEGER_PATCH=hack/patches/jaeger-$JAEGER_VERSION-memory-only.patch

# promtool and the server share most of their packages: one build makes both.
prometheus_build() {
  mkdir -p "$CACHE_ROOT"
  # CI starts this build in the background; a second caller waits for it.
  exec 9>"$CACHE_ROOT/.prometheus-$PROMETHEUS_VERSION.lock"
  flock 9
  if [ ! -x "$PROMTOOL_DIR/promtool" ] || [ ! -x "$PROMTOOL_DIR/prometheus" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build promtool"
    log "building prometheus and promtool $PROMETHEUS_VERSION from their Go module (first run only)"
    local tmp
    tmp=$(mktemp -d "$CACHE_ROOT/.promtool.XXXXXX")
    # Prometheus' own build tags leave out every service discovery but Kubernetes' (the only
    # one the e2e's scrape config uses; file and HTTP always stay): half of its Go source
    # (70 of 149 MB), the cloud SDKs, is then not compiled.
    GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n "${AGORA_K8S_NICE:-19}" go install \
      -tags remove_all_sd,enable_kubernetes_sd \
      "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" \
      "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" >&2
    rm -rf "$PROMTOOL_DIR"
    mv "$tmp" "$PROMTOOL_DIR"
  fi
  exec 9>&-
}

promtool() {
  prometheus_build
  echo "$PROMTOOL_DIR/promtool"
}

prometheus() {
  prometheus_build
  echo "$PROMTOOL_DIR/prometheus"
}

jaeger() {
  mkdir -p "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/.jaeger-$JAEGER_VERSION.lock"
  flock 8
  if [ ! -x "$JAEGER_DIR/jaeger" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build Jaeger"
    command -v patch >/dev/null || apt_install patch >&2
    log "building jaeger $JAEGER_VERSION (in-memory storage only) from its Go module (first run only)"
    local tmp module patch_file=$PWD/$JAEGER_PATCH
    tmp=$(mktemp -d "$CACHE_ROOT/.jaeger.XXXXXX")
    (
      cd "$tmp"
      # Jaeger's module has replace directives of its own: it is built as a tool of a
      # throwaway module, which takes its dependencies' versions from it.
      go mod init agora.local/jaeger-build >&2
      GOFLAGS=-mod=mod go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&2
      # A copy of the module with our patch: every storage backend but memory, the
      # receivers, processors and extensions but OTLP, batch, query and health check, and
      # the Elasticsearch index-mapping command are left out, and the embedded default
      # configuration names only those (the e2e and the bench start it without one).
      # Go source to compile: 32 MB instead of 85 (Elasticsearch's typed client alone
      # was 23).
      module=$(GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
      cp -r "$module" jaeger
      chmod -R u+w jaeger
      patch -d jaeger -p1 --quiet --forward <"$patch_file" >&2
      go mod edit -replace github.com/jaegertracing/jaeger=./jaeger
      GOBIN="$tmp/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n "${AGORA_K8S_NICE:-19}" \
        go install github.com/jaegertracing/jaeger/cmd/jaeger >&2
    )
    rm -rf "$JAEGER_DIR"
    mkdir -p "$JAEGER_DIR"
    mv "$tmp/bin/jaeger" "$JAEGER_DIR/jaeger"
    rm -rf "$tmp"
  fi
  exec 8>&-
  echo "$JAEGER_DIR/jaeger"
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
  cargo_build_bins -q
  "${CARGO_TARGET_DIR:-target}/debug/agora-operator" alerts > "$work/rules.yaml"
  cp operator/alerts/tests.yaml "$work/tests.yaml"
  "$tool" check rules "$work/rules.yaml"
  (cd "$work" && "$tool" test rules tests.yaml)
}

case "${1:-}" in
  promtool) promtool ;;
  prometheus) prometheus ;;
  jaeger) jaeger ;;
  crds) crds ;;
  check) check ;;
  *) die "usage: $0 promtool|prometheus|jaeger|crds|check" ;;
esac
