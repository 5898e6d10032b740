# hack/k8s-node.sh - the real node of `hack/k8s-env.sh start --with-node` (sourced, never run).
#
#   eval "$(hack/k8s-env.sh start --with-node)"   # the entry point (as root)
#   hack/k8s-env.sh stop                          # calls node_stop
#
# Sources hack/lib.sh (log, die, free_port, apt_install) and hack/k8s-lib.sh (versions, cache
# paths, STATE, PKI, new_cert, write_kubeconfig, launch, launch_bin, wait_for, wait_gone,
# api); the binaries it runs are hack/k8s-node-build.sh's, found through those cache paths.
# Its functions run inside hack/k8s-env.sh's start and stop: they expect the control plane's
# state (API_HOST, API_PORT, $STATE/ports, the CA in $PKI) and the order described at each
# of them. Needs root, Debian packages (containerd, runc, CNI plugins, iptables, iproute2;
# apt-installed), kubectl and python3.
#
# One node, "agora-node", on this machine:
#   - containerd + runc (Debian packages) with its own config, socket, root and state
#     under $STATE/containerd; pods on a CNI bridge "agora0" (10.244.0.1/24; Debian's
#     containernetworking-plugins) with host-local addresses kept under $STATE;
#   - kubelet and kube-proxy (iptables mode) built from the control plane's module;
#   - the API server and the kubelet listen on the bridge address, so pods reach the API
#     server through the `kubernetes` Service and nothing listens on the machine's own
#     network interfaces;
#   - addons: CoreDNS (10.96.0.10) and Traefik v3 (host network, entry point on
#     127.0.0.1:$TRAEFIK_PORT, with its CRDs and the IngressClass "traefik").
# Images for the pause container, CoreDNS and Traefik are built from the static binaries
# (hack/oci-image.py) and imported into this containerd; nothing is pulled.
#
# `stop` removes everything the node made on the machine: processes (kubelet, containerd,
# shims, containers), mounts, CNI network namespaces, the bridge and its veths, iptables
# and ip6tables chains and rules (KUBE-*, CNI-*), kubepods cgroups, paths outside $STATE
# that did not exist before, and the sysctls kubelet and the node changed.

# shellcheck shell=bash
# shellcheck source=hack/k8s-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-lib.sh"

NODE_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE_NAME=agora-node
BRIDGE=agora0
NODE_IP=10.244.0.1
POD_SUBNET=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
NODE_COMPONENTS=(containerd kubelet kube-proxy)
# Kernel settings the node needs or kubelet sets (protectKernelDefaults: false); saved at
# start and put back at stop.
NODE_SYSCTLS=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic
    kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes
    net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)
# Host paths the node's programs write outside $STATE (hard-coded in containerd 1.6 and
# kubelet); the ones missing before start are removed at stop.
NODE_HOST_PATHS=(/run/containerd /var/log/containers /var/log/pods /run/netns /var/lib/cni
    /etc/cni /opt/containerd /var/run/netns)

node_ensure_packages() {
    local missing=() cmd
    for cmd in containerd runc ctr iptables ip6tables ip nsenter mount; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
        missing+=(cni-plugins)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "a node needs root; missing: ${missing[*]}"
    log "installing Debian packages for the node (missing: ${missing[*]})"
    apt_install containerd runc containernetworking-plugins iptables iproute2 util-linux mount >&2
}

node_preflight() {
    [[ $(id -u) -eq 0 ]] || die "--with-node needs root (containers, mounts, iptables)"
    node_ensure_packages
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        die "a bridge $BRIDGE exists already: another node is running (or was not stopped: hack/k8s-env.sh stop)"
    fi
    local t
    for t in iptables ip6tables; do
        if "$t-save" 2>/dev/null | grep -qE '^:(KUBE-|AGORA-)'; then
            die "$t has KUBE-* or AGORA-* chains already: another Kubernetes node runs on this machine"
        fi
    done
}

