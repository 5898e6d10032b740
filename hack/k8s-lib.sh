# hack/k8s-lib.sh - what the control plane (hack/k8s-env.sh) and the real node
# (hack/k8s-node.sh, hack/k8s-node-build.sh) share (sourced, never run).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/k8s-lib.sh"
#
# Sources hack/lib.sh (log, die, free_port); sourcing it twice in one shell is a no-op.
# Needs, on PATH: openssl, curl, base64, awk, setsid, flock (hack/k8s-env.sh's ensure_tools
# installs them), and for the builds the Go toolchain (find_go).
#
# Defines:
#   versions        K8S_VERSION ETCD_VERSION KWOK_VERSION (control plane), COREDNS_VERSION
#                   TRAEFIK_VERSION PAUSE_VERSION (node); BUILD_KEY
#   cache paths     CACHE_ROOT, CACHE_DIR and BIN_DIR (control plane), NODE_K8S_DIR,
#                   COREDNS_DIR, TRAEFIK_DIR (node) - each keyed by its version
#   state           STATE, PKI ($STATE/pki), HOST, API_HOST, CONTROL_PLANE, COMPONENTS (the
#                   components of the current mode: hack/k8s-env.sh's set_mode changes it)
#   build           find_go, go_env, binaries_present, build_binaries (the control plane's
#                   binaries; the node's build starts from their go.mod)
#   PKI             new_key, new_ca, new_cert, write_kubeconfig (needs API_HOST, API_PORT)
#   processes       launch, launch_bin, pid_of, ours, alive, tail_log, stop_one, wait_gone,
#                   wait_for (sets FAILED_LOG_SHOWN), api (curl as the admin, needs $PKI)
#
# Environment knobs: AGORA_K8S_STATE, AGORA_K8S_CACHE, AGORA_K8S_NICE, AGORA_K8S_BUILD_JOBS
# (see hack/k8s-env.sh).

# shellcheck shell=bash
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ ${AGORA_K8S_LIB:-} == "$$" ]] && return 0
AGORA_K8S_LIB=$$

# ---------------------------------------------------------------- versions and paths

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
BUILD_KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
# The real node's parts (hack/k8s-node-build.sh).
# shellcheck disable=SC2034 # used by hack/k8s-node-build.sh and hack/k8s-node.sh
COREDNS_VERSION=v1.14.7
TRAEFIK_VERSION=v3.6.15
# shellcheck disable=SC2034 # used by hack/k8s-node-build.sh and hack/k8s-node.sh
PAUSE_VERSION=3.10.2

CACHE_ROOT=${AGORA_K8S_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is unset}/.cache}/agora/k8s}
CACHE_DIR="$CACHE_ROOT/$BUILD_KEY"
BIN_DIR="$CACHE_DIR/bin"
NODE_K8S_DIR="$CACHE_ROOT/node-k8s-$K8S_VERSION"
# shellcheck disable=SC2034 # used by hack/k8s-node-build.sh and hack/k8s-node.sh
COREDNS_DIR="$CACHE_ROOT/coredns-$COREDNS_VERSION-corefile-plugins"
# shellcheck disable=SC2034 # used by hack/k8s-node-build.sh and hack/k8s-node.sh
TRAEFIK_DIR="$CACHE_ROOT/traefik-$TRAEFIK_VERSION-no-dns01"
STATE=${AGORA_K8S_STATE:-${XDG_RUNTIME_DIR:-/tmp}/agora-k8s-$UID}
PKI="$STATE/pki"
HOST=127.0.0.1
API_HOST=$HOST
CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager kube-scheduler)
COMPONENTS=("${CONTROL_PLANE[@]}" kwok)

# ---------------------------------------------------------------- build

find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        echo /usr/local/go/bin/go
    else
        die "the Go toolchain (go >= 1.26) is needed to build the control plane; not found on PATH or in /usr/local/go/bin"
    fi
}

# What build_binaries builds (not COMPONENTS: in the node mode those name the node's too,
# which live elsewhere, and a missing CoreDNS would rebuild the whole control plane).
binaries_present() {
    local c
    for c in "${CONTROL_PLANE[@]}" kwok; do
        [[ -x "$BIN_DIR/$c" ]] || return 1
    done
    [[ -f "$CACHE_DIR/share/kwok-stages.yaml" ]]
}

# Go environment shared by every go command of the build.
go_env() {
    env GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 "$@"
}

