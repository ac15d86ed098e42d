"""What every benchmark shares: the test bed, the CRD, the operator as a
process with its own identity, watches that timestamp what they see, the
API server's audit log, /proc sampling and the statistics printed at the end.

Not a test module: nothing here is collected by pytest (bench/ is outside
`testpaths`, and no file is named test_*.py)."""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes.util
import functools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = ROOT / ".cache" / "testbed" / "bin"
KUBECTL = str(BIN / "kubectl") if (BIN / "kubectl").exists() else "kubectl"
sys.path.insert(0, str(ROOT / "operator"))

GROUP, VERSION, PLURAL = "testenv.dev", "v1alpha1", "testenvironments"
OPERATOR_NAMESPACE = "testenv-bench"
OPERATOR_SA = "testenv-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"
COPY_SOURCE_NAMESPACE = "bench-staging"
MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    """An interrupted benchmark must not leave an operator acting on the cluster."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free now, all different: each socket is held until all are
    chosen, else the kernel may hand the same one out twice."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def short_id() -> str:
    return uuid.uuid4().hex[:6]


# --- command line ------------------------------------------------------------------


def parser(description: str, repeats: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--repeats", type=int, default=repeats, help="measured repetitions")
    p.add_argument(
        "--kubeconfig",
        help="reuse this cluster instead of starting bench/testbed.sh (its admin user must be allowed to "
        "create ServiceAccounts, tokens and a cluster-admin binding); audit-based figures then need --audit-log",
    )
    p.add_argument("--audit-log", help="the API server's audit log when reusing a cluster (must log the user "
                   f"{OPERATOR_USER}, see bench/audit-policy.yaml)")
    p.add_argument("--keep-testbed", action="store_true", help="leave the started test bed running")
    p.add_argument("--testbed-state", default=os.environ.get("TESTBED_STATE", "/tmp/bench-testbed"),
                   help="state directory of the bench test bed")
    p.add_argument("--testbed-name", default=os.environ.get("TESTBED_NAME", "bench"), help="kwokctl cluster name")
    p.add_argument("--no-qps-limits", action="store_true",
                   help="start the bench test bed with the control plane's client-side rate limits lifted "
                        "(kwokctl --disable-qps-limits); takes effect only for a newly created test bed, so "
                        "give it a --testbed-state/--testbed-name of its own")
    p.add_argument("--json", help="also write the raw figures as JSON to this file")
    p.add_argument("--operator-log", help="keep the operator's log here (default: a temporary file)")
    p.add_argument("--operator-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra TESTENV_* settings for the operator (repeatable)")
    p.add_argument("--tweak", action="append", default=[], metavar="BENCH_KEY=VALUE",
                   help="experiment: load bench/tweaks.py into the operator with this setting (repeatable)")
    return p


# --- the test bed ---------------------------------------------------------------------


@dataclass
class Testbed:
    kubeconfig: str
    audit_log: Path | None
    owned: bool
    env: dict[str, str]

    def stop(self) -> None:
        if self.owned:
            log("stopping the bench test bed")
            subprocess.run(["bash", str(HERE / "testbed.sh"), "down"], env=self.env, capture_output=True, check=False)

    def control_plane_cpu(self) -> float | None:
        """CPU seconds used so far by the bench test bed's etcd, API server,
        controller manager, scheduler and KWOK (None for a reused cluster)."""
        pids = Path(self.env["TESTBED_STATE"]) / "kwok" / "clusters" / self.env["TESTBED_NAME"] / "pids"
        if self.kubeconfig != str(Path(self.env["TESTBED_STATE"]) / "kubeconfig") or not pids.is_dir():
            return None
        total = 0.0
        for pid_file in pids.glob("*.pid"):
            try:
                total += proc_sample(int(pid_file.read_text().strip())).cpu_seconds
            except (OSError, ValueError, KeyError):
                pass
        return total

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, *args], input=input,
                              capture_output=True, text=True)
        if check and done.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done


def start_testbed(args: argparse.Namespace) -> Testbed:
    env = dict(os.environ, TESTBED_STATE=args.testbed_state, TESTBED_NAME=args.testbed_name)
    if args.no_qps_limits:
        env["BENCH_DISABLE_QPS_LIMITS"] = "true"
    if args.kubeconfig:
        return Testbed(args.kubeconfig, Path(args.audit_log) if args.audit_log else None, owned=False, env=env)
    started = time.monotonic()
    try:
        result = subprocess.run(["bash", str(HERE / "testbed.sh"), "up"], env=env, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise SystemExit(f"bench test bed failed to start:\n{result.stdout}\n{result.stderr}")
        audit = subprocess.run(["bash", str(HERE / "testbed.sh"), "audit"], env=env, capture_output=True,
                               text=True, check=True).stdout.strip()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or failed while coming up: what did come
        # up goes down, or it would outlive the bench (session() owns it only after).
        subprocess.run(["bash", str(HERE / "testbed.sh"), "down"], env=env, capture_output=True, check=False)
        raise
    log(f"test bed up in {time.monotonic() - started:.1f}s ({args.testbed_state})")
    return Testbed(result.stdout.strip().splitlines()[-1], Path(audit), owned=not args.keep_testbed, env=env)


def install_crd(bed: Testbed) -> None:
    bed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    bed.kubectl("wait", "--for=condition=Established", "crd/testenvironments.testenv.dev", "--timeout=60s")


def api_client(bed: Testbed) -> client.ApiClient:
    api = config.new_client_from_config(config_file=bed.kubeconfig)
    api.user_agent = "testenv-bench"
    api.configuration.connection_pool_maxsize = 32
    # A fresh pool with the larger size (the client builds it in __init__).
    api.rest_client = type(api.rest_client)(api.configuration)
    return api


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as exc:
        if exc.status != 409:
            raise


def install_copy_source(bed: Testbed, core: client.CoreV1Api) -> None:
    """examples/staging.yaml's Deployment and Service, in the bench's own source namespace."""
    ensure_namespace(core, COPY_SOURCE_NAMESPACE)
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "staging.yaml").read_text())
            if d and d["kind"] != "Namespace"]
    for doc in docs:
        doc["metadata"]["namespace"] = COPY_SOURCE_NAMESPACE
    bed.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))


def operator_kubeconfig(bed: Testbed, core: client.CoreV1Api, directory: Path) -> Path:
    """A kubeconfig for the operator as its own ServiceAccount, so the audit
    log tells its requests from everyone else's (the bench's, KWOK's, the
    controllers'). cluster-admin: the benchmarks measure load, not RBAC."""
    ensure_namespace(core, OPERATOR_NAMESPACE)
    bed.kubectl("-n", OPERATOR_NAMESPACE, "create", "serviceaccount", OPERATOR_SA, check=False)
    bed.kubectl("create", "clusterrolebinding", "testenv-bench-operator", "--clusterrole", "cluster-admin",
                f"--serviceaccount={OPERATOR_NAMESPACE}:{OPERATOR_SA}", check=False)
    token = bed.kubectl("-n", OPERATOR_NAMESPACE, "create", "token", OPERATOR_SA, "--duration", "48h").stdout.strip()
    admin = yaml.safe_load(Path(bed.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    cluster = dict(cluster)
    if "certificate-authority" in cluster:  # inline it: the file path may be relative
        path = Path(cluster.pop("certificate-authority"))
        if not path.is_absolute():
            path = Path(bed.kubeconfig).parent / path
        cluster["certificate-authority-data"] = base64.b64encode(path.read_bytes()).decode()
    out = {
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "bench", "user": "operator"}}],
    }
    path = directory / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(out))
    path.chmod(0o600)
    return path


