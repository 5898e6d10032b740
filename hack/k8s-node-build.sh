# hack/k8s-node-build.sh - builds what a real node of hack/k8s-env.sh runs (sourced, never run).
#
#   hack/k8s-env.sh build-node                  # the usual entry point (also: start --with-node)
#   source hack/k8s-node-build.sh; build_node_binaries
#
# Sources hack/lib.sh (log, die, apt_install) and hack/k8s-lib.sh (versions, cache paths,
# find_go, go_env, build_binaries: the node's kubelet and kube-proxy build from the control
# plane's resolved go.mod). Needs Go, and gcc with a static libc (apt-installed as root).
#
#   kubelet, kube-proxy   k8s.io/kubernetes, with the control plane's go.mod
#   pause                 build/pause/linux/pause.c of the same module (gcc -static)
#   coredns               github.com/coredns/coredns, the Corefile's plugins only
#   traefik               github.com/traefik/traefik/v3 (its replace/exclude lines copied
#                         into a generated go.mod; v3.7+ cannot build from the proxy),
#                         without ACME's DNS-01 providers
#
# Each lands in its own cache directory keyed by version (NODE_K8S_DIR, COREDNS_DIR,
# TRAEFIK_DIR in hack/k8s-lib.sh), next to the control plane's, so a version bump rebuilds
# only that part. Timings (2 cores, cold module and build caches after the control plane):
# kubelet+kube-proxy ~1 min, coredns ~3 min, traefik ~7 min (11 with the DNS-01 providers).

# shellcheck shell=bash
# shellcheck source=hack/k8s-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-lib.sh"

node_binaries_present() {
    [[ -x $NODE_K8S_DIR/bin/kubelet && -x $NODE_K8S_DIR/bin/kube-proxy && -x $NODE_K8S_DIR/bin/pause &&
        -x $COREDNS_DIR/bin/coredns && -x $TRAEFIK_DIR/bin/traefik &&
        -f $TRAEFIK_DIR/share/crds.yaml && -f $TRAEFIK_DIR/share/rbac.yaml ]]
}

# build_into DIR FUNCTION: run FUNCTION TMP (which fills TMP/bin, TMP/share) unless DIR
# exists, then move TMP to DIR: an interrupted build leaves nothing that looks finished.
build_into() {
    local dir=$1 fn=$2 tmp started=$SECONDS
    [[ -d $dir ]] && return 0
    tmp=$(mktemp -d "$CACHE_ROOT/.partial-node.XXXXXX")
    mkdir -p "$tmp/bin" "$tmp/share" "$tmp/src"
    "$fn" "$tmp" || {
        rm -rf "$tmp"
        die "building $(basename "$dir") failed"
    }
    rm -rf "$tmp/src"
    mv "$tmp" "$dir"
    log "built $(basename "$dir") ($((SECONDS - started))s)"
}

go_build_nice() {
    go_env nice -n "${AGORA_K8S_NICE:-19}" "$GO" build -p "${AGORA_K8S_BUILD_JOBS:-$(nproc)}" -trimpath "$@"
}

