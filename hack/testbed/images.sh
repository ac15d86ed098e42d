#!/usr/bin/env bash
# Builds the test bed's container images from Debian packages (and PyPI /
# Maven Central for what Debian lacks) and pushes them to the local registry
# (hack/testbed/registry.sh, started here if it is not running). No image
# comes from a container registry.
#
#   images.sh [NAME...]     build what changed (default: all), in this order:
#     debian    testenv/debian:$DEBIAN_SUITE   debootstrap minbase -> umoci -> skopeo
#     pause     testenv/pause:3.10             static catatonit as /pause (sandbox image)
#     python    testenv/python:3.11-bookworm   PYTHON_IMAGE of the repo's Dockerfile
#     postgres  testenv/postgres:15
#     mysql     testenv/mysql:10.11-mariadb    MariaDB (Debian's), mysql image contract
#     redis     testenv/redis:7
#     wiremock  testenv/wiremock:3.13.1
#     runner    testenv/python-runner:latest   pytest + the testenv CLI
#     operator  testenv/testenv-operator:<pyproject version>   the repo's Dockerfile
#     shop      testenv/shop:latest            examples/shop/app: the example's services
#     shop-tests testenv/shop-tests:latest     examples/shop/tests on the runner image
#
# Recipes: hack/images/<name>/. Each image is cached by content: a hash of its
# recipe directory, of what it is built FROM (the pushed digest) and, for the
# runner and the operator, of the repository files copied in. When the stamp
# in $TESTBED_CACHE/images/stamps matches and the registry still has the tag,
# the image is "up to date"; otherwise it is built and pushed.
#
# Writes $TESTBED_STATE/images.env (TESTBED_IMAGE_<NAME>=<registry>/<repo>:<tag>).
# Logs: $TESTBED_STATE/images/<name>.log. buildah's storage lives in
# $TESTBED_CACHE/images/buildah (nothing under /var/lib/containers).
set -euo pipefail

# The whole script is one brace group ending in `exit`: bash parses it
# completely before running any of it, so editing this file (or a recipe)
# while a build runs cannot derail that build.
{
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export TESTBED_CACHE="${TESTBED_CACHE:-$root/.cache/testbed}"
export TESTBED_STATE="${TESTBED_STATE:-$root/.cluster}"
cache="$TESTBED_CACHE/images"
state="$TESTBED_STATE"
recipes="$root/hack/images"
logs="$state/images"
# shellcheck source=versions.env
source "$here/versions.env"
: "${DEBIAN_SUITE:?versions.env: DEBIAN_SUITE}" "${DEBIAN_MIRROR:?}" "${DEBIAN_SECURITY_MIRROR:?}" "${WIREMOCK_VERSION:?}"

for tool in buildah skopeo umoci debootstrap curl catatonit; do
  command -v "$tool" >/dev/null || { echo "images: $tool is required (apt-get install $tool)" >&2; exit 1; }
done
[[ "$(id -u)" == 0 ]] || { echo "images: run as root (debootstrap, buildah)" >&2; exit 1; }

"$here/registry.sh" up
reg="$("$here/registry.sh" addr)"
mkdir -p "$cache/stamps" "$cache/work" "$logs"
# One build at a time per cache (cluster.sh and a user may both run this).
exec 9> "$cache/.lock"
if ! flock -n 9; then echo "images: waiting for another images.sh ($cache/.lock)" >&2; flock 9; fi

# --- buildah: its own storage under the cache; overlay if it works, else vfs --
broot="$cache/buildah/root"
brun="$cache/buildah/run"
bdriver_file="$cache/buildah/driver"
bah() { buildah --root "$broot" --runroot "$brun" --storage-driver "$(cat "$bdriver_file")" "$@"; }
choose_driver() {
  [[ -s "$bdriver_file" ]] && return
  mkdir -p "$broot" "$brun"
  local d
  for d in overlay vfs; do
    if buildah --root "$broot" --runroot "$brun" --storage-driver "$d" images >/dev/null 2>&1 \
      && buildah --root "$broot" --runroot "$brun" --storage-driver "$d" from --name testenv-probe scratch >/dev/null 2>&1; then
      local mnt
      if mnt=$(buildah --root "$broot" --runroot "$brun" --storage-driver "$d" mount testenv-probe 2>/dev/null); then
        buildah --root "$broot" --runroot "$brun" --storage-driver "$d" umount testenv-probe >/dev/null 2>&1 || true
        buildah --root "$broot" --runroot "$brun" --storage-driver "$d" rm testenv-probe >/dev/null 2>&1 || true
        echo "$d" > "$bdriver_file"
        return
      fi
      buildah --root "$broot" --runroot "$brun" --storage-driver "$d" rm testenv-probe >/dev/null 2>&1 || true
    fi
    rm -rf "$broot" "$brun"; mkdir -p "$broot" "$brun"
  done
  echo "images: buildah works with neither the overlay nor the vfs storage driver" >&2
  exit 1
}

# --- helpers ----------------------------------------------------------------
current="" log=""
# step NAME CMD...: run CMD with its output in the image's log; on failure name
# the image, the step and the log, and stop.
step() {
  local name="$1"; shift
  echo "--- $name: $*" >> "$log"
  if ! "$@" >> "$log" 2>&1; then
    echo "images: $current: step '$name' failed; log: $log" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
    exit 1
  fi
}

# digest REPO TAG: the manifest digest the registry serves for REPO:TAG, or fail.
accept='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
digest() {
  curl -fsS --max-time 10 -I -H "Accept: $accept" "http://$reg/v2/$1/manifests/$2" 2>/dev/null \
    | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}' | grep .
}