# --- the operator -------------------------------------------------------------------


@dataclass
class ProcSample:
    rss_kib: int
    hwm_kib: int
    cpu_seconds: float


def proc_sample(pid: int) -> ProcSample:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_comm = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(after_comm[11]), int(after_comm[12])  # fields 14 and 15 of stat(5)
    return ProcSample(
        rss_kib=int(fields["VmRSS"].split()[0]),
        hwm_kib=int(fields["VmHWM"].split()[0]),
        cpu_seconds=(utime + stime) / CLK_TCK,
    )


@functools.cache  # find_library runs ldconfig; an operator is started per kill
def _has_jemalloc() -> bool:
    return ctypes.util.find_library("jemalloc") is not None


def image_allocator() -> dict[str, str]:
    """The operator image's allocator settings (jemalloc), where this machine
    has jemalloc: what is measured is then what the image runs. Without it the
    operator runs on pymalloc, and the report says so (allocator_condition)."""
    from testenv.idle_memory import IMAGE_ALLOCATOR

    return dict(IMAGE_ALLOCATOR) if _has_jemalloc() else {}


def allocator_condition() -> str:
    if image_allocator():
        return "operator on the image's allocator (jemalloc, PYTHONMALLOC=malloc) unless a figure names another"
    return "operator on pymalloc: this machine has no jemalloc (apt install libjemalloc2), unlike the image"


