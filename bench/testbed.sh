#!/usr/bin/env bash
# The benchmarks' own test bed: hack/testbed/cluster.sh's cluster (same pinned
# binaries, stages, nodes and /16 Service range) plus an API-server audit log
# of the operator's requests. Its state lives apart from the tests' test bed,
# so benchmarks and tests never share a cluster.
#   bench/testbed.sh up      start (build the binaries if needed); prints the kubeconfig path
#   bench/testbed.sh down    stop and delete it
#   bench/testbed.sh audit   print the audit log's path
# TESTBED_STATE (default /tmp/bench-testbed) and TESTBED_NAME (default bench)
# choose where and under which name. BENCH_DISABLE_QPS_LIMITS=true lifts the
# client-side rate limits of the controller manager, scheduler and KWOK
# (kwokctl --disable-qps-limits; the defaults, e.g. 20 requests/s for the
# controller manager, bound how fast Deployments roll out at scale).
# BENCH_SERVICE_CIDR (default 10.0.0.0/16) is the API server's Service range;
# TESTBED_KWOKCTL_ARGS adds kwokctl flags as for cluster.sh. All of these only
# take effect when the cluster is created: use a TESTBED_STATE/NAME of its own.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cluster_sh="$root/hack/testbed/cluster.sh"
export TESTBED_STATE="${TESTBED_STATE:-/tmp/bench-testbed}"
export TESTBED_NAME="${TESTBED_NAME:-bench}"
# The benchmarks measure the operator and the control plane with KWOK's pods;
# a real node (one per machine) stays out of them unless asked for.
export TESTBED_REAL_NODE="${TESTBED_REAL_NODE:-0}"

up() {
  # cluster.sh does the work; only the kubeconfig path goes to stdout.
  # The audit policy path is absolute ($here is) since kwokctl runs elsewhere;
  # cluster.sh splits TESTBED_KWOKCTL_ARGS on whitespace, so the checkout's
  # path must not contain any.
  local args="--kube-audit-policy $here/audit-policy.yaml"
  [[ "${BENCH_DISABLE_QPS_LIMITS:-false}" == "true" ]] && args+=" --disable-qps-limits"
  TESTBED_KWOKCTL_ARGS="$args ${TESTBED_KWOKCTL_ARGS:-}" \
    TESTBED_SERVICE_CIDR="${BENCH_SERVICE_CIDR:-${TESTBED_SERVICE_CIDR:-10.0.0.0/16}}" \
    bash "$cluster_sh" up >&2
  echo "$TESTBED_STATE/kubeconfig"
}

down() {
  bash "$cluster_sh" down >&2
}

audit() {
  echo "$TESTBED_STATE/kwok/clusters/$TESTBED_NAME/logs/audit.log"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  audit) audit ;;
  *) echo "usage: $0 up|down|audit" >&2; exit 2 ;;
esac
