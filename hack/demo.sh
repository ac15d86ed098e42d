#!/usr/bin/env bash
# The local demo: start the test bed, run the operator against it, apply the
# order-flow example with the CLI and watch it go Provisioning -> Seeding ->
# Testing -> Succeeded (KWOK plays the pods), then print the results and
# the metrics that run produced. The test bed is left running to explore.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.cluster
export PATH="$PWD/.cache/testbed/bin:$PATH"

bash hack/testbed/cluster.sh up
export KUBECONFIG="$PWD/$state/kubeconfig"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/testenvironments.testenv.dev --timeout=60s >/dev/null
kubectl apply -f examples/staging.yaml >/dev/null

metrics_port=9464
health_port=9465
echo "demo: starting the operator (log: $state/operator.log)"
TESTENV_COPY_ALLOWLIST='["staging"]' TESTENV_METRICS_PORT=$metrics_port \
  TESTENV_HEALTH_PORT=$health_port TESTENV_HEALTH_HOST=127.0.0.1 \
  python3 -m testenv >"$state/operator.log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null; wait $operator 2>/dev/null || true' EXIT
deadline=$(( $(date +%s) + 60 ))
until curl -sf "http://127.0.0.1:$health_port/healthz" >/dev/null; do
  kill -0 $operator 2>/dev/null || { tail -20 "$state/operator.log"; exit 1; }
  (( $(date +%s) < deadline )) || { echo "demo: the operator did not become healthy" >&2; exit 1; }
  sleep 0.5
done

# A fresh run each time: delete what an earlier demo left.
testenv down pr-1234 -n ci --wait >/dev/null 2>&1 || true
status=0
testenv up -f examples/order-flow.yaml --wait --timeout 5m --junit "$state/order-flow-junit.xml" || status=$?

echo
echo "metrics of this run (http://127.0.0.1:$metrics_port/metrics):"
curl -s "http://127.0.0.1:$metrics_port/metrics" \
  | grep -E '^testenv_(runs_total|test_results_total|environments\{phase="Succeeded"\}|provisioning_seconds_(count|sum))' || true
echo
echo "JUnit: $state/order-flow-junit.xml"
echo "The test bed is still running: export KUBECONFIG=$KUBECONFIG; kubectl get tenv -A"
echo "Stop it with: make cluster-down"
exit $status
