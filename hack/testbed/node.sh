#!/usr/bin/env bash
# The test bed's one real node: containerd and runc (Debian), CNI bridge
# networking (Debian's plugins), a kubelet and kube-proxy built from the pinned
# k8s.io/kubernetes, CoreDNS for cluster.local, and kube-router's NetworkPolicy
# controller. Everything runs as host processes; pods run for real.
#   node.sh up     join the node to the running control plane (cluster.sh calls it)
#   node.sh down   delete its pods, stop it, undo every change it made to the host
#   node.sh ip     the address the node registers with (its InternalIP)
# Start-up records what it starts and what the host looked like before
# ($TESTBED_STATE/node/), and `down` reads that record.
#
# What it changes on the host while it runs, all undone by `down`: the sysctls
# kernel.panic, kernel.panic_on_oops, vm.overcommit_memory (the kubelet) and
# net.ipv4.ip_forward (the bridge plugin); the bridge tenv0 and pods' veths;
# nftables tables (the kubelet's, kube-proxy's, kube-router's, our guard);
# ipsets; kubepods cgroups; /run/containerd, /var/lib/cni, /var/log/pods,
# /var/log/containers, /var/lib/kubelet, /var/run/netns.
#
# Pod traffic never leaves the machine: no masquerade, CoreDNS has no
# upstream, and a guard drops anything forwarded from the pod range out of
# any interface but the bridge.
set -euo pipefail

# shellcheck source=paths.sh
source "$(dirname "$0")/paths.sh"
# shellcheck source=versions.env
source "$here/versions.env"

node_dir="$state/node"
# Kept by `down` (cluster.sh down removes $state as a whole), so a failed
# start-up can still be read.
logs="$state/logs/node"
node="${TESTBED_NODE_NAME:-testbed-node}"
pod_cidr="${TESTBED_POD_CIDR:-10.244.0.0/24}"
bridge="tenv0"
gateway="${pod_cidr%.*}.1"
pki="$KWOK_WORKDIR/clusters/$name/pki"
# Pods of an environment reach this node only through the operator's node
# selector and toleration (podNodeSelector/podTolerations); everything else
# lands on KWOK's simulated nodes as before.
taint_key="testenv.dev/real-node"
node_label="testenv.dev/node=real"
outside_paths=(/run/containerd /var/lib/cni /var/log/pods /var/log/containers /var/lib/kubelet /var/run/netns /etc/cni)
sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward)

mkdir -p "$state"
log() { echo "testbed node: $*" >&2; }
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }
fail() {
  local step="$1" logfile="${2:-}"
  log "FAILED at step '$step'${logfile:+; log: $logfile}"
  [[ -n "$logfile" && -f "$logfile" ]] && tail -n 20 "$logfile" | sed 's/^/  | /' >&2
  exit 1
}

host_ip() {
  # The address of the interface that holds the default route: the node's
  # InternalIP, which pods reach the API server through (never leaving the host).
  local dev; dev="$(ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") print $(i+1); exit}')"
  [[ -n "$dev" ]] || dev="$(ip -4 -o addr show scope global | awk '{print $2; exit}')"
  ip -4 -o addr show dev "$dev" scope global | awk '{split($4,a,"/"); print a[1]; exit}'
}

# start NAME LOGFILE CMD...: run a daemon in its own session; it writes its own
# PID before exec, so the record names the daemon, not a wrapper.
start() {
  local what="$1" logfile="$2"; shift 2
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$node_dir/pids/$what" "$@" >"$logfile" 2>&1 < /dev/null &
  local deadline=$(( $(date +%s) + 10 ))
  until [[ -s "$node_dir/pids/$what" ]]; do
    (( $(date +%s) < deadline )) || fail "start $what" "$logfile"
    sleep 0.05
  done
}

