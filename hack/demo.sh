#!/usr/bin/env bash
# The local demo, on real pods: start the test bed (its real node, registry
# and images, including the shop example's), run the operator of this
# checkout against it, and take examples/shop from Provisioning to Succeeded
# with the CLI: real PostgreSQL, MariaDB, Redis and WireMock pods, the shop's
# three services, its seeds and its pytest suites, whose real counts end up in
# the results table. The test bed is left running to explore.
#
#   hack/demo.sh            the shop, all green
#   hack/demo.sh --failing  the same shop with the shipping service's mails
#                           switched off: one end-to-end test really fails,
#                           the email stub's verification shows what it got,
#                           and the CLI exits 1
set -euo pipefail
cd "$(dirname "$0")/.."
state=.cluster
export PATH="$PWD/.cache/testbed/bin:$PATH"

variant=green
case "${1:-}" in
  "") ;;
  --failing) variant=failing ;;
  *) echo "usage: $0 [--failing]" >&2; exit 2 ;;
esac

bash hack/testbed/cluster.sh up
export KUBECONFIG="$PWD/$state/kubeconfig"
# shellcheck source=/dev/null
source "$state/images.env"
: "${TESTBED_IMAGE_SHOP:?the test bed did not build the shop image (hack/testbed/images.sh shop)}"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/testenvironments.testenv.dev --timeout=60s >/dev/null
kubectl create namespace ci --dry-run=client -o yaml | kubectl apply -f - >/dev/null

metrics_port=9464
health_port=9465
echo "demo: starting the operator on this machine (log: $state/operator.log)"
# Every pod of an environment goes to the test bed's real node, with the
# engine and WireMock images the test bed built.
TESTENV_ENGINE_IMAGES="{\"postgres\":\"$TESTBED_IMAGE_POSTGRES\",\"mysql\":\"$TESTBED_IMAGE_MYSQL\",\"redis\":\"$TESTBED_IMAGE_REDIS\"}" \
  TESTENV_WIREMOCK_IMAGE="$TESTBED_IMAGE_WIREMOCK" \
  TESTENV_COLLECTOR_IMAGE="${TESTBED_IMAGE_COLLECTOR:?the test bed did not build the operator image (hack/testbed/images.sh operator)}" \
  TESTENV_POD_NODE_SELECTOR='{"testenv.dev/node":"real"}' \
  TESTENV_POD_TOLERATIONS='[{"key":"testenv.dev/real-node","operator":"Exists","effect":"NoSchedule"}]' \
  TESTENV_METRICS_PORT=$metrics_port TESTENV_HEALTH_PORT=$health_port TESTENV_HEALTH_HOST=127.0.0.1 \
  python3 -m testenv >"$state/operator.log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null; wait $operator 2>/dev/null || true' EXIT
deadline=$(( $(date +%s) + 60 ))
until curl -sf "http://127.0.0.1:$health_port/healthz" >/dev/null; do
  kill -0 $operator 2>/dev/null || { tail -20 "$state/operator.log"; exit 1; }
  (( $(date +%s) < deadline )) || { echo "demo: the operator did not become healthy" >&2; exit 1; }
  sleep 0.5
done

name=shop
args=()
if [[ $variant == failing ]]; then
  name=shop-failing
  args=(--set services.shipping.env.EMAIL_ENABLED.value=false)
fi
# A fresh run each time: delete what an earlier demo left.
testenv down "$name" -n ci --wait >/dev/null 2>&1 || true
status=0
testenv up -f examples/shop/environment.yaml --name "$name" "${args[@]}" \
  --wait --timeout 10m --junit "$state/$name-junit.xml" || status=$?

echo
echo "metrics of this run (http://127.0.0.1:$metrics_port/metrics):"
curl -s "http://127.0.0.1:$metrics_port/metrics" \
  | grep -E '^testenv_(runs_total|test_results_total|provisioning_seconds_(count|sum))' || true
echo
echo "JUnit (the suites' real reports, merged): $state/$name-junit.xml (exit code $status)"
echo "The test bed is still running: export KUBECONFIG=$KUBECONFIG; testenv status $name -n ci"
echo "What the run kept, also after its namespace is gone: testenv results $name -n ci [--artifacts DIR] [--logs]"
echo "Stop it with: make cluster-down"
exit $status
