#!/usr/bin/env bash
# Builds the Agora container images from the one Dockerfile (build arg BIN) with Docker or
# Podman, tags them <repository>/<name>:<tag>, and optionally loads them into a kind or
# minikube cluster, where the charts' IfNotPresent pull policy then needs no registry.
#
#   hack/images.sh                          # build all eight images
#   hack/images.sh --kind agora             # ... and load them into the kind cluster "agora"
#   hack/images.sh --minikube --only users,gateway --tag dev
#
# Exit status: 0 done, 1 a build or load failed, 2 a usage error or no container engine.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
LOG_TAG=images DIE_PREFIX="images.sh: "

# Image names; each is built from the binary agora-<name>.
IMAGES=(auth gateway users relations photos events notifications operator agora)

usage() {
  cat <<'EOF'
Usage: hack/images.sh [options]

Builds ghcr.io/agora-social/{auth,gateway,users,relations,photos,events,notifications,operator,agora}:0.1.0
from ./Dockerfile (one build per image, --build-arg BIN=agora-<name>, BIN=agora for the
`agora` CLI image that backup and restore Jobs use; the dependency
layers are shared) and optionally loads them into a local cluster.

Options:
  --engine docker|podman   the container engine (default: the first of docker, podman
                           whose `info` answers)
  --tag TAG                image tag (default: 0.1.0, the workspace version and the
                           charts' and SocialPlatform's default; another tag needs
                           --set platform.version=TAG --set agora-operator.image.tag=TAG
                           on `helm install agora charts/agora`)
  --repository REPO        image repository (default: ghcr.io/agora-social)
  --only NAME[,NAME...]    build only these images (names as above, e.g. users,gateway)
  --kind [CLUSTER]         load the images into the kind cluster CLUSTER (default: agora)
  --minikube [PROFILE]     load the images into minikube (default: the current profile)
  --dry-run                print the commands instead of running them
  --offline                build the same images without a container engine or registry
                           (hack/offline-images.sh: cargo-built binaries over a base of
                           Debian packages, OCI archives in target/images, plus the
                           PostgreSQL image); the default when no engine answers
  -h, --help               this help

Exit status: 0 done, 1 a build or load failed, 2 a usage error or no container engine.
EOF
}

engine=""
tag="0.1.0"
repository="ghcr.io/agora-social"
only=""
kind_cluster=""
minikube=false
minikube_profile=""
dry_run=false
offline=false

while [ $# -gt 0 ]; do
  case "$1" in
    --engine)
      [ $# -ge 2 ] || die_code 2 "--engine needs docker or podman"
      engine=$2
      shift 2
      ;;
    --engine=*) engine=${1#*=}; shift ;;
    --tag)
      [ $# -ge 2 ] || die_code 2 "--tag needs a value"
      tag=$2
      shift 2
      ;;
    --tag=*) tag=${1#*=}; shift ;;
    --repository)
      [ $# -ge 2 ] || die_code 2 "--repository needs a value"
      repository=${2%/}
      shift 2
      ;;
    --repository=*) repository=${1#*=}; repository=${repository%/}; shift ;;
    --only)
      [ $# -ge 2 ] || die_code 2 "--only needs a comma-separated list of images"
      only=$2
      shift 2
      ;;
    --only=*) only=${1#*=}; shift ;;
    --kind)
      kind_cluster=agora
      # An optional cluster name: the next word, unless it is an option.
      if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then
        kind_cluster=$2
        shift
      fi
      shift
      ;;
    --kind=*) kind_cluster=${1#*=}; shift ;;
    --minikube)
      minikube=true
      if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then
        minikube_profile=$2
        shift
      fi
      shift
      ;;
    --minikube=*) minikube=true; minikube_profile=${1#*=}; shift ;;
    --dry-run) dry_run=true; shift ;;
    --offline) offline=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die_code 2 "unknown argument: $1" ;;
  esac
done

case "$engine" in
  "" | docker | podman) ;;
  *) die_code 2 "--engine must be docker or podman, not '$engine'" ;;
esac
[ -n "$tag" ] || die_code 2 "--tag must not be empty"
[ -n "$repository" ] || die_code 2 "--repository must not be empty"
[ -n "$kind_cluster" ] && $minikube && die_code 2 "choose one of --kind and --minikube"

# The images to build, in the order of IMAGES, checked against it.
selected=()
if [ -n "$only" ]; then
  IFS=',' read -r -a wanted <<<"$only"
  for name in "${wanted[@]}"; do
    found=false
    for known in "${IMAGES[@]}"; do
      [ "$name" = "$known" ] && found=true
    done
    $found || die_code 2 "unknown image '$name' (one of: ${IMAGES[*]})"
  done
  for known in "${IMAGES[@]}"; do
    for name in "${wanted[@]}"; do
      if [ "$name" = "$known" ]; then
        selected+=("$known")
        break
      fi
    done
  done
