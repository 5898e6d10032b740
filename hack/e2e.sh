#!/usr/bin/env bash
# The end-to-end test on a real node: the journey a user takes with `helm install` on kind,
# on this machine, with no registry.
#
#   hack/e2e.sh          # up, the cluster tests, then the platform again in the CloudNativePG
#                        # mode on the same node and its tests, down, and a check that down
#                        # left nothing
#   hack/e2e.sh up [--database cloudnative-pg]   # ... leave it running (Managed database
#                        # by default); prints the export lines to use it
#   hack/e2e.sh test [ARG...]   # the cluster tests of that mode against a running `up`
#                        # (or those the test harness ARGs select: names, --nocapture)
#   hack/e2e.sh down     # remove it all
#
# `up`: a control plane with a real node (hack/k8s-env.sh start --with-node: containerd,
# kubelet, kube-proxy, CoreDNS, Traefik v3), the images built offline and imported into
# the node (hack/offline-images.sh), Jaeger and a Prometheus (k8s/e2e/observability.yaml,
# configured from the platform's ServiceMonitor and PrometheusRule once it is Ready),
# local volumes for the database and photos, then
# `helm install` of charts/agora (which brings the operator chart) with k8s/e2e/values.yaml,
# and a wait for the SocialPlatform to be Ready. `test` runs services/agora/tests/cluster.rs
# through the Traefik ingress (forwardAuth to the auth service's /verify).
# With --database cloudnative-pg: CloudNativePG's operator (hack/cnpg.sh: built from its Go
# module, its release manifest) and the platform with k8s/e2e/cloudnative-pg.yaml over the
# same values (three synchronous instances); `test` then runs the journey and the tests of
# cluster/cloudnative_pg.rs.
#
# Knobs: AGORA_E2E_STATE (default ${XDG_RUNTIME_DIR:-/tmp}/agora-e2e-$UID),
# AGORA_E2E_PROFILE (cargo profile of the images: release, or dev to reuse a test build).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=e2e DIE_PREFIX="e2e.sh: "

STATE=${AGORA_E2E_STATE:-${XDG_RUNTIME_DIR:-/tmp}/agora-e2e-$UID}
PROFILE=${AGORA_E2E_PROFILE:-release}
NAMESPACE=agora
RELEASE=agora
# The SocialPlatform's name and host (k8s/e2e/values.yaml).
PLATFORM=agora
HOST_NAME=agora.e2e.localtest.me
# The platform and the one the backup drill restores (a database and a photo volume
# each), then the CloudNativePG platform (three instances and photos) and its point-in-time
# restore (one instance and photos): released volumes are not reused.
VOLUMES=16
# managed or cloudnative-pg (up --database); recorded in $STATE/database for `test`.
DATABASE=managed

k8s_env() { AGORA_K8S_STATE="$STATE/k8s" hack/k8s-env.sh "$@"; }

# Jaeger and Prometheus, from the versions hack/monitoring.sh builds.
JAEGER_VERSION=$(sed -n 's/^JAEGER_VERSION=//p' hack/monitoring.sh)
PROMETHEUS_VERSION=$(sed -n 's/^PROMETHEUS_VERSION=//p' hack/monitoring.sh)

# A ClusterIP URL of the observability namespace (the node is this machine: kube-proxy
# routes them from here).
observability_url() {
  local ip
  ip=$(kubectl --kubeconfig "$STATE/k8s/kubeconfig" -n observability get service "$1" \
    -o jsonpath='{.spec.clusterIP}' 2>/dev/null) || return 0
  [ -z "$ip" ] || printf 'http://%s:%s' "$ip" "$2"
}