# hash_paths PATH...: content hash of files and directories (names, modes, bytes),
# ignoring Python caches and READMEs inside a directory (notes, not recipe).
hash_paths() {
  local p
  for p in "$@"; do
    (cd "$(dirname "$p")" && find "$(basename "$p")" \( -name __pycache__ -o -name '*.egg-info' -o -path '*/README*' \) -prune \
      -o -type f -printf '%p %m\n' | LC_ALL=C sort | while read -r f m; do
        printf '%s %s %s\n' "$f" "$m" "$(sha256sum < "$f" | cut -d' ' -f1)"; done)
  done | sha256sum | cut -d' ' -f1
}

# copy_tree SRC DEST: like cp -a, without Python caches.
copy_tree() {
  mkdir -p "$2"
  tar -C "$(dirname "$1")" --exclude=__pycache__ --exclude='*.egg-info' -cf - "$(basename "$1")" | tar -C "$2" -xf -
}

declare -A IMAGE DIGEST
declare -a ORDER=()

# image NAME REPO TAG HASH BUILD_FUNCTION: build unless up to date; sets DIGEST[NAME].
image() {
  local name="$1" repo="$2" tag="$3" hash="$4" fn="$5"
  current="$name ($repo:$tag)"
  log="$logs/$name.log"
  IMAGE[$name]="$reg/$repo:$tag"
  ORDER+=("$name")
  local stamp="$cache/stamps/$name" d
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]] && d="$(digest "$repo" "$tag")"; then
    DIGEST[$name]="$d"
    printf 'images: %-9s %s up to date\n' "$name" "${IMAGE[$name]}"
    return
  fi
  : > "$log"
  local started; started=$(date +%s)
  local work="$cache/work/$name"
  rm -rf "$work"; mkdir -p "$work"
  "$fn" "$work" "$repo" "$tag"
  d="$(digest "$repo" "$tag")" || { echo "images: $current: step 'check the push' failed: the registry has no $repo:$tag; log: $log" >&2; exit 1; }
  DIGEST[$name]="$d"
  rm -rf "$work"
  echo "$hash" > "$stamp"
  printf 'images: %-9s %s built in %ss (%s)\n' "$name" "${IMAGE[$name]}" "$(( $(date +%s) - started ))" "$d"
}

