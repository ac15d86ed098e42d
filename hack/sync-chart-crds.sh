#!/usr/bin/env bash
# Copies the generated CRDs (crds/, from `make crds`) into the Helm chart,
# which must ship them byte for byte (tests/unit/test_chart_values.py checks).
#   hack/sync-chart-crds.sh          copy
#   hack/sync-chart-crds.sh --check  only report a difference (exit 1)
# The chart's own crds/kopf-peerings.yaml is not generated and stays as is.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/crds"
dst="$root/charts/testenv-operator/crds"

status=0
for crd in "$src"/*.yaml; do
  target="$dst/$(basename "$crd")"
  if cmp -s "$crd" "$target"; then
    continue
  fi
  if [[ "${1:-}" == "--check" ]]; then
    echo "chart CRD out of date: ${target#"$root"/} (run hack/sync-chart-crds.sh)" >&2
    status=1
  else
    cp "$crd" "$target"
    echo "copied ${crd#"$root"/} -> ${target#"$root"/}"
  fi
done
exit "$status"