alive() { local pid; pid="$(cat "$node_dir/pids/$1" 2>/dev/null)" && [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

# wait_until STEP LOGFILE SECONDS CMD...: poll CMD until it succeeds.
wait_until() {
  local step="$1" logfile="$2" seconds="$3"; shift 3
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then fail "$step (not ready after ${seconds}s)" "$logfile"; fi
    sleep 0.2
  done
}

snapshot_host() {
  mkdir -p "$node_dir/before"
  for s in "${sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done > "$node_dir/before/sysctl"
  nft list tables 2>/dev/null | sort > "$node_dir/before/nft-tables" || true
  ipset list -n 2>/dev/null | sort > "$node_dir/before/ipsets" || true
  : > "$node_dir/before/paths"
  for p in "${outside_paths[@]}"; do [[ -e "$p" ]] && echo "$p" >> "$node_dir/before/paths"; done
  find /sys/fs/cgroup -maxdepth 2 -name 'kubepods*' -type d 2>/dev/null | sort > "$node_dir/before/cgroups" || true
  [[ -d /run/containerd ]] && touch "$node_dir/before/run-containerd"
  ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort > "$node_dir/before/links"
  ls /var/run/netns 2>/dev/null | sort > "$node_dir/before/netns" || true
}

preflight() {
  local missing=()
  for c in containerd runc ip nft iptables ipset sysctl; do command -v "$c" >/dev/null || missing+=("$c"); done
  [[ -x /usr/lib/cni/bridge ]] || missing+=("/usr/lib/cni/bridge (containernetworking-plugins)")
  for b in kubelet kube-proxy coredns kube-router kwokctl kubectl; do [[ -x "$bin/$b" ]] || missing+=("$bin/$b (hack/testbed/build.sh)"); done
  if ((${#missing[@]})); then
    log "missing: ${missing[*]}"
    log "install the Debian packages: bash hack/testbed/packages.sh"
    exit 1
  fi
  [[ $(id -u) == 0 ]] || { log "a real node needs root (network namespaces, cgroups, mounts)"; exit 1; }
  [[ -f "$state/images.env" ]] || { log "no $state/images.env: run hack/testbed/images.sh first"; exit 1; }
  if ip link show "$bridge" >/dev/null 2>&1; then
    log "bridge $bridge already exists: another test bed's real node is running (one per machine); stop it first"
    exit 1
  fi
  # The runtime's shims and runc keep state in /run/containerd whatever our
  # config says; a host containerd (Docker's too) would share it.
  if [[ -S /run/containerd/containerd.sock ]] || compgen -G '/sys/fs/cgroup/*kubepods*' >/dev/null \
      || compgen -G '/sys/fs/cgroup/*/kubepods*' >/dev/null; then
    log "this host runs a container runtime or kubelet of its own (/run/containerd, kubepods cgroups):"
    log "the test bed's real node needs a host without one (TESTBED_REAL_NODE=0 starts without it)"
    exit 1
  fi
  # Unix sockets hold 107 bytes; the kubelet's deepest is 41 below its root.
  if (( ${#node_dir} > 64 )); then
    log "TESTBED_STATE is too long for the kubelet's sockets ($node_dir): use a path of at most 59 characters"
    exit 1
  fi
}

certificates() {
  # Identities signed by this cluster's CA (new for every `kwokctl create`).
  kwokctl get kubeconfig --name "$name" --user "system:node:$node" --group system:nodes > "$node_dir/kubelet.kubeconfig"
  kwokctl get kubeconfig --name "$name" --user system:kube-proxy > "$node_dir/kube-proxy.kubeconfig"
  kwokctl get kubeconfig --name "$name" --user testbed:coredns > "$node_dir/coredns.kubeconfig"
  kwokctl get kubeconfig --name "$name" --user testbed:kube-router > "$node_dir/kube-router.kubeconfig"
  kc apply --server-side --field-manager testbed -f "$here/node-rbac.yaml" >/dev/null
}

network() {
  # The bridge exists before the first pod so that CoreDNS can bind its address.
  ip link add "$bridge" type bridge
  ip addr add "$gateway/${pod_cidr#*/}" dev "$bridge"
  ip link set "$bridge" up
  mkdir -p "$node_dir/cni/net.d" "$node_dir/cni/ipam"
  cat > "$node_dir/cni/net.d/10-testbed.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "testbed",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$node_dir/cni/ipam",
              "ranges": [[{"subnet": "$pod_cidr", "gateway": "$gateway"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Nothing forwarded from a pod may leave through any interface but the bridge;
  # the API server (on every address, for pods) and the kubelet answer this
  # machine only.
  local api_port; api_port="$(kc config view -o jsonpath='{.clusters[0].cluster.server}')"
  api_port="${api_port##*:}"
  nft -f - <<EOF
table inet testbed_guard {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname != { "lo", "$bridge" } tcp dport { $api_port, 10250 } counter drop comment "the machine's own only"
  }
  chain forward {
    type filter hook forward priority -10; policy accept;
    # Seen in practice: a connection to a Service IP that kube-proxy has not
    # programmed yet follows the default route; dropped, it is retried.
    ip saddr $pod_cidr oifname != "$bridge" limit rate 10/second log prefix "testbed-guard: "
    ip saddr $pod_cidr oifname != "$bridge" counter drop comment "pod traffic stays on this machine"
  }
}
EOF
}

# pull_from NAME ADDR: containerd pulls images of registry NAME over plain
# HTTP from ADDR (NAME _default: every registry without its own entry).
pull_from() {
  mkdir -p "$node_dir/containerd/certs.d/$1"
  cat > "$node_dir/containerd/certs.d/$1/hosts.toml" <<EOF
server = "http://$2"
[host."http://$2"]
  capabilities = ["pull", "resolve"]
EOF
}

containerd_up() {
  local registry; registry="$(bash "$here/registry.sh" addr)"
  pull_from "$registry" "$registry"
  # Every other registry: a closed local port. A pull of an image that is not
  # in the test bed's registry fails at once (connection refused) and never
  # resolves or reaches a host off this machine.
  pull_from _default 127.0.0.1:9
  # shellcheck disable=SC1091
  source "$state/images.env"
  cat > "$node_dir/containerd/config.toml" <<EOF
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
[grpc]
  address = "$node_dir/containerd.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  # Not /opt/containerd: nothing of the node outside its state directory.
  path = "$node_dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$TESTBED_IMAGE_PAUSE"
  # Root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj would fail
  # every sandbox.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$node_dir/containerd/certs.d"
EOF
  start containerd "$logs/containerd.log" containerd --config "$node_dir/containerd/config.toml"
  wait_until "containerd" "$logs/containerd.log" 30 test -S "$node_dir/containerd.sock"
}

dns_up() {
  cat > "$node_dir/Corefile" <<EOF
# Cluster names only. No forward plugin: no query ever leaves the machine.
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
  bind $gateway
  errors
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig $node_dir/coredns.kubeconfig
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
  }
  cache 5
}
.:53 {
  bind $gateway
  errors
}
EOF
  # The kubelet writes this file's nameserver into no pod: ClusterFirst pods
  # get clusterDNS; Default-policy pods get this, never the host's resolver.
  echo "nameserver $gateway" > "$node_dir/resolv.conf"
  start coredns "$logs/coredns.log" coredns -conf "$node_dir/Corefile"
}

kubelet_up() {
  local ip="$1"
  mkdir -p "$node_dir/kubelet" "$node_dir/pod-logs"
  cat > "$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 on these machines; kubelet 1.35+ refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
# The kubelet cannot lower its own OOM score here (no CAP_SYS_RESOURCE).
oomScoreAdj: 0
address: $ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$node_dir/containerd.sock
clusterDomain: cluster.local
clusterDNS: [$gateway]
resolvConf: $node_dir/resolv.conf
podLogsDir: $node_dir/pod-logs
maxPods: 60
serializeImagePulls: false
registerWithTaints:
- {key: $taint_key, value: "true", effect: NoSchedule}
# A test bed on a shared disk: evict only when it is really full.
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 95
EOF
  start kubelet "$logs/kubelet.log" kubelet \
    --config "$node_dir/kubelet.yaml" \
    --kubeconfig "$node_dir/kubelet.kubeconfig" \
    --root-dir "$node_dir/kubelet" \
    --cert-dir "$node_dir/kubelet/pki" \
    --hostname-override "$node" \
    --node-ip "$ip" \
    --node-labels "$node_label"
}

kube_proxy_up() {
  local ip="$1"
  cat > "$node_dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $node_dir/kube-proxy.kubeconfig}
hostnameOverride: $node
mode: nftables
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$ip/32]
oomScoreAdj: 0
# Zeroed: kube-proxy then changes no conntrack sysctl of the host.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy "$logs/kube-proxy.log" kube-proxy --config "$node_dir/kube-proxy.yaml"
}

policy_up() {
  NODE_NAME="$node" start kube-router "$logs/kube-router.log" kube-router \
    --kubeconfig "$node_dir/kube-router.kubeconfig" \
    --hostname-override "$node" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-cni=false --health-port=0 --metrics-port=0
}

node_ready() {
  [[ "$(kc get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

up() {
  preflight
  rm -rf "$node_dir" "$logs"
  mkdir -p "$node_dir/pids" "$logs"
  snapshot_host
  # From here on a failure tears down whatever was started.
  # Any failing command fails the step it belongs to (set -E: inside functions too).
  current_step="start-up"
  set -E
  trap 'fail "$current_step"' ERR
  trap 'rc=$?; trap - ERR; set +E; if ((rc)); then log "start-up failed; tearing down"; down >/dev/null 2>&1 || true; fi' EXIT
  local started; started=$(date +%s%N)
  local ip; ip="$(host_ip)"
  [[ -n "$ip" ]] || fail "find the host's address"
  echo "$ip" > "$node_dir/ip"
  current_step="node identities (kwokctl get kubeconfig)"; certificates
  current_step="bridge $bridge, CNI config and guard"; network
  current_step="containerd"; containerd_up
  current_step="CoreDNS"; dns_up
  current_step="kubelet"; kubelet_up "$ip"
  current_step="kube-proxy"; kube_proxy_up "$ip"
  current_step="node registration"
  wait_until "kubelet registers node $node" "$logs/kubelet.log" 60 node_ready
  # kube-router identifies itself by its Node object: after registration.
  current_step="kube-router"; policy_up
  # Its first full sync makes its top-level chains.
  wait_until "kube-router's first policy sync" "$logs/kube-router.log" 30 \
    bash -c "iptables-save -t filter | grep -q KUBE-ROUTER-FORWARD"
  for d in containerd coredns kubelet kube-proxy kube-router; do alive "$d" || fail "$d exited" "$logs/$d.log"; done
  wait_until "CoreDNS answers" "$logs/coredns.log" 30 \
    bash -c "exec 3<>/dev/tcp/$gateway/53"
  trap - ERR EXIT
  set +E
  log "node $node Ready in $(( ($(date +%s%N) - started) / 1000000 )) ms (pods $pod_cidr, DNS $gateway, logs $logs)"
}

# stop NAME: stop a recorded daemon after checking its command line.
stop() {
  local what="$1" pid
  pid="$(cat "$node_dir/pids/$what" 2>/dev/null)" || return 0
  [[ -n "$pid" ]] || return 0
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$what"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$node_dir/pids/$what"
}

drain_pods() {
  kc get --raw /readyz >/dev/null 2>&1 || return 0
  kc get node "$node" >/dev/null 2>&1 || return 0
  # No new pods; then delete the ones there while the kubelet still runs, so
  # it releases their veths, addresses, network namespaces, mounts and cgroups.
  kc cordon "$node" >/dev/null 2>&1 || true
  kc delete pods -A --field-selector "spec.nodeName=$node" --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local deadline=$(( $(date +%s) + 90 ))
  while [[ -n "$(kc get pods -A --field-selector "spec.nodeName=$node" -o name 2>/dev/null)" ]]; do
    if (( $(date +%s) >= deadline )); then
      log "pods still on $node after 90s; removing them by force"
      kc delete pods -A --field-selector "spec.nodeName=$node" --grace-period=0 --force >/dev/null 2>&1 || true
      break
    fi
    # Controllers may have made replacements (Pending, held by the cordon).
    kc delete pods -A --field-selector "spec.nodeName=$node" --grace-period=1 --wait=false >/dev/null 2>&1 || true
    sleep 0.5
  done
}

# Processes started by containerd (shims, and anything they left) that name
# this node's socket or state: found by their command line, never by name.
our_leftovers() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "$node_dir/containerd" && echo "${p#/proc/}"
  done
  return 0
}

# Containers' own processes, by the kubepods cgroups (ours: preflight refuses
# a host that had any). They outlive containerd and its shims when pods
# could not be deleted through the API (a control plane already gone).
pod_processes() {
  find /sys/fs/cgroup -path '*kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
  return 0
}

kill_pod_processes() {
  local pid deadline=$(( $(date +%s) + 10 ))
  for pid in $(pod_processes); do kill -KILL "$pid" 2>/dev/null || true; done
  while [[ -n "$(pod_processes)" ]] && (( $(date +%s) < deadline )); do sleep 0.1; done
}

# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
  awk -v d="$1" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r
}

unmount_all() {
  local m n
  for m in $(mounts_under "$node_dir"); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  # Rootfs mounts of containers live in /run/containerd whatever our config
  # says: ours when it did not exist before start-up.
  if [[ ! -e "$node_dir/before/run-containerd" ]]; then
    for m in $(mounts_under /run/containerd/); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  fi
  # Pods' network namespaces: the ones that are new.
  comm -13 "$node_dir/before/netns" <(ls /run/netns 2>/dev/null | sort) 2>/dev/null | while read -r n; do
    umount "/run/netns/$n" 2>/dev/null || umount -l "/run/netns/$n" 2>/dev/null || true
  done
}

restore_host() {
  local before="$node_dir/before"
  # nftables: every table that was not there before (kubelet's canaries and
  # KUBE-FIREWALL, kube-proxy's, kube-router's, our guard). iptables-nft keeps
  # its chains in these tables, so both families are covered.
  if [[ -f "$before/nft-tables" ]]; then
    comm -13 "$before/nft-tables" <(nft list tables 2>/dev/null | sort) | while read -r _ family table; do
      nft delete table "$family" "$table" 2>/dev/null || true
    done
    comm -13 "$before/ipsets" <(ipset list -n 2>/dev/null | sort) | while read -r set; do
      ipset destroy "$set" 2>/dev/null || true
    done
  fi
  # Pods' veths that outlived their namespaces: the ones on our bridge.
  local l
  for l in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$l" 2>/dev/null || true
  done
  if ip link show "$bridge" >/dev/null 2>&1; then ip link delete "$bridge"; fi
  if [[ -f "$before/netns" ]]; then
    comm -13 "$before/netns" <(ls /var/run/netns 2>/dev/null | sort) | while read -r n; do
      ip netns delete "$n" 2>/dev/null || rm -f "/var/run/netns/$n"
    done
  fi
  # kubepods cgroups, in every v1 hierarchy (or the v2 root): deepest first.
  local g
  for g in /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods*; do
    [[ -d "$g" ]] || continue
    grep -qxF "$g" "$before/cgroups" 2>/dev/null && continue
    find "$g" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  if [[ -f "$before/sysctl" ]]; then
    while IFS='=' read -r k v; do sysctl -qw "$k=$v" >/dev/null || true; done < "$before/sysctl"
  fi
  local p
  for p in "${outside_paths[@]}"; do
    [[ -e "$p" ]] || continue
    grep -qxF "$p" "$before/paths" 2>/dev/null && continue
    # containerd bind-mounts /run/netns onto itself (shared propagation).
    while mountpoint -q "$p"; do umount "$p" 2>/dev/null || umount -l "$p" || break; done
    rm -rf "$p"
  done
}

down() {
  [[ -d "$node_dir" ]] || return 0
  drain_pods
  stop kube-proxy
  [[ -f "$node_dir/kube-proxy.yaml" ]] && kube-proxy --cleanup >>"$logs/kube-proxy-cleanup.log" 2>&1 || true
  stop kube-router
  stop kubelet
  stop coredns
  kill_pod_processes
  stop containerd
  local pid
  for pid in $(our_leftovers); do kill -KILL "$pid" 2>/dev/null || true; done
  local deadline=$(( $(date +%s) + 10 ))
  while [[ -n "$(our_leftovers)" ]] && (( $(date +%s) < deadline )); do sleep 0.1; done
  if kc get --raw /readyz >/dev/null 2>&1; then kc delete node "$node" --wait=false >/dev/null 2>&1 || true; fi
  unmount_all
  restore_host
  rm -rf "$node_dir"
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  ip) host_ip ;;
  *) echo "usage: $0 up|down|ip" >&2; exit 2 ;;
esac
