#!/usr/bin/env bash
# Installs the Debian packages the real node and the image builds need, when
# missing: containerd and runc, the CNI plugins, nftables/iptables/ipset for
# kube-proxy and kube-router, the registry, and the image tools (debootstrap,
# umoci, skopeo, buildah, catatonit). Nothing else is downloaded.
set -euo pipefail

declare -A provides=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iproute2]=/usr/bin/ip
  [nftables]=/usr/sbin/nft
  [iptables]=/usr/sbin/iptables
  [ipset]=/usr/sbin/ipset
  [conntrack]=/usr/sbin/conntrack
  [docker-registry]=/usr/bin/docker-registry
  [debootstrap]=/usr/sbin/debootstrap
  [umoci]=/usr/bin/umoci
  [skopeo]=/usr/bin/skopeo
  [buildah]=/usr/bin/buildah
  [catatonit]=/usr/bin/catatonit
  [curl]=/usr/bin/curl
  [procps]=/usr/sbin/sysctl
)
need=()
for pkg in "${!provides[@]}"; do
  [[ -e "${provides[$pkg]}" ]] || need+=("$pkg")
done
if ((${#need[@]})); then
  [[ "$(id -u)" == 0 ]] || { echo "testbed: installing ${need[*]} needs root" >&2; exit 1; }
  echo "testbed: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
