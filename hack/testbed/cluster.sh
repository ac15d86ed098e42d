#!/usr/bin/env bash
# Starts and stops the test bed: a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) run by kwokctl's binary runtime from
# our locally built binaries, with KWOK simulating two nodes and their pods,
# and (unless TESTBED_REAL_NODE=0) one real node beside them: a local registry
# (registry.sh), images built from Debian's packages (images.sh) and a
# kubelet with containerd (node.sh). The real node is tainted
# testenv.dev/real-node:NoSchedule, so only pods that tolerate it run there.
#   cluster.sh up      build if needed, start, write .cluster/kubeconfig
#   cluster.sh down    stop and delete everything it started
#   cluster.sh restart stop and start the whole control plane, keeping its data
#   cluster.sh etcd-stop   kill etcd alone: the API server runs on without it
#   cluster.sh etcd-start  start it again (with what died without it)
#   cluster.sh env     print `export PATH=...; export KUBECONFIG=...`
# Environment (all optional):
#   TESTBED_STATE         where kubeconfig and kwokctl's data live (default .cluster/)
#   TESTBED_NAME          the kwokctl cluster name (default testenv)
#   TESTBED_CACHE         where build.sh puts the binaries (default .cache/testbed/)
#   TESTBED_SERVICE_CIDR  the API server's Service range (default 10.0.0.0/16)
#   TESTBED_REAL_NODE     1 (default): also start the real node; 0: KWOK only
#   TESTBED_KWOKCTL_ARGS  extra `kwokctl create cluster` flags, split on whitespace,
#                         e.g. "--disable-qps-limits" or "--kube-audit-policy /abs/policy.yaml"
# The last two only take effect when `up` creates the cluster, not when it
# finds one already running: use a TESTBED_STATE/TESTBED_NAME of their own.
set -euo pipefail

# shellcheck source=paths.sh
source "$(dirname "$0")/paths.sh"

real_node="${TESTBED_REAL_NODE:-1}"
logs="$state/logs"

# kwokctl's configuration: options and per-component flags (kwokctl's
# --extra-args can attach a flag to the wrong component when repeated).
kwokctl_config() {
  local host_ip="$1" service_ip="$2" pki="$KWOK_WORKDIR/clusters/$name/pki"
  cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  # Every component on loopback; the API server alone is opened below.
  bindAddress: 127.0.0.1
  # Admission as on any cluster: ServiceAccount tokens, Pod Security,
  # ResourceQuota and LimitRange are enforced.
  kubeAdmission: true
  # Pods reach the API server at the first Service IP (and the host's).
  kubeApiserverCertSANs: [$service_ip, $host_ip, kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local]
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: service-cluster-ip-range, value: "${TESTBED_SERVICE_CIDR:-10.0.0.0/16}"}
EOF
  if [[ "$real_node" == 1 ]]; then
    cat <<EOF
  # Pods reach it through the host's address (traffic that stays on the machine).
  - {key: bind-address, value: 0.0.0.0, override: true}
  # The kubelet rejects anonymous callers: logs and exec need a client cert.
  - {key: kubelet-client-certificate, value: $pki/admin.crt}
  - {key: kubelet-client-key, value: $pki/admin.key}
  # Never resolve a node's hostname through the host's resolver.
  - {key: kubelet-preferred-address-types, value: InternalIP}
EOF
  fi
  cat <<EOF
- name: kwok-controller
  extraArgs:
  # KWOK plays only the annotated nodes (nodes.yaml), never the real one.
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
EOF
}

first_service_ip() {
  local base="${TESTBED_SERVICE_CIDR:-10.0.0.0/16}"; base="${base%/*}"
  echo "${base%.*}.$(( ${base##*.} + 1 ))"
}

# step NAME CMD...: one start-up step; on failure, name it and show its log.
step() {
  local what="$1"; shift
  local logfile="$logs/${what// /-}.log"
  if ! "$@" >"$logfile" 2>&1; then
    echo "testbed: step '$what' failed; log: $logfile" >&2
    tail -n 25 "$logfile" | sed 's/^/  | /' >&2
    exit 1
  fi
}

up() {
  bash "$here/build.sh"
  mkdir -p "$state"
  if [[ -f "$kubeconfig" ]] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    echo "testbed: already running ($kubeconfig)"
    return
  fi
  # A stale cluster (machine restarted, processes gone) is removed first.
  stop_all >/dev/null 2>&1 || true
  mkdir -p "$logs"
  local started; started=$(date +%s%N)
  # A failure from here on stops whatever was started; the logs stay in $logs.
  trap 'rc=$?; if ((rc)); then echo "testbed: start-up failed; stopped what was started (logs: $logs)" >&2; stop_all >/dev/null 2>&1 || true; fi' EXIT
  if [[ "$real_node" == 1 ]]; then
    step "Debian packages" bash "$here/packages.sh"
    step "local registry" bash "$here/registry.sh" up
    step "images" bash "$here/images.sh"
  fi
  # TESTBED_KWOKCTL_ARGS split on whitespace (newlines too), no glob expansion.
  local extra=()
  read -r -d '' -a extra <<<"${TESTBED_KWOKCTL_ARGS:-}" || true
  local host_ip; host_ip="$(bash "$here/node.sh" ip)"
  kwokctl_config "$host_ip" "$(first_service_ip)" > "$state/kwokctl.yaml"
  # No node leases: a restarted KWOK controller (new identity) never takes
  # over the old one's leases, so after `restart` no pod would progress.
  # Node status heartbeats (stages.yaml) keep the nodes Ready instead.
  # A /16 Service range: the API server's default /24 has 254 ClusterIPs,
  # i.e. only 84 environments of three Services.
  step "control plane" kwokctl create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --etcd-binary "$bin/etcd" \
    --kwok-controller-binary "$bin/kwok" \
    --config "$here/stages.yaml" \
    --config "$state/kwokctl.yaml" \
    --node-lease-duration-seconds 0 \
    --kubeconfig "$kubeconfig" \
    "${extra[@]}" \
    --wait 120s
  step "simulated nodes" kubectl --kubeconfig "$kubeconfig" apply -f "$here/nodes.yaml"
  step "simulated nodes Ready" kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=60s
  # The default ServiceAccount must exist before any pod can be created.
  local deadline=$(( $(date +%s) + 60 ))
  until kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { echo "testbed: default ServiceAccount never appeared" >&2; exit 1; }
    sleep 0.2
  done
  if [[ "$real_node" == 1 ]]; then
    step "real node" bash "$here/node.sh" up
  fi
  trap - EXIT
  echo "testbed: cluster ready in $(( ($(date +%s%N) - started) / 1000000 )) ms; KUBECONFIG=$kubeconfig"
}