# --- the base: debootstrap -> umoci -> skopeo -------------------------------
umount_under() { # unmount anything left mounted below $1, deepest first
  findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r m; do umount -l "$m" || true; done
}
build_debian() {
  local work="$1" repo="$2" tag="$3"
  local rootfs="$work/rootfs" oci="$work/oci"
  trap 'umount_under "$work"' EXIT
  step debootstrap debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR"
  umount_under "$work"
  step "apt config" cp -a "$recipes/debian/rootfs/." "$rootfs/"
  cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main
EOF
  # No lists, caches, logs or host-specific files in the image (the runtime
  # provides resolv.conf and hostname).
  step cleanup bash -c 'cd "$1" && rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb \
    var/cache/apt/archives/partial/* var/cache/debconf/*-old var/lib/dpkg/*-old var/log/* tmp/* \
    && : > etc/resolv.conf && : > etc/hostname && rm -f etc/machine-id' cleanup "$rootfs"
  step "umoci init" umoci init --layout "$oci"
  step "umoci new" umoci new --image "$oci:$tag"
  step "umoci insert" umoci insert --image "$oci:$tag" --history.created_by "debootstrap --variant=minbase $DEBIAN_SUITE" "$rootfs" /
  step "umoci config" umoci config --image "$oci:$tag" --os linux --architecture amd64 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd /bin/bash --config.label "org.opencontainers.image.title=testenv/debian" \
    --config.label "org.opencontainers.image.description=debootstrap --variant=minbase $DEBIAN_SUITE"
  step "umoci gc" umoci gc --layout "$oci"
  step "skopeo push" skopeo copy --quiet --dest-tls-verify=false "oci:$oci:$tag" "docker://$reg/$repo:$tag"
  trap - EXIT
  rm -rf "$rootfs"
}

# --- buildah images ---------------------------------------------------------
# bud WORK REPO TAG CONTAINERFILE [BUILD-ARG...]: build WORK/ctx, push, drop the local copy.
bud() {
  local work="$1" repo="$2" tag="$3" file="$4"; shift 4
  local args=() a
  for a in "$@"; do args+=(--build-arg "$a"); done
  local local_ref="localhost/testenv-build/$repo:$tag"
  # pip in RUN steps reaches PyPI through this machine's TLS proxy, whose CA
  # is in the host's bundle only. For images that pip-install (FROM the python
  # image, which has /etc/ssl/certs/ca-certificates.crt, which Debian's pip
  # uses) the host's bundle is bind-mounted read-only over that file during
  # RUN steps: over an existing file, so no mount point and nothing of the
  # host's bundle ends up in a layer. Others reach only the Debian mirror (http).
  local mounts=()
  if [[ "${pip_ca:-}" == 1 && -s "$host_ca" ]]; then
    mounts=(-v "$host_ca:/etc/ssl/certs/ca-certificates.crt:ro")
  fi
  step "buildah bud" bah bud --isolation chroot --tls-verify=false --pull=missing --layers=false \
    --format oci "${mounts[@]}" -f "$file" -t "$local_ref" "${args[@]}" "$work/ctx"
  step "buildah push" bah push --tls-verify=false --quiet "$local_ref" "docker://$reg/$repo:$tag"
  bah rmi "$local_ref" >> "$log" 2>&1 || true
}
host_ca="${TESTBED_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
# ctx WORK RECIPE: a build context with the recipe's files.
ctx() { mkdir -p "$1/ctx"; cp -a "$recipes/$2/." "$1/ctx/"; }
base_ref() { echo "$reg/testenv/$1@${DIGEST[$1]}"; }

build_pause() {
  ctx "$1" pause
  cp /usr/bin/catatonit "$1/ctx/catatonit"
  bud "$1" "$2" "$3" "$1/ctx/Containerfile"
}
build_from_debian() { # recipe dir = image name
  ctx "$1" "$recipe"
  bud "$1" "$2" "$3" "$1/ctx/Containerfile" "BASE=$(base_ref debian)"
}
build_wiremock() {
  ctx "$1" wiremock
  cp "$wiremock_jar" "$1/ctx/wiremock-standalone.jar"
  bud "$1" "$2" "$3" "$1/ctx/Containerfile" "BASE=$(base_ref debian)"
}
repo_files=("$root/pyproject.toml" "$root/README.md" "$root/operator")
build_runner() {
  ctx "$1" python-runner
  mkdir -p "$1/ctx/src"
  local f; for f in "${repo_files[@]}"; do copy_tree "$f" "$1/ctx/src"; done
  pip_ca=1 bud "$1" "$2" "$3" "$1/ctx/Containerfile" "BASE=$(base_ref python)"
}
build_operator() {
  mkdir -p "$1/ctx"
  local f; for f in "${repo_files[@]}" "$root/Dockerfile"; do copy_tree "$f" "$1/ctx"; done
  pip_ca=1 bud "$1" "$2" "$3" "$1/ctx/Dockerfile" "PYTHON_IMAGE=$(base_ref python)"
}