build_node_k8s() {
    local out=$1 v=k8s.io/component-base/version minor=${K8S_VERSION#v1.}
    minor=${minor%%.*}
    # The control plane's resolved go.mod already requires k8s.io/kubernetes with every
    # staging module mapped to its release: build the node's commands from it.
    cp "$CACHE_DIR/share/go.mod" "$CACHE_DIR/share/go.sum" "$out/src/"
    local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
    ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
    log "compiling kubelet and kube-proxy $K8S_VERSION"
    (cd "$out/src" && go_build_nice -ldflags "$ldflags" -o "$out/bin/" \
        k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy >&2) || return 1
    # The pause container is one C file in the same module; the upstream image is that
    # binary, static, as /pause.
    local dir
    dir=$(cd "$out/src" && go_env "$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes) || return 1
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-agora" \
        -o "$out/bin/pause" "$dir/build/pause/linux/pause.c" || return 1
    strip "$out/bin/pause"
    # CoreDNS's in-cluster manifest template (RBAC, ConfigMap, Deployment, Service).
    cp "$dir/cluster/addons/dns/coredns/coredns.yaml.in" "$out/share/"
}

# CoreDNS with the plugins the node's Corefile names, and `log` for debugging it
# (CoreDNS's documented way to choose them: a main package importing coremain and the
# plugins). A full build also compiles the cloud DNS plugins' SDKs (AWS, Azure, Google),
# which nothing here runs.
COREDNS_PLUGINS=(cache errors forward health kubernetes loadbalance log loop metrics ready reload)

build_coredns() {
    local out=$1 plugin
    printf 'module agora.local/coredns-build\n\ngo 1.25.0\n\nrequire github.com/coredns/coredns %s\n' \
        "$COREDNS_VERSION" >"$out/src/go.mod"
    {
        printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/coremain"\n\n'
        for plugin in "${COREDNS_PLUGINS[@]}"; do
            printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$plugin"
        done
        printf ')\n\nfunc main() { coremain.Run() }\n'
    } >"$out/src/main.go"
    log "resolving coredns $COREDNS_VERSION modules (go mod tidy)"
    (cd "$out/src" && go_env "$GO" mod tidy >&2) || return 1
    log "compiling coredns $COREDNS_VERSION (plugins: ${COREDNS_PLUGINS[*]})"
    (cd "$out/src" && go_build_nice -ldflags "-s -w" -o "$out/bin/coredns" . >&2)
}

# ACME's DNS-01 challenge links lego's registry of ~180 DNS providers and their cloud SDKs:
# a third of Traefik's code to compile (45 of 130 MB of Go source, 900 packages). Agora's
# clusters never ask this Traefik for certificates, so the build replaces lego with a copy
# whose registry knows no provider (naming one in a resolver is then an error, as an
# unknown name is). Everything else in lego (HTTP-01, TLS-ALPN-01) is untouched.
stub_lego_dns_providers() {
    local src=$1 gomod=$2 version dir registry
    version=$(awk '$1 == "github.com/go-acme/lego/v4" { print $2; exit }' "$gomod")
    [[ -n $version ]] || return 1
    dir=$(cd "$src" && go_env "$GO" mod download -json "github.com/go-acme/lego/v4@$version" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    registry=providers/dns/zz_gen_dns_providers.go
    # A lego that moved its registry must fail here, not build the whole thing silently.
    [[ -f $dir/$registry ]] || return 1
    cp -r "$dir" "$src/lego" && chmod -R u+w "$src/lego" || return 1
    rm -f "$src/lego/providers/dns/"*_test.go
    cat >"$src/lego/$registry" <<'GO'
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v4/challenge"
)

// NewDNSChallengeProviderByName knows no provider in this build.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("unrecognized DNS provider: %s", name)
}
GO
    printf 'replace github.com/go-acme/lego/v4 => ./lego\n' >>"$src/go.mod"
}

build_traefik() {
    local out=$1 gomod dir
    gomod=$(cd "$out/src" && go_env "$GO" mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    [[ -f $gomod ]] || return 1
    # Traefik's own replace and exclude directives (forks it depends on) must be repeated in
    # the main module; `go install pkg@version` refuses modules that have them.
    {
        printf 'module agora.local/traefik-build\n\ngo 1.26.0\n\n'
        printf 'require github.com/traefik/traefik/v3 %s\n\n' "$TRAEFIK_VERSION"
        printf 'tool github.com/traefik/traefik/v3/cmd/traefik\n\n'
        awk '/^(replace|exclude) \(/{blk=1} blk{print} /^\)/{if(blk)print "";blk=0}
             /^(replace|exclude) [^(]/{print}' "$gomod"
    } >"$out/src/go.mod"
    stub_lego_dns_providers "$out/src" "$gomod" || return 1
    log "resolving traefik $TRAEFIK_VERSION modules (go mod tidy)"
    (cd "$out/src" && go_env "$GO" mod tidy >&2) || return 1
    log "compiling traefik $TRAEFIK_VERSION (the longest part: ~7 min on 2 cores)"
    (cd "$out/src" && go_build_nice -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
        -o "$out/bin/traefik" github.com/traefik/traefik/v3/cmd/traefik >&2) || return 1
    # Its CRDs and the RBAC its Kubernetes providers need ship in the module.
    dir=$(cd "$out/src" && go_env "$GO" list -m -f '{{.Dir}}' github.com/traefik/traefik/v3) || return 1
    cp "$dir/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" "$out/share/crds.yaml"
    cp "$dir/docs/content/reference/dynamic-configuration/kubernetes-crd-rbac.yml" "$out/share/rbac.yaml"
    cp "$out/src/go.mod" "$out/src/go.sum" "$out/share/"
}

build_node_binaries() {
    node_binaries_present && return 0
    build_binaries
    if ! command -v gcc >/dev/null 2>&1 || [[ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]]; then
        [[ $(id -u) -eq 0 ]] || die "gcc and libc6-dev are needed for the pause binary"
        log "installing gcc and libc6-dev (Debian packages) for the pause binary"
        apt_install gcc libc6-dev >&2
    fi
    exec 7>"$CACHE_ROOT/.node-build.lock"
    flock 7
    # Leftovers of interrupted builds (we hold the lock, so none is running).
    rm -rf "$CACHE_ROOT"/.partial-node.*
    GO=$(find_go)
    build_into "$NODE_K8S_DIR" build_node_k8s
    build_into "$COREDNS_DIR" build_coredns
    build_into "$TRAEFIK_DIR" build_traefik
    exec 7>&-
}
