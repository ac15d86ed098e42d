#!/usr/bin/env bash
# Runs the images hack/testbed/images.sh pushed, without Kubernetes, the way
# the operator runs them: each is copied out of the registry (skopeo), unpacked
# (umoci) and run with runc as the operator's uid, all capabilities dropped,
# no-new-privileges, a writable root, an "emptyDir" (a host directory, mode
# 2777, group = the fsGroup) on the data path, the env the operator gives, in
# a network namespace of its own (loopback plus 10.254.0.1 on lo, so that a
# connection from 10.254.0.1 counts as a remote host). Nothing listens on the
# host's network. Everything it starts is stopped and removed at the end.
#
#   check-images.sh [postgres|mysql|redis|wiremock|runner|operator|pause ...]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="${TESTBED_STATE:-$root/.cluster}"
# shellcheck disable=SC1091
source "$state/images.env"
for t in runc skopeo umoci ip jq curl; do command -v "$t" >/dev/null || { echo "check: $t is required" >&2; exit 1; }; done

work="$(mktemp -d /tmp/testenv-check.XXXXXX)"
runc_root="$work/runc"
netns="testenv-check-$$"
containers=()
cleanup() {
  local c
  for c in "${containers[@]}"; do runc --root "$runc_root" delete -f "$c" >/dev/null 2>&1 || true; done
  ip netns del "$netns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$netns"
ip -n "$netns" link set lo up
ip -n "$netns" addr add 10.254.0.1/32 dev lo
REMOTE=10.254.0.1

fail() { echo "check: FAIL: $*" >&2; exit 1; }
ok() { echo "check: ok: $*"; }

# bundle NAME IMAGE: an unpacked runtime bundle in $work/NAME (config.json from the image).
bundle() {
  local name="$1" image="$2"
  skopeo copy --quiet --src-tls-verify=false "docker://$image" "oci:$work/oci:$name" >/dev/null
  umoci unpack --image "$work/oci:$name" "$work/$name" >/dev/null
}

# configure NAME UID JQ-FILTER: the operator's restrictions plus FILTER on config.json.
configure() {
  local name="$1" uid="$2" filter="$3" cfg="$work/$1/config.json"
  jq --argjson uid "$uid" --arg netns "/var/run/netns/$netns" '
    .process.terminal = false
    | .process.user = {uid: $uid, gid: $uid, additionalGids: [$uid]}
    | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}
    | .process.noNewPrivileges = true
    | .root.readonly = false
    | .linux.namespaces = ([.linux.namespaces[] | select(.type != "network")] + [{type: "network", path: $netns}])
    | .hostname = "check"
    | '"$filter" "$cfg" > "$cfg.new"
  mv "$cfg.new" "$cfg"
}

# emptydir PATH GID: like a kubelet emptyDir with fsGroup.
emptydir() { mkdir -p "$1"; chgrp "$2" "$1"; chmod 2777 "$1"; }
mount_json() { printf '{"destination":"%s","type":"bind","source":"%s","options":["rbind","rw"]}' "$1" "$2"; }

start() { # start NAME: runc run -d, output to $work/NAME.log
  containers+=("$1")
  runc --root "$runc_root" run -d --bundle "$work/$1" "$1" > "$work/$1.log" 2>&1 < /dev/null
}
# in NAME CMD...: run CMD in the container (same user, env, namespaces).
cx() { local c="$1"; shift; runc --root "$runc_root" exec "$c" "$@"; }
# wait_for SECONDS DESC CMD...
wait_for() {
  local secs="$1" desc="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.5
  done
}
running() { [[ "$(runc --root "$runc_root" state "$1" 2>/dev/null | jq -r .status)" == running ]]; }
stop() { runc --root "$runc_root" delete -f "$1" >/dev/null 2>&1 || true; }