shop_dir="$root/examples/shop"
build_shop() { # $recipe: app or tests, each with its Containerfile; the context is examples/shop
  mkdir -p "$1/ctx"
  copy_tree "$shop_dir/app" "$1/ctx"
  [[ "$recipe" == tests ]] && copy_tree "$shop_dir/tests" "$1/ctx"
  local base; base="$(base_ref python)"
  [[ "$recipe" == tests ]] && base="$reg/testenv/python-runner@${DIGEST[runner]}"
  pip_ca=1 bud "$1" "$2" "$3" "$1/ctx/$recipe/Containerfile" "BASE=$base"
}

# The WireMock jar, once, through Maven (Maven Central), checked against the
# .sha1 Maven Central publishes (Maven keeps it next to the jar in ~/.m2).
fetch_wiremock_jar() {
  local dir="$cache/wiremock-$WIREMOCK_VERSION"
  wiremock_jar="$dir/wiremock-standalone-$WIREMOCK_VERSION.jar"
  [[ -s "$wiremock_jar" && -s "$wiremock_jar.sha1" ]] && return
  current="wiremock jar"; log="$logs/wiremock-jar.log"; : > "$log"
  command -v mvn >/dev/null || { echo "images: mvn is required to fetch the WireMock jar" >&2; exit 1; }
  mkdir -p "$dir"
  local started; started=$(date +%s)
  local m2="${MAVEN_LOCAL_REPO:-$HOME/.m2/repository}"
  step "mvn dependency:copy" mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.wiremock:wiremock-standalone:$WIREMOCK_VERSION" -DoutputDirectory="$dir"
  local sha1file="$m2/org/wiremock/wiremock-standalone/$WIREMOCK_VERSION/wiremock-standalone-$WIREMOCK_VERSION.jar.sha1"
  local want got
  want="$(cut -c1-40 "$sha1file" 2>/dev/null || true)"
  got="$(sha1sum "$wiremock_jar" | cut -d' ' -f1)"
  if [[ ! "$want" =~ ^[0-9a-f]{40}$ || "$want" != "$got" ]]; then
    echo "images: wiremock jar: step 'sha1 check' failed: Maven Central's sha1 '${want:-missing}' ($sha1file), jar's $got" >&2
    rm -f "$wiremock_jar"; exit 1
  fi
  echo "$want" > "$wiremock_jar.sha1"
  echo "images: wiremock jar $WIREMOCK_VERSION fetched in $(( $(date +%s) - started ))s (sha1 $want)"
}