@dataclass
class Operator:
    """`python -m testenv` as deployed (no --verbose), configured by TESTENV_* variables."""

    kubeconfig: Path
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    tweaks: dict[str, str] = field(default_factory=dict)
    heap_dir: Path | None = None  # load heapprobe.py: live_heap() reads the Python heap from inside
    process: subprocess.Popen | None = None
    health_port: int = 0
    metrics_port: int = 0
    _peak_rss: int = 0
    _sampler: threading.Thread | None = None
    _sampling: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.health_port, self.metrics_port = free_ports(2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESTENV_")}
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            PYTHONPATH=str(ROOT / "operator"),
            TESTENV_HEALTH_PORT=str(self.health_port),
            TESTENV_HEALTH_HOST="127.0.0.1",
            TESTENV_METRICS_PORT=str(self.metrics_port),
            TESTENV_COPY_ALLOWLIST=f'["{COPY_SOURCE_NAMESPACE}"]',
            TESTENV_OPERATOR_NAMESPACE=OPERATOR_NAMESPACE,
        )
        env.update(image_allocator())
        env.update(self.extra_env)
        cli = [sys.executable, "-m", "testenv"]
        # bench/'s own kopf modules, loaded beside the operator's handlers.
        extra = []
        if self.tweaks:
            env.update(self.tweaks)
            extra.append("tweaks")
        if self.heap_dir is not None:
            env["BENCH_HEAP_DIR"] = str(self.heap_dir)
            extra.append("heapprobe")
        if extra:
            env["PYTHONPATH"] += os.pathsep + str(HERE)
            cli += [arg for module in extra for arg in ("-m", module)]
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(cli, env=env, stdout=out,
                                        stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=_die_with_parent)
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"operator exited ({self.process.returncode}):\n{self.logs()[-3000:]}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"operator never became live:\n{self.logs()[-3000:]}")
            time.sleep(0.1)
        self._sampling.clear()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._sampling.wait(0.25):
            try:
                self._peak_rss = max(self._peak_rss, proc_sample(self.pid).rss_kib)
            except (OSError, ValueError, KeyError):  # exited: a zombie has no VmRSS
                return

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def sample(self) -> ProcSample:
        return proc_sample(self.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def live_heap(self, timeout: float = 60) -> dict[str, Any]:
        """The operator's live Python heap after a full collection (heapprobe.py)."""
        assert self.heap_dir is not None, "start the operator with heap_dir to weigh its heap"
        n = len(list(self.heap_dir.glob("heap-*.json"))) if self.heap_dir.exists() else 0
        os.kill(self.pid, signal.SIGRTMIN + 1)
        path = self.heap_dir / f"heap-{n}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline or not self.alive():
                raise RuntimeError(f"operator {self.pid} wrote no {path.name} within {timeout:.0f} s")
            time.sleep(0.1)
        return json.loads(path.read_text())

    def stop(self) -> None:
        self._sampling.set()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


# --- watching, with timestamps ------------------------------------------------------------


class Watcher:
    """Keeps the latest version of every object a list call returns, stamping
    each change with time.time() the moment the event arrives, and lets
    callers wait for a predicate over everything seen."""

    def __init__(self, list_fn: Callable[..., Any], *args: Any, on_event: Callable[[str, dict, float], None] | None = None,
                 cond: threading.Condition | None = None, **kwargs: Any) -> None:
        self.list_fn, self.args, self.kwargs = list_fn, args, kwargs
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: dict[tuple[str, str], float] = {}
        self.on_event = on_event
        self.cond = cond or threading.Condition()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._synced.wait(30):
            raise RuntimeError("watch never listed")

    @staticmethod
    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]

    def _record(self, kind: str, obj: dict[str, Any], at: float) -> None:
        with self.cond:
            key = self.key(obj)
            if kind == "DELETED":
                self.objects.pop(key, None)
                self.deleted[key] = at
            else:
                self.objects[key] = obj
                self.deleted.pop(key, None)
            if self.on_event:
                self.on_event(kind, obj, at)
            self.cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.list_fn(*self.args, **self.kwargs, _preload_content=False)
                data = json.loads(listed.data)
                now = time.time()
                with self.cond:
                    seen = set()
                    for item in data.get("items") or []:
                        item.setdefault("apiVersion", data.get("apiVersion"))
                        seen.add(self.key(item))
                        if self.objects.get(self.key(item), {}).get("metadata", {}).get("resourceVersion") != \
                                item["metadata"]["resourceVersion"]:
                            self._record("ADDED", item, now)
                    for key in [k for k in self.objects if k not in seen]:
                        self._record("DELETED", self.objects[key], now)
                self._synced.set()
                self._watch = watch.Watch()
                for event in self._watch.stream(self.list_fn, *self.args, **self.kwargs,
                                                resource_version=data["metadata"]["resourceVersion"],
                                                timeout_seconds=120, allow_watch_bookmarks=False):
                    if self._stop.is_set():
                        return
                    if event["type"] == "ERROR":
                        break
                    obj = event["raw_object"]
                    self._record(event["type"], obj, time.time())
            except (ApiException, urllib3.exceptions.HTTPError, ValueError, KeyError) as exc:
                if self._stop.is_set():
                    return
                if not isinstance(exc, ApiException) or exc.status != 410:
                    time.sleep(0.2)

    def wait(self, predicate: Callable[[dict[tuple[str, str], dict[str, Any]]], Any], timeout: float,
             what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                result = predicate(self.objects)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self.cond.wait(min(remaining, 1.0))

    def stop(self) -> None:
        self._stop.set()
        if self._watch:
            self._watch.stop()


class Environments:
    """TestEnvironments of one namespace: applied like kubectl does, and the
    first moment each reached each phase (from a watch)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.phase_times: dict[str, dict[str, float]] = {}
        self.phase_history: dict[str, list[str]] = {}
        self.status_history: dict[str, list[dict[str, Any]]] = {}  # every distinct status seen, in order
        self.watcher = Watcher(self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                               on_event=self._on_event)

    def _on_event(self, kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        statuses = self.status_history.setdefault(name, [])
        if kind != "DELETED" and obj.get("status") and (not statuses or statuses[-1] != obj["status"]):
            statuses.append(obj["status"])
        if phase and kind != "DELETED":
            times = self.phase_times.setdefault(name, {})
            if phase not in times:
                times[phase] = at
            history = self.phase_history.setdefault(name, [])
            if not history or history[-1] != phase:
                history.append(phase)

    def apply(self, name: str, spec: dict[str, Any]) -> float:
        """Returns the wall time just before the request was sent."""
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestEnvironment",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}
        started = time.time()
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body,
            field_manager="testenv-bench", force=True, _content_type="application/apply-patch+yaml",
        )
        return started

    def get(self, name: str) -> dict[str, Any] | None:
        with self.watcher.cond:
            return self.watcher.objects.get((self.namespace, name))

    def wait_phases(self, names: Iterable[str], phases: set[str], timeout: float) -> None:
        names = list(names)

        def done(objects: dict) -> bool:
            return all(((objects.get((self.namespace, n)) or {}).get("status") or {}).get("phase") in phases
                       or phases & set(self.phase_times.get(n, {})) for n in names)

        try:
            self.watcher.wait(done, timeout, f"{len(names)} environment(s) in {sorted(phases)}")
        except TimeoutError as exc:
            late = [n for n in names if not phases & set(self.phase_times.get(n, {}))]
            sample = late[0] if late else None
            status = (self.get(sample) or {}).get("status") if sample else None
            raise TimeoutError(f"{exc}; {len(late)} late, e.g. {sample}: {json.dumps(status)[:1500]}") from None

    def delete_all(self, timeout: float = 600) -> float:
        """Delete every TestEnvironment here and wait until they (and so their
        namespaces, released by the finalizer) are gone. Returns the seconds taken."""
        started = time.monotonic()
        with self.watcher.cond:
            names = [name for (_, name) in self.watcher.objects]
        for name in names:
            try:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        self.watcher.wait(lambda objects: not objects, timeout, f"{len(names)} environment(s) deleted")
        return time.monotonic() - started

    def stop(self) -> None:
        self.watcher.stop()


def force_clean(api: client.ApiClient, wait: float = 900) -> None:
    """Remove every TestEnvironment (finalizers dropped: no operator is needed)
    and every environment namespace, ours or the raw baseline's. Used before a
    benchmark starts and, where the operator's own collection is not what is
    measured, to tear down quickly. Only call with no operator running."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    try:
        items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    except ApiException as exc:
        if exc.status != 404:
            raise
        items = []
    for item in items:
        meta = item["metadata"]
        try:
            if meta.get("finalizers"):
                custom.patch_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"],
                                                      {"metadata": {"finalizers": None}})
            custom.delete_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"])
        except ApiException as exc:
            if exc.status != 404:
                raise
    namespaces = core.list_namespace(
        label_selector="app.kubernetes.io/managed-by in (testenv-operator,testenv-bench-raw)").items
    if items or namespaces:
        log(f"removing {len(items)} TestEnvironment(s) and {len(namespaces)} environment namespace(s)")
    for ns in namespaces:
        # kopf puts its finalizer on every namespace it runs a timer for
        # (handlers.sweep_orphan); with no operator running it is never removed.
        if ns.metadata.finalizers:
            try:
                core.patch_namespace(ns.metadata.name, {"metadata": {"finalizers": None}})
            except ApiException as exc:
                if exc.status != 404:
                    raise
    delete_namespaces(core, [ns.metadata.name for ns in namespaces], timeout=wait)


