#!/usr/bin/env bash
# Generated diesel schemas stay generated: for every service with migrations, apply them
# to a fresh database and compare `diesel print-schema` with its checked-in src/schema.rs.
#
#   hack/diesel-schema.sh check   # fail on any difference (CI; hack/test.sh runs it)
#   hack/diesel-schema.sh write   # regenerate src/schema.rs files
#   hack/diesel-schema.sh tool    # only build the (cached) diesel CLI
#
# Needs a PostgreSQL server where databases may be created: AGORA_TEST_DATABASE_URL
# (hack/test.sh sets it to its throwaway cluster). The diesel CLI is built once from
# crates.io (pinned, PostgreSQL only, libpq from Debian's libpq-dev) and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

MODE=${1:-check}
DIESEL_CLI_VERSION=2.3.5
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/agora/diesel-cli-$DIESEL_CLI_VERSION"
DIESEL="$ROOT/bin/diesel"

# libpq's headers for the CLI, from Debian's libpq-dev at the version of the installed
# libpq5 when the archive still has it: an unpinned install pulls the newest libpq5,
# which upgrades the machine's PostgreSQL server packages with it, and a cluster running
# during that upgrade then fails to load its own plpgsql.so (seen on a fresh machine).
install_libpq_dev() (
  # The lock apt_install (hack/lib.sh) takes: CI may run this beside another install.
  exec 8>"${TMPDIR:-/tmp}/agora-apt.lock"
  flock 8
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  have=$(dpkg-query -W -f='${Version}' libpq5 2>/dev/null || true)
  if [ -n "$have" ] && DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 \
    -y -qq "libpq-dev=$have" >/dev/null 2>&1; then
    exit 0
  fi
  echo "libpq-dev $have is not in the archive; installing the newest (upgrades libpq5)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq libpq-dev >/dev/null
)

# CI may build it in the background; a second caller waits for that build.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
if [ ! -x "$DIESEL" ]; then
  if ! pkg-config --exists libpq 2>/dev/null && [ ! -e /usr/include/postgresql/libpq-fe.h ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      install_libpq_dev
    else
      echo "error: libpq headers are missing; install the 'libpq-dev' package" >&2
      exit 1
    fi
  fi
  echo "building diesel CLI $DIESEL_CLI_VERSION (first run only)..." >&2
  # Not with CI's lint settings (.ci/run): they are for this workspace's crates.
  env -u RUSTC_WORKSPACE_WRAPPER -u RUSTFLAGS cargo install diesel_cli --version "$DIESEL_CLI_VERSION" --no-default-features \
    --features postgres --locked --root "$ROOT" --quiet
fi
exec 9>&-
# `tool`: only build the CLI (hack/test.sh does it before it starts its PostgreSQL).
[ "$MODE" != tool ] || exit 0

SERVER=${AGORA_TEST_DATABASE_URL:?set AGORA_TEST_DATABASE_URL to a PostgreSQL server URL (hack/test.sh does)}
base=${SERVER%%\?*}
base=${base%/*}
status=0
for migrations in services/*/migrations; do
  service_dir=${migrations%/migrations}
  schema="$service_dir/src/schema.rs"
  name=$(basename "$service_dir")
  url="$base/schema_check_${name}_$$_$RANDOM"
  "$DIESEL" database setup --no-default-migration --database-url "$url" --migration-dir "$migrations" >/dev/null
  generated=$(mktemp)
  "$DIESEL" print-schema --database-url "$url" >"$generated"
  "$DIESEL" database drop --database-url "$url" >/dev/null
  if [ "$MODE" = write ]; then
    cp "$generated" "$schema"
    echo "wrote $schema" >&2
  elif ! diff -u "$schema" "$generated"; then
    echo "error: $schema differs from its migrations; run hack/diesel-schema.sh write" >&2
    status=1
  fi
  rm -f "$generated"
done
exit "$status"
