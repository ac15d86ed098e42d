# Where the test bed keeps things; sourced by cluster.sh and node.sh.
#   TESTBED_CACHE  built binaries and images (default .cache/testbed/)
#   TESTBED_STATE  a running test bed's kubeconfig, data and logs (default .cluster/)
#   TESTBED_NAME   the kwokctl cluster name (default testenv)
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${TESTBED_CACHE:-$root/.cache/testbed}/bin"
state="${TESTBED_STATE:-$root/.cluster}"
name="${TESTBED_NAME:-testenv}"
kubeconfig="$state/kubeconfig"
export KWOK_WORKDIR="$state/kwok"
export PATH="$bin:$PATH"