print_env() {
  local ingress
  ingress=$(k8s_env env | sed -n 's/^export AGORA_K8S_INGRESS=//p')
  printf 'export KUBECONFIG=%q\n' "$STATE/k8s/kubeconfig"
  printf 'export AGORA_URL=%q\n' "$ingress"
  printf 'export AGORA_HOST=%q\n' "$HOST_NAME"
  printf 'export AGORA_E2E_NAMESPACE=%q\n' "$NAMESPACE"
  printf 'export AGORA_E2E_PLATFORM=%q\n' "$PLATFORM"
  printf 'export AGORA_JAEGER_URL=%q\n' "$(observability_url jaeger 16686)"
  printf 'export AGORA_PROMETHEUS_URL=%q\n' "$(observability_url prometheus 9090)"
  # The backup drill's S3 server (versitygw on the node's bridge address).
  [ ! -f "$STATE/s3.env" ] || sed 's/AGORA_TEST_S3_/AGORA_E2E_S3_/' "$STATE/s3.env"
}

# Jaeger's and Prometheus's images: their static binaries (built from Go modules, cached)
# over a nonroot passwd, imported into the node.
observability_images() {
  local jaeger prometheus d
  jaeger=$(hack/monitoring.sh jaeger)
  prometheus=$(hack/monitoring.sh prometheus)
  d=$(mktemp -d "${TMPDIR:-/tmp}/agora-obs-images.XXXXXX")
  for name in jaeger prometheus; do
    # The binary under bin/: Prometheus's data volume mounts at /prometheus.
    mkdir -p "$d/$name/etc" "$d/$name/tmp" "$d/$name/bin"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/$name/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' >"$d/$name/etc/group"
    chmod 1777 "$d/$name/tmp"
  done
  cp "$jaeger" "$d/jaeger/bin/jaeger"
  cp "$prometheus" "$d/prometheus/bin/prometheus"
  python3 hack/oci-image.py --name "agora.local/jaeger:$JAEGER_VERSION" --out "$d/jaeger.tar" \
    --layer-dir "$d/jaeger" --user 65532:65532 --entrypoint /bin/jaeger >/dev/null
  python3 hack/oci-image.py --name "agora.local/prometheus:$PROMETHEUS_VERSION" --out "$d/prometheus.tar" \
    --layer-dir "$d/prometheus" --user 65532:65532 --entrypoint /bin/prometheus >/dev/null
  for name in jaeger prometheus; do
    ctr --address "$AGORA_K8S_CONTAINERD" --namespace k8s.io images import "$d/$name.tar" >/dev/null
  done
  rm -rf "$d"
}

# Jaeger and an empty Prometheus, and the Prometheus Operator's CRDs, so the platform
# gets its ServiceMonitor and PrometheusRule.
observability_up() {
  local crds
  crds=$(hack/monitoring.sh crds)
  kubectl apply --server-side -f "$crds/servicemonitors.yaml" -f "$crds/prometheusrules.yaml" >&2
  kubectl wait --for=condition=Established --timeout=60s \
    crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >&2
  sed -e "s/\${JAEGER_VERSION}/$JAEGER_VERSION/g" -e "s/\${PROMETHEUS_VERSION}/$PROMETHEUS_VERSION/g" \
    k8s/e2e/observability.yaml | kubectl apply -f - >&2
  kubectl -n observability rollout status deployment/jaeger --timeout=180s >&2
}

# Prometheus's configuration from the platform's ServiceMonitor and PrometheusRule, as
# the Prometheus Operator would write it (hack/prometheus-config.py).
prometheus_configure() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/agora-prometheus.XXXXXX")
  kubectl -n "$NAMESPACE" get servicemonitors -o json >"$d/monitors.json"
  kubectl -n "$NAMESPACE" get prometheusrules -o json >"$d/rules.json"
  python3 hack/prometheus-config.py "$d/monitors.json" "$d/rules.json" "$d"
  kubectl -n observability create configmap prometheus --from-file="$d/prometheus.yml" \
    --from-file="$d/rules.yaml" --dry-run=client -o yaml | kubectl apply -f - >&2
  kubectl -n observability rollout restart deployment/prometheus >&2
  kubectl -n observability rollout status deployment/prometheus --timeout=180s >&2
  rm -rf "$d"
}

