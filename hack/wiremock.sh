#!/usr/bin/env bash
# Fetches the pinned WireMock standalone jar from Maven Central into
# .cache/wiremock/ (once) and prints its path. The server tests run it.
set -euo pipefail

# Keep in step with Settings.wiremock_image, so tests run what clusters run.
WIREMOCK_VERSION="${WIREMOCK_VERSION:-3.13.1}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/wiremock"
jar="$dir/wiremock-standalone-$WIREMOCK_VERSION.jar"

if [[ ! -s "$jar" ]]; then
  command -v mvn >/dev/null || { echo "wiremock: mvn is required to fetch $jar" >&2; exit 1; }
  mkdir -p "$dir"
  # dependency:copy needs no project pom; -B keeps Maven's progress out of CI logs.
  mvn -q -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.wiremock:wiremock-standalone:$WIREMOCK_VERSION" \
    -DoutputDirectory="$dir" >&2
fi
echo "$jar"