else
  selected=("${IMAGES[@]}")
fi

# Runs a command, or prints it with --dry-run.
run() {
  if $dry_run; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# The engine: the one asked for, else the first whose daemon/service answers. (A docker
# CLI without a reachable daemon does not count.)
answers() { command -v "$1" >/dev/null 2>&1 && "$1" info >/dev/null 2>&1; }

# Offline: asked for, or no engine answers and none was named.
if ! $offline && [ -z "$engine" ] && ! $dry_run && ! answers docker && ! answers podman; then
  log "no container engine answers: building offline (hack/offline-images.sh)"
  offline=true
fi
if $offline; then
  args=(--tag "$tag" --repository "$repository")
  [ -z "$only" ] || args+=(--only "$only")
  [ -z "$kind_cluster" ] || args+=(--kind "$kind_cluster")
  ! $minikube || args+=(--minikube)
  if $dry_run; then
    printf '+ hack/offline-images.sh'
    printf ' %q' "${args[@]}"
    printf '\n'
    exit 0
  fi
  exec hack/offline-images.sh "${args[@]}"
fi
if [ -n "$engine" ]; then
  if ! $dry_run && ! answers "$engine"; then
    die_code 2 "$engine does not answer ('$engine info' failed): is it installed and its daemon running?"
  fi
else
  for candidate in docker podman; do
    if answers "$candidate"; then
      engine=$candidate
      break
    fi
  done
  # A dry run only prints the commands: show them for docker when nothing answers.
  if [ -z "$engine" ] && $dry_run; then engine=docker; fi
  [ -n "$engine" ] || die_code 2 "no container engine answers: neither 'docker info' nor 'podman info' succeeded. Start Docker or install Podman, or pick one with --engine."
fi

if [ -n "$kind_cluster" ] && ! $dry_run; then
  command -v kind >/dev/null 2>&1 || die_code 2 "--kind needs the kind CLI on PATH"
  clusters=$(kind get clusters 2>/dev/null || true)
  grep -qx -- "$kind_cluster" <<<"$clusters" ||
    die_code 2 "no kind cluster named '$kind_cluster' (create it: kind create cluster --config k8s/kind/cluster.yaml)"
fi
if $minikube && ! $dry_run; then
  command -v minikube >/dev/null 2>&1 || die_code 2 "--minikube needs the minikube CLI on PATH"
fi
# minikube's global flags (bash 3.2, macOS's, cannot expand an empty array under set -u).
minikube_flags=""
[ -n "$minikube_profile" ] && minikube_flags="--profile=$minikube_profile"

refs=()
for name in "${selected[@]}"; do
  ref="$repository/$name:$tag"
  bin=agora-$name
  [ "$name" = agora ] && bin=agora
  log "building $ref (BIN=$bin) with $engine"
  run "$engine" build \
    --file Dockerfile \
    --build-arg "BIN=$bin" \
    --build-arg "VERSION=$tag" \
    --tag "$ref" \
    . || die "building $ref failed"
  refs+=("$ref")
done

# Loading: kind and minikube read Docker's image store directly; from Podman each image
# goes through a docker-archive tarball (kind's `load docker-image` asks the docker CLI).
if [ -n "$kind_cluster" ] || $minikube; then
  archive_dir=""
  if [ "$engine" = podman ]; then
    archive_dir=$(mktemp -d "${TMPDIR:-/tmp}/agora-images.XXXXXX")
    trap 'rm -rf "$archive_dir"' EXIT
  fi
  for ref in "${refs[@]}"; do
    if [ -n "$kind_cluster" ]; then
      log "loading $ref into kind cluster $kind_cluster"
      if [ "$engine" = docker ]; then
        run kind load docker-image "$ref" --name "$kind_cluster" || die "loading $ref failed"
      else
        archive="$archive_dir/image.tar"
        run podman save --format docker-archive --output "$archive" "$ref" || die "saving $ref failed"
        run kind load image-archive "$archive" --name "$kind_cluster" || die "loading $ref failed"
        run rm -f "$archive"
      fi
    else
      log "loading $ref into minikube${minikube_profile:+ profile $minikube_profile}"
      if [ "$engine" = docker ]; then
        run minikube ${minikube_flags:+"$minikube_flags"} image load "$ref" || die "loading $ref failed"
      else
        archive="$archive_dir/image.tar"
        run podman save --format docker-archive --output "$archive" "$ref" || die "saving $ref failed"
        run minikube ${minikube_flags:+"$minikube_flags"} image load "$archive" || die "loading $ref failed"
        run rm -f "$archive"
      fi
    fi
  done
fi

log "done: ${refs[*]}"