build_binaries() {
    binaries_present && return 0
    mkdir -p "$CACHE_ROOT"
    # One build at a time per cache root; a second caller waits, then reuses.
    exec 8>"$CACHE_ROOT/.build.lock"
    flock 8
    if binaries_present; then
        exec 8>&-
        return 0
    fi
    local go started tmp
    go=$(find_go)
    started=$SECONDS
    # Leftovers of interrupted builds (we hold the lock, so none is running).
    rm -rf "$CACHE_ROOT"/.partial.*
    tmp=$(mktemp -d "$CACHE_ROOT/.partial.XXXXXX")
    # shellcheck disable=SC2064 # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    trap 'exit 130' INT TERM
    log "building control-plane binaries ($BUILD_KEY) with $($go version | awk '{print $3}'); first run only, takes a while"
    mkdir -p "$tmp/src" "$tmp/out/bin" "$tmp/out/share"

    # The published k8s.io/kubernetes go.mod requires its staging modules at v0.0.0
    # with replace directives into ./staging; map each to its published release.
    local k8s_mod staging_version staging
    k8s_mod=$(cd "$tmp/src" && go_env "$go" mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    [[ -f "$k8s_mod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
    staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$k8s_mod")
    [[ -n "$staging" ]] || die "no staging modules found in $k8s_mod"
    staging_version="v0.${K8S_VERSION#v1.}"

    local tools=(
        k8s.io/kubernetes/cmd/kube-apiserver
        k8s.io/kubernetes/cmd/kube-controller-manager
        k8s.io/kubernetes/cmd/kube-scheduler
        go.etcd.io/etcd/server/v3
        sigs.k8s.io/kwok/cmd/kwok
    )
    {
        printf 'module agora.local/k8s-env-build\n\ngo 1.26.0\n\nrequire (\n'
        printf '\tk8s.io/kubernetes %s\n\tgo.etcd.io/etcd/server/v3 %s\n\tsigs.k8s.io/kwok %s\n)\n\n' \
            "$K8S_VERSION" "$ETCD_VERSION" "$KWOK_VERSION"
        printf 'tool (\n'
        printf '\t%s\n' "${tools[@]}"
        printf ')\n\nreplace (\n'
        local m
        for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
        printf ')\n'
    } >"$tmp/src/go.mod"

    log "resolving modules (go mod tidy)"
    (cd "$tmp/src" && go_env "$go" mod tidy >&2)

    local v=k8s.io/component-base/version minor=${K8S_VERSION#v1.}
    minor=${minor%%.*}
    local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
    ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
    ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
    log "compiling (nice ${AGORA_K8S_NICE:-19}, -p ${AGORA_K8S_BUILD_JOBS:-$(nproc)})"
    (cd "$tmp/src" && go_env nice -n "${AGORA_K8S_NICE:-19}" "$go" build \
        -p "${AGORA_K8S_BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "$ldflags" \
        -o "$tmp/out/bin/" "${tools[@]}" >&2)
    # `go build` names the etcd main package (module root .../server/v3) "server".
    mv "$tmp/out/bin/server" "$tmp/out/bin/etcd"

    # kwok ships its default "fast" stages as YAML in the module; bundle them into a
    # config: nodes become Ready (lease heartbeats), pods Running/Ready, pods owned by a
    # Job Succeeded, and pods being deleted are removed.
    local kwok_dir f
    kwok_dir=$(cd "$tmp/src" && go_env "$go" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        printf -- '---\n'
        cat "$kwok_dir/kustomize/stage/$f"
    done >"$tmp/out/share/kwok-stages.yaml"
    cp "$tmp/src/go.mod" "$tmp/src/go.sum" "$tmp/out/share/"

    rm -rf "$CACHE_DIR"
    mv "$tmp/out" "$CACHE_DIR"
    rm -rf "$tmp"
    trap - EXIT INT TERM
    exec 8>&-
    log "binaries cached in $BIN_DIR ($((SECONDS - started))s)"
}

# ---------------------------------------------------------------- PKI

# new_key FILE: EC P-256 private key (PKCS#8 PEM).
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

# new_ca NAME CN: self-signed CA NAME.key + NAME.crt in $PKI.
new_ca() {
    local name=$1 cn=$2
    new_key "$PKI/$name.key"
    printf '[req]\ndistinguished_name = dn\n[dn]\n[v3_ca]\n%s\n%s\n%s\n' \
        'basicConstraints = critical, CA:TRUE' \
        'keyUsage = critical, keyCertSign, cRLSign, digitalSignature' \
        'subjectKeyIdentifier = hash' >"$PKI/$name.cnf"
    openssl req -x509 -new -key "$PKI/$name.key" -subj "/CN=$cn" -days 825 -sha256 \
        -config "$PKI/$name.cnf" -extensions v3_ca -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.cnf"
}

# new_cert NAME SUBJECT EKU [SAN] [CA]: NAME.key + NAME.crt signed by CA (default: ca) in $PKI.
new_cert() {
    local name=$1 subject=$2 eku=$3 san=${4:-} ca=${5:-ca}
    new_key "$PKI/$name.key"
    {
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature, keyEncipherment"
        echo "extendedKeyUsage = $eku"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid"
        [[ -n "$san" ]] && echo "subjectAltName = $san"
    } >"$PKI/$name.ext"
    openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
        -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# write_kubeconfig FILE CERT-NAME: kubeconfig with embedded CA and client cert.
# shellcheck disable=SC2153 # API_PORT: set by hack/k8s-env.sh (cmd_start, load_ports)
write_kubeconfig() {
    local file=$1 name=$2
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: agora-test
  cluster:
    server: https://$API_HOST:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$name.crt")
    client-key-data: $(base64 -w0 <"$PKI/$name.key")
contexts:
- name: agora-test
  context:
    cluster: agora-test
    user: $name
    namespace: default
current-context: agora-test
EOF
    chmod 600 "$file"
}

# ---------------------------------------------------------------- processes

# launch NAME ARGS...: start $BIN_DIR/NAME (else the node's $NODE_K8S_DIR/bin/NAME)
# detached, log to $STATE/logs/NAME.log, PID to $STATE/pids/NAME.
launch() {
    local name=$1 bin=$BIN_DIR/$1
    [[ -x $bin ]] || bin=$NODE_K8S_DIR/bin/$name
    shift
    launch_bin "$name" "$bin" "$@"
}

# launch_bin NAME BINARY ARGS...: as launch, for any binary. The child writes its own PID
# (setsid may fork).
launch_bin() {
    local name=$1 bin=$2
    shift 2
    local logf="$STATE/logs/$name.log" pidf="$STATE/pids/$name"
    log "starting $name"
    # shellcheck disable=SC2016 # $$ and $@ are for the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$bin" "$@" \
        </dev/null >>"$logf" 2>&1 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidf" ]] && return 0
        sleep 0.1
    done
    die "$name did not start (no PID written); see $logf"
}

pid_of() {
    local f="$STATE/pids/$1" pid
    [[ -s "$f" ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    echo "$pid"
}

# ours PID: alive, and its command line names our state dir (guards against PID reuse).
ours() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$STATE/"* ]]
}

alive() {
    local pid
    pid=$(pid_of "$1") && ours "$pid"
}

tail_log() {
    local f="$STATE/logs/$1.log"
    if [[ -f "$f" ]]; then
        log "---- last lines of $f ----"
        tail -n "${2:-40}" "$f" >&2 || true
        log "---- end of $f ----"
    fi
}

# stop_one NAME: TERM a recorded process and wait for it.
stop_one() {
    local pid
    pid=$(pid_of "$1") || return 0
    if ours "$pid"; then
        log "stopping $1 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone 20 "$pid"
    fi
}

# Stop every recorded process (reverse start order), then remove the state dir. A node

# wait_gone SECONDS PID...: wait for exit, then SIGKILL leftovers.
wait_gone() {
    local secs=$1 pid left i
    shift
    [[ $# -eq 0 ]] && return 0
    for ((i = 0; i < secs * 10; i++)); do
        left=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left=1; done
        [[ $left -eq 0 ]] && return 0
        sleep 0.1
    done
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not exit; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    sleep 0.5
}

api() {
    curl -sS --fail --max-time 10 -A agora-k8s-env --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "$@"
}

# FAILED_LOG_SHOWN=1 once wait_for has shown a failed component's log (read by hack/k8s-env.sh's
# on_start_failure).
# shellcheck disable=SC2034
FAILED_LOG_SHOWN=0

# wait_for NAME SECONDS COMMAND...: poll COMMAND until it succeeds; fail early if NAME died.
# shellcheck disable=SC2034 # FAILED_LOG_SHOWN
wait_for() {
    local name=$1 secs=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [[ -n $name ]] && ! alive "$name"; then
            tail_log "$name"
            FAILED_LOG_SHOWN=1
            die "$name exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            [[ -n $name ]] && tail_log "$name" && FAILED_LOG_SHOWN=1
            die "timed out after ${secs}s waiting for: ${*}"
        fi
        sleep 0.5
    done
}
