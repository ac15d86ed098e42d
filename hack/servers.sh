#!/usr/bin/env bash
# Installs the real servers that tests/server runs seeds against: PostgreSQL
# and Redis from the distribution's packages (Debian/Ubuntu), when missing.
set -euo pipefail

need=()
if ! command -v initdb >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need+=(postgresql)
fi
command -v redis-server >/dev/null || need+=(redis-server)

if ((${#need[@]})); then
  sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The tests start their own throwaway servers on free ports; these only report.
psql --version
redis-server --version
