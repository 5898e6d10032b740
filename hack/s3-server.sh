#!/usr/bin/env bash
# A real S3-compatible server for the photos tests: versitygw (github.com/versity/versitygw,
# Apache-2.0) with its posix backend on a throwaway directory, on a loopback port.
# Built from its Go module on first use (~4 min on 2 cores) and cached in
# ${XDG_CACHE_HOME:-~/.cache}/agora/versitygw-<version>/.
#
#   eval "$(hack/s3-server.sh start)"   # exports AGORA_TEST_S3_{ENDPOINT,BUCKET,ACCESS_KEY,SECRET_KEY,ROOT,PID}
#   hack/s3-server.sh stop              # stops it and removes its directory (uses AGORA_TEST_S3_*)
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=s3-server

VERSION=v1.8.0
CACHE="${XDG_CACHE_HOME:-${HOME:?HOME is unset}/.cache}/agora/versitygw-$VERSION"
BIN="$CACHE/versitygw"
BUCKET=agora-photos-test

build() {
  mkdir -p "$(dirname "$CACHE")"
  # CI may build it in the background; a second caller waits for that build.
  exec 9>"$CACHE.lock"
  flock 9
  [ -x "$BIN" ] && { exec 9>&-; return; }
  command -v go >/dev/null || { log "the Go toolchain is needed to build versitygw"; exit 1; }
  log "building versitygw $VERSION from its Go module (first run only)"
  local tmp
  mkdir -p "$(dirname "$CACHE")"
  tmp=$(mktemp -d "$(dirname "$CACHE")/.versitygw.XXXXXX")
  GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
  rm -rf "$CACHE"
  mv "$tmp" "$CACHE"
  exec 9>&-
}

case "${1:-}" in
  build) build ;;
  start)
    build
    port=$(free_port)
    # AGORA_S3_HOST: the address to listen on (the e2e node's pods reach its bridge's).
    host=${AGORA_S3_HOST:-127.0.0.1}
    dir=$(mktemp -d "${TMPDIR:-/tmp}/agora-s3.XXXXXX")
    mkdir -p "$dir/root"
    access="agora$RANDOM$RANDOM"
    secret="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" \
      setsid "$BIN" --port "$host:$port" posix "$dir/root" >"$dir/log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; log "versitygw exited"; exit 1; }
      sleep 0.1
    done
    # The bucket, through versitygw's admin API (a bucket carries an owner; mkdir is not enough).
    "$BIN" admin --access "$access" --secret "$secret" --endpoint-url "http://$host:$port" \
      create-bucket --owner "$access" --bucket "$BUCKET" >&2
    log "versitygw on $host:$port, bucket $BUCKET ($dir)"
    printf 'export AGORA_TEST_S3_ENDPOINT=%q\n' "http://$host:$port"
    printf 'export AGORA_TEST_S3_BUCKET=%q\n' "$BUCKET"
    printf 'export AGORA_TEST_S3_ACCESS_KEY=%q\n' "$access"
    printf 'export AGORA_TEST_S3_SECRET_KEY=%q\n' "$secret"
    printf 'export AGORA_TEST_S3_ROOT=%q\n' "$dir"
    printf 'export AGORA_TEST_S3_PID=%q\n' "$pid"
    ;;
  stop)
    if [ -n "${AGORA_TEST_S3_PID:-}" ]; then
      kill "$AGORA_TEST_S3_PID" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$AGORA_TEST_S3_PID" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$AGORA_TEST_S3_PID" 2>/dev/null || true
    fi
    case "${AGORA_TEST_S3_ROOT:-}" in
      */agora-s3.*) rm -rf "$AGORA_TEST_S3_ROOT" ;;
    esac
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
