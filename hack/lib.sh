# Shell helpers shared by the hack/ scripts (sourced, not run).

# A random high loopback port nobody answers on (bash's /dev/tcp: no extra tools needed).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "error: no free port found" >&2
  exit 1
}

# The directory of the machine's PostgreSQL server binaries (initdb, pg_ctl), installing
# Debian's `postgresql` when they are missing and we are root; empty when there are none.
pg_bin_dir() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return
  fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$dir" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL server binaries (Debian packages)..." >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq postgresql >/dev/null
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  echo "$dir"
}

# start_pg DIR PORT [postgres -c settings...]: a throwaway cluster in DIR/data on
# 127.0.0.1:PORT (trust, loopback only), as the postgres user when we are root
# (PostgreSQL refuses root). Sets PG_BIN and PG_AS; stop it with stop_pg DIR.
start_pg() {
  local dir=$1 port=$2 settings
  shift 2
  PG_BIN=$(pg_bin_dir)
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "error: PostgreSQL server binaries (initdb, pg_ctl) are missing; install the 'postgresql' package" >&2
    return 1
  fi
  PG_AS=()
  mkdir -p "$dir"
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    PG_AS=(runuser -u postgres --)
    chown postgres: "$dir"
  fi
  settings="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
  for s in "$@"; do settings+=" -c $s"; done
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -o "$settings" start >/dev/null
}

# stop_pg DIR: stops the cluster of start_pg DIR (if it runs) and removes DIR.
stop_pg() {
  if [ -n "${PG_BIN:-}" ] && [ -d "$1/data" ]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$1"
}
