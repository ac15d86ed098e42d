#!/usr/bin/env bash
# The benchmarks' own test bed: hack/testbed/cluster.sh's cluster (same pinned
# binaries, stages and nodes) plus an API-server audit log of the operator's
# requests. Its state lives apart from the tests' test bed, so benchmarks and
# tests never share a cluster.
#   bench/testbed.sh up      start (build the binaries if needed); prints the kubeconfig path
#   bench/testbed.sh down    stop and delete it
#   bench/testbed.sh audit   print the audit log's path
# TESTBED_STATE (default /tmp/bench-testbed) and TESTBED_NAME (default bench)
# choose where and under which name. BENCH_DISABLE_QPS_LIMITS=true lifts the
# client-side rate limits of the controller manager, scheduler and KWOK
# (kwokctl --disable-qps-limits; the defaults, e.g. 20 requests/s for the
# controller manager, bound how fast Deployments roll out at scale). It only
# takes effect when the cluster is created: use a TESTBED_STATE/NAME of its own.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
testbed="$root/hack/testbed"
bin="${TESTBED_CACHE:-$root/.cache/testbed}/bin"
state="${TESTBED_STATE:-/tmp/bench-testbed}"
name="${TESTBED_NAME:-bench}"
kubeconfig="$state/kubeconfig"
export KWOK_WORKDIR="$state/kwok"
export PATH="$bin:$PATH"

up() {
  bash "$testbed/build.sh" >&2
  mkdir -p "$state"
  if [[ -f "$kubeconfig" ]] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    echo "$kubeconfig"
    return
  fi
  kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
  local extra=()
  [[ "${BENCH_DISABLE_QPS_LIMITS:-false}" == "true" ]] && extra+=(--disable-qps-limits)
  # As hack/testbed/cluster.sh, plus the audit policy and a Service range
  # larger than the API server's default /24: 254 ClusterIPs hold only 84
  # environments of three Services, and the scale benchmark runs 200.
  kwokctl create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --etcd-binary "$bin/etcd" \
    --kwok-controller-binary "$bin/kwok" \
    --config "$testbed/stages.yaml" \
    --node-lease-duration-seconds 0 \
    --kube-audit-policy "$here/audit-policy.yaml" \
    --extra-args "kube-apiserver=service-cluster-ip-range=${BENCH_SERVICE_CIDR:-10.0.0.0/16}" \
    --kubeconfig "$kubeconfig" \
    "${extra[@]}" \
    --wait 120s >&2
  kubectl --kubeconfig "$kubeconfig" apply -f "$testbed/nodes.yaml" >/dev/null
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=60s >/dev/null
  local deadline=$(( $(date +%s) + 60 ))
  until kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { echo "bench testbed: default ServiceAccount never appeared" >&2; exit 1; }
    sleep 0.2
  done
  echo "$kubeconfig"
}

down() {
  kwokctl delete cluster --name "$name" >&2 || true
  rm -rf "$state"
}

audit() {
  echo "$KWOK_WORKDIR/clusters/$name/logs/audit.log"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  audit) audit ;;
  *) echo "usage: $0 up|down|audit" >&2; exit 2 ;;
esac