# Record what must be put back: sysctls and which host paths existed.
node_record_host() {
    local s p
    : >"$STATE/node/sysctls"
    for s in "${NODE_SYSCTLS[@]}"; do
        [[ -e /proc/sys/${s//.//} ]] && printf '%s=%s\n' "$s" "$(sysctl -n "$s")" >>"$STATE/node/sysctls"
    done
    : >"$STATE/node/new-paths"
    for p in "${NODE_HOST_PATHS[@]}"; do
        [[ -e $p ]] || echo "$p" >>"$STATE/node/new-paths"
    done
    ip netns list 2>/dev/null | awk '{print $1}' | sort >"$STATE/node/netns-before"
    veths >"$STATE/node/veths-before"
}

# The host's veth links, one name a line, sorted.
veths() { ip -o link show type veth 2>/dev/null | awk -F': ' '{sub("@.*", "", $2); print $2}' | sort; }

node_network() {
    sysctl -qw net.ipv4.ip_forward=1
    [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
    ip link add "$BRIDGE" type bridge
    ip addr add "$NODE_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # A Service address kube-proxy has not translated must not leave the node. That
    # happens until kube-proxy programs a new Service (60 connections while the backup
    # drill made its platform again), and for an instant when a Service's endpoints come
    # back (kube-proxy commits the filter table, dropping its reject, before the nat
    # table). Such a connection followed the default route, and on this machine that
    # leads to a proxy answering any address with an empty 404: Traefik kept one alive
    # for its forward-auth, and every protected route answered that 404 for minutes
    # after the killed-database test. Rejected here, it fails and the next is translated.
    iptables -N AGORA-NODE
    iptables -A AGORA-NODE -d "$SERVICE_CIDR" -m comment --comment "agora node: untranslated Service address" -j REJECT
    iptables -A OUTPUT -j AGORA-NODE
    iptables -A FORWARD -j AGORA-NODE
    mkdir -p "$STATE/cni/net.d" "$STATE/cni/networks"
    cat >"$STATE/cni/net.d/10-agora.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "agora",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/networks"
      }
    }
  ]
}
EOF
}