def target_namespace(env: dict[str, Any]) -> str:
    from testenv.build.common import environment_namespace_name
    from testenv.settings import get_settings

    meta = env["metadata"]
    return environment_namespace_name(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"],
                                      prefix=get_settings().namespace_prefix)


def delete_namespaces(core: client.CoreV1Api, names: Iterable[str], timeout: float = 600) -> None:
    names = list(names)
    for name in names:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
    deadline = time.monotonic() + timeout
    for name in names:
        while time.monotonic() < deadline:
            try:
                core.read_namespace(name)
            except ApiException as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(0.5)


# --- the audit log ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    audit_id: str
    at: float  # requestReceivedTimestamp, epoch seconds
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    api_group: str
    code: int
    user_agent: str
    message: str = ""  # responseStatus.message: why a request failed

    @property
    def mutating(self) -> bool:
        return self.verb in MUTATING

    @property
    def what(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {res or '(non-resource)'}"


def _epoch(ts: str) -> float:
    return datetime.strptime(ts.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp() \
        if "." in ts else datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class AuditLog:
    """The operator's requests as the API server logged them (one per auditID)."""

    def __init__(self, path: Path | None, user: str = OPERATOR_USER) -> None:
        self.path, self.user = path, user

    @property
    def available(self) -> bool:
        return self.path is not None and self.path.exists()

    def mark(self) -> int:
        return self.path.stat().st_size if self.available else 0

    def requests(self, since: int = 0, until_time: float | None = None, settle: float = 1.5) -> list[Request]:
        """Requests logged after byte offset `since`. Waits `settle` seconds first:
        the API server writes an event when the response completes."""
        if not self.available:
            raise RuntimeError("no audit log: start the bench test bed (drop --kubeconfig) or pass --audit-log")
        time.sleep(settle)
        seen: dict[str, Request] = {}
        with self.path.open("rb") as f:
            f.seek(since)
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if (event.get("user") or {}).get("username") != self.user:
                    continue
                ref = event.get("objectRef") or {}
                req = Request(
                    audit_id=event["auditID"],
                    at=_epoch(event["requestReceivedTimestamp"]),
                    verb=event.get("verb", ""),
                    resource=ref.get("resource", ""),
                    subresource=ref.get("subresource", ""),
                    namespace=ref.get("namespace", ""),
                    name=ref.get("name", ""),
                    api_group=ref.get("apiGroup", ""),
                    code=(event.get("responseStatus") or {}).get("code", 0),
                    user_agent=event.get("userAgent", ""),
                    message=(event.get("responseStatus") or {}).get("message", ""),
                )
                seen.setdefault(req.audit_id, req)
        out = sorted(seen.values(), key=lambda r: r.at)
        if until_time is not None:
            out = [r for r in out if r.at <= until_time]
        return out


def breakdown(requests: Iterable[Request], top: int = 12) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for r in requests:
        counts[r.what] = counts.get(r.what, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])[:top]


# --- figures -----------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    unit: str
    values: list[float]

    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def line(self) -> str:
        if not self.values:
            return f"{self.name:<44} (no values)"
        lo, hi = min(self.values), max(self.values)
        spread = f"[{lo:.3g} .. {hi:.3g}]" if len(self.values) > 1 else ""
        return f"{self.name:<44} median {self.median():>9.3g} {self.unit:<8} {spread} n={len(self.values)}"

    def as_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "values": self.values, "median": self.median(),
                "min": min(self.values, default=None), "max": max(self.values, default=None)}


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    from importlib.metadata import version

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                                  timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "?"
    if git("status", "--porcelain", "--", "operator"):
        commit += " + uncommitted changes in operator/"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "operator_commit": commit,
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kopf": version("kopf"),
        "kubernetes_client": version("kubernetes"),
        "load_average": os.getloadavg(),
    }


