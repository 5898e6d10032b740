#!/usr/bin/env bash
# CloudNativePG for the real node (the CloudNativePG database mode's tests), with no
# registry and no image pulled:
#
#   hack/cnpg.sh build     builds its manager (github.com/cloudnative-pg/cloudnative-pg,
#                          Apache-2.0) from its Go module on first use; prints its path
#   hack/cnpg.sh image SOCKET   its operator image (agora.local/cloudnative-pg:<version>),
#                          imported into the containerd at SOCKET
#   hack/cnpg.sh install   applies its release manifest (from the same module: CRDs, RBAC,
#                          webhooks, the Deployment in cnpg-system) with that image, to the
#                          cluster of $KUBECONFIG, and waits until its webhooks answer
#
# The PostgreSQL image it runs is hack/offline-images.sh's postgres-cnpg. The one static
# binary is the operator and, copied into every PostgreSQL pod by an init container, the
# instance manager: the image holds it at /manager and /operator/manager_amd64 (where the
# operator looks for its own binary when it reports status), runs as 10001.
# Cached by version under ${XDG_CACHE_HOME:-~/.cache}/agora/cnpg-<version>.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=cnpg DIE_PREFIX="cnpg.sh: "

CNPG_VERSION=v1.27.1
IMAGE="agora.local/cloudnative-pg:${CNPG_VERSION#v}"
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:?HOME is unset}/.cache}/agora"
DIR="$CACHE_ROOT/cnpg-$CNPG_VERSION"

go_env() { env GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 "$@"; }

build() {
  mkdir -p "$CACHE_ROOT"
  # CI may start this build in the background; a second caller waits for it.
  exec 9>"$CACHE_ROOT/.cnpg-$CNPG_VERSION.lock"
  flock 9
  if [ ! -x "$DIR/manager" ] || [ ! -f "$DIR/cnpg.yaml" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build CloudNativePG"
    log "building CloudNativePG $CNPG_VERSION from its Go module (first run only, ~5 min)"
    local module tmp
    # The module's version list is refused by the proxy here: the version is named.
    module=$(go_env go mod download -json "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    tmp=$(mktemp -d "$CACHE_ROOT/.cnpg.XXXXXX")
    (cd "$module" && go_env nice -n "${AGORA_K8S_NICE:-19}" go build -trimpath -ldflags=-s \
      -o "$tmp/manager" ./cmd/manager) >&2
    cp "$module/releases/cnpg-${CNPG_VERSION#v}.yaml" "$tmp/cnpg.yaml"
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
  fi
  exec 9>&-
  echo "$DIR/manager"
}

image() {
  local socket=${1:?usage: hack/cnpg.sh image SOCKET} manager d
  manager=$(build)
  d=$(mktemp -d "${TMPDIR:-/tmp}/agora-cnpg-image.XXXXXX")
  mkdir -p "$d/root/etc" "$d/root/operator" "$d/root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\ncnpg:x:10001:10001:cnpg:/:/sbin/nologin\npostgres:x:26:26:postgres:/var/lib/postgresql:/sbin/nologin\n' >"$d/root/etc/passwd"
  printf 'root:x:0:\ncnpg:x:10001:\npostgres:x:26:\n' >"$d/root/etc/group"
  chmod 1777 "$d/root/tmp"
  command install -m 0755 "$manager" "$d/root/manager"
  command install -m 0755 "$manager" "$d/root/operator/manager_amd64"
  python3 hack/oci-image.py --name "$IMAGE" --out "$d/cnpg.tar" --layer-dir "$d/root" \
    --user 10001:10001 --entrypoint /manager >/dev/null
  ctr --address "$socket" --namespace k8s.io images import "$d/cnpg.tar" >/dev/null
  rm -rf "$d"
  log "imported $IMAGE"
}

# The release manifest with the imported image, never pulled.
manifest() {
  build >/dev/null
  sed -e "s|ghcr.io/cloudnative-pg/cloudnative-pg:${CNPG_VERSION#v}|$IMAGE|g" \
    -e 's|imagePullPolicy: Always|imagePullPolicy: Never|' "$DIR/cnpg.yaml"
}

cmd_install() {
  log "installing CloudNativePG $CNPG_VERSION"
  # Server-side: the Cluster CRD is too large for the last-applied annotation.
  manifest | kubectl apply --server-side --force-conflicts -f - >&2
  kubectl -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=180s >&2
  # Its webhooks (failurePolicy Fail) answer once it has written its certificates: a
  # server-side dry run of a Cluster goes through them.
  local i
  for ((i = 0; i < 60; i++)); do
    if kubectl create --dry-run=server -f - >/dev/null 2>&1 <<'EOF'; then
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: webhook-probe, namespace: default}
spec: {instances: 1, storage: {size: 1Gi}}
EOF
      log "CloudNativePG is up"
      return 0
    fi
    sleep 2
  done
  kubectl -n cnpg-system logs deployment/cnpg-controller-manager --tail=30 >&2 || true
  die "CloudNativePG's webhooks did not answer within 120 s"
}

case "${1:-}" in
  build) build ;;
  image) shift; image "$@" ;;
  manifest) manifest ;;
  install) cmd_install ;;
  *) echo "usage: $0 build|image SOCKET|manifest|install" >&2; exit 2 ;;
esac
