#!/usr/bin/env bash
# Agora's benchmarks, each held against a baseline measured in the same run on the same
# machine (absolute numbers on a shared 2-core machine drift; ratios hold better).
#
#   hack/bench.sh            # the full run (~15 min): regenerates bench/results/*.json,
#                            # docs/benchmarks.md and its plots in docs/benchmarks/
#   hack/bench.sh --smoke    # seconds per suite, tiny data, results under target/bench-smoke
#                            # (what CI runs, so the harness cannot rot)
#   hack/bench.sh --suites edge,mix
#
# It starts what it needs: a throwaway PostgreSQL (this machine's binaries), a release
# `agora up` on a fresh state dir (rate limit off) seeded with `agora seed`, and Debian's
# nginx as the reference reverse proxy; `agora-bench` (bench/) is the load generator:
# constant-rate (open-loop) load with latency measured from each request's intended send
# time, so coordinated omission cannot hide stalls, warm-up excluded.
#
# Suites: edge (direct vs gateway vs nginx), mix (DeathStarBench's 60/30/10 social mix,
# against pgbench running the users service's own timeline SQL), feed (feed latency by
# number of followees at 1M posts), auth (logins vs raw argon2id; token checks at the edge
# vs raw EdDSA), photos (2 MP JPEG uploads vs libjpeg-turbo's
# djpeg/cjpeg pipeline, libvips' tools beside it), memory (resident
# memory idle and at the mix's peak: of `agora up`, and of each service run as its own
# process from its container binary), tracing (the mix with tracing off, 10 % sampled and
# every request traced to a local Jaeger: throughput, p99, the collector's CPU, memory),
# backup (`agora backup` of the seeded platform while the mix runs at half its best rate,
# then `agora restore` into a new state dir: times, size, peak memory, the mix's p99),
# notify (the memory of 1,000 open notification streams, then the time from a follow's
# answer to its notification on the follower's stream, beside the mix at half its best
# rate), lifecycle (the mix with 1,000 live token revocations against none; then a person
# with 1,000 posts, 2,000 comments and 200 2 MP photos: their export's time, size and agora
# up's peak memory meanwhile, and their erasure's time).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=bench DIE_PREFIX="bench.sh: "

SMOKE=0
SUITES=edge,mix,feed,auth,photos,memory,backup,tracing,notify,lifecycle
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --suites) SUITES=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--smoke] [--suites edge,mix,feed,auth,photos,memory,backup,tracing,notify,lifecycle]" >&2; exit 2 ;;
  esac
done
has_suite() { [[ ",$SUITES," == *",$1,"* ]]; }
# A run of some suites only records its machine and versions beside the full run's.
META=meta
[ "$SUITES" = edge,mix,feed,auth,photos,memory,backup,tracing,notify,lifecycle ] || META="meta-${SUITES//,/-}"

if [ "$SMOKE" = 1 ]; then
  PROFILE=dev TARGET=debug
  RESULTS=target/bench-smoke/results REPORT=target/bench-smoke/benchmarks.md PLOTS=target/bench-smoke/plots
  USERS=20 POSTS_PER_USER=2
  TIMING=(--warmup 0.3 --measure 1 --timeout 5)
  MIX_RATES=20,40
  EDGE_RATE=100 TRACE_COST_RATE=20 TRACE_COST_ROUNDS=1 BACKUP_MEASURE=3 BACKUP_DELAY=1
  NOTIFY_STREAMS=20 NOTIFY_RATE=5 NOTIFY_MEASURE=3
  LEAVER=(--posts 10 --comments 20 --photos 3 --photo-width 320 --photo-height 240) REVOCATIONS=20
  FEED_AUTHORS=200 FEED_POSTS=20000 FEED_FOLLOWEES="10 100"
  RAW_SECONDS=1 PHOTO_SIZE=(--width 320 --height 240)
else
  PROFILE=release TARGET=release
  RESULTS=bench/results REPORT=docs/benchmarks.md PLOTS=docs/benchmarks
  USERS=1000 POSTS_PER_USER=10
  TIMING=(--warmup 3 --measure 10 --timeout 10)
  MIX_RATES=200,400,600,800,1000,1200,1300,1400,1500,1600,1700,1800,2000,2200,2400
  EDGE_RATE=1000 TRACE_COST_RATE=500 TRACE_COST_ROUNDS=5 BACKUP_MEASURE=30 BACKUP_DELAY=5
  NOTIFY_STREAMS=1000 NOTIFY_RATE=20 NOTIFY_MEASURE=30
  LEAVER=(--posts 1000 --comments 2000 --photos 200) REVOCATIONS=1000
  FEED_AUTHORS=10000 FEED_POSTS=1000000 FEED_FOLLOWEES="10 100 1000 5000"
  RAW_SECONDS=10 PHOTO_SIZE=(--width 1632 --height 1224)