# Static local volumes (hostPath, under the state dir) behind a default StorageClass: the
# node has no provisioner. World-writable, because hostPath volumes get no fsGroup and the
# pods run as their own non-root users.
volumes() {
  local i dir
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: e2e-local
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
    for ((i = 0; i < VOLUMES; i++)); do
      dir="$STATE/volumes/pv-$i"
      mkdir -p "$dir"
      chmod 0777 "$dir"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: e2e-local-$i
spec:
  storageClassName: e2e-local
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $dir, type: Directory}
EOF
    done
  } | kubectl apply -f - >&2
}

# Every instance of the platform's CloudNativePG cluster streaming. Each new instance
# clones the primary with pg_basebackup, which asks for a spread checkpoint: on a quiet
# primary that is most of checkpoint_timeout (CloudNativePG's default, 5 min), and the
# e2e waited 4.5 min for the third. Meanwhile the primary is asked for an immediate
# CHECKPOINT every few seconds, which finishes a spread one in progress at once.
cnpg_instances_ready() {
  local cluster="clusters.postgresql.cnpg.io/$PLATFORM-postgres" deadline=$((SECONDS + 600)) primary
  until kubectl -n "$NAMESPACE" wait "$cluster" --for=condition=Ready --timeout=5s >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the CloudNativePG cluster had not every instance in 10 min"
    primary=$(kubectl -n "$NAMESPACE" get "$cluster" -o jsonpath='{.status.currentPrimary}' 2>/dev/null) || true
    [ -z "$primary" ] ||
      kubectl -n "$NAMESPACE" exec "$primary" -c postgres -- psql -qAtc CHECKPOINT >/dev/null 2>&1 || true
  done
  log "every CloudNativePG instance is streaming"
}

# The platform of $DATABASE: helm install, Ready, Prometheus configured from it, and no
# container restarted on the way.
platform_install() {
  local values=(--values k8s/e2e/values.yaml)
  if [ "$DATABASE" = cloudnative-pg ]; then
    hack/cnpg.sh image "$AGORA_K8S_CONTAINERD"
    hack/cnpg.sh install
    values+=(--values k8s/e2e/cloudnative-pg.yaml)
  fi
  echo "$DATABASE" >"$STATE/database"
  "$HELM" dependency build charts/agora >&2
  log "helm install $RELEASE charts/agora"
  "$HELM" upgrade --install "$RELEASE" charts/agora --namespace "$NAMESPACE" --create-namespace \
    "${values[@]}" --wait --timeout 5m >&2
  log "waiting for SocialPlatform $PLATFORM to be Ready"
  if ! kubectl -n "$NAMESPACE" wait "socialplatform/$PLATFORM" --for=condition=Ready --timeout=600s >&2; then
    kubectl get pods -A -o wide >&2 || true
    kubectl -n "$NAMESPACE" get socialplatform "$PLATFORM" -o yaml >&2 || true
    die "the platform did not become Ready"
  fi
  if [ "$DATABASE" = cloudnative-pg ]; then
    # The platform is Ready with a primary; the tests start from every replica streaming.
    log "waiting for every CloudNativePG instance"
    cnpg_instances_ready
  fi
  log "configuring Prometheus from the platform's ServiceMonitor and PrometheusRule"
  prometheus_configure
  kubectl get pods -A -o wide >&2
  # A pod that is Ready now but restarted on the way (a crash loop while the database was
  # provisioned, a failed startup probe) is a defect too.
  local restarted
  restarted=$(kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{range .status.containerStatuses[*]} {.restartCount}{end}{"\n"}{end}' |
    awk '{for (i = 2; i <= NF; i++) if ($i > 0) {print $1; break}}')
  if [ -n "$restarted" ]; then
    for pod in $restarted; do
      kubectl -n "${pod%%/*}" logs "${pod#*/}" --all-containers --previous --tail=20 >&2 || true
    done
    die "containers restarted while the platform came up: $restarted"
  fi
}