check_postgres() {
  local pw='pw-Check_123' data="$work/pgdata"
  bundle postgres "$TESTBED_IMAGE_POSTGRES"
  emptydir "$data" 999
  configure postgres 999 '
    .process.env += ["POSTGRES_USER=testenv", "POSTGRES_PASSWORD='"$pw"'", "POSTGRES_DB=orders",
                     "PGDATA=/var/lib/postgresql/data/pgdata"]
    | .mounts += ['"$(mount_json /var/lib/postgresql/data "$data")"']'
  local t0; t0=$(date +%s)
  start postgres
  # While the init runs, the operator's probe must not pass.
  local early=0
  until grep -q 'ready for start up' "$work/postgres.log" 2>/dev/null; do
    if cx postgres pg_isready -q -h 127.0.0.1 -p 5432 -U testenv -d orders 2>/dev/null; then early=1; fi
    (( $(date +%s) - t0 < 120 )) || { cat "$work/postgres.log"; fail "postgres: init did not finish in 120s"; }
    running postgres || { cat "$work/postgres.log"; fail "postgres: exited during init"; }
    sleep 0.2
  done
  (( early == 0 )) || fail "postgres: pg_isready passed during init"
  ok "postgres: pg_isready -h 127.0.0.1 failed throughout init"
  wait_for 60 ready cx postgres pg_isready -q -h 127.0.0.1 -p 5432 -U testenv -d orders \
    || { cat "$work/postgres.log"; fail "postgres: not ready"; }
  ok "postgres: ready in $(( $(date +%s) - t0 ))s (first start, initdb included)"
  cx postgres sh -c 'test "$(id -u):$(id -g)" = 999:999 && test "$(stat -c %u "$PGDATA")" = 999' || fail "postgres: uid/PGDATA owner"
  # A remote host (10.254.0.1, not loopback): scram password auth.
  local url="postgresql://testenv:$pw@$REMOTE:5432/orders"
  cx postgres env DATASTORE_URL="$url" sh -c \
    'printf "CREATE TABLE t (id int); INSERT INTO t VALUES (42);\n" > /tmp/s.sql &&
     pg_isready -d "$DATASTORE_URL" &&
     psql -X -v ON_ERROR_STOP=1 --single-transaction -f /tmp/s.sql "$DATASTORE_URL"' >/dev/null \
    || fail "postgres: seed through psql with the password"
  [[ "$(cx postgres psql -X -tA "$url" -c 'SELECT id FROM t')" == 42 ]] || fail "postgres: select"
  cx postgres psql -X -tA "$url" -c "SELECT rolpassword LIKE 'SCRAM-SHA-256%' FROM pg_authid WHERE rolname='testenv'" | grep -qx t \
    || fail "postgres: password not scram"
  if cx postgres psql -X -tA "postgresql://testenv:wrong@$REMOTE:5432/orders" -c 'SELECT 1' >/dev/null 2>&1; then
    fail "postgres: a wrong password was accepted from a remote host"
  fi
  cx postgres sh -c 'cat /proc/net/tcp | awk "\$4==\"0A\" {print \$2}" | grep -q "^00000000:1538$"' \
    || fail "postgres: not listening on 0.0.0.0:5432"
  ok "postgres: psql with POSTGRES_PASSWORD from a remote address (scram), wrong password refused, 0.0.0.0:5432, seed with ON_ERROR_STOP --single-transaction"
  stop postgres
}