def report(title: str, figures: list[Figure], notes: list[str], args: argparse.Namespace,
           extra: dict[str, Any] | None = None) -> None:
    info = machine()
    print()
    print(f"== {title} ==")
    print(f"{info['date']}; {info['nproc']} x {info['cpu']}, {info['memory_gib']} GiB; Python {info['python']}, "
          f"kopf {info['kopf']}; load average at the end {', '.join(f'{x:.2f}' for x in info['load_average'])}")
    print(f"operator at commit {info['operator_commit']}")
    conditions = [allocator_condition()]
    if getattr(args, "no_qps_limits", False):
        conditions.append("test bed with the control plane's client-side QPS limits LIFTED (--no-qps-limits)")
    if getattr(args, "tweak", None):
        conditions.append(f"EXPERIMENT: operator with bench/tweaks.py {', '.join(args.tweak)}")
    if getattr(args, "operator_env", None):
        conditions.append(f"operator settings: {', '.join(args.operator_env)}")
    for condition in conditions:
        print(condition)
    for figure in figures:
        print(figure.line())
    for note in notes:
        print(note)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"title": title, "machine": info, "conditions": conditions, "figures": {f.name: f.as_dict() for f in figures},
             "notes": notes, **(extra or {})}, indent=2))


# --- the whole session ---------------------------------------------------------------------