cmd_up() {
  local t0=$SECONDS
  mkdir -p "$STATE"
  local lines
  lines=$(k8s_env start --with-node) || die "the cluster did not start"
  eval "$lines"
  export KUBECONFIG
  # helm (cached from PyPI) and the operator chart as the platform chart's dependency.
  lines=$(hack/tools.sh) || die "hack/tools.sh failed"
  eval "$lines"
  # The backup drill's bucket, where the node's pods reach it; a second `up` keeps the
  # running one (backups name its address).
  if ! (eval "$(cat "$STATE/s3.env" 2>/dev/null)" && kill -0 "${AGORA_TEST_S3_PID:?}") 2>/dev/null; then
    AGORA_S3_HOST=10.244.0.1 TMPDIR="$STATE" hack/s3-server.sh start >"$STATE/s3.env" ||
      die "the S3 server did not start"
  fi
  log "building and importing the images (profile $PROFILE)"
  hack/offline-images.sh --profile "$PROFILE" --import "$AGORA_K8S_CONTAINERD"
  log "building and importing Jaeger and Prometheus; deploying them"
  observability_images
  observability_up
  volumes
  platform_install
  log "up in $((SECONDS - t0))s"
  print_env
}

cmd_test() {
  local tests=(--skip cloudnative_pg::)
  [ "$(cat "$STATE/database" 2>/dev/null)" != cloudnative-pg ] ||
    tests=(a_journey_through_the_ingress_with_forward_auth cloudnative_pg::)
  [ $# -eq 0 ] || tests=("$@")
  eval "$(print_env)"
  export KUBECONFIG AGORA_URL AGORA_HOST AGORA_E2E_NAMESPACE AGORA_E2E_PLATFORM AGORA_JAEGER_URL AGORA_PROMETHEUS_URL \
    AGORA_E2E_S3_ENDPOINT AGORA_E2E_S3_BUCKET AGORA_E2E_S3_ACCESS_KEY AGORA_E2E_S3_SECRET_KEY
  # The failures are assertions about the platform: their messages, not a backtrace per
  # test, belong in the log (CI shows a part of it).
  # With the workspace's feature set, as hack/test.sh compiles it: only agora and its
  # cluster tests compile again (`-p agora` alone unifies features otherwise and
  # compiled every service crate once more, 2 min 18 s warm).
  RUST_BACKTRACE=0 cargo test --workspace --features agora/cluster-e2e --test cluster -- \
    --test-threads 1 "${tests[@]}"
}

# From a running `up` of the Managed mode to the CloudNativePG mode on the same node: the
# platforms deleted while their operator still runs (it removes its finalizers), the
# release and namespace removed, then the platform installed again in the new mode.
cmd_switch_to_cloudnative_pg() {
  eval "$(k8s_env env)"
  export KUBECONFIG
  eval "$(hack/tools.sh)"
  log "removing the Managed platform"
  kubectl -n "$NAMESPACE" delete socialplatformbackups,socialplatforms --all --wait --timeout=300s >&2
  "$HELM" uninstall "$RELEASE" --namespace "$NAMESPACE" --wait --timeout 5m >&2
  kubectl delete namespace "$NAMESPACE" --wait --timeout=300s >&2
  DATABASE=cloudnative-pg
  log "installing the platform in the CloudNativePG mode"
  platform_install
}

cmd_down() {
  if [ -f "$STATE/s3.env" ]; then
    (eval "$(cat "$STATE/s3.env")" && hack/s3-server.sh stop) >/dev/null 2>&1 || true
  fi
  k8s_env stop
  rm -rf "$STATE"
  log "down: removed $STATE"
}

# What a node may leave behind on this machine: processes, mounts, network namespaces,
# links, iptables rules, kubepods cgroups.
# Processes of the kinds a node runs (containers show on the host too), by pid: one that
# was there before and is gone after (another test's PostgreSQL shutting down) is fine,
# a new one is a leftover.
host_processes() {
  local pid comm
  # The node's own programs anywhere; what also runs outside a cluster (PostgreSQL,
  # Jaeger: CI's bench runs beside the e2e) only in a container's (kubepods) cgroup.
  ps -eo pid=,comm= | while read -r pid comm; do
    case $comm in
      containerd* | kubelet | kube-proxy | kube-apiserver | etcd | traefik | coredns) ;;
      postgres* | app | pause | jaeger* | prometheus*)
        grep -qs ':/kubepods' "/proc/$pid/cgroup" || continue ;;
      *) continue ;;
    esac
    echo "$pid $comm"
  done | sort || true
}