stop_all() {
  # The node first: its pods are deleted through the API while the kubelet runs.
  bash "$here/node.sh" down || true
  kwokctl delete cluster --name "$name" || true
  bash "$here/registry.sh" down || true
}

down() {
  stop_all >&2
  rm -rf "$state"
  echo "testbed: stopped"
}

# The ports of the control plane's servers (or of those whose port option
# matches $1, a sed pattern), from kwokctl's saved configuration.
control_plane_ports() {
  local which="${1:-etcdPort\|etcdPeerPort\|kubeApiserverPort\|kubeControllerManagerPort\|kubeSchedulerPort\|kwokControllerPort}"
  sed -n "s/^ *\($which\): *\([0-9][0-9]*\)\$/\2/p" "$KWOK_WORKDIR/clusters/$name/kwok.yaml"
}

# Until a new server could listen on each of the ports (as Go does: with
# SO_REUSEADDR, so the killed server's lingering connections do not count,
# only a listener that is still there), for at most $1 seconds; $2 as for
# control_plane_ports.
wait_ports_free() {
  local deadline=$(( $(date +%s) + $1 ))
  # shellcheck disable=SC2046 # one argument per port
  until python3 - $(control_plane_ports "${2:-}") <<'PY'
import socket, sys
for port in sys.argv[1:]:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", int(port)))
        except OSError:
            sys.exit(1)
PY
  do
    if (( $(date +%s) >= deadline )); then
      echo "testbed: a control-plane port was still taken after $1 s" >&2
      return 0
    fi
    sleep 0.2
  done
}

restart() {
  kwokctl stop cluster --name "$name" >&2
  # kwokctl kills the servers without waiting for them to go: a new API
  # server that finds the old one's listener still there exits at once
  # ("bind: address already in use"), and kwokctl waits out its --wait for
  # nothing (the chaos soak's restarts of 240 s).
  # kwokctl start also exits 0 when the API server it started has died.
  local attempt
  for attempt in 1 2; do
    wait_ports_free 90
    kwokctl start cluster --name "$name" --wait 60s >&2
    if kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then return 0; fi
    echo "testbed: the API server is not serving after start $attempt; see $KWOK_WORKDIR/clusters/$name/logs" >&2
    kwokctl stop cluster --name "$name" >&2
  done
  return 1
}

# etcd killed as a crashed member is, while the API server runs on: it then
# answers what it answers without its storage (reads and writes time out with
# 504 after its storage timeout, /readyz 500), which the chaos soak is after.
etcd_stop() {
  kill -KILL "$(cat "$KWOK_WORKDIR/clusters/$name/pids/etcd.pid")"
  wait_ports_free 30 'etcdPort\|etcdPeerPort'
}

# kwokctl starts each component that is not running: etcd, and the controller
# manager and scheduler, which exit when they cannot renew their leases. The
# API server's etcd clients reconnect on their own back-off, so it may take
# a while after etcd is up before it is ready again.
etcd_start() {
  kwokctl start cluster --name "$name" >&2
  local deadline=$(( $(date +%s) + 180 ))
  until kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      echo "testbed: the API server is not ready 180 s after etcd started; see $KWOK_WORKDIR/clusters/$name/logs" >&2
      return 1
    fi
    sleep 1
  done
}

# One start or stop at a time per test bed: two `up`s at once (a user and a
# test session, say) would each see no cluster and both create it. flock -o
# holds the lock in flock itself, so the daemons `up` starts never inherit it.
if [[ -z "${TESTBED_LOCK_HELD:-}" && "${1:-}" =~ ^(up|down|restart|etcd-stop|etcd-start)$ ]]; then
  lock_dir="${TESTBED_CACHE:-$root/.cache/testbed}"
  mkdir -p "$lock_dir"
  TESTBED_LOCK_HELD=1 exec flock -o "$lock_dir/.cluster-$name.lock" bash "$0" "$@"
fi
case "${1:-}" in
  up) up ;;
  restart) restart ;;
  etcd-stop) etcd_stop ;;
  etcd-start) etcd_start ;;
  down) down ;;
  images) cat "$state/images.env" ;;
  env) echo "export PATH=\"$bin:\$PATH\"; export KUBECONFIG=\"$kubeconfig\"" ;;
  *) echo "usage: $0 up|down|restart|etcd-stop|etcd-start|env" >&2; exit 2 ;;
esac
