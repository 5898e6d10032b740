#!/usr/bin/env bash
# Builds the Agora images without a container engine or a registry (what
# `hack/images.sh --offline` runs, and its default when no Docker/Podman answers):
#
#   - the eight service/operator/CLI images: the cargo-built binary as /usr/local/bin/app over a
#     base made of Debian 12 packages (libc6, libgcc-s1, ca-certificates, tzdata, netbase:
#     what distroless cc-debian12 holds), user 65532, ports 8080/9090 - the runtime image of
#     the Dockerfile, layer for layer (see "Offline images" in docs/images.md);
#   - ghcr.io/agora-social/postgres:15, PostgreSQL 15 from Debian's packages with an
#     entry point honouring the official `postgres` image's environment contract
#     (hack/postgres/docker-entrypoint.sh), for the Managed database mode;
#   - ghcr.io/agora-social/postgres-cnpg:15, the same PostgreSQL as CloudNativePG's instance
#     manager wants it (postgres = UID 26, no entry point: CloudNativePG injects its own) with
#     Barman's `barman-cloud-*` commands (Barman from PyPI over Debian's boto3 and psycopg2),
#     for the CloudNativePG database mode (hack/cnpg.sh; docs/database.md).
#
# Each is an OCI archive in --out (hack/oci-image.py writes it), optionally imported into a
# containerd (--import SOCKET: the node of `hack/k8s-env.sh start --with-node`), kind or
# minikube. The Debian layers come from mmdebstrap (the Debian mirror apt uses) and are
# cached in ~/.cache/agora/images by package list; the binaries from `cargo build`.
#
#   hack/offline-images.sh                               # release build, archives only
#   hack/offline-images.sh --profile dev --import "$AGORA_K8S_CONTAINERD"
#   hack/offline-images.sh --layers                      # the cached Debian layers only
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=offline-images DIE_PREFIX="offline-images.sh: "

IMAGES=(auth gateway users relations photos events notifications operator agora)
POSTGRES_IMAGES=(postgres postgres-cnpg)
BASE_PACKAGES=libc6,libgcc-s1,gcc-12-base,ca-certificates,tzdata,netbase,base-files
PG_MAJOR=15
PG_PACKAGES=postgresql-$PG_MAJOR,postgresql-client-$PG_MAJOR
# What barman-cloud-* import, from Debian (psycopg2 is compiled against its libpq).
CNPG_PACKAGES=$PG_PACKAGES,python3,python3-psycopg2,python3-boto3,python3-dateutil,python3-argcomplete
# CloudNativePG 1.27 refuses Barman before 3.5; Debian 12 has 3.4.
BARMAN_VERSION=3.14.1
SUITE=bookworm
CACHE=${AGORA_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agora/images}

usage() {
  cat <<'EOF'
Usage: hack/offline-images.sh [options]
  --profile release|dev   cargo profile of the binaries (default: release)
  --tag TAG               image tag (default: 0.1.0)
  --repository REPO       image repository (default: ghcr.io/agora-social)
  --only NAME[,NAME...]   only these images (auth gateway users relations photos events notifications
                          operator agora postgres postgres-cnpg)
  --out DIR               where the OCI archives go (default: target/images)
  --import SOCKET         import them into the containerd at SOCKET (namespace k8s.io)
  --kind CLUSTER          load them into a kind cluster (kind load image-archive)
  --minikube              load them into minikube (minikube image load)
  --layers                only fill the cache with the Debian layers (base, PostgreSQL,
                          CloudNativePG's PostgreSQL): no cargo, no archives
EOF
}


profile=release tag=0.1.0 repository=ghcr.io/agora-social only="" out=target/images
import="" kind_cluster="" minikube=false layers_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?}; shift 2 ;;
    --tag) tag=${2:?}; shift 2 ;;
    --repository) repository=${2%/}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --import) import=${2:?--import needs the containerd socket}; shift 2 ;;
    --kind) kind_cluster=${2:?}; shift 2 ;;
    --minikube) minikube=true; shift ;;
    --layers) layers_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die_code 2 "unknown argument: $1" ;;
  esac
done
case "$profile" in release | dev) ;; *) die_code 2 "--profile must be release or dev" ;; esac

selected=("${IMAGES[@]}" "${POSTGRES_IMAGES[@]}")
if [ -n "$only" ]; then
  IFS=',' read -r -a selected <<<"$only"
  for name in "${selected[@]}"; do
    [[ " ${IMAGES[*]} ${POSTGRES_IMAGES[*]} " == *" $name "* ]] || die_code 2 "unknown image '$name'"
  done
fi

ensure_mmdebstrap() {
  command -v mmdebstrap >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "mmdebstrap is needed (apt-get install mmdebstrap)"
  log "installing mmdebstrap (Debian package)"
  apt_install mmdebstrap >&2
}