check_mysql() {
  local pw='pw-Check_123' data="$work/mysqldata"
  bundle mysql "$TESTBED_IMAGE_MYSQL"
  emptydir "$data" 999
  configure mysql 999 '
    .process.env += ["MYSQL_ROOT_PASSWORD='"$pw"'", "MYSQL_USER=testenv", "MYSQL_PASSWORD='"$pw"'", "MYSQL_DATABASE=orders"]
    | .mounts += ['"$(mount_json /var/lib/mysql "$data")"']'
  local t0; t0=$(date +%s)
  start mysql
  local early=0
  until grep -q 'ready for start up' "$work/mysql.log" 2>/dev/null; do
    if cx mysql mysqladmin ping -h 127.0.0.1 --protocol=tcp --silent 2>/dev/null; then early=1; fi
    (( $(date +%s) - t0 < 180 )) || { cat "$work/mysql.log"; fail "mysql: init did not finish in 180s"; }
    running mysql || { cat "$work/mysql.log"; fail "mysql: exited during init"; }
    sleep 0.2
  done
  (( early == 0 )) || fail "mysql: mysqladmin ping passed during init"
  ok "mysql: mysqladmin ping --protocol=tcp failed throughout init"
  wait_for 60 ready cx mysql mysqladmin ping -h 127.0.0.1 --protocol=tcp --silent \
    || { cat "$work/mysql.log"; fail "mysql: not ready"; }
  ok "mysql: ready in $(( $(date +%s) - t0 ))s (first start, install-db included)"
  cx mysql sh -c 'printf "CREATE TABLE t (id int); INSERT INTO t VALUES (42);\n" > /tmp/s.sql &&
    mysql --batch --protocol=tcp -h '"$REMOTE"' -P 3306 -u testenv --password="'"$pw"'" orders < /tmp/s.sql' \
    || fail "mysql: seed as testenv"
  [[ "$(cx mysql mysql -N --batch --protocol=tcp -h "$REMOTE" -u testenv --password="$pw" orders -e 'SELECT id FROM t')" == 42 ]] \
    || fail "mysql: select as testenv"
  [[ "$(cx mysql mysql -N --batch --protocol=tcp -h "$REMOTE" -u root --password="$pw" -e 'SELECT 1')" == 1 ]] \
    || fail "mysql: root with MYSQL_ROOT_PASSWORD"
  if cx mysql mysql --protocol=tcp -h "$REMOTE" -u testenv --password=wrong orders -e 'SELECT 1' >/dev/null 2>&1; then
    fail "mysql: a wrong password was accepted"
  fi
  cx mysql sh -c 'awk "\$4==\"0A\" {print \$2}" /proc/net/tcp | grep -q "^00000000:0CEA$"' || fail "mysql: not on 0.0.0.0:3306"
  ok "mysql: mysql -u testenv -p from a remote address, root password, wrong password refused, 0.0.0.0:3306 ($(cx mysql mysql -N --batch -u root --password="$pw" -e 'SELECT VERSION()'))"
  stop mysql
}

check_redis() {
  local pw='pw-Check_123' data="$work/redisdata"
  bundle redis "$TESTBED_IMAGE_REDIS"
  emptydir "$data" 999
  # The operator's args, $(REDIS_PASSWORD) expanded as the kubelet does.
  configure redis 999 '
    .process.env += ["REDIS_PASSWORD='"$pw"'", "REDISCLI_AUTH='"$pw"'"]
    | .process.args = ["docker-entrypoint.sh", "redis-server", "--requirepass", "'"$pw"'", "--save", "", "--appendonly", "no"]
    | .mounts += ['"$(mount_json /data "$data")"']'
  start redis
  wait_for 30 ready sh -c "runc --root '$runc_root' exec redis sh -c 'redis-cli -h 127.0.0.1 ping | grep -q PONG'" \
    || { cat "$work/redis.log"; fail "redis: probe"; }
  [[ "$(cx redis env -u REDISCLI_AUTH redis-cli -h "$REMOTE" ping)" == *NOAUTH* ]] || fail "redis: answered without AUTH"
  [[ "$(cx redis env -u REDISCLI_AUTH redis-cli -h "$REMOTE" --no-auth-warning -a "$pw" ping)" == PONG ]] || fail "redis: AUTH + PING from a remote address"
  [[ "$(cx redis redis-cli -h "$REMOTE" SET k v)" == OK ]] || fail "redis: SET"
  [[ "$(cx redis pwd)" == /data ]] || fail "redis: workdir"
  cx redis sh -c 'awk "\$4==\"0A\" {print \$2}" /proc/net/tcp | grep -q "^00000000:18EB$"' || fail "redis: not on 0.0.0.0:6379"
  ok "redis: PONG with AUTH from a remote address, NOAUTH without, workdir /data, 0.0.0.0:6379 ($(cx redis redis-server --version | cut -d' ' -f1-3))"
  stop redis
}

