"""Real pods: the shop example (examples/shop/environment.yaml) through the
operator against the same objects applied raw, side by side in one run, on
the test bed's real node.

- operator: apply the TestEnvironment, time to `Testing` (every component
  ready, every seed done: the environment is Ready for its tests) and to
  `Succeeded`;
- raw: the objects the operator's own planner renders for the same spec
  (bench/specs.render), applied by server-side apply in dependency order,
  each the moment what it waits for is ready (bench/raw.run_raw), then the
  suites' Jobs one after another in `needs` order;
- where the time goes: each component's own start (its pod's creation to its
  Ready condition, whole seconds from the API's timestamps) and each suite's
  run, from the operator's environment.

Pairs alternate which goes first. Needs a running test bed with its real node
(`make cluster`) and no other operator on it.

    python bench/shop_real.py --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "operator")]

import yaml  # noqa: E402
from harness import free_ports  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402
from raw import run_raw  # noqa: E402
from specs import _relabel, render  # noqa: E402
from testenv.build.common import LABEL_COMPONENT, LABEL_KIND, EnvRef  # noqa: E402
from testenv.settings import Settings  # noqa: E402

SHOP = ROOT / "examples" / "shop" / "environment.yaml"
NAMESPACE = "bench-shop"
GROUP, VERSION, PLURAL = "testenv.dev", "v1alpha1", "testenvironments"
FINISHED = {"Succeeded", "Failed", "Error", "TimedOut"}


def operator_env(images: dict[str, str], metrics: int, health: int) -> dict[str, str]:
    return {
        **os.environ,
        "TESTENV_ENGINE_IMAGES": json.dumps({e: images[f"TESTBED_IMAGE_{e.upper()}"]
                                             for e in ("postgres", "mysql", "redis")}),
        "TESTENV_WIREMOCK_IMAGE": images["TESTBED_IMAGE_WIREMOCK"],
        "TESTENV_COLLECTOR_IMAGE": images["TESTBED_IMAGE_COLLECTOR"],
        "TESTENV_POD_NODE_SELECTOR": json.dumps({"testenv.dev/node": "real"}),
        "TESTENV_POD_TOLERATIONS": json.dumps(
            [{"key": "testenv.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]),
        "TESTENV_METRICS_PORT": str(metrics),
        "TESTENV_HEALTH_PORT": str(health),
        "TESTENV_HEALTH_HOST": "127.0.0.1",
    }


def wait(what: str, probe, timeout: float = 600, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(interval)


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def where_time_goes(core: client.CoreV1Api, namespace: str, applied_at: float) -> list[str]:
    """Per component and job pod: offset of its creation and of its Ready (or end) from the apply."""
    rows = []
    for pod in sorted(core.list_namespaced_pod(namespace).items, key=lambda p: p.metadata.creation_timestamp):
        labels = pod.metadata.labels or {}
        created = _ts(pod.metadata.creation_timestamp)
        ready = next((c.last_transition_time for c in pod.status.conditions or []
                      if c.type == "Ready" and c.status == "True"), None)
        ended = [s.state.terminated.finished_at for s in pod.status.container_statuses or []
                 if s.state and s.state.terminated]
        end = _ts(ready) if ready else (_ts(max(ended)) if ended else None)
        took = f"{end - created:5.0f} s" if end else "    -"
        rows.append(f"  {labels.get(LABEL_KIND, '?'):9} {labels.get(LABEL_COMPONENT, '?'):18} "
                    f"created +{created - applied_at:4.0f} s, own start/run {took}, done +"
                    f"{(end - applied_at) if end else float('nan'):4.0f} s")
    return rows


def operator_trial(custom, core, spec: dict[str, Any], show: bool) -> tuple[float, float]:
    name = f"shop-{uuid.uuid4().hex[:5]}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestEnvironment",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}
    started = time.time()
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    marks: dict[str, float] = {}

    def finished():
        status = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name).get("status") or {}
        phase = status.get("phase")
        if phase in ("Testing", *FINISHED) and "ready" not in marks:
            marks["ready"] = time.time()
        return status if phase in FINISHED else None

    status = wait(f"{name} to finish", finished)
    done = time.time()
    if status["phase"] != "Succeeded":
        sys.exit(f"{name} ended {status['phase']}: {status.get('message')}")
    if show:
        print(f"where the time goes ({name}, offsets from the apply, API timestamps in whole seconds):")
        print("\n".join(where_time_goes(core, status["namespace"], started)))
    custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    return marks["ready"] - started, done - started


def raw_trial(api, core, batch, spec: dict[str, Any], settings: Settings) -> tuple[float, float, int]:
    """The planner's objects in dependency order, then the suites' Jobs in `needs` order."""
    no_tests = {**copy.deepcopy(spec), "tests": []}
    sess = SimpleNamespace(api=api, core=core, dynamic=lambda: DynamicClient(api))
    result = run_raw(sess, no_tests, 1, settings, {}, timeout=600, cleanup=False)
    [namespace] = result.namespaces
    ready = max(result.durations())
    try:
        env = EnvRef(name=namespace, namespace="bench-raw", uid=str(uuid.uuid4()), target_namespace=namespace)
        jobs = {o.obj["metadata"]["labels"][LABEL_COMPONENT]: o.obj for o in render(spec, env, settings, {}).objects
                if o.obj["kind"] == "Job" and o.obj["metadata"]["labels"].get(LABEL_KIND) == "test"}
        order = [t["name"] for t in spec["tests"]]  # the shop's suites are one chain in `needs` order
        for suite in order:
            job = _relabel(jobs[suite])
            subprocess.run([str(ROOT / ".cache/testbed/bin/kubectl"), "apply", "--server-side",
                            "--field-manager=testenv-bench-raw", "-f", "-"],
                           input=json.dumps(job), text=True, check=True, capture_output=True)

            def succeeded(name=job["metadata"]["name"]):
                status = batch.read_namespaced_job(name, namespace).status
                if status.failed and not status.active:
                    sys.exit(f"raw: suite {name} failed")
                return any(c.type == "Complete" and c.status == "True" for c in status.conditions or [])

            wait(f"raw suite {suite}", succeeded)
        done = time.time() - result.started
        return ready, done, result.writes + len(order)
    finally:
        core.delete_namespace(namespace)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--state", default=str(ROOT / ".cluster"), help="the test bed's TESTBED_STATE")
    args = p.parse_args()
    state = Path(args.state)
    images = dict(line.strip().split("=", 1) for line in (state / "images.env").read_text().splitlines()
                  if line.startswith("TESTBED_"))
    os.environ["KUBECONFIG"] = str(state / "kubeconfig")
    api = config.new_client_from_config(config_file=str(state / "kubeconfig"))
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    except client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    spec = yaml.safe_load(SHOP.read_text())["spec"]
    metrics, health = free_ports(2)
    env = operator_env(images, metrics, health)
    settings = Settings.model_validate({
        "engine_images": json.loads(env["TESTENV_ENGINE_IMAGES"]), "wiremock_image": env["TESTENV_WIREMOCK_IMAGE"],
        "collector_image": env["TESTENV_COLLECTOR_IMAGE"],
        "pod_node_selector": json.loads(env["TESTENV_POD_NODE_SELECTOR"]),
        "pod_tolerations": json.loads(env["TESTENV_POD_TOLERATIONS"]),
    })
    log = open(state / "bench-shop-operator.log", "w")  # open for the operator's life
    operator = subprocess.Popen([sys.executable, "-m", "testenv"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        import httpx
        wait("the operator's health", lambda: operator.poll() is None and _healthy(httpx, health), timeout=60)
        rows = {"operator ready": [], "operator succeeded": [], "raw ready": [], "raw succeeded": []}
        for i in range(args.repeats):
            for kind in (("operator", "raw") if i % 2 == 0 else ("raw", "operator")):
                if kind == "operator":
                    ready, done = operator_trial(custom, core, spec, show=i == args.repeats - 1)
                else:
                    ready, done, _ = raw_trial(api, core, batch, spec, settings)
                rows[f"{kind} ready"].append(ready)
                rows[f"{kind} succeeded"].append(done)
                print(f"pair {i} {kind:8}: ready {ready:6.1f} s, succeeded {done:6.1f} s", flush=True)
        print()
        med = {k: statistics.median(v) for k, v in rows.items()}
        for k, v in rows.items():
            print(f"{k:20} median {med[k]:6.1f} s [{min(v):.1f} .. {max(v):.1f}] n={len(v)}")
        print(f"ratio to ready (medians)     {med['operator ready'] / med['raw ready']:.2f}  (goal <= 1.15)")
        print(f"ratio to succeeded (medians) {med['operator succeeded'] / med['raw succeeded']:.2f}")
        print(f"operator's share of ready    {med['operator ready'] - med['raw ready']:+.1f} s")
    finally:
        operator.terminate()
        operator.wait(30)


def _healthy(httpx, port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