fi
# The per-process platform logs each request in a smoke run (a failure shows its story).
# A smoke run seeds one request at a time: CI runs it at a low CPU weight beside the
# e2e, and eight uploads at once shared that slice until one waited past the gateway's
# 30-second answer deadline (a 504 in a cold run). Seeding is never measured.
if [ "$SMOKE" = 1 ]; then PROC_LOG=info SEED_CONCURRENCY=1; else PROC_LOG=warn SEED_CONCURRENCY=8; fi
PASSWORD=agora-bench-password
export AGORA_SEED_PASSWORD=$PASSWORD
mkdir -p "$RESULTS" "$PLOTS"

# --- tools: nginx (the reference proxy), libjpeg-turbo and libvips, pgbench, matplotlib -------------
ensure_debian() {
  local missing=()
  command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  # The photos suite's limit (libjpeg-turbo's djpeg/cjpeg) and peer (libvips' tools).
  command -v cjpeg >/dev/null 2>&1 || missing+=(libjpeg-turbo-progs)
  command -v vipsthumbnail >/dev/null 2>&1 || missing+=(libvips-tools)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing: ${missing[*]} (Debian packages; run as root to install them)"
  log "installing ${missing[*]} (Debian packages)"
  apt_install "${missing[@]}" >&2
}
ensure_debian
# Debian's nginx package starts a system nginx; ours runs on its own config and port.
if [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
VENV=$(bench_venv)

# --- build -------------------------------------------------------------------------
log "building agora, agora-bench and the service binaries (profile $PROFILE)"
# The service binaries are what their containers run: the memory suite starts each alone.
if [ "$PROFILE" = release ]; then cargo_build_bins --release; else cargo_build_bins; fi

# --- the platform --------------------------------------------------------------------
STATE=$(mktemp -d "${TMPDIR:-/tmp}/agora-bench.XXXXXX")
chmod 755 "$STATE"
AGORA_PID="" NGINX_PID="" SAMPLER_PID="" JAEGER_PID=""
declare -A SVC_PID=() # the memory suite's per-process platform
cleanup() {
  local status=$?
  # A failed run shows what the platform logged (warnings and errors) before it goes.
  if [ "$status" != 0 ]; then
    [ -s "$STATE/agora.err" ] && { echo "bench.sh: the last lines agora up logged:" >&2; tail -n 40 "$STATE/agora.err" >&2; }
    for err in "$STATE"/procs/*.err; do
      [ -s "$err" ] && { echo "bench.sh: the last lines $(basename "$err" .err) logged:" >&2; tail -n 20 "$err" >&2; }
    done
  fi
  local pids="$SAMPLER_PID $NGINX_PID $AGORA_PID $JAEGER_PID ${SVC_PID[*]}"
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
  stop_pg "$STATE/pg"
  rm -rf "$STATE"
}
trap cleanup EXIT
# The run's own links to this build: a cargo command beside it (CI runs the e2e's
# `cargo test` alongside the smoke run) replaces target/'s files, never these.
BIN=$STATE/bin
mkdir "$BIN"
for exe in agora agora-bench agora-auth agora-users agora-relations agora-photos agora-events agora-notifications agora-gateway; do
  ln "${CARGO_TARGET_DIR:-target}/$TARGET/$exe" "$BIN/$exe" 2>/dev/null ||
    cp "${CARGO_TARGET_DIR:-target}/$TARGET/$exe" "$BIN/$exe"
done
BENCH=("$BIN/agora-bench")

PG_PORT=$(free_port)
# Settings a small production box would have; durability stays on (fsync, synchronous
# commit): a post is acknowledged only once it is on disk.
PG_SETTINGS=(max_connections=300 shared_buffers=512MB effective_cache_size=4GB work_mem=16MB)
start_pg "$STATE/pg" "$PG_PORT" "${PG_SETTINGS[@]}"
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
psql_db() { psql -v ON_ERROR_STOP=1 -q -X "$PG_URL/$1" "${@:2}"; }

GW_PORT=$(free_port)
GW="http://127.0.0.1:$GW_PORT"
# Starts `agora up` (again: its databases and keys stay), with extra VAR=value first.
# The auth service's per-address throttles would refuse a thousand people seeded and
# signed in from one address (failed-login backoff stays as it is).
start_agora() {
  env "$@" AUTH_REGISTRATIONS_PER_MINUTE=1000000 AUTH_LOGINS_PER_MINUTE=1000000 \
    RUST_LOG=warn "$BIN/agora" up --database-url "$PG_URL/postgres" --state-dir "$STATE/agora" \
    --listen "127.0.0.1:$GW_PORT" --rate-limit-per-minute 0 >"$STATE/agora.out" 2>"$STATE/agora.err" &
  AGORA_PID=$!
  for _ in $(seq 1 600); do
    grep -q '^Agora is up' "$STATE/agora.out" 2>/dev/null && break
    kill -0 "$AGORA_PID" 2>/dev/null || { cat "$STATE/agora.err" >&2; die "agora up stopped"; }
    sleep 0.1
  done
  grep -q '^Agora is up' "$STATE/agora.out" || die "agora up did not come up in 60 s"
}
stop_agora() {
  kill "$AGORA_PID" 2>/dev/null || true
  wait "$AGORA_PID" 2>/dev/null || true
  AGORA_PID=""
}
start_agora
# "  auth      api http://127.0.0.1:N  ops http://127.0.0.1:M"
api_of() { awk -v s="$1" '$1 == s && $2 == "api" {sub("^http://", "", $3); print $3}' "$STATE/agora.out"; }
AUTH_API=$(api_of auth)
[ -n "$AUTH_API" ] || die "agora up did not say where the auth service listens"

log "seeding $USERS people (agora seed)"
"$BIN/agora" seed --url "$GW" --users "$USERS" --posts-per-user "$POSTS_PER_USER" --seed 1 \
  --password "$PASSWORD" --concurrency "$SEED_CONCURRENCY" >"$STATE/seed.out"
# The most followed person, for the suites that need one account.
SOMEONE=$(awk '/^demo accounts/{getline; print $1; exit}' "$STATE/seed.out")
[ -n "$SOMEONE" ] || die "agora seed printed no demo account"

# --- what the run is --------------------------------------------------------------------
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Writes VALUE into FILE whole: a sampler killed mid-write leaves the last value, never
# an empty file (a smoke run once read one, and wrote invalid JSON).
keep_value() { echo "$2" >"$1.tmp" && mv "$1.tmp" "$1"; }
# Keeps agora up's peak resident memory in FILE, twice a second, until SAMPLER_PID is killed.
sample_agora_peak() {
  (
    peak=0
    while :; do
      a=$(rss_kib "$AGORA_PID")
      [ "$a" -gt "$peak" ] && peak=$a
      keep_value "$1" "$peak"
      sleep 0.5
    done
  ) &
  SAMPLER_PID=$!
}
# PostgreSQL's processes share their buffers: proportional set sizes add up correctly.
pg_pss_kib() {
  local total=0 pid main
  main=$(head -n 1 "$STATE/pg/data/postmaster.pid")
  for pid in "$main" $(pgrep -P "$main"); do
    total=$((total + $(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# The version before anything is written: the redirect below changes a tracked file.
VERSION=$(git describe --always --dirty 2>/dev/null || echo unknown)
# A full run replaces every suite's results: no earlier partial rerun stays in the report.
[ "$META" = meta ] && rm -f "$RESULTS"/meta-*.json
{
  printf '{"date": "%s", "smoke": %s, "profile": "%s",\n' "$(date -u +%FT%TZ)" "$( [ "$SMOKE" = 1 ] && echo true || echo false)" "$PROFILE"
  printf ' "machine": {"cpu": "%s", "cores": %s, "memory_gib": %s, "kernel": "%s"},\n' \
    "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)" "$(nproc)" \
    "$(awk '/MemTotal/{printf "%.1f", $2/1048576}' /proc/meminfo)" "$(uname -r)"
  printf ' "versions": {"agora": "%s", "rustc": "%s", "postgresql": "%s", "nginx": "%s"},\n' \
    "$VERSION" "$(rustc --version)" \
    "$("$PG_BIN/postgres" --version)" "$(nginx -v 2>&1)"
  printf ' "settings": {"users": %s, "posts_per_user": %s, "timing": "%s", "postgresql": "%s", "agora_workers_per_service": 2}}\n' \
    "$USERS" "$POSTS_PER_USER" "${TIMING[*]}" "${PG_SETTINGS[*]}"
} >"$RESULTS/$META.json"

if has_suite memory; then
  MEM_IDLE_AGORA=$(rss_kib "$AGORA_PID")
  MEM_IDLE_PG=$(pg_pss_kib)
fi

# --- suites ---------------------------------------------------------------------------
if has_suite edge; then
  NGINX_PORT=$(free_port)
  mkdir -p "$STATE/nginx"
  cat >"$STATE/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $STATE/nginx/nginx.pid;
error_log $STATE/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $STATE/nginx;
  proxy_temp_path $STATE/nginx;
  upstream auth { server $AUTH_API; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  nginx -c "$STATE/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  wait_until 5 port_open "$NGINX_PORT" || true
  log "edge: direct vs gateway vs nginx"
  # CPU time per request of agora (the auth service, and the gateway in front of it)
  # and of nginx's workers, read from /proc around each maximum-throughput turn.
  NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | paste -sd, -)
  "${BENCH[@]}" edge --rate "$EDGE_RATE" "${TIMING[@]}" \
    --cpu "agora=$AGORA_PID" --cpu "nginx=${NGINX_WORKERS:-$NGINX_PID}" \
    --target "direct=http://$AUTH_API/api/v1/auth/jwks" \
    --target "gateway=$GW/api/v1/auth/jwks" \
    --target "nginx=http://127.0.0.1:$NGINX_PORT/api/v1/auth/jwks" >"$RESULTS/edge.json"
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""
fi

if has_suite mix || has_suite memory; then
  # agora's resident memory through the mix, its peak kept (/proc/PID/status is cheap).
  # PostgreSQL's proportional set sizes are read once, right after the mix, while its
  # backends still hold what they grew to: reading smaps_rollup walks each backend's page
  # tables under its mmap lock (1.4 s for 25 backends with 512 MB of shared buffers), and
  # doing that twice a second during the mix stalled the very backends being measured.
  sample_agora_peak "$STATE/peak"
  log "mix: 60% feed, 30% user timeline, 10% new posts at rising rates"
  "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$MIX_RATES" "${TIMING[@]}" >"$RESULTS/mix.json"
  kill "$SAMPLER_PID"; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
  MEM_AFTER_MIX_PG=$(pg_pss_kib)

  # The physical limit: the same timeline SQL straight against PostgreSQL, each person's
  # followees and friends read from the relations database into bench_scope first.
  psql_db agora_relations -c "\\copy (SELECT row_number() OVER (ORDER BY a.id), a.id,
      ARRAY(SELECT followee_id FROM follows WHERE follower_id = a.id
            UNION SELECT friend_id FROM friendships WHERE user_id = a.id ORDER BY 1),
      ARRAY(SELECT friend_id FROM friendships WHERE user_id = a.id ORDER BY 1)
    FROM accounts a) TO '$STATE/scope.tsv'"
  psql_db agora_users -c "DROP TABLE IF EXISTS bench_scope" \
    -c "CREATE TABLE bench_scope (n int PRIMARY KEY, viewer uuid, authors uuid[], friends uuid[])" \
    -c "\\copy bench_scope FROM '$STATE/scope.tsv'" -c "ANALYZE bench_scope"
  PEOPLE=$(psql_db agora_users -At -c "SELECT count(*) FROM bench_scope")
  "${BENCH[@]}" pgbench-script feed >"$STATE/feed.sql"
  "${BENCH[@]}" pgbench-script user >"$STATE/user.sql"
  PGBENCH=$PG_BIN/pgbench
  [ -x "$PGBENCH" ] || PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)
  [ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench) || die "pgbench is missing (Debian package postgresql)"
  pgbench_run() { # name, pgbench script arguments...
    local name=$1 out
    shift
    out=$("$PGBENCH" -n -M prepared -c 16 -j 2 -T "${TIMING[3]%.*}" -D "people=$PEOPLE" "$@" \
      "$PG_URL/agora_users" 2>&1) || { echo "$out" >&2; die "pgbench $name failed"; }
    printf '"%s": {"tps": %s, "latency_ms": %s}' "$name" \
      "$(awk '/^tps = /{print $3; exit}' <<<"$out")" \
      "$(awk '/^latency average = /{print $4; exit}' <<<"$out")"
  }
  log "mix: the same SQL through pgbench"
  {
    echo "{"
    pgbench_run mix -f "$STATE/feed.sql@2" -f "$STATE/user.sql@1"
    echo ","
    pgbench_run feed -f "$STATE/feed.sql"
    printf ',\n"people": %s, "clients": 16}\n' "$PEOPLE"
  } >"$RESULTS/mix-sql.json"
  psql_db agora_users -c "DROP TABLE bench_scope"
fi

if has_suite memory; then
  read -r MEM_PEAK_AGORA <"$STATE/peak"
  # Each service on its own: the same binaries and environment contract as their
  # containers (the operator's wiring), each process on its own loopback address the way
  # each pod has its own IP, so every service listens on the same two ports and the
  # gateway finds them as it does in the cluster. Own databases, seeded like the first
  # platform, then the mix at the best rate the mix suite held, sampling every process.
  log "memory: every service as its own process"
  PROCS="$STATE/procs"
  mkdir -p "$PROCS/photos"
  SVC_PORT=$(free_port) SVC_OPS_PORT=$(free_port)
  while [ "$SVC_OPS_PORT" = "$SVC_PORT" ]; do SVC_OPS_PORT=$(free_port); done
  SERVICES=(relations photos users events notifications auth gateway)
  declare -A SVC_IP=([relations]=127.0.2.1 [photos]=127.0.2.2 [users]=127.0.2.3
    [events]=127.0.2.4 [notifications]=127.0.2.7 [auth]=127.0.2.5 [gateway]=127.0.2.6)
  svc_url() { echo "http://${SVC_IP[$1]}:$SVC_PORT"; }
  secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
  INTERNAL_TOKEN=$(secret)
  for svc in relations photos users events notifications auth; do
    psql_db postgres -c "CREATE DATABASE procs_$svc"
  done
  for svc in "${SERVICES[@]}"; do
    env_of=("RUST_LOG=$PROC_LOG" WORKERS=2 "LISTEN_ADDR=${SVC_IP[$svc]}:$SVC_PORT"
      "OPS_LISTEN_ADDR=${SVC_IP[$svc]}:$SVC_OPS_PORT"
      "AUTH_JWKS_URL=$(svc_url auth)/api/v1/auth/jwks" "INTERNAL_TOKEN=$INTERNAL_TOKEN")
    [ "$svc" = gateway ] || env_of+=("DATABASE_URL=$PG_URL/procs_$svc")
    # Who calls whom, as the operator wires it (operator/src/build.rs).
    case $svc in
      photos) env_of+=("PHOTOS_STORAGE_DIR=$PROCS/photos" "PHOTOS_SHARE_LINK_KEY=$(secret)"
        "RELATIONS_URL=$(svc_url relations)") ;;
      users) env_of+=("RELATIONS_URL=$(svc_url relations)" "PHOTOS_URL=$(svc_url photos)"
        "NOTIFICATIONS_URL=$(svc_url notifications)") ;;
      relations) env_of+=("NOTIFICATIONS_URL=$(svc_url notifications)") ;;
      events) env_of+=("RELATIONS_URL=$(svc_url relations)" "NOTIFICATIONS_URL=$(svc_url notifications)") ;;
      notifications) env_of+=("RELATIONS_URL=$(svc_url relations)") ;;
      auth)
        env_of+=("AUTH_SIGNING_KEY_FILE=$PROCS/auth-signing-key.pem" AUTH_GENERATE_SIGNING_KEY=true
          "USERS_URL=$(svc_url users)" "RELATIONS_URL=$(svc_url relations)"
          "PHOTOS_URL=$(svc_url photos)" "EVENTS_URL=$(svc_url events)"
          "NOTIFICATIONS_URL=$(svc_url notifications)"
          "TRUSTED_PROXIES=${SVC_IP[gateway]}/32" TRUSTED_PROXY_HOPS=1
          AUTH_REGISTRATIONS_PER_MINUTE=1000000 AUTH_LOGINS_PER_MINUTE=1000000) ;;
      gateway)
        upstreams=()
        for up in relations photos users events notifications auth; do upstreams+=("$(svc_url "$up")"); done
        env_of+=("GATEWAY_UPSTREAMS=$(IFS=,; echo "${upstreams[*]}")"
          "GATEWAY_UPSTREAM_OPS_PORT=$SVC_OPS_PORT" GATEWAY_RATE_LIMIT_PER_MINUTE=0) ;;
    esac
    env -i PATH="$PATH" HOME="$HOME" "${env_of[@]}" "$BIN/agora-$svc" >"$PROCS/$svc.out" 2>"$PROCS/$svc.err" &
    SVC_PID[$svc]=$!
  done
  GW2=$(svc_url gateway)
  # Every service ready on its own ops port, as the kubelet's readiness probes would have
  # it: the gateway answering for auth says nothing of photos, and an upload it cannot
  # forward yet is answered before its body is read (the seed's client then sees a broken
  # pipe, which a CI run beside the e2e once did).
  all_ready() {
    local svc
    for svc in "${SERVICES[@]}"; do
      curl -sf -o /dev/null "http://${SVC_IP[$svc]}:$SVC_OPS_PORT/readyz" || return 1
    done
  }
  for _ in $(seq 1 600); do
    all_ready && break
    for svc in "${SERVICES[@]}"; do
      kill -0 "${SVC_PID[$svc]}" 2>/dev/null || { tail -n 20 "$PROCS/$svc.err" >&2; die "agora-$svc stopped"; }
    done
    sleep 0.1
  done
  all_ready || die "the per-process platform was not ready in 60 s"
  "$BIN/agora" seed --url "$GW2" --users "$USERS" --posts-per-user "$POSTS_PER_USER" --seed 1 \
    --password "$PASSWORD" --concurrency "$SEED_CONCURRENCY" >"$PROCS/seed.out"
  declare -A SVC_IDLE=()
  for svc in "${SERVICES[@]}"; do SVC_IDLE[$svc]=$(rss_kib "${SVC_PID[$svc]}"); done
  (
    declare -A peak=()
    while :; do
      for svc in "${SERVICES[@]}"; do
        a=$(rss_kib "${SVC_PID[$svc]}")
        [ "$a" -gt "${peak[$svc]:-0}" ] && peak[$svc]=$a
        keep_value "$PROCS/peak-$svc" "${peak[$svc]}"
      done
      sleep 0.5
    done
  ) &
  SAMPLER_PID=$!
  # The best rate the in-process platform held (its lowest step if none held).
  PEAK_RATE=$("$VENV/bin/python" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["best_rate"] or d["steps"][0]["offered_rate"])' "$RESULTS/mix.json")
  log "memory: the mix at $PEAK_RATE req/s through the per-process platform"
  "${BENCH[@]}" mix --url "$GW2" --seed 1 --users "$USERS" --rates "$PEAK_RATE" "${TIMING[@]}" \
    >"$RESULTS/mix-processes.json"
  kill "$SAMPLER_PID"; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
  for svc in "${SERVICES[@]}"; do kill "${SVC_PID[$svc]}" 2>/dev/null || true; done
  for svc in "${SERVICES[@]}"; do wait "${SVC_PID[$svc]}" 2>/dev/null || true; done
  SVC_PID=()
  {
    printf '{"note": "agora up runs every service and the gateway in one process; services_kib are the same services each in its own process (their container binaries)",\n'
    printf ' "agora_kib": {"idle": %s, "mix_peak": %s},\n' "$MEM_IDLE_AGORA" "$MEM_PEAK_AGORA"
    printf ' "services_kib": {'
    sep=""
    for svc in "${SERVICES[@]}"; do
      printf '%s"%s": {"idle": %s, "mix_peak": %s}' "$sep" "$svc" "${SVC_IDLE[$svc]}" "$(cat "$PROCS/peak-$svc")"
      sep=", "
    done
    printf '},\n "services_mix_rate": %s,\n' "$PEAK_RATE"
    printf ' "postgresql_pss_kib": {"idle": %s, "after_mix": %s}}\n' "$MEM_IDLE_PG" "$MEM_AFTER_MIX_PG"
  } >"$RESULTS/memory.json"
fi

if has_suite auth; then
  log "auth: logins vs raw argon2id, token checks at the edge vs raw EdDSA"
  "${BENCH[@]}" auth --url "$GW" --username "$SOMEONE" --seed 1 --users "$USERS" --threads "$(nproc)" \
    --warmup "${TIMING[1]}" --measure "$RAW_SECONDS" >"$RESULTS/auth.json"
fi

if has_suite photos; then
  log "photos: JPEG uploads vs the libjpeg-turbo pipeline (libvips beside it)"
  "${BENCH[@]}" photos --url "$GW" --username "$SOMEONE" --threads "$(nproc)" "${PHOTO_SIZE[@]}" \
    --warmup "${TIMING[1]}" --measure "$RAW_SECONDS" >"$RESULTS/photos.json"
fi

if has_suite feed; then
  # Callers following 10 … 5,000 of FEED_AUTHORS people who wrote FEED_POSTS posts
  # between them (bulk SQL: the loader is not what is measured).
  log "feed: loading $FEED_POSTS posts by $FEED_AUTHORS authors"
  callers=()
  for k in $FEED_FOLLOWEES; do
    name="feedcaller_$k"
    curl -sf -o /dev/null "$GW/api/v1/auth/register" -H 'content-type: application/json' \
      -d "{\"username\":\"$name\",\"email\":\"$name@bench.example\",\"password\":\"$PASSWORD\"}" ||
      die "registering $name failed"
    callers+=(--caller "followees_$k=$name")
  done
  author="md5('bench-author-' || g)::uuid"
  psql_db agora_relations -c "INSERT INTO accounts (id, username)
      SELECT $author, 'bench_author_' || g FROM generate_series(1, $FEED_AUTHORS) g"
  psql_db agora_users -c "INSERT INTO profiles (id, username)
      SELECT $author, 'bench_author_' || g FROM generate_series(1, $FEED_AUTHORS) g" \
    -c "INSERT INTO posts (id, author_id, text, visibility, created_at, updated_at)
      SELECT gen_random_uuid(), md5('bench-author-' || (1 + g % $FEED_AUTHORS))::uuid,
             'bulk post ' || g, CASE WHEN g % 10 = 0 THEN 'friends' ELSE 'public' END,
             now() - g * interval '1 second', now() - g * interval '1 second'
      FROM generate_series(1, $FEED_POSTS) g" -c "ANALYZE posts"
  for k in $FEED_FOLLOWEES; do
    # The auth service's outbox tells relations of the account right after registration.
    for _ in $(seq 1 100); do
      [ "$(psql_db agora_relations -At -c "SELECT count(*) FROM accounts WHERE username = 'feedcaller_$k'")" = 1 ] && break
      sleep 0.1
    done
    # Each caller follows the first k authors (spread over every author's posts).
    psql_db agora_relations -c "INSERT INTO follows (follower_id, followee_id)
        SELECT (SELECT id FROM accounts WHERE username = 'feedcaller_$k'),
               md5('bench-author-' || g)::uuid FROM generate_series(1, $k) g"
  done
  psql_db agora_relations -c "ANALYZE follows"
  log "feed: latency by number of followees"
  "${BENCH[@]}" feed --url "$GW" "${callers[@]}" --rate 20 "${TIMING[@]}" \
    --authors "$FEED_AUTHORS" --posts "$FEED_POSTS" >"$RESULTS/feed.json"
fi

if has_suite backup; then
  # A backup of the whole seeded platform while the mix runs at half the best rate the
  # mix suite measured (or BACKUP_MIX_RATE), its peak resident memory sampled; then a
  # restore into a new state dir (a cluster of its own: initdb, restore, stop).
  best=$("$VENV/bin/python" -c 'import json, sys
try: print(int(json.load(open(sys.argv[1]))["best_rate"] or 0))
except (OSError, KeyError, ValueError): print(0)' "$RESULTS/mix.json")
  rate=${BACKUP_MIX_RATE:-$(( best > 0 ? best / 2 : ${MIX_RATES%%,*} ))}
  log "backup: agora backup while the mix runs at $rate req/s"
  "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$rate" \
    --warmup "${TIMING[1]}" --measure "$BACKUP_MEASURE" --timeout "${TIMING[5]}" >"$STATE/backup-mix.json" &
  mix_pid=$!
  sleep "$BACKUP_DELAY"
  peak_of() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
  t0=$(date +%s.%N)
  "$BIN/agora" backup --state-dir "$STATE/agora" --database-url "$PG_URL/postgres" \
    --to "$STATE/backup" >"$STATE/backup.out" 2>"$STATE/backup.err" &
  backup_pid=$!
  backup_peak=0
  while kill -0 "$backup_pid" 2>/dev/null; do
    p=$(peak_of "$backup_pid"); [ -n "$p" ] && [ "$p" -gt "$backup_peak" ] && backup_peak=$p
    sleep 0.1
  done
  wait "$backup_pid" || { cat "$STATE/backup.err" >&2; die "agora backup failed"; }
  backup_seconds=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.2f", a - b}')
  wait "$mix_pid" || die "the mix during the backup failed"
  log "backup: agora restore into a new state dir"
  t0=$(date +%s.%N)
  "$BIN/agora" restore --from "$STATE/backup" --state-dir "$STATE/restored" \
    >"$STATE/restore.out" 2>"$STATE/restore.err" || { cat "$STATE/restore.err" >&2; die "agora restore failed"; }
  restore_seconds=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.2f", a - b}')
  "$VENV/bin/python" - "$STATE" "$rate" "$backup_seconds" "$backup_peak" "$restore_seconds" "$USERS" \
    >"$RESULTS/backup.json" <<'PY'
import json, sys
state, rate, backup_s, peak_kib, restore_s, users = sys.argv[1:]
manifest = json.load(open(f"{state}/backup/manifest.json"))
print(json.dumps({
    "mix_rate": float(rate), "backup_seconds": float(backup_s),
    "backup_peak_kib": int(peak_kib), "restore_seconds": float(restore_s),
    "bytes": sum(f["size"] for f in manifest["files"]), "people": int(users),
    "photo_objects": manifest["photos"]["objects"], "photo_bytes": manifest["photos"]["bytes"],
    "databases": {d["service"]: next(f["size"] for f in manifest["files"] if f["path"] == d["file"])
                  for d in manifest["databases"]},
    "mix": json.load(open(f"{state}/backup-mix.json"))["steps"][0],
}))
PY
  rm -rf "$STATE/backup" "$STATE/restored"
fi

if has_suite notify; then
  # Open streams' memory, then follow-to-stream latency beside the mix at half the best
  # rate the mix suite measured (or NOTIFY_MIX_RATE).
  best=$("$VENV/bin/python" -c 'import json, sys
try: print(int(json.load(open(sys.argv[1]))["best_rate"] or 0))
except (OSError, KeyError, ValueError): print(0)' "$RESULTS/mix.json")
  rate=${NOTIFY_MIX_RATE:-$(( best > 0 ? best / 2 : ${MIX_RATES%%,*} ))}
  log "notify: $NOTIFY_STREAMS streams, then $NOTIFY_RATE follows/s beside the mix at $rate req/s"
  "${BENCH[@]}" notify --url "$GW" --seed 1 --users "$USERS" --streams "$NOTIFY_STREAMS" \
    --rate "$NOTIFY_RATE" --measure "$NOTIFY_MEASURE" --pid "$AGORA_PID" --mix-rate "$rate" \
    --timeout "${TIMING[5]}" >"$RESULTS/notify.json"
fi

if has_suite lifecycle; then
  # The token-refusal check's cost: the mix with no live revocation (the check is one
  # atomic load) and with REVOCATIONS of them (every check a map lookup), back to back.
  # Revocations of accounts nobody uses: every request pays the lookup, none is refused.
  # A first pass, not measured: what the seeding left is vacuumed and cached before the
  # first of the two runs, not during it (it made the first run look slower).
  "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$MIX_RATES" "${TIMING[@]}" >/dev/null
  log "lifecycle: the social mix without live revocations"
  "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$MIX_RATES" "${TIMING[@]}" \
    >"$STATE/mix-unrevoked.json"
  psql_db agora_auth -c "INSERT INTO revocations (user_id, below_version, until)
    SELECT gen_random_uuid(), 9223372036854775807, now() + interval '1 hour'
    FROM generate_series(1, $REVOCATIONS)" >/dev/null
  sleep 2 # every process reads them within a second
  log "lifecycle: the social mix with $REVOCATIONS live revocations"
  "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$MIX_RATES" "${TIMING[@]}" \
    >"$STATE/mix-revoked.json"
  psql_db agora_auth -c "DELETE FROM revocations" >/dev/null
  log "lifecycle: a person's export and erasure (${LEAVER[*]})"
  "${BENCH[@]}" lifecycle --url "$GW" "${LEAVER[@]}" --pid "$AGORA_PID" >"$STATE/leaver.json"
  "$VENV/bin/python" - "$STATE" "$REVOCATIONS" >"$RESULTS/lifecycle.json" <<'PY'
import json, sys
state, revocations = sys.argv[1], int(sys.argv[2])
load = lambda name: json.load(open(f"{state}/{name}.json"))
print(json.dumps({"revocations": revocations, "mix_unrevoked": load("mix-unrevoked"),
                  "mix_revoked": load("mix-revoked"), "leaver": load("leaver")}, indent=1))
PY
fi

if has_suite tracing; then
  # The social mix with tracing off, at 10 % sampling and with every request traced, to
  # a local Jaeger (v2 all-in-one, in memory) sharing the same cores; its CPU time and
  # agora up's peak memory beside each run.
  JAEGER_BIN=$(hack/monitoring.sh jaeger)
  mkdir -p "$STATE/jaeger"
  JAEGER_LISTEN_HOST=127.0.0.1 "$JAEGER_BIN" >"$STATE/jaeger/out" 2>&1 &
  JAEGER_PID=$!
  wait_until 60 port_open 4318 || { tail -n 20 "$STATE/jaeger/out" >&2; die "jaeger did not start"; }
  cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
  ops_of() { awk -v s="$1" '$1 == s && $4 == "ops" {print $5}' "$STATE/agora.out"; }
  declare -A TRACE_ENV=(
    [off]=""
    [ratio10]="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1"
    [all]="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_TRACES_SAMPLER=parentbased_always_on"
  )
  modes_json=""
  # A first pass, not measured: the data the suites before left (or the seeding) is
  # vacuumed and cached before the first mode runs, not during it.
  "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "${MIX_RATES%%,*}" "${TIMING[@]}" >/dev/null
  for mode in off ratio10 all; do
    stop_agora
    # shellcheck disable=SC2086 # the variables are words
    start_agora ${TRACE_ENV[$mode]}
    sample_agora_peak "$STATE/peak-$mode"
    cpu_before=$(cpu_seconds "$JAEGER_PID")
    log "tracing: the social mix, tracing $mode"
    "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$MIX_RATES" "${TIMING[@]}" \
      >"$RESULTS/tracing-$mode.json"
    cpu_after=$(cpu_seconds "$JAEGER_PID")
    kill "$SAMPLER_PID"; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
    dropped=$(curl -sf "$(ops_of gateway)/metrics" | awk '/^agora_telemetry_spans_dropped_total/{print $NF; exit}')
    modes_json+="${modes_json:+, }\"$mode\": {\"agora_peak_kib\": $(cat "$STATE/peak-$mode"), \"collector_cpu_seconds\": $(awk -v a="$cpu_after" -v b="$cpu_before" 'BEGIN{printf "%.2f", a - b}'), \"spans_dropped\": ${dropped:-0}}"
  done
  # The cost itself, resolved finer than a best rate's 100-200 req/s steps can: the same
  # fixed rate, below every mode's limit, in rounds that rotate the modes' order (so the
  # host's drift during the suite weighs on each alike), measuring the whole machine's CPU
  # time per request over the measured window (every process: agora, PostgreSQL, the
  # collector, the load generator). With both cores saturated the best rate is inversely
  # proportional to it.
  order=(off ratio10 all)
  for round in $(seq 1 "$TRACE_COST_ROUNDS"); do
    for mode in "${order[@]}"; do
      stop_agora
      # shellcheck disable=SC2086 # the variables are words
      start_agora ${TRACE_ENV[$mode]}
      log "tracing cost: round $round, tracing $mode at $TRACE_COST_RATE req/s"
      "${BENCH[@]}" mix --url "$GW" --seed 1 --users "$USERS" --rates "$TRACE_COST_RATE" "${TIMING[@]}" \
        --cpu "agora=$AGORA_PID" --cpu "collector=$JAEGER_PID" >"$STATE/cost-$round-$mode.json"
    done
    order=("${order[@]:1}" "${order[0]}")
  done
  kill "$JAEGER_PID"; wait "$JAEGER_PID" 2>/dev/null || true; JAEGER_PID=""
  "$VENV/bin/python" - "$STATE" "$TRACE_COST_ROUNDS" "$TRACE_COST_RATE" \
    "jaeger $(sed -n 's/^JAEGER_VERSION=//p' hack/monitoring.sh) all-in-one, memory storage" \
    "{$modes_json}" >"$RESULTS/tracing.json" <<'PY'
import json, sys
state, rounds, rate, collector, modes = sys.argv[1:]
cost = [{"round": r, "mode": m,
         "step": json.load(open(f"{state}/cost-{r}-{m}.json"))["steps"][0]}
        for r in range(1, int(rounds) + 1) for m in ("off", "ratio10", "all")]
print(json.dumps({"collector": collector, "modes": json.loads(modes),
                  "cost": {"rate": float(rate), "rounds": cost}}))
PY
fi

# --- the report -----------------------------------------------------------------------
# Smoke runs (CI) fail on any request that failed where none may; the full run reports them.
strict=()
[ "$SMOKE" = 1 ] && strict=(--strict)
"$VENV/bin/python" bench/report.py --results "$RESULTS" --report "$REPORT" --plots "$PLOTS" "${strict[@]}"
log "done: $REPORT, $RESULTS"
