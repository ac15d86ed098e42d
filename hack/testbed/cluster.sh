#!/usr/bin/env bash
# Starts and stops the test bed: a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) with KWOK simulating nodes and pods,
# run by kwokctl's binary runtime from our locally built binaries.
#   cluster.sh up      build if needed, start, write .cluster/kubeconfig
#   cluster.sh down    stop and delete everything it started
#   cluster.sh restart stop and start the whole control plane, keeping its data
#   cluster.sh env     print `export PATH=...; export KUBECONFIG=...`
# Environment (all optional):
#   TESTBED_STATE         where kubeconfig and kwokctl's data live (default .cluster/)
#   TESTBED_NAME          the kwokctl cluster name (default testenv)
#   TESTBED_CACHE         where build.sh puts the binaries (default .cache/testbed/)
#   TESTBED_SERVICE_CIDR  the API server's Service range (default 10.0.0.0/16)
#   TESTBED_KWOKCTL_ARGS  extra `kwokctl create cluster` flags, split on whitespace,
#                         e.g. "--disable-qps-limits" or "--kube-audit-policy /abs/policy.yaml"
# The last two only take effect when `up` creates the cluster, not when it
# finds one already running: use a TESTBED_STATE/TESTBED_NAME of their own.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${TESTBED_CACHE:-$root/.cache/testbed}/bin"
state="${TESTBED_STATE:-$root/.cluster}"
name="${TESTBED_NAME:-testenv}"
kubeconfig="$state/kubeconfig"
export KWOK_WORKDIR="$state/kwok"
export PATH="$bin:$PATH"

up() {
  bash "$here/build.sh"
  mkdir -p "$state"
  if [[ -f "$kubeconfig" ]] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    echo "testbed: already running ($kubeconfig)"
    return
  fi
  # A stale cluster (machine restarted, processes gone) is removed first.
  kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
  local started; started=$(date +%s%N)
  # TESTBED_KWOKCTL_ARGS split on whitespace (newlines too), no glob expansion.
  local extra=()
  read -r -d '' -a extra <<<"${TESTBED_KWOKCTL_ARGS:-}" || true
  # Loopback only; kwokctl picks free ports and keeps data under $KWOK_WORKDIR.
  # No node leases: a restarted KWOK controller (new identity) never takes
  # over the old one's leases, so after `restart` no pod would progress.
  # Node status heartbeats (stages.yaml) keep the nodes Ready instead.
  # A /16 Service range: the API server's default /24 has 254 ClusterIPs,
  # i.e. only 84 environments of three Services.
  kwokctl create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --etcd-binary "$bin/etcd" \
    --kwok-controller-binary "$bin/kwok" \
    --config "$here/stages.yaml" \
    --node-lease-duration-seconds 0 \
    --extra-args "kube-apiserver=service-cluster-ip-range=${TESTBED_SERVICE_CIDR:-10.0.0.0/16}" \
    --kubeconfig "$kubeconfig" \
    "${extra[@]}" \
    --wait 120s >&2
  kubectl --kubeconfig "$kubeconfig" apply -f "$here/nodes.yaml" >/dev/null
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=60s >/dev/null
  # The default ServiceAccount must exist before any pod can be created.
  local deadline=$(( $(date +%s) + 60 ))
  until kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { echo "testbed: default ServiceAccount never appeared" >&2; exit 1; }
    sleep 0.2
  done
  echo "testbed: cluster ready in $(( ($(date +%s%N) - started) / 1000000 )) ms; KUBECONFIG=$kubeconfig"
}

down() {
  kwokctl delete cluster --name "$name" >&2 || true
  rm -rf "$state"
  echo "testbed: stopped"
}

restart() {
  kwokctl stop cluster --name "$name" >&2
  kwokctl start cluster --name "$name" --wait 120s >&2
}

case "${1:-}" in
  up) up ;;
  restart) restart ;;
  down) down ;;
  env) echo "export PATH=\"$bin:\$PATH\"; export KUBECONFIG=\"$kubeconfig\"" ;;
  *) echo "usage: $0 up|down|restart|env" >&2; exit 2 ;;
esac
