#!/usr/bin/env bash
# The CloudNativePG figures of docs/database.md: the social mix's best rate with three
# synchronous instances against one instance, on the platform of a running
# `hack/e2e.sh up --database cloudnative-pg` (the same node, the same run, the same
# seeded people: a ratio, not an absolute).
#
#   hack/e2e.sh up --database cloudnative-pg && hack/bench-cloudnative-pg.sh
#
# It lifts the platform's throttles (the load comes from one address), seeds it with
# `agora seed` through the gateway's Service (kube-proxy routes it from this machine),
# runs `agora-bench mix` once unmeasured (cold caches, the seed's autovacuum), then at
# rising rates with three synchronous instances, scales the cluster to one instance (no
# synchronous standby) and runs it again, then back to three and once more (A-B-A: the
# drift of the run shows), then runs the failover cluster test for its figures. Results:
# bench/results/cloudnative-pg-{3-sync,1,3-sync-again,failover}.json, then docs/benchmarks.md
# regenerated (bench/report.py).
# The binaries are the profile of the e2e images (AGORA_E2E_PROFILE, default release);
# p99 limit BENCH_P99_MS (default 100: the whole platform shares two cores here).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=bench-cnpg DIE_PREFIX="bench-cloudnative-pg.sh: "

STATE=${AGORA_E2E_STATE:-${XDG_RUNTIME_DIR:-/tmp}/agora-e2e-$UID}
PROFILE=${AGORA_E2E_PROFILE:-release}
NAMESPACE=agora PLATFORM=agora USERS=${BENCH_USERS:-60}
RATES=${BENCH_RATES:-10,20,30,40,50,60,80,100,130,160,200} P99_MS=${BENCH_P99_MS:-100}
# People of their own each run (a platform seeded once refuses the same seed again).
SEED=${BENCH_SEED:-$(($(date +%s) % 100000))}
[ "$(cat "$STATE/database" 2>/dev/null)" = cloudnative-pg ] ||
  die "no platform in the CloudNativePG mode: run hack/e2e.sh up --database cloudnative-pg"
export KUBECONFIG="$STATE/k8s/kubeconfig"
if [ "$PROFILE" = release ]; then cargo build --release -p agora -p agora-bench >&2; else cargo build -p agora -p agora-bench >&2; fi
BIN=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = release ] && echo release || echo debug)
RESULTS=bench/results
mkdir -p "$RESULTS"

cluster=$PLATFORM-postgres
wait_instances() {
  local i
  for ((i = 0; i < 120; i++)); do
    if [ "$(kubectl -n "$NAMESPACE" get clusters.postgresql.cnpg.io "$cluster" \
      -o jsonpath='{.status.readyInstances}/{.status.instances}/{.status.phase}')" = "$1/$1/Cluster in healthy state" ]; then
      return 0
    fi
    sleep 5
  done
  die "the cluster did not settle on $1 ready instances"
}
rolled_out() {
  for svc in gateway auth users relations; do
    kubectl -n "$NAMESPACE" rollout status "deployment/$PLATFORM-$svc" --timeout=300s >&2
  done
}

log "lifting the throttles (one client address)"
kubectl -n "$NAMESPACE" patch socialplatform "$PLATFORM" --type merge -p '{"spec": {"services": {
  "gateway": {"env": [{"name": "GATEWAY_RATE_LIMIT_PER_MINUTE", "value": "0"}]},
  "auth": {"env": [{"name": "AUTH_REGISTRATIONS_PER_MINUTE", "value": "1000000"},
                   {"name": "AUTH_LOGINS_PER_MINUTE", "value": "1000000"}]}}}}' >&2
sleep 5
rolled_out
GW="http://$(kubectl -n "$NAMESPACE" get service "$PLATFORM-gateway" -o jsonpath='{.spec.clusterIP}:{.spec.ports[0].port}')"
log "seeding $USERS people through $GW"
"$BIN/agora" seed --url "$GW" --users "$USERS" --posts-per-user 5 --seed "$SEED" >/dev/null
mix() {
  "$BIN/agora-bench" mix --url "$GW" --seed "$SEED" --users "$USERS" --rates "${2:-$RATES}" \
    --p99-limit-ms "$P99_MS" --warmup 3 --measure 10 --timeout 5 >"$1"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("best rate", d["best_rate"])' "$1" >&2
}
wait_instances 3
log "mix: once, unmeasured"
mix "$(mktemp)" 20,40
log "mix: three instances, synchronous (quorum of one standby)"
mix "$RESULTS/cloudnative-pg-3-sync.json"
log "scaling the cluster to one instance"
kubectl -n "$NAMESPACE" patch socialplatform "$PLATFORM" --type json \
  -p '[{"op": "replace", "path": "/spec/database/cloudNativePG", "value": {"instances": 1}}]' >&2
wait_instances 1
log "mix: one instance"
mix "$RESULTS/cloudnative-pg-1.json"
log "back to three synchronous instances"
kubectl -n "$NAMESPACE" patch socialplatform "$PLATFORM" --type json \
  -p '[{"op": "replace", "path": "/spec/database/cloudNativePG", "value": {"instances": 3, "synchronous": {"method": "any", "number": 1, "dataDurability": "required"}}}]' >&2
wait_instances 3
log "mix: three synchronous instances again"
mix "$RESULTS/cloudnative-pg-3-sync-again.json"
log "failover: the primary's pod deleted under a stream of writes (the cluster test)"
AGORA_E2E_FIGURES="$PWD/$RESULTS/cloudnative-pg-failover.json" \
  hack/e2e.sh test cloudnative_pg::a_failover_under_load_loses_no_acknowledged_write >&2
printf '{"date": "%s", "profile": "%s", "users": %s, "seed": %s}\n' "$(date -u +%Y-%m-%dT%H:%MZ)" \
  "$PROFILE" "$USERS" "$SEED" >"$RESULTS/cloudnative-pg-meta.json"
# The report's plotting venv, as hack/bench.sh makes it.
"$(bench_venv)/bin/python" bench/report.py --results "$RESULTS" --report docs/benchmarks.md --plots docs/benchmarks
log "done: $RESULTS/cloudnative-pg-{3-sync,1,3-sync-again,failover}.json, docs/benchmarks.md"