@dataclass
class Session:
    args: argparse.Namespace
    bed: Testbed
    api: client.ApiClient
    core: client.CoreV1Api
    workdir: Path
    operator_kubeconfig: Path
    audit: AuditLog

    def operator(self, **settings: str) -> Operator:
        extra = dict(item.split("=", 1) for item in self.args.operator_env)
        extra.update(settings)
        log_path = Path(self.args.operator_log) if self.args.operator_log else self.workdir / "operator.log"
        tweaks = dict(item.split("=", 1) for item in self.args.tweak)
        if tweaks:
            log(f"EXPERIMENT: operator runs with bench/tweaks.py {tweaks}")
        return Operator(self.operator_kubeconfig, log_path, extra, tweaks)

    def environments(self, namespace: str) -> Environments:
        ensure_namespace(self.core, namespace)
        return Environments(self.api, namespace)

    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api)


def _watchdog(bed: Testbed) -> subprocess.Popen | None:
    """A child in a session of its own that stops the test bed if this process
    dies without doing so (SIGKILL, OOM): it waits on a pipe only we write to,
    and EOF without the word "done" means we are gone."""
    if not bed.owned:
        return None
    code = ("import subprocess, sys\n"
            "if sys.stdin.read() != 'done':\n"
            "    subprocess.run(['bash', sys.argv[1], 'down'], capture_output=True)\n")
    return subprocess.Popen([sys.executable, "-c", code, str(HERE / "testbed.sh")], stdin=subprocess.PIPE,
                            env=bed.env, start_new_session=True)


@contextmanager
def session(args: argparse.Namespace) -> Iterator[Session]:
    bed = start_testbed(args)
    watchdog = None
    workdir = Path(tempfile.mkdtemp(prefix="testenv-bench-"))
    try:
        watchdog = _watchdog(bed)
        install_crd(bed)
        api = api_client(bed)
        core = client.CoreV1Api(api)
        install_copy_source(bed, core)
        force_clean(api)  # leftovers of an interrupted run would be load, and counted
        kubeconfig = operator_kubeconfig(bed, core, workdir)
        yield Session(args, bed, api, core, workdir, kubeconfig, AuditLog(bed.audit_log))
    finally:
        bed.stop()
        if watchdog is not None and watchdog.stdin is not None:
            watchdog.stdin.write(b"done")
            watchdog.stdin.close()
            watchdog.wait(timeout=30)
        if bed.owned is False:
            log(f"left the cluster running; operator log under {workdir}")


def apply_many(envs: Environments, names: list[str], spec: dict[str, Any], workers: int = 8) -> tuple[float, float]:
    """Apply every environment at once (a CI burst); returns (first sent, last acknowledged)."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.time()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda name: envs.apply(name, spec), names))
    return started, time.time()