# --- what to build ------------------------------------------------------------
choose_driver
op_version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/pyproject.toml" | head -n1)"
want=("$@")
wanted() { [[ ${#want[@]} == 0 ]] || [[ " ${want[*]} " == *" $1 "* ]]; }
# Dependencies are always resolved (their digests feed the hashes); an image not
# named is only looked up, never built, and must then already be in the registry.
recipe=""

image debian testenv/debian "$DEBIAN_SUITE" \
  "$( { echo "$DEBIAN_SUITE $DEBIAN_MIRROR $DEBIAN_SECURITY_MIRROR"; hash_paths "$recipes/debian"; declare -f build_debian; } | sha256sum | cut -d' ' -f1)" \
  build_debian
if wanted pause; then
  image pause testenv/pause 3.10 \
    "$( { hash_paths "$recipes/pause"; sha256sum < /usr/bin/catatonit; declare -f build_pause bud; } | sha256sum | cut -d' ' -f1)" build_pause
fi
if wanted python || wanted runner || wanted operator || wanted shop || wanted shop-tests; then
  recipe=python
  image python testenv/python 3.11-bookworm \
    "$( { hash_paths "$recipes/python"; echo "${DIGEST[debian]}"; declare -f build_from_debian bud; } | sha256sum | cut -d' ' -f1)" \
    build_from_debian
fi
for spec in postgres:postgres:15 mysql:mysql:10.11-mariadb redis:redis:7; do
  IFS=: read -r name repo tag <<< "$spec"
  wanted "$name" || continue
  recipe="$name"
  image "$name" "testenv/$repo" "$tag" \
    "$( { hash_paths "$recipes/$name"; echo "${DIGEST[debian]}"; declare -f build_from_debian bud; } | sha256sum | cut -d' ' -f1)" \
    build_from_debian
done
if wanted wiremock; then
  fetch_wiremock_jar
  image wiremock testenv/wiremock "$WIREMOCK_VERSION" \
    "$( { hash_paths "$recipes/wiremock"; cat "$wiremock_jar.sha1"; echo "${DIGEST[debian]}"; declare -f build_wiremock bud; } | sha256sum | cut -d' ' -f1)" \
    build_wiremock
fi
if wanted runner || wanted shop-tests; then
  image runner testenv/python-runner latest \
    "$( { hash_paths "$recipes/python-runner" "${repo_files[@]}"; echo "${DIGEST[python]}"; declare -f build_runner bud; } | sha256sum | cut -d' ' -f1)" \
    build_runner
fi
if wanted operator; then
  image operator testenv/testenv-operator "$op_version" \
    "$( { hash_paths "$root/Dockerfile" "${repo_files[@]}"; echo "${DIGEST[python]}"; declare -f build_operator bud; } | sha256sum | cut -d' ' -f1)" \
    build_operator
fi
if wanted shop || wanted shop-tests; then
  recipe=app
  image shop testenv/shop latest \
    "$( { hash_paths "$shop_dir/app"; echo "${DIGEST[python]}"; declare -f build_shop bud; } | sha256sum | cut -d' ' -f1)" \
    build_shop
fi
if wanted shop-tests; then
  recipe=tests
  image shop-tests testenv/shop-tests latest \
    "$( { hash_paths "$shop_dir/app" "$shop_dir/tests"; echo "${DIGEST[runner]}"; declare -f build_shop bud; } | sha256sum | cut -d' ' -f1)" \
    build_shop
fi

# --- images.env ---------------------------------------------------------------
# Every image the registry has (built now or before), by the names the other
# scripts and the tests read.
declare -A VAR=([debian]=DEBIAN [pause]=PAUSE [python]=PYTHON [postgres]=POSTGRES [mysql]=MYSQL
  [redis]=REDIS [wiremock]=WIREMOCK [runner]=RUNNER [operator]=OPERATOR [shop]=SHOP [shop-tests]=SHOP_TESTS)
declare -A ALL=([debian]="testenv/debian:$DEBIAN_SUITE" [pause]="testenv/pause:3.10"
  [python]="testenv/python:3.11-bookworm" [postgres]="testenv/postgres:15" [mysql]="testenv/mysql:10.11-mariadb"
  [redis]="testenv/redis:7" [wiremock]="testenv/wiremock:$WIREMOCK_VERSION" [runner]="testenv/python-runner:latest"
  [operator]="testenv/testenv-operator:$op_version" [shop]="testenv/shop:latest" [shop-tests]="testenv/shop-tests:latest")
{
  echo "# Written by hack/testbed/images.sh: images in the test bed's registry ($reg)."
  echo "TESTBED_REGISTRY=$reg"
  for n in debian pause python postgres mysql redis wiremock runner operator shop shop-tests; do
    ref="${ALL[$n]}"
    if digest "${ref%:*}" "${ref##*:}" >/dev/null; then echo "TESTBED_IMAGE_${VAR[$n]}=$reg/$ref"; fi
  done
  # The results collector runs from the operator's image; pinned by digest,
  # so a node never runs a stale copy of a rebuilt tag.
  ref="${ALL[operator]}"
  if d="$(digest "${ref%:*}" "${ref##*:}")"; then echo "TESTBED_IMAGE_COLLECTOR=$reg/${ref%:*}@$d"; fi
} > "$state/images.env.tmp"
mv "$state/images.env.tmp" "$state/images.env"
bah rmi --prune >/dev/null 2>&1 || true
echo "images: wrote $state/images.env"
exit 0
}
