# hack/lib.sh - the one shell library of the hack/ scripts and .ci/run (sourced, never run).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # or, from the repository root: source hack/lib.sh
#   LOG_TAG=e2e                                      # after sourcing: messages read "[e2e] ..."
#
# Needs bash (arrays, [[ ]]) and nothing else. Sourcing it twice in one shell is a no-op
# (hack/k8s-lib.sh and the node files source it too), so set LOG_TAG/DIE_PREFIX after the
# script's first `source`.
#
# Everything here writes its diagnostics to stderr only: some scripts print lines on stdout
# that their callers `eval` (hack/k8s-env.sh start/env, hack/s3-server.sh start, hack/tools.sh).
#
# Variables:
#   LOG_TAG       the tag of log's lines (default: the script's name without .sh)
#   DIE_PREFIX    when set, die prints "$DIE_PREFIX<message>" (e.g. "e2e.sh: "); when unset,
#                 die prints "[$LOG_TAG] ERROR: <message>"
#
# Functions:
#   log MSG...                "[$LOG_TAG] MSG" on stderr
#   die MSG...                the message (see DIE_PREFIX) on stderr, then exit 1
#   die_code CODE MSG...      as die, exiting with CODE
#   port_in_use PORT          any TCP socket (any state, v4 or v6) is bound to PORT
#   port_open PORT            something accepts connections on 127.0.0.1:PORT
#   free_port                 prints a random unused port below the ephemeral range, from 20000
#                             or in AGORA_PORT_RANGE (dies when none is found)
#   wait_until SECONDS CMD... runs CMD every 0.1 s until it succeeds (status 0) or SECONDS
#                             have passed (status 1); CMD's output is left alone
#   bench_venv                the benchmark report's Python (matplotlib, from PyPI, cached
#                             by version): creates it once, prints its directory
#   cargo_build_bins [ARG...] cargo build --workspace --bins ARG... (stdout to stderr): every
#                             script that needs binaries builds them in this one selection
#   apt_install PKG...        apt-get update, then install PKG... (-qq, one at a time among
#                             our scripts, waiting up to 600 s for dpkg's lock); redirect its
#                             output where the caller wants it
#   pg_bin_dir                the directory of PostgreSQL's server binaries (see below)
#   start_pg DIR PORT [SETTING...], stop_pg DIR   a throwaway PostgreSQL cluster

# shellcheck shell=bash
[[ ${AGORA_HACK_LIB:-} == "$$" ]] && return 0
AGORA_HACK_LIB=$$

LOG_TAG=${0##*/}
LOG_TAG=${LOG_TAG%.sh}
unset DIE_PREFIX

# ---------------------------------------------------------------- logging and errors

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }

die() { die_code 1 "$@"; }

die_code() {
  local code=$1
  shift
  if [[ -n ${DIE_PREFIX+x} ]]; then
    printf '%s%s\n' "$DIE_PREFIX" "$*" >&2
  else
    log "ERROR: $*"
  fi
  exit "$code"
}

# ---------------------------------------------------------------- ports

port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports handed out by this shell (only when free_port runs in it, not in $(...)).
PICKED=" "
# A listening port below the kernel's ephemeral range: a port inside it can be taken by
# any outgoing connection between the pick and the bind, or while its server restarts
# (a node's Traefik, PostgreSQL).
# AGORA_PORT_RANGE=LOW-TOP narrows it (TOP excluded): CI gives the bench and the e2e, which
# run side by side and bind some ports minutes after picking them, ranges of their own.
free_port() {
  local p i low top bottom=20000
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
  top=$((low > 21024 ? low : 32768))
  if [[ ${AGORA_PORT_RANGE:-} =~ ^([0-9]+)-([0-9]+)$ ]]; then
    bottom=${BASH_REMATCH[1]} top=${BASH_REMATCH[2]}
  fi
  for ((i = 0; i < 200; i++)); do
    p=$((bottom + (RANDOM * 32768 + RANDOM) % (top - bottom)))
    [[ $PICKED == *" $p "* ]] && continue
    port_in_use "$p" && continue
    port_open "$p" && continue
    PICKED+="$p "
    echo "$p"
    return 0
  done
  die "no free TCP port found"
}

# ---------------------------------------------------------------- waiting

wait_until() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 10; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- packages

# Cargo unifies features over the packages a command selects: `--bin agora` and `--bin agora
# --bin agora-bench` compile shared dependencies with different features, each time. With
# one selection everywhere (the tests aside) they compile once and the next caller finds
# them current (a cold CI built them three times: schemathesis, bench, e2e images).
cargo_build_bins() { cargo build --workspace --bins "$@" >&2; }

apt_install() {
  # `apt-get update` fails at once when another holds apt's lists lock (the timeout
  # covers dpkg's lock only), and CI runs some of these scripts side by side (its
  # background builds): ours take turns on a lock of their own.
  (
    exec 9>"${TMPDIR:-/tmp}/agora-apt.lock"
    flock 9
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@"
  )
}

# ---------------------------------------------------------------- PostgreSQL

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
    apt_install postgresql >/dev/null
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

bench_venv() {
  local version=3.11.2 venv
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/agora/bench-venv-$version"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$version" >&2
  fi
  echo "$venv"
}
