#!/usr/bin/env bash
# Builds the test bed's binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl, helm) from pinned Go modules
# into .cache/testbed/bin. No release downloads: only the Go module proxy.
# A rebuild happens only when versions.env (or this script) changes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${TESTBED_CACHE:-$root/.cache/testbed}"
bin="$cache/bin"
src="$cache/src"
# shellcheck source=versions.env
source "$here/versions.env"

stamp_value="$(cat "$here/versions.env" "$here/build.sh" | sha256sum | cut -d' ' -f1)"
if [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$stamp_value" ]]; then
  echo "testbed: binaries up to date in $bin"
  exit 0
fi

command -v go >/dev/null || { echo "testbed: Go is required (go1.26+)" >&2; exit 1; }
started=$(date +%s)
rm -rf "$src" && mkdir -p "$src/etcd" "$bin"

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
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
} > "$src/go.mod"

cat > "$src/etcd/main.go" <<'GO'
// etcd's own main, built from the pinned go.etcd.io/etcd/server/v3 module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

cd "$src"
major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
minor="${KUBERNETES_VERSION#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

targets=(
  "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION"
  "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION"
  "k8s.io/kubernetes/cmd/kube-scheduler@$KUBERNETES_VERSION"
  "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION"
  "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
)
echo "testbed: resolving modules"
# Each package at its pinned module version, so `go get` never upgrades a pin.
go get "${targets[@]}" "go.etcd.io/etcd/server/v3/etcdmain@$ETCD_VERSION" 2>&1 | grep -v '^go: downloading' || true
targets=("${targets[@]%@*}")
echo "testbed: building ${#targets[@]} tools + etcd (cold: tens of minutes on 2 cores)"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/" "${targets[@]}"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd" ./etcd
echo "$stamp_value" > "$bin/.stamp"
echo "testbed: built in $(( $(date +%s) - started ))s into $bin"