node_containerd_config() {
    mkdir -p "$STATE/containerd"
    cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd/containerd.sock"
[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:$PAUSE_VERSION"
  # This sandbox refuses negative oom_score_adj writes; without this every pod sandbox fails.
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
}

ctr_node() { ctr --address "$STATE/containerd/containerd.sock" --namespace k8s.io "$@"; }

containerd_ready() { ctr_node version; }

# node_addon_images: pause, CoreDNS and Traefik as images in the node's containerd.
node_addon_images() {
    local d="$STATE/node/images" oci
    oci="$NODE_LIB_DIR/oci-image.py"
    mkdir -p "$d/pause/rootfs" "$d/coredns/rootfs/etc" "$d/traefik/rootfs/etc" "$d/traefik/rootfs/tmp"
    cp "$NODE_K8S_DIR/bin/pause" "$d/pause/rootfs/pause"
    python3 "$oci" --name "registry.k8s.io/pause:$PAUSE_VERSION" --out "$d/pause.tar" \
        --layer-dir "$d/pause/rootfs" --user 65535:65535 --entrypoint /pause >/dev/null
    # CoreDNS runs as nonroot and binds port 53: the binary carries cap_net_bind_service,
    # as in the upstream image.
    local name
    for name in coredns traefik; do
        printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
            >"$d/$name/rootfs/etc/passwd"
        printf 'root:x:0:\nnonroot:x:65532:\n' >"$d/$name/rootfs/etc/group"
        mkdir -p "$d/$name/rootfs/etc/ssl/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$d/$name/rootfs/etc/ssl/certs/"
    done
    cp "$COREDNS_DIR/bin/coredns" "$d/coredns/rootfs/coredns"
    python3 "$oci" --name "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" --out "$d/coredns.tar" \
        --layer-dir "$d/coredns/rootfs" --file-cap coredns=net_bind_service \
        --user 65532:65532 --entrypoint /coredns --port 53/udp --port 53/tcp --port 9153 >/dev/null
    chmod 1777 "$d/traefik/rootfs/tmp"
    cp "$TRAEFIK_DIR/bin/traefik" "$d/traefik/rootfs/traefik"
    python3 "$oci" --name "docker.io/library/traefik:$TRAEFIK_VERSION" --out "$d/traefik.tar" \
        --layer-dir "$d/traefik/rootfs" --user 65532:65532 --entrypoint /traefik \
        --port 80 --port 443 >/dev/null
    for name in pause coredns traefik; do
        ctr_node images import "$d/$name.tar" >/dev/null ||
            die "importing the $name image into containerd failed"
    done
    rm -rf "$d"
}

node_kubelet_config() {
    KUBELET_PORT=$(free_port)
    KUBELET_HEALTHZ_PORT=$(free_port)
    PROXY_HEALTHZ_PORT=$(free_port)
    PROXY_METRICS_PORT=$(free_port)
    TRAEFIK_PORT=${AGORA_K8S_INGRESS_PORT:-$(free_port)}
    TRAEFIK_PING_PORT=$(free_port)
    printf 'KUBELET_PORT=%s\nKUBELET_HEALTHZ_PORT=%s\nTRAEFIK_PORT=%s\nTRAEFIK_PING_PORT=%s\n' \
        "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$TRAEFIK_PORT" "$TRAEFIK_PING_PORT" >>"$STATE/ports"
    new_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
    new_cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth "IP:$NODE_IP, DNS:$NODE_NAME"
    new_cert kube-proxy "/CN=system:kube-proxy" clientAuth
    write_kubeconfig "$STATE/kubelet.kubeconfig" kubelet
    write_kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy
    mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
    cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 and no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$STATE/containerd/containerd.sock
failSwapOn: false
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
podCIDR: $POD_SUBNET
podLogsDir: $STATE/pod-logs
# Images are imported, never pulled: never collect them, and never evict for the disk the
# build trees use.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
shutdownGracePeriod: 0s
EOF
    cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
# Leave the machine's conntrack settings alone, and no node ports on 127.0.0.1 (that
# would need route_localnet).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
}

node_ready() {
    local body
    body=$(api "https://$API_HOST:$API_PORT/api/v1/nodes/$NODE_NAME") || return 1
    body=$(tr -d ' \n' <<<"$body")
    [[ $body == *'"type":"Ready","status":"True"'* ]]
}

kubectl_node() { kubectl --kubeconfig "$STATE/kubeconfig" "$@"; }

# The addons: CoreDNS from Kubernetes' own manifest, Traefik from its module's CRDs and
# RBAC plus hack/k8s-node-traefik.yaml.
node_addons() {
    command -v kubectl >/dev/null 2>&1 || die "kubectl is needed to install the node's addons"
    sed -e "s/dns_domain/cluster.local/g" -e "s/'dns_server'/$DNS_IP/g" \
        -e "s/'dns_memory_limit'/170Mi/g" \
        -e "s#image: registry.k8s.io/coredns/coredns:.*#image: registry.k8s.io/coredns/coredns:$COREDNS_VERSION#" \
        "$NODE_K8S_DIR/share/coredns.yaml.in" | kubectl_node apply -f - >&2
    kubectl_node apply --server-side -f "$TRAEFIK_DIR/share/crds.yaml" >/dev/null
    sed -e "s/\${TRAEFIK_PORT}/$TRAEFIK_PORT/g" -e "s/\${TRAEFIK_PING_PORT}/$TRAEFIK_PING_PORT/g" \
        -e "s/\${TRAEFIK_VERSION}/$TRAEFIK_VERSION/g" \
        "$NODE_LIB_DIR/k8s-node-traefik.yaml" | kubectl_node apply -f - >&2
    # The module's ClusterRole, bound to Traefik's ServiceAccount in its namespace.
    awk 'BEGIN{RS="---"} /kind: ClusterRole\n/ || /kind: ClusterRole$/ {print "---"; print}' \
        "$TRAEFIK_DIR/share/rbac.yaml" | kubectl_node apply -f - >&2
    kubectl_node create clusterrolebinding traefik-ingress-controller --clusterrole traefik-ingress-controller \
        --serviceaccount traefik:traefik --dry-run=client -o yaml | kubectl_node apply -f - >&2
    kubectl_node -n kube-system rollout status deployment/coredns --timeout 180s >&2 ||
        die "CoreDNS did not become ready"
    kubectl_node -n traefik rollout status deployment/traefik --timeout 180s >&2 ||
        die "Traefik did not become ready"
}

# node_start: after the control plane (node_record_host and node_network ran before the
# API server started).
node_start() {
    node_containerd_config
    launch_bin containerd "$(command -v containerd)" --config "$STATE/containerd/config.toml"
    wait_for containerd 60 containerd_ready
    node_addon_images
    node_kubelet_config
    launch kubelet --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
        --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$STATE/kubelet" \
        --cert-dir "$STATE/kubelet/pki"
    launch kube-proxy --config "$STATE/kube-proxy.yaml"
    wait_for kubelet 300 node_ready
    node_addons
}

# ---------------------------------------------------------------- stop

# Every process in a kubepods cgroup (the containers), then the shims of our containerd.
node_kill_containers() {
    local pid pids=()
    for pid in $(grep -lE ':/kubepods' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
        pids+=("$pid")
    done
    for pid in $(pgrep -f "containerd-shim.*$STATE/" || true); do
        pids+=("$pid")
    done
    [[ ${#pids[@]} -eq 0 ]] && return 0
    log "killing ${#pids[@]} container and shim processes"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_gone 10 "${pids[@]}"
}

# Unmount everything below DIR, deepest first.
unmount_below() {
    local dir=$1 m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$dir" '{ gsub(/\\040/, " ", $5); if (index($5, d) == 1) print $5 }' /proc/self/mountinfo |
        awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
}

node_remove_iptables() {
    local t table chain rule
    for t in iptables ip6tables; do
        command -v "$t" >/dev/null 2>&1 || continue
        for table in filter nat mangle raw; do
            # Rules in built-in chains that jump to the node's chains.
            while read -r rule; do
                eval "$t -t $table ${rule/-A /-D }" 2>/dev/null || true
            done < <("$t" -t "$table" -S 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-|AGORA-)')
            for chain in $("$t" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|AGORA-)/ {print $2}'); do
                "$t" -t "$table" -F "$chain" 2>/dev/null || true
            done
            for chain in $("$t" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|AGORA-)/ {print $2}'); do
                "$t" -t "$table" -X "$chain" 2>/dev/null || true
            done
        done
    done
}

node_remove_cgroups() {
    local d
    for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

node_stop() {
    [[ -d $STATE/node ]] || return 0
    local link
    node_kill_containers
    unmount_below "$STATE/"
    local ns
    if [[ -f $STATE/node/netns-before ]]; then
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | sort | comm -13 "$STATE/node/netns-before" -); do
            umount -l "/run/netns/$ns" 2>/dev/null || true
            ip netns delete "$ns" 2>/dev/null || true
        done
    fi
    # A pod's veth normally goes with its network namespace, but a namespace the kernel
    # still holds (seen after a force-deleted pod) keeps its pair alive: delete the host
    # ends that appeared since the start, which takes the pairs down.
    if [[ -f $STATE/node/veths-before ]]; then
        for link in $(veths | comm -13 "$STATE/node/veths-before" -); do
            ip link delete "$link" 2>/dev/null || true
        done
    fi
    ip link delete "$BRIDGE" 2>/dev/null || true
    node_remove_iptables
    node_remove_cgroups
    for link in /var/log/containers/*; do
        [[ -L $link && $(readlink "$link") == "$STATE/"* ]] && rm -f "$link"
    done
    if [[ -f $STATE/node/new-paths ]]; then
        while read -r link; do
            unmount_below "$link/"
            rm -rf "$link"
        done <"$STATE/node/new-paths"
    fi
    if [[ -f $STATE/node/sysctls ]]; then
        while IFS== read -r ns link; do sysctl -qw "$ns=$link" 2>/dev/null || true; done <"$STATE/node/sysctls"
    fi
}