host_snapshot() {
  {
    echo "## mounts"
    awk '{print $5}' /proc/self/mountinfo | sort
    echo "## netns"
    ip netns list 2>/dev/null | sort
    echo "## links"
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
    for t in iptables ip6tables; do
      echo "## $t"
      # Rules and chains; not the table headers: the first iptables call of a fresh
      # machine creates its (empty) tables, which is not something left behind.
      "$t-save" 2>/dev/null | grep -vE '^#|^:[A-Z]+ [A-Z]+ \[|^\*|^COMMIT' | sed 's/\[[0-9]*:[0-9]*\]//' || true
    done
    echo "## cgroups"
    find /sys/fs/cgroup -maxdepth 3 -type d -name 'kubepods*' 2>/dev/null | sort
  } 2>/dev/null
}

# After a failed test, before `down` removes it all: the pods, the last log lines of the
# platform's pods and of Traefik (its access log names the router and backend of each
# request), and the namespace's events.
diagnose() {
  local kc=(--kubeconfig "$STATE/k8s/kubeconfig") pod
  kubectl "${kc[@]}" get pods -A -o wide >&2 || true
  for pod in $(kubectl "${kc[@]}" -n "$NAMESPACE" get pods -o name 2>/dev/null); do
    echo "--- $pod" >&2
    kubectl "${kc[@]}" -n "$NAMESPACE" logs "$pod" --all-containers --tail=15 >&2 || true
  done
  echo "--- traefik" >&2
  kubectl "${kc[@]}" -n traefik logs deploy/traefik --tail=40 >&2 || true
  kubectl "${kc[@]}" -n "$NAMESPACE" get events --sort-by=.lastTimestamp >&2 || true
}

cmd_all() {
  local before after procs_before left rc=0
  [ ! -e "$STATE" ] || cmd_down
  before=$(host_snapshot)
  procs_before=$(host_processes)
  if cmd_up >/dev/null && cmd_test && cmd_switch_to_cloudnative_pg >/dev/null && cmd_test; then
    rc=0
  else
    rc=1
  fi
  if [ "$rc" != 0 ]; then
    diagnose
  fi
  cmd_down
  after=$(host_snapshot)
  if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    die "down left traces on the machine (above: before vs after)"
  fi
  left=$(comm -13 <(echo "$procs_before") <(host_processes))
  [ -z "$left" ] || die "down left processes running: $left"
  log "down left the machine as it was"
  return "$rc"
}

case "${1:-all}" in
  up)
    if [ "${2:-}" = --database ]; then
      case "${3:-}" in
        managed | cloudnative-pg) DATABASE=$3 ;;
        *) echo "usage: $0 up [--database managed|cloudnative-pg]" >&2; exit 2 ;;
      esac
    fi
    cmd_up
    ;;
  test) shift; cmd_test "$@" ;;
  down) cmd_down ;;
  all) cmd_all ;;
  *) echo "usage: $0 [up [--database managed|cloudnative-pg]|test|down]" >&2; exit 2 ;;
esac
