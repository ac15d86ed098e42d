#!/usr/bin/env bash
# Builds the test bed's binaries from pinned Go modules into .cache/testbed/bin.
# No release downloads: only the Go module proxy. Five parts, each rebuilt
# only when its pins (versions.env) or its own recipe below change:
#   control plane and node  kube-apiserver, kube-controller-manager,
#                           kube-scheduler, kubectl, kubelet, kube-proxy, etcd,
#                           kwok, kwokctl, helm (one module, one build cache)
#   coredns                 cluster DNS (its own module: a newer client-go)
#   kube-router             NetworkPolicy enforcement (its own module)
#   seaweedfs               `weed`, the S3 server of the results store's tests (its own module)
#   toxiproxy               `toxiproxy-server`, the chaos soak's faults between the operator
#                           and the API server (its own module; the CLI is not needed)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${TESTBED_CACHE:-$root/.cache/testbed}"
bin="$cache/bin"
# shellcheck source=versions.env
source "$here/versions.env"
command -v go >/dev/null || { echo "testbed: Go is required (go1.26+)" >&2; exit 1; }
mkdir -p "$bin"

# part NAME FUNCTION PIN...: run FUNCTION unless its stamp (pins + its body) matches.
part() {
  local name="$1" fn="$2"; shift 2
  local stamp; stamp="$( { printf '%s\n' "$@"; declare -f "$fn"; } | sha256sum | cut -d' ' -f1)"
  if [[ -f "$bin/.stamp-$name" && "$(cat "$bin/.stamp-$name")" == "$stamp" ]]; then
    echo "testbed: $name up to date in $bin"
    return
  fi
  local started; started=$(date +%s)
  local src="$cache/src/$name"
  rm -rf "$src" && mkdir -p "$src"
  (cd "$src" && "$fn")
  echo "$stamp" > "$bin/.stamp-$name"
  echo "testbed: $name built in $(( $(date +%s) - started ))s"
}

controlplane() {
  local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client cri-streaming csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
    mount-utils pod-security-admission sample-apiserver sample-cli-plugin
    sample-controller streaming)
  {
    echo "module testenv.dev/testbed"
    echo
    echo "go 1.26"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $KUBERNETES_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo "	sigs.k8s.io/kwok $KWOK_VERSION"
    echo "	helm.sh/helm/v3 $HELM_VERSION"
    echo ")"
    echo
    # k8s.io/kubernetes points its staging modules at ./staging; the published
    # v0.X.Y modules are the same code.
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $KUBERNETES_STAGING_VERSION"; done
    echo ")"
  } > go.mod
  mkdir -p etcd
  cat > etcd/main.go <<'GO'
// etcd's own main, built from the pinned go.etcd.io/etcd/server/v3 module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  local major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
  local minor="${KUBERNETES_VERSION#v*.}"; minor="${minor%%.*}"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
  ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  local targets=(
    "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION"
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION"
    "k8s.io/kubernetes/cmd/kube-scheduler@$KUBERNETES_VERSION"
    "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION"
    "k8s.io/kubernetes/cmd/kubelet@$KUBERNETES_VERSION"
    "k8s.io/kubernetes/cmd/kube-proxy@$KUBERNETES_VERSION"
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  )
  echo "testbed: resolving modules"
  # Each package at its pinned module version, so `go get` never upgrades a pin.
  go get "${targets[@]}" "go.etcd.io/etcd/server/v3/etcdmain@$ETCD_VERSION" 2>&1 | grep -v '^go: downloading' || true
  targets=("${targets[@]%@*}")
  echo "testbed: building ${#targets[@]} tools + etcd (cold: 8 to 12 minutes on 2 cores)"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/" "${targets[@]}"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd" ./etcd
}

coredns() {
  printf 'module testenv.dev/testbed-coredns\n\ngo 1.26\n' > go.mod
  go get "github.com/coredns/coredns@$COREDNS_VERSION" 2>&1 | grep -v '^go: downloading' || true
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/coredns" github.com/coredns/coredns
}

kube_router() {
  printf 'module testenv.dev/testbed-kube-router\n\ngo 1.26\n' > go.mod
  go get "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" 2>&1 | grep -v '^go: downloading' || true
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
}

seaweedfs() {
  # Upstream's go.mod swaps the deleted tyler-smith/go-bip39 for its fork;
  # a dependency's replace lines do not apply here, so ours repeats it.
  printf 'module testenv.dev/testbed-seaweedfs\n\ngo 1.26\n\nreplace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0\n' > go.mod
  go get "github.com/seaweedfs/seaweedfs/weed@$SEAWEEDFS_VERSION" 2>&1 | grep -v '^go: downloading' || true
  local commit="${SEAWEEDFS_VERSION##*-}"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT=${commit:0:12}" \
    -o "$bin/weed" github.com/seaweedfs/seaweedfs/weed
}

toxiproxy() {
  printf 'module testenv.dev/testbed-toxiproxy\n\ngo 1.26\n' > go.mod
  go get "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" 2>&1 | grep -v '^go: downloading' || true
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
    -o "$bin/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server
}

part controlplane controlplane "$KUBERNETES_VERSION" "$KUBERNETES_STAGING_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" "$HELM_VERSION"
part coredns coredns "$COREDNS_VERSION"
part kube-router kube_router "$KUBE_ROUTER_VERSION"
part seaweedfs seaweedfs "$SEAWEEDFS_VERSION"
part toxiproxy toxiproxy "$TOXIPROXY_VERSION"