check_wiremock() {
  local home="$work/wmhome" maps="$work/wmmaps"
  bundle wiremock "$TESTBED_IMAGE_WIREMOCK"
  emptydir "$home" 1000
  mkdir -p "$maps"
  cat > "$maps/001-get-hello.json" <<'EOF'
{"request": {"method": "GET", "url": "/hello"}, "response": {"status": 200, "body": "hi from wiremock"}}
EOF
  # Like the operator: an init container copies the mappings with sh/cp, then
  # WireMock runs with the operator's args, both as uid 1000.
  cp -a "$work/wiremock" "$work/wiremock-init"
  local script='set -e; mkdir -p "$2"; for f in "$1"/*.json; do if [ -e "$f" ]; then cp -L "$f" "$2/"; fi; done'
  configure wiremock-init 1000 '
    .process.args = ["sh", "-c", '"$(jq -Rn --arg s "$script" '$s')"', "copy-mappings", "/etc/wiremock/mappings", "/home/wiremock/mappings"]
    | .mounts += ['"$(mount_json /home/wiremock "$home")"', {"destination":"/etc/wiremock/mappings","type":"bind","source":"'"$maps"'","options":["rbind","ro"]}]'
  containers+=(wiremock-init)
  runc --root "$runc_root" run --bundle "$work/wiremock-init" wiremock-init < /dev/null || fail "wiremock: init container"
  [[ -f "$home/mappings/001-get-hello.json" ]] || fail "wiremock: mapping not copied"
  configure wiremock 1000 '
    .process.args = ["/docker-entrypoint.sh", "--port=8080", "--root-dir=/home/wiremock", "--disable-banner"]
    | .mounts += ['"$(mount_json /home/wiremock "$home")"']'
  local t0; t0=$(date +%s)
  start wiremock
  wait_for 60 health ip netns exec "$netns" curl -fsS "http://$REMOTE:8080/__admin/health" \
    || { cat "$work/wiremock.log"; fail "wiremock: health"; }
  [[ "$(ip netns exec "$netns" curl -fsS "http://$REMOTE:8080/hello")" == "hi from wiremock" ]] || fail "wiremock: mapping"
  ok "wiremock: ready in $(( $(date +%s) - t0 ))s as uid 1000, /__admin/health, mapping copied by sh/cp served"
  stop wiremock
}

run_once() { # run_once NAME UID ARGS-JSON: run to completion, print output
  local name="$1"
  configure "$name" "$2" ".process.args = $3"
  containers+=("$name")
  runc --root "$runc_root" run --bundle "$work/$name" "$name" < /dev/null 2>&1
}

check_runner() {
  bundle runner "$TESTBED_IMAGE_RUNNER"
  local out
  out="$(run_once runner 10001 '["sh", "-c", "id -u; pytest --version; testenv --help >/dev/null && echo testenv-cli-ok; pwd"]')" \
    || { echo "$out"; fail "runner"; }
  echo "$out" | sed 's/^/    /'
  [[ "$out" == *10001* && "$out" == *"pytest "* && "$out" == *testenv-cli-ok* ]] || fail "runner output"
  ok "runner: uid 10001, pytest and testenv --help"
  # The build-time CA mount (images.sh) left nothing behind.
  [[ ! -e "$work/runner/rootfs/etc/pip.conf" ]] || fail "runner: /etc/pip.conf in the image"
  if [[ -s /etc/ssl/certs/ca-certificates.crt ]] && cmp -s /etc/ssl/certs/ca-certificates.crt "$work/runner/rootfs/etc/ssl/certs/ca-certificates.crt"; then
    fail "runner: the host's CA bundle is in the image"
  fi
}

check_operator() {
  bundle operator "$TESTBED_IMAGE_OPERATOR"
  local out
  # The image's own user (10001) and entrypoint, with --help as the args.
  out="$(run_once operator 10001 '["testenv-operator", "--help"]')" || { echo "$out"; fail "operator --help"; }
  [[ "$out" == *"Usage:"* ]] || { echo "$out"; fail "operator --help output"; }
  stop operator
  bundle operator2 "$TESTBED_IMAGE_OPERATOR"
  out="$(run_once operator2 10001 '["python", "-c", "import testenv.handlers, sys; print(\"handlers imported\", sys.version.split()[0])"]')" \
    || { echo "$out"; fail "operator import"; }
  echo "$out" | sed 's/^/    /'
  jq -r '.process.user | "\(.uid):\(.gid)"' "$work/operator2/config.json" >/dev/null
  ok "operator: testenv-operator --help (kopf run), testenv.handlers imports"
}

check_pause() {
  bundle pause "$TESTBED_IMAGE_PAUSE"
  configure pause 65535 '.'
  start pause
  sleep 0.5
  [[ "$(runc --root "$runc_root" state pause | jq -r .status)" == running ]] || { cat "$work/pause.log"; fail "pause: not running"; }
  ok "pause: /pause -P runs ($(find "$work/pause/rootfs" -type f | wc -l) file in rootfs)"
  stop pause
}

what=("$@")
[[ ${#what[@]} -gt 0 ]] || what=(pause postgres mysql redis wiremock runner operator)
for w in "${what[@]}"; do "check_$w"; done
echo "check: all passed: ${what[*]}"
