#!/usr/bin/env bash
# The test bed's image registry: Debian's docker-registry (distribution 2.8)
# on 127.0.0.1 only, plain HTTP, no auth. Nothing is pulled from the internet
# through it: it holds only the images hack/testbed/images.sh builds.
#
#   registry.sh up     start it (no-op when it already runs); waits for /v2/
#   registry.sh down   stop it by its recorded PID
#   registry.sh addr   print 127.0.0.1:PORT
#   registry.sh gc     remove blobs of old builds (stops and restarts it if running)
#
# Storage (blobs, persistent across down/up): $TESTBED_CACHE/registry
# Runtime state (config, pid, log):            $TESTBED_STATE/registry/
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${TESTBED_CACHE:-$root/.cache/testbed}"
state="${TESTBED_STATE:-$root/.cluster}"
port="${TESTBED_REGISTRY_PORT:-5001}"
addr="127.0.0.1:$port"
storage="$cache/registry"
run="$state/registry"
pidfile="$run/registry.pid"
logfile="$run/registry.log"
config="$run/config.yml"
bin="$(command -v docker-registry || true)"

say() { echo "registry: $*" >&2; }

# running: exit 0 when the recorded PID is alive and is the registry.
running() {
  [[ -f "$pidfile" ]] || return 1
  local pid; pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  local cmd; cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline")"
  [[ "$cmd" == *docker-registry*"$config"* ]]
}

answers() { curl -fsS -o /dev/null --max-time 2 "http://$addr/v2/" 2>/dev/null; }

# stop_pid PID: TERM, wait up to 15 s, then KILL and wait.
stop_pid() {
  local pid="$1" deadline=$(( $(date +%s) + 15 ))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(date +%s) >= deadline )); then kill -KILL "$pid" 2>/dev/null || true; deadline=$(( $(date +%s) + 5 )); fi
    sleep 0.1
    # a zombie child of ours counts as gone
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
  done
}

write_config() {
  mkdir -p "$storage" "$run"
  # http.debug (pprof/metrics) is not configured, so no debug listener starts;
  # the only listener is $addr.
  cat > "$config" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $addr
  secret: $(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
}

up() {
  if running; then
    if answers; then say "already running at $addr (pid $(cat "$pidfile"))"; return 0; fi
  fi
  [[ -n "$bin" ]] || { say "step 'find binary' failed: docker-registry is not installed (apt-get install docker-registry)"; exit 1; }
  if answers; then say "step 'check port' failed: something else answers on $addr"; exit 1; fi
  write_config
  rm -f "$pidfile"
  # The process writes its own PID and then execs the registry, so the PID
  # recorded is the registry's, not a wrapper's.
  setsid bash -c 'echo $$ > "$1"; exec "$2" serve "$3"' registry "$pidfile" "$bin" "$config" \
    < /dev/null >> "$logfile" 2>&1 &
  local deadline=$(( $(date +%s) + 20 ))
  while ! answers; do
    if [[ -f "$pidfile" ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      say "step 'start' failed: the registry exited; log: $logfile"; tail -n 20 "$logfile" >&2 || true
      rm -f "$pidfile"; exit 1
    fi
    if (( $(date +%s) >= deadline )); then
      say "step 'wait for http://$addr/v2/' failed after 20s; log: $logfile"; tail -n 20 "$logfile" >&2 || true
      [[ -f "$pidfile" ]] && stop_pid "$(cat "$pidfile")"
      rm -f "$pidfile"; exit 1
    fi
    sleep 0.2
  done
  say "running at $addr (pid $(cat "$pidfile")), storage $storage, log $logfile"
}

down() {
  if [[ ! -f "$pidfile" ]]; then say "not running"; return 0; fi
  if ! running; then say "stale pid file (pid $(cat "$pidfile") is not the registry); removed"; rm -f "$pidfile"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  stop_pid "$pid"
  rm -f "$pidfile"
  say "stopped (pid $pid)"
}

# gc: delete blobs no tag refers to (old builds). The registry must not serve
# while it runs, so a running registry is stopped and started again.
gc() {
  local was=0
  if running; then was=1; down; fi
  write_config
  say "garbage-collect (untagged manifests and unreferenced blobs); log: $logfile"
  if ! "$bin" garbage-collect --delete-untagged "$config" >> "$logfile" 2>&1; then
    say "step 'garbage-collect' failed; log: $logfile"; (( was == 0 )) || up; exit 1
  fi
  if (( was == 1 )); then up; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  gc) gc ;;
  addr) echo "$addr" ;;
  *) echo "usage: $0 up|down|addr|gc" >&2; exit 2 ;;
esac