key_of() { printf '%s' "$*" | sha256sum | cut -c1-12; }

# The distroless-like base: package files only (no maintainer scripts run, no shell),
# the CA bundle assembled from the packaged certificates, nonroot = 65532.
base_layer() {
  local key dir tar
  key=$(key_of "$SUITE $BASE_PACKAGES v1")
  tar="$CACHE/base-$SUITE-$key.tar"
  if [ ! -f "$tar" ]; then
    ensure_mmdebstrap
    mkdir -p "$CACHE"
    dir=$(mktemp -d "$CACHE/.base.XXXXXX")
    log "building the base layer from Debian $SUITE packages ($BASE_PACKAGES)"
    mmdebstrap --quiet --variant=extract --mode=root --format=directory \
      --include="$BASE_PACKAGES" "$SUITE" "$dir/root" >&2
    (
      cd "$dir/root"
      rm -rf etc/apt var/cache/apt var/lib/apt var/log/* usr/share/doc usr/share/man \
        usr/share/info usr/share/lintian
      mkdir -p etc/ssl/certs home/nonroot tmp
      cat usr/share/ca-certificates/mozilla/*.crt >etc/ssl/certs/ca-certificates.crt
      printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >etc/passwd
      printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >etc/group
      chmod 1777 tmp
      chown 65532:65532 home/nonroot
    )
    tar --sort=name --mtime=@0 --numeric-owner -C "$dir/root" -cf "$tar.partial" .
    mv "$tar.partial" "$tar"
    rm -rf "$dir"
  fi
  echo "$tar"
}

# pg_layer TAR UID PACKAGES [HOOK...]: PostgreSQL from Debian's packages into TAR (once),
# `postgres` = UID:UID, no cluster created at install time, no documentation, its
# socket directory writable by anyone in the group; HOOKs are more mmdebstrap options.
pg_layer() {
  local tar=$1 uid=$2 packages=$3
  shift 3
  [ ! -f "$tar" ] || return 0
  ensure_mmdebstrap
  mkdir -p "$CACHE"
  mmdebstrap --quiet --variant=apt --mode=root --format=tar --include="$packages" --skip=cleanup/run \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --essential-hook="printf 'postgres:x:$uid:$uid:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/sh\\n' >>\"\$1/etc/passwd\"; printf 'postgres:x:$uid:\\n' >>\"\$1/etc/group\"; mkdir -p \"\$1/etc/postgresql-common\"; echo 'create_main_cluster = false' >\"\$1/etc/postgresql-common/createcluster.conf\"" \
    "$@" \
    --customize-hook="rm -rf \"\$1\"/var/cache/apt/* \"\$1\"/var/lib/apt/lists/* \"\$1\"/etc/ssl/private/ssl-cert-snakeoil.key \"\$1\"/etc/ssl/certs/ssl-cert-snakeoil.pem; mkdir -p \"\$1/var/lib/postgresql\" \"\$1/var/run/postgresql\"; chown $uid:$uid \"\$1/var/lib/postgresql\" \"\$1/var/run/postgresql\"; chmod 3777 \"\$1/var/run/postgresql\"" \
    "$SUITE" "$tar.partial" >&2
  mv "$tar.partial" "$tar"
}

# PostgreSQL for the Managed mode: postgres = 999 as in the official image (the operator
# runs the pod as 999), its entry point added.
postgres_layer() {
  local tar
  tar="$CACHE/postgres-$PG_MAJOR-$SUITE-$(key_of "$SUITE $PG_PACKAGES v3").tar"
  [ -f "$tar" ] || log "building the PostgreSQL $PG_MAJOR layer from Debian $SUITE packages (~2 min)"
  pg_layer "$tar" 999 "$PG_PACKAGES" \
    --customize-hook='mkdir -p "$1/docker-entrypoint-initdb.d"' \
    --customize-hook="copy-in hack/postgres/docker-entrypoint.sh /usr/local/bin"
  echo "$tar"
}

# Barman's wheel (pure Python), downloaded once; pip installs it into the layer.
barman_wheel() {
  local dir="$CACHE/barman-$BARMAN_VERSION" wheel
  if ! python3 -m pip --version >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "pip is needed (apt-get install python3-pip)"
    log "installing pip (Debian package python3-pip)"
    apt_install python3-pip >&2
  fi
  wheel=$(find "$dir" -name 'barman-*.whl' 2>/dev/null | head -1)
  if [ -z "$wheel" ]; then
    log "downloading Barman $BARMAN_VERSION from PyPI"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir.partial" "barman==$BARMAN_VERSION" >&2
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
    wheel=$(find "$dir" -name 'barman-*.whl' | head -1)
  fi
  echo "$wheel"
}

# PostgreSQL for CloudNativePG: postgres = 26 (what its instance manager runs as),
# Barman's cloud commands as scripts over the wheel's entry points. The pod's root is
# read-only; CloudNativePG mounts what it writes (/controller, /run).
postgres_cnpg_layer() {
  local tar wheel
  wheel=$(barman_wheel)
  tar="$CACHE/postgres-cnpg-$PG_MAJOR-$SUITE-$(key_of "$SUITE $CNPG_PACKAGES $(basename "$wheel") v2").tar"
  [ -f "$tar" ] || log "building the CloudNativePG PostgreSQL $PG_MAJOR layer from Debian $SUITE packages and Barman $BARMAN_VERSION (~3 min)"
  pg_layer "$tar" 26 "$CNPG_PACKAGES" \
    --customize-hook="python3 -m pip install --quiet --no-deps --no-compile --target \"\$1/usr/local/lib/python3.11/dist-packages\" $wheel" \
    --customize-hook="python3 $PWD/hack/postgres/barman-scripts.py \"\$1\"" \
    --customize-hook='mkdir -p "$1/controller" "$1/run"'
  echo "$tar"
}

# Only the layers (CI builds them early, beside its other downloads: they take minutes of
# downloading and unpacking and no cargo).
if $layers_only; then
  base=$(base_layer)
  pg=$(postgres_layer)
  cnpg=$(postgres_cnpg_layer)
  log "Debian layers ready: $base $pg $cnpg"
  exit 0
fi

oci() { python3 hack/oci-image.py "$@"; }
# The binary of an image: agora-<name>, but the `agora` image holds the `agora` CLI (what
# backup and restore Jobs run).
bin_of() { if [ "$1" = agora ]; then echo agora; else echo "agora-$1"; fi; }

mkdir -p "$out"
archives=()
services=()
for name in "${selected[@]}"; do
  [[ " ${POSTGRES_IMAGES[*]} " == *" $name "* ]] || services+=("$name")
done

if [ ${#services[@]} -gt 0 ]; then
  base=$(base_layer)
  log "building ${services[*]} (cargo, profile $profile)"
  if [ "$profile" = release ]; then cargo_build_bins --release; else cargo_build_bins; fi
  target_dir=${CARGO_TARGET_DIR:-target}/$([ "$profile" = release ] && echo release || echo debug)
  stage=$(mktemp -d "${TMPDIR:-/tmp}/agora-image.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  for name in "${services[@]}"; do
    rm -rf "$stage/root"
    mkdir -p "$stage/root/usr/local/bin"
    cp "$target_dir/$(bin_of "$name")" "$stage/root/usr/local/bin/app"
    chmod 0755 "$stage/root/usr/local/bin/app"
    oci --name "$repository/$name:$tag" --out "$out/$name.tar" \
      --layer-tar "$base" --layer-dir "$stage/root" \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      --user 65532:65532 --workdir /home/nonroot --entrypoint /usr/local/bin/app \
      --port 8080 --port 9090 \
      --label "org.opencontainers.image.title=agora-$name" \
      --label "org.opencontainers.image.version=$tag" \
      --label "org.opencontainers.image.source=https://github.com/agora-social/agora" \
      --label "org.opencontainers.image.licenses=Apache-2.0" >&2
    archives+=("$out/$name.tar")
  done
fi

for name in "${selected[@]}"; do
  [ "$name" = postgres-cnpg ] || continue
  pg=$(postgres_cnpg_layer)
  # The tag starts with the major version: CloudNativePG reads the version from it.
  oci --name "$repository/postgres-cnpg:$PG_MAJOR" --out "$out/postgres-cnpg.tar" --layer-tar "$pg" \
    --env "PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --env LANG=C.UTF-8 --user 26:26 --port 5432 \
    --label "org.opencontainers.image.title=agora-postgres-cnpg" >&2
  archives+=("$out/postgres-cnpg.tar")
done

for name in "${selected[@]}"; do
  [ "$name" = postgres ] || continue
  pg=$(postgres_layer)
  oci --name "$repository/postgres:$PG_MAJOR" --out "$out/postgres.tar" --layer-tar "$pg" \
    --env "PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --env PGDATA=/var/lib/postgresql/data --env LANG=C.UTF-8 \
    --entrypoint /usr/local/bin/docker-entrypoint.sh --cmd postgres \
    --port 5432 --volume /var/lib/postgresql --stop-signal SIGINT \
    --label "org.opencontainers.image.title=agora-postgres" >&2
  archives+=("$out/postgres.tar")
done

for archive in "${archives[@]}"; do
  if [ -n "$import" ]; then
    log "importing $archive into containerd $import"
    ctr --address "$import" --namespace k8s.io images import "$archive" >/dev/null
  fi
  [ -z "$kind_cluster" ] || kind load image-archive "$archive" --name "$kind_cluster"
  ! $minikube || minikube image load "$archive"
done
log "done: ${archives[*]}"
