"""Chaos soak: environments of mixed shapes (seeds, sharded suites, failing
suites, fail-fast, previews, deadlines, TTLs, deletes while provisioning)
live their whole lives, --envs of them at once, while the operator is
SIGKILLed at random moments and restarted, the whole control plane (etcd,
API server, controllers) is restarted, etcd alone is killed and started
again while the API server runs on (which then answers 5xx), and a real
fault-injecting proxy
(toxiproxy, bench/faults.py) sits between the operator and the API server:
latency, a bandwidth limit, connections reset mid-response, a 30-second
partition; and the API server's own priority-and-fairness limits answer the
operator 429. Then two peered replicas, and the acting one is killed.
KWOK plays every pod (simulated results; the soak is about the operator).

Invariants (bench/soak_invariants.py), checked at the end over everything
recorded throughout, each reported as a count of violations (goal 0):
every environment ends as its spec implies; 0 namespaces left after
collection; each Job created once per run (its name says the run; an
Indexed Job holds every shard), from the audit log; no phase goes
backwards; one Event per phase; no generated credential in any log, status
or Event; the operator's RSS back to its baseline once nothing is left, and
its live allocations too (heapprobe.py: RSS keeps what the allocator's slabs
hold, the live bytes are what a leak grows). The baseline is the first
operator's, idle after one environment of each shape has come and gone
(warm_up): what a fresh process builds on first use (API discovery, the
client's connections, its worker threads) is built once, not leaked, and a
leak still grows past it; the fresh figures are reported beside it. Also: kills survived,
unexpected exits, restarts, etcd outages, fault minutes, and the operator's
requests the API server answered 429 or 5xx (audit log).

The schedule (which shape, when to kill, when to restart, which fault when)
comes from --seed; the cluster's own timing does not, so two runs with one
seed meet the same faults in the same order, not at the same instants.

    python bench/chaos.py --seed 20261129 --kills 100 --envs 30
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faults import Proxy, Toxiproxy, throttle_objects
from harness import (
    COPY_SOURCE_NAMESPACE,
    GROUP,
    OPERATOR_USER,
    PLURAL,
    ROOT,
    VERSION,
    Environments,
    Figure,
    Operator,
    Session,
    Watcher,
    log,
    parser,
    report,
    session,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from soak_invariants import (
    FINISHED,
    GONE,
    Create,
    PhaseEvent,
    Violation,
    duplicate_phase_events,
    heap_growth,
    heap_not_back,
    jobs_created_twice,
    leaked_namespaces,
    memory_not_back,
    new_kopf_memories,
    phases_backwards,
    pods_past_quota,
    secrets_leaked,
    wrong_endings,
)
from specs import DURATION, HANG, kwok_suite
from testenv.models import Phase

# What a request to an API server being restarted (or behind a cut proxy) raises.
DOWN = (ApiException, urllib3.exceptions.HTTPError)
NAMESPACE = "chaos"
WARMUP_NAMESPACE = "chaos-warmup"
# Before a memory sample: past the operator's 10 s of quiet (idle_memory.py)
# and past aiohttp's keep-alive. kopf's session pools its idle connections
# for 15 s, closed at a cleanup every 15 s, so one may live 30 s idle, each
# with a 256 KiB TLS read buffer: after a burst of deletes, 13 to 36 of them
# (a short soak's probe: pooled, not leaked; bench/RESULTS.md, ninth session).
SETTLE = 40.0
PEERING = "testenv-chaos"
MANAGED = "app.kubernetes.io/managed-by=testenv-operator"
LIFECYCLE = {"ttlSecondsAfterFinished": 5, "retainOnFailureSeconds": 5, "activeDeadlineSeconds": 420}


# name -> (spec, the end it implies). KWOK ends each pod as its annotations say.
SHAPES: dict[str, tuple[dict[str, Any], str]] = {
    "pass": ({
        "lifecycle": LIFECYCLE,
        "datastores": [{"name": "db", "engine": "postgres"}, {"name": "cache", "engine": "redis"}],
        "stubs": [{"name": "pay", "port": 8080,
                   "mappings": [{"request": {"method": "GET", "urlPath": "/ok"}, "response": {"status": 200}}]}],
        "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "ports": [{"port": 80}],
                      "dependsOn": ["db", "cache", "pay"]}],
        "seed": [{"name": "fixtures", "image": "ghcr.io/acme/fixtures:1", "podAnnotations": {DURATION: "2000"}}],
        "tests": [kwok_suite("unit", 3000, shards=3), kwok_suite("e2e", 2000, needs=["unit"])],
    }, "Succeeded"),
    "fail": ({
        "lifecycle": LIFECYCLE,
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [kwok_suite("flaky", 1500, fail=True, retries=1)],
    }, "Failed"),
    "failfast": ({
        "lifecycle": LIFECYCLE,
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [kwok_suite("smoke", 1500, fail=True, failFast=True), kwok_suite("e2e", 1000, needs=["smoke"])],
    }, "Failed"),
    "preview": ({
        "lifecycle": {**LIFECYCLE, "activeDeadlineSeconds": 45},
        "datastores": [{"name": "cache", "engine": "redis"}],
        "services": [{"name": "web", "image": "ghcr.io/acme/web:1", "ports": [{"port": 80}], "dependsOn": ["cache"]}],
    }, "Succeeded"),
    "deadline": ({
        "lifecycle": {**LIFECYCLE, "activeDeadlineSeconds": 20},
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [{"name": "hangs", "image": "ghcr.io/acme/tests:1", "podAnnotations": {HANG: "true"}}],
    }, "TimedOut"),
    "copy": ({
        "lifecycle": LIFECYCLE,
        "services": [{"name": "inventory", "image": "ghcr.io/acme/inventory:2",
                      "copyFrom": {"namespace": COPY_SOURCE_NAMESPACE, "deployment": "inventory-service"}}],
        "tests": [kwok_suite("contract", 1500)],
    }, "Succeeded"),
    "deleted": ({
        "lifecycle": LIFECYCLE,
        "datastores": [{"name": "db", "engine": "postgres"}],
        "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "ports": [{"port": 80}], "dependsOn": ["db"]}],
        "tests": [kwok_suite("slow", 30000)],
    }, GONE),
    # A quota of one pod: one suite's pod hangs, the other's is refused for
    # good, and the run ends Error, once the hanging one has been stopped.
    "error": ({
        "lifecycle": {**LIFECYCLE, "failureGraceSeconds": 5},
        "isolation": {"resourceQuota": {"pods": "1"}},
        "tests": [{"name": name, "image": "ghcr.io/acme/tests:1", "podAnnotations": {HANG: "true"}}
                  for name in ("left", "right")],
    }, "Error"),
}


@dataclass
class Fault:
    name: str
    seconds: float
    start: Callable[[], None]
    stop: Callable[[], None]


@dataclass
class Tally:
    kills: int = 0
    acting_kills: int = 0
    survived: int = 0  # kills after which a new operator came back live
    unexpected_exits: list[str] = field(default_factory=list)
    restarts: int = 0
    etcd_outages: int = 0
    etcd_down_seconds: float = 0.0
    fault_seconds: float = 0.0
    faults: list[str] = field(default_factory=list)
    applied: int = 0
    deleted_on_purpose: int = 0
    deleted_late: int = 0  # their delete was sent once they had finished


class Soak:
    def __init__(self, sess: Session, args: Any) -> None:
        self.sess, self.args = sess, args
        self.rng = random.Random(args.seed)
        self.tally = Tally()
        self.envs: Environments = sess.environments(NAMESPACE)
        self.expected: dict[str, str] = {}
        self.delete_at: dict[str, float] = {}
        self.logs: list[Path] = []
        self.credentials: set[str] = set()
        self.secrets = Watcher(client.CoreV1Api(sess.api).list_secret_for_all_namespaces,
                               label_selector=MANAGED, on_event=self._on_secret)
        # Namespaces whose ResourceQuota was seen with more pods than it allows.
        self.quota_overrun: set[str] = set()
        self.quotas = Watcher(client.CoreV1Api(sess.api).list_resource_quota_for_all_namespaces,
                              label_selector=MANAGED, on_event=self._on_quota)
        self.retry_apply: list[tuple[str, dict[str, Any]]] = []
        self.incarnation = 0
        # A run that ended otherwise than its shape says: its namespace as it
        # was then (it is collected seconds later), for finding out why.
        self.snapshots: dict[str, Path] = {}

    # -- what the soak watches --------------------------------------------------------

    def _on_secret(self, kind: str, obj: dict[str, Any], at: float) -> None:
        for key, value in (obj.get("data") or {}).items():
            if "password" in key.lower() or key == "url":
                self.credentials.add(base64.b64decode(value).decode(errors="replace"))

    def _on_quota(self, kind: str, obj: dict[str, Any], at: float) -> None:
        if pods_past_quota(obj):
            self.quota_overrun.add(obj["metadata"]["namespace"])

    def ended(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        with self.envs.watcher.cond:
            gone = {name for (_, name) in self.envs.watcher.deleted}
        for name in self.expected:
            history = self.envs.phase_history.get(name, [])
            # A run that finished before its delete ended there; the final
            # delete_all of the soak deletes every environment.
            out[name] = next((p for p in history if p in FINISHED), GONE if name in gone else None)
        return out

    def snapshot_surprises(self, endings: dict[str, str | None]) -> None:
        """The namespace of each run that just ended otherwise than expected,
        written next to the operators' logs before its collection."""
        for name, ended in endings.items():
            if ended is None or ended == self.expected[name] or name in self.snapshots:
                continue
            statuses = self.envs.status_history.get(name) or [{}]
            namespace = statuses[-1].get("namespace") or ""
            path = self.sess.workdir / f"surprise-{name}.yaml"
            self.snapshots[name] = path
            if not namespace:
                continue
            done = self.sess.bed.kubectl("get", "all,events,resourcequota,limitrange,networkpolicy", "-n", namespace,
                                         "-o", "yaml", "--request-timeout=10s", check=False)
            # The nodes too: a node marked unreachable after an outage holds pods back.
            nodes = self.sess.bed.kubectl("get", "nodes", "-o", "yaml", "--request-timeout=10s", check=False)
            path.write_text(f"# {name}: expected {self.expected[name]}, ended {ended}\n{done.stdout}{done.stderr}"
                            f"---\n{nodes.stdout}{nodes.stderr}")
            log(f"{name} ended {ended}, not {self.expected[name]}: its namespace is in {path}")

    def idle(self, seconds: float, target: int) -> None:
        """Wait, while deletes due are sent and the population kept."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.keep_population(target)
            time.sleep(min(0.2, max(0.0, until - time.monotonic())))

    def live(self) -> list[str]:
        ended = self.ended()
        return [name for name in self.expected if ended[name] is None]

    # -- environments -----------------------------------------------------------------

    def apply_one(self) -> None:
        shape = self.rng.choice(sorted(SHAPES))
        spec, end = SHAPES[shape]
        name = f"{shape}-{self.tally.applied:04d}"
        self.tally.applied += 1
        self.expected[name] = end
        if end == GONE:
            self.delete_at[name] = time.monotonic() + self.rng.uniform(1.0, 5.0)
        try:
            self.envs.apply(name, spec)
        except DOWN as exc:  # the API may be down this instant: apply again below
            log(f"apply {name} failed ({exc.__class__.__name__}); retrying")
            self.retry_apply.append((name, spec))

    def keep_population(self, target: int) -> None:
        endings = self.ended()
        self.snapshot_surprises(endings)
        for name, spec in list(self.retry_apply):
            try:
                self.envs.apply(name, spec)
                self.retry_apply.remove((name, spec))
            except DOWN:
                break
        for _ in range(max(0, target - sum(ended is None for ended in endings.values()))):
            self.apply_one()
        now = time.monotonic()
        for name, when in list(self.delete_at.items()):
            if now >= when:
                try:
                    gone = self.envs.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
                    del self.delete_at[name]
                    # The answer is the resource as the delete found it. The
                    # soak may send a delete late (it waits on a restart or a
                    # new operator); a run that had ended by then ended there.
                    # (A Status instead when there was no finalizer yet to hold it.)
                    found = gone if isinstance(gone, dict) and gone.get("kind") == "TestEnvironment" else {}
                    phase = (found.get("status") or {}).get("phase")
                    if phase in FINISHED:
                        self.expected[name] = phase
                        self.tally.deleted_late += 1
                    else:
                        self.tally.deleted_on_purpose += 1
                except ApiException as exc:
                    if exc.status == 404:
                        del self.delete_at[name]
                except urllib3.exceptions.HTTPError:
                    pass  # API down this instant: next round

    def warm_up(self, timeout: float = 240) -> list[str]:
        """One environment of each shape through its whole life, on the first
        operator, before any fault; then deleted and collected. Not judged: it
        makes the operator build on first use what it keeps for its life.
        Returns the names that did not end as their shape implies."""
        envs = self.sess.environments(WARMUP_NAMESPACE)
        names = {f"warm-{shape}": end for shape, (_, end) in SHAPES.items()}
        for shape, (spec, _) in SHAPES.items():
            envs.apply(f"warm-{shape}", spec)
        with contextlib.suppress(TimeoutError):
            envs.wait_phases(names, set(FINISHED), timeout)
        odd = [n for n, end in names.items() if end != GONE and end not in envs.phase_times.get(n, {})]
        envs.delete_all(timeout)
        self.namespaces_left(timeout)
        envs.stop()
        return odd

    def namespaces_left(self, timeout: float) -> list[str]:
        """The environment namespaces still there once collection has had `timeout` seconds."""
        core = client.CoreV1Api(self.sess.api)

        def left() -> list[str]:
            return [ns.metadata.name for ns in core.list_namespace(label_selector=MANAGED).items]

        deadline = time.monotonic() + timeout
        while left() and time.monotonic() < deadline:
            time.sleep(1)
        return left()

    # -- operators ----------------------------------------------------------------------

    def start_operator(self, kubeconfig: Path, **settings: str) -> Operator:
        self.incarnation += 1
        path = self.sess.workdir / f"operator-{self.incarnation:03d}.log"
        self.logs.append(path)
        op = Operator(kubeconfig, path, {**{k: v for k, v in (i.split("=", 1) for i in self.args.operator_env)},
                                         **settings}, tweaks=dict(i.split("=", 1) for i in self.args.tweak),
                      heap_dir=self.sess.workdir / f"heap-{self.incarnation:03d}")
        op.start()
        return op

    def kill(self, op: Operator) -> None:
        if not op.alive():
            self.tally.unexpected_exits.append(f"{op.log_path.name}: exit {op.process.returncode}")
        else:
            op.process.send_signal(signal.SIGKILL)
            op.process.wait(timeout=30)
            self.tally.kills += 1
        op.stop()  # the sampler thread

    # -- faults -------------------------------------------------------------------------

    def restart_control_plane(self) -> None:
        restart_control_plane(self.sess.bed)
        self.tally.restarts += 1

    def etcd_outage(self, seconds: float) -> None:
        self.tally.etcd_down_seconds += etcd_outage(self.sess.bed, seconds)
        self.tally.etcd_outages += 1

    def faults(self, proxy: Proxy) -> list[Fault]:
        throttle = throttle_objects(OPERATOR_USER)
        bed = self.sess.bed

        def apf_on() -> None:
            bed.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(throttle))

        def apf_off() -> None:
            for obj in throttle:
                bed.kubectl("delete", f"{obj['kind'].lower()}.flowcontrol.apiserver.k8s.io",
                            obj["metadata"]["name"], "--ignore-not-found", check=False)

        return [
            Fault("latency 250 ms +- 100 ms, both ways", 60,
                  lambda: (proxy.latency(250, 100), proxy.latency(250, 100, stream="upstream")), proxy.clear),
            Fault("bandwidth 16 KB/s", 45, lambda: proxy.bandwidth(16), proxy.clear),
            # toxiproxy's reset_peer resets before any byte of the response;
            # limit_data cuts a response partway (then closes): both, each to
            # a share of the connections.
            Fault("connections cut mid-response (16 KB, 30 %) or reset (20 %)", 30,
                  lambda: (proxy.limit_data(16_384, toxicity=0.3), proxy.reset_peer(300, toxicity=0.2)),
                  proxy.clear),
            Fault("partition (proxy down)", 30, proxy.disable, proxy.enable),
            Fault("API priority-and-fairness: 429 to the operator", 60, apf_on, apf_off),
        ]


def cluster_sh(bed: Any, command: str, *, slow: float = float("inf")) -> None:
    """hack/testbed/cluster.sh `command` on the bench's test bed; what it
    said is logged when it failed or took over `slow` seconds (a soak that
    stops on it must say why)."""
    began = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "hack/testbed/cluster.sh"), command], env=bed.env,
                          capture_output=True, text=True)
    took = time.monotonic() - began
    if done.returncode or took > slow:
        log(f"cluster.sh {command} took {took:.0f} s, exit {done.returncode}:\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    done.check_returncode()


def restart_control_plane(bed: Any) -> None:
    """etcd, the API server and the controllers stopped and started again."""
    log("restarting the control plane (etcd, API server, controllers)")
    cluster_sh(bed, "restart", slow=60)


def etcd_outage(bed: Any, seconds: float) -> float:
    """etcd killed, `seconds` without it while the API server and the
    operator run on (the API server times out what needs storage: 504), then
    started again. Returns how long the API server was without etcd, until
    it was ready again."""
    log(f"etcd down for {seconds:.0f} s; the API server runs on without it")
    began = time.monotonic()
    cluster_sh(bed, "etcd-stop")
    threading.Event().wait(seconds)  # the outage's length, the fault itself
    cluster_sh(bed, "etcd-start")
    down = time.monotonic() - began
    log(f"etcd back; the API server ready again after {down:.0f} s in all")
    return down


# Subresources the API server proxies to the pod's node.
FROM_THE_NODE = frozenset({"log", "proxy", "exec", "attach", "portforward"})


def _gist(message: str) -> str:
    """An API server's answer without the names and numbers in it, so that
    answers for one cause count together."""
    return re.sub(r"\d+", "N", re.sub(r'"[^"]*"', '"..."', message))[:90] or "no message"


def _interrupted(*_: Any) -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` (test bed, proxy) runs."""
    raise KeyboardInterrupt


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=1)
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument("--kills", type=int, default=100, help="SIGKILLs in all, the acting replica's included")
    p.add_argument("--acting-kills", type=int, default=5, help="of them, kills of the acting one of two replicas")
    p.add_argument("--restarts", type=int, default=5, help="control-plane restarts (etcd, API server, controllers)")
    p.add_argument("--etcd-outages", type=int, default=2,
                   help="times etcd alone is killed while the API server runs on, then started again")
    p.add_argument("--etcd-outage-seconds", type=float, default=45,
                   help="how long each outage lasts: past the API server's storage timeout, so it answers 504")
    p.add_argument("--envs", type=int, default=30, help="environments alive at once")
    p.add_argument("--kill-after", default="0.5,8", help="seconds after an operator is live before its kill: min,max")
    p.add_argument("--fault-scale", type=float, default=1.0, help="multiply every fault's length (a quick look: 0.2)")
    args = p.parse_args()
    lo, hi = (float(x) for x in args.kill_after.split(","))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.monotonic()
    with session(args) as sess, Toxiproxy() as toxiproxy:
        soak = Soak(sess, args)
        admin = yaml.safe_load(Path(sess.bed.kubeconfig).read_text())
        upstream = admin["clusters"][0]["cluster"]["server"].removeprefix("https://")
        proxy = toxiproxy.proxy("apiserver", upstream=upstream)
        proxied = sess.workdir / "operator-proxied.kubeconfig"
        config = yaml.safe_load(sess.operator_kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://{proxy.listen}"
        proxied.write_text(yaml.safe_dump(config))

        # A fresh operator's idle memory, then the baseline: the same operator
        # idle again after one environment of each shape (warm_up).
        op = soak.start_operator(proxied)
        stop.wait(10)
        fresh = op.sample().rss_kib
        fresh_heap = op.live_heap()
        log("warming up: one environment of each shape, then deleted")
        warmup_odd = soak.warm_up()
        stop.wait(SETTLE)
        baseline = op.sample().rss_kib
        warm_heap = op.live_heap()
        baseline_heap = warm_heap["live"]
        log(f"operator RSS fresh {fresh / 1024:.1f} MiB, warmed up {baseline / 1024:.1f} MiB")
        mark = sess.audit.mark()

        # -- phase 1: one operator, killed again and again, under faults --------------
        standalone = args.kills - args.acting_kills
        faults = soak.faults(proxy)
        for fault in faults:
            fault.seconds *= args.fault_scale
        soak.rng.shuffle(faults)
        budget = standalone * (lo + hi) / 2 + standalone * 3  # rough length of phase 1, in seconds
        fault_at = sorted(soak.rng.uniform(0.05, 0.85) * budget for _ in faults)
        restart_at = sorted(soak.rng.uniform(0.05, 0.95) * budget for _ in range(args.restarts))
        outage_at = sorted(soak.rng.uniform(0.05, 0.95) * budget for _ in range(args.etcd_outages))
        active: tuple[Fault, float] | None = None
        t0 = time.monotonic()
        next_kill = t0 + soak.rng.uniform(lo, hi)
        soak.keep_population(args.envs)
        while soak.tally.kills < standalone:
            now = time.monotonic()
            soak.keep_population(args.envs)
            if active and now >= active[1]:
                active[0].stop()
                log(f"fault over: {active[0].name}")
                active = None
            if not active and faults and now - t0 >= fault_at[0]:
                fault = faults.pop(0)
                fault_at.pop(0)
                log(f"fault on: {fault.name} for {fault.seconds:.0f}s")
                fault.start()
                soak.tally.fault_seconds += fault.seconds
                soak.tally.faults.append(fault.name)
                active = (fault, now + fault.seconds)
            if restart_at and now - t0 >= restart_at[0]:
                restart_at.pop(0)
                soak.restart_control_plane()
            if outage_at and now - t0 >= outage_at[0]:
                outage_at.pop(0)
                soak.etcd_outage(args.etcd_outage_seconds)
            if now >= next_kill:
                soak.kill(op)
                op = soak.start_operator(proxied)
                soak.tally.survived += 1
                next_kill = time.monotonic() + soak.rng.uniform(lo, hi)
                if soak.tally.kills % 10 == 0:
                    log(f"{soak.tally.kills} kills; {len(soak.live())} environments live, "
                        f"{soak.tally.applied} applied")
            soak.idle(0.2, args.envs)
        if active:
            active[0].stop()
        for fault in faults:  # a phase 1 that ended before its last faults: run them now
            log(f"fault on: {fault.name} for {fault.seconds:.0f}s")
            fault.start()
            soak.idle(fault.seconds, args.envs)
            fault.stop()
            soak.tally.fault_seconds += fault.seconds
            soak.tally.faults.append(fault.name)
        while restart_at:
            restart_at.pop(0)
            soak.restart_control_plane()
        while outage_at:
            outage_at.pop(0)
            soak.etcd_outage(args.etcd_outage_seconds)
        op.stop()  # SIGTERM: every SIGKILL is counted above

        # -- phase 2: two peered replicas; the acting one is killed ----------------------
        sess.bed.kubectl("apply", "--server-side", "-f",
                         str(ROOT / "charts/testenv-operator/crds/kopf-peerings.yaml"))
        sess.bed.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
        sess.bed.kubectl("apply", "-f", "-",
                         input=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: {PEERING}\n")
        priorities = iter(soak.rng.sample(range(1, 1_000_000), args.acting_kills + 2))

        def replica() -> Operator:
            return soak.start_operator(proxied, TESTENV_STANDALONE="false", TESTENV_PEERING=PEERING,
                                       TESTENV_PEERING_PRIORITY=str(next(priorities)))

        def acting(op: Operator) -> bool:
            text = op.logs()
            return text.rfind("Resuming operations after the pause") > text.rfind("Pausing operations in favour of")

        replicas = [replica(), replica()]
        for _ in range(args.acting_kills):
            soak.keep_population(args.envs)
            deadline = time.monotonic() + 120
            while not any(acting(r) for r in replicas):
                if time.monotonic() > deadline:
                    raise SystemExit("no replica took over within 120 s")
                soak.idle(0.5, args.envs)
            soak.idle(soak.rng.uniform(lo, hi), args.envs)
            victim = next(r for r in replicas if acting(r))
            soak.kill(victim)
            soak.tally.acting_kills += 1
            replicas[replicas.index(victim)] = replica()
            soak.tally.survived += 1
        # The last acting replica lives on alone for the rest: the one whose memory is measured.
        deadline = time.monotonic() + 120
        while not any(acting(r) for r in replicas) and time.monotonic() < deadline:
            soak.idle(0.5, args.envs)
        survivor = next((r for r in replicas if acting(r)), replicas[-1])
        for r in replicas:
            if r is not survivor:
                r.stop()

        # -- the end: everything finishes and is collected --------------------------------
        log(f"no more kills; waiting for {len(soak.live())} live environments to end")
        end_by = time.monotonic() + 600
        while soak.live() and time.monotonic() < end_by:
            soak.idle(1, 0)
        leaked = soak.namespaces_left(180)
        deleted_in = soak.envs.delete_all(timeout=300)
        stop.wait(SETTLE)
        after = survivor.sample().rss_kib if survivor.alive() else 0
        left_heap = survivor.live_heap() if survivor.alive() else {}
        after_heap = left_heap.get("live", 0)
        remembered = new_kopf_memories(warm_heap, left_heap)
        if not survivor.alive():
            soak.tally.unexpected_exits.append(f"{survivor.log_path.name}: exit {survivor.process.returncode}")
        survivor.stop()

        # -- judge ----------------------------------------------------------------------------
        requests = sess.audit.requests(mark)
        creates = [Create(r.resource, r.namespace, r.name, r.code) for r in requests if r.verb == "create"]
        events = client.CoreV1Api(sess.api).list_namespaced_event(
            NAMESPACE, field_selector="involvedObject.kind=TestEnvironment").items
        phase_events = [PhaseEvent(e.involved_object.uid or "", e.involved_object.name or "", e.reason or "",
                                   e.count or 1) for e in events]
        texts = [(f"log {path.name}", path.read_text(errors="replace")) for path in soak.logs]
        texts += [(f"status {name}", json.dumps(status)) for name, history in soak.envs.status_history.items()
                  for status in history]
        texts += [(f"Event {e.involved_object.name}/{e.reason}", e.message or "") for e in events]
        # A preview's deadline is its normal end once its components were
        # all ready (status.readyAt); one never ready by then (a kill or a
        # partition at a bad moment) timed out, as any environment does. The
        # phase Ready itself may never be written: readiness seen in the
        # very pass that finds the deadline passed ends the run at once.
        expected = dict(soak.expected)
        late_previews = [n for n in expected if n.startswith("preview-") and not any(
            s.get("readyAt") for s in soak.envs.status_history.get(n, []))]
        expected.update({n: "TimedOut" for n in late_previews})
        # An `error` run counts on its quota to refuse the second suite's
        # pod. Where the API server admitted it all the same (the quota seen
        # counting 2 pods of 1: pods_past_quota), both suites hang and the
        # spec implies its deadline.
        unenforced = [n for n in expected if n.startswith("error-") and any(
            s.get("namespace") in soak.quota_overrun for s in soak.envs.status_history.get(n, []))]
        expected.update({n: "TimedOut" for n in unenforced})
        unseen_ready = [n for n in expected if n.startswith("preview-") and n not in late_previews
                        and "Ready" not in soak.envs.phase_history.get(n, [])]
        endings = soak.ended()
        checks: dict[str, list[Violation]] = {
            "every environment ends as its spec implies": wrong_endings(expected, endings),
            "namespaces left after collection": leaked_namespaces(leaked),
            "Jobs created more than once (audit log)": jobs_created_twice(creates),
            "phases that went backwards": phases_backwards(soak.envs.phase_history),
            "duplicate phase Events": duplicate_phase_events(phase_events, [str(p) for p in Phase]),
            "credentials in logs, statuses or Events": secrets_leaked(soak.credentials, texts),
            "operator memory not back to baseline": memory_not_back(baseline, after) if after else [
                Violation("memory not back to baseline", "operator", "the survivor was not alive")],
            "operator heap not back to baseline (leaks)": heap_not_back(
                baseline_heap, after_heap, unit=warm_heap["unit"]) if after_heap else [
                Violation("heap not back to baseline", "operator", "the survivor was not alive")],
            "operator exits that were not kills": [Violation("unexpected exit", x, "") for x in
                                                   soak.tally.unexpected_exits],
        }
        refused = [r for r in requests if r.code == 429 or 500 <= r.code < 600]
        answered = Counter(r.code for r in refused)
        # A pod's log is the node's to give, through the API server: KWOK's
        # nodes give none, and the API server answers 500 for them.
        from_nodes = sum(1 for r in refused if r.subresource in FROM_THE_NODE and r.code >= 500)
        reconcile_errors = sum(t.count("reconcile failed") for _, t in texts if _.startswith("log "))
        tracebacks = sum(t.count("Traceback (most recent call last)") for _, t in texts if _.startswith("log "))
        t = soak.tally
        figures = [
            Figure("SIGKILLs (acting replica's included)", "kills", [float(t.kills)]),
            Figure("of them followed by a new operator live", "kills", [float(t.survived)]),
            Figure("of them, the acting one of two peered replicas", "kills", [float(t.acting_kills)]),
            Figure("control-plane restarts (etcd + API server)", "restarts", [float(t.restarts)]),
            Figure("etcd outages, the API server running on without it", "outages", [float(t.etcd_outages)]),
            Figure("API server without etcd, until ready again", "min", [t.etcd_down_seconds / 60]),
            Figure("fault minutes (proxy and API priority limits)", "min", [t.fault_seconds / 60]),
            Figure("operator requests the API server answered 429", "requests", [float(answered[429])]),
            Figure("operator requests the API server answered 5xx itself", "requests",
                   [float(answered.total() - answered[429] - from_nodes)]),
            Figure("pod log reads answered 5xx for the node (KWOK's serve no logs)", "requests",
                   [float(from_nodes)]),
            Figure("environments run", "envs", [float(t.applied)]),
            Figure("of them deleted while provisioning", "envs", [float(t.deleted_on_purpose)]),
            Figure("deletes sent only once the run had ended (expected to end there)", "envs",
                   [float(t.deleted_late)]),
            Figure("previews never ready before their deadline", "envs", [float(len(late_previews))]),
            Figure("previews ready only in the pass that ended them", "envs", [float(len(unseen_ready))]),
            Figure("`error` runs whose pod quota the API server did not enforce (expected TimedOut)", "envs",
                   [float(len(unenforced))]),
            Figure("credentials watched for", "values", [float(len(soak.credentials))]),
            Figure("Events about the environments, checked for duplicate phases", "events",
                   [float(len(phase_events))]),
            Figure("operator RSS, fresh and idle", "MiB", [fresh / 1024]),
            Figure("operator RSS idle after the warm-up (baseline)", "MiB", [baseline / 1024]),
            Figure("operator RSS after the soak, nothing left", "MiB", [after / 1024]),
            Figure("live allocations, fresh and idle", fresh_heap["unit"], [float(fresh_heap["live"])]),
            Figure("live allocations idle after the warm-up (baseline)", warm_heap["unit"], [float(baseline_heap)]),
            Figure("live allocations after the soak, collected", warm_heap["unit"], [float(after_heap)]),
            Figure("warm-up environments not ending as their shape implies (not judged)", "envs",
                   [float(len(warmup_odd))]),
            Figure("kopf per-object memories after the warm-up", "objects",
                   [float(warm_heap["kopf_memories"]["count"])]),
            Figure("kopf per-object memories after the soak, of objects not known after the warm-up", "objects",
                   [float(sum(remembered.values()))]),
            Figure("delete all -> gone", "s", [deleted_in]),
            Figure("soak length", "min", [(time.monotonic() - started) / 60]),
            Figure("reconcile errors logged (faults met)", "errors", [float(reconcile_errors)]),
            Figure("tracebacks in the operators' logs", "tracebacks", [float(tracebacks)]),
            *[Figure(f"violations: {name}", "", [float(len(v))]) for name, v in checks.items()],
        ]
        notes = [f"seed {args.seed}; faults in order: {'; '.join(t.faults)}",
                 "operator requests answered 429 or 5xx, by code: "
                 + (", ".join(f"{code} {n}" for code, n in sorted(answered.items())) or "none"),
                 "the most common 5xx, by request and answer: " + ("; ".join(
                     f"{n} x {code} {what} ({message})" for (code, what, message), n in
                     Counter((r.code, r.what, _gist(r.message)) for r in refused if r.code >= 500).most_common(8))
                     or "none"),
                 "KWOK plays every pod: suites' results are simulated; the operator, etcd and the API server are real."]
        notes.append("fresh -> after the warm-up:")
        notes += [f"  {line}" for line in heap_growth(fresh_heap, warm_heap)]
        notes.append("after the warm-up (the baseline) -> after the soak:")
        notes += [f"  {line}" for line in heap_growth(warm_heap, left_heap)]
        if warmup_odd:
            notes.append(f"warm-up environments that ended otherwise than their shape implies: {warmup_odd}")
        if remembered:
            notes.append("kopf memories after the soak, new since fresh: " + ", ".join(
                f"{n} {where}" for where, n in remembered.most_common()))
        for name, found in checks.items():
            for v in found[:5]:
                notes.append(f"  {name}: {v}")
        subjects = {v.subject for found in checks.values() for v in found}
        report("Chaos soak", figures, notes, args, extra={
            "violations": {k: [str(v) for v in found] for k, found in checks.items()},
            "endings": endings, "late_previews": late_previews, "unseen_ready": unseen_ready,
            "quota_not_enforced": unenforced,
            "histories": {n: soak.envs.phase_history.get(n, []) for n in sorted(subjects)},
            # The last statuses of each run judged wrong: what the operator said it waited for.
            "statuses": {n: soak.envs.status_history.get(n, [])[-4:] for n in sorted(subjects)},
            "snapshots": {n: str(p) for n, p in soak.snapshots.items()}})
        soak.secrets.stop()
        soak.quotas.stop()
        soak.envs.stop()
        if any(checks.values()):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
