"""The raw baseline: the objects the operator's planner renders (specs.render),
applied with server-side apply by a plain script, each the moment its
dependencies' Deployments are ready and its gating seeds are done (as the
operator counts them: the seed's container exited 0, or its Job succeeded).
No status, no Events, no framework: the floor the operator is compared with."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness import Session, Watcher, delete_namespaces, short_id
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from specs import RAW_MANAGED_BY, Rendered, Staged, render
from testenv.build.common import LABEL_MANAGED_BY, EnvRef
from testenv.build.seeds import SEED_CONTAINER
from testenv.models import JobPhase
from testenv.observe import exited_ok, job, workload
from testenv.settings import Settings


@dataclass
class RawEnv:
    env: EnvRef
    rendered: Rendered
    pending: list[Staged] = field(default_factory=list)
    in_flight: int = 0
    ready_at: float | None = None


@dataclass
class RawResult:
    started: float
    ready_at: dict[str, float]  # target namespace -> when its last Deployment was seen ready
    writes: int
    namespaces: list[str] = field(default_factory=list)

    def durations(self) -> list[float]:
        return [t - self.started for t in self.ready_at.values()]


def run_raw(sess: Session, spec: dict[str, Any], count: int, settings: Settings, copy_sources: dict[str, Any],
            timeout: float, workers: int = 8, cleanup: bool = True) -> RawResult:
    ident = short_id()
    envs: dict[str, RawEnv] = {}
    for i in range(count):
        ns = f"raw-{ident}-{i}"
        env = EnvRef(name=ns, namespace="bench-raw", uid=str(uuid.uuid4()), target_namespace=ns)
        rendered = render(spec, env, settings, copy_sources)
        envs[ns] = RawEnv(env, rendered, list(rendered.objects))
    apps, batch = client.AppsV1Api(sess.api), client.BatchV1Api(sess.api)
    cond = threading.Condition()
    selector = f"{LABEL_MANAGED_BY}={RAW_MANAGED_BY}"
    deployments = Watcher(apps.list_deployment_for_all_namespaces, label_selector=selector, cond=cond)
    jobs = Watcher(batch.list_job_for_all_namespaces, label_selector=selector, cond=cond)
    pods = Watcher(client.CoreV1Api(sess.api).list_pod_for_all_namespaces, label_selector=selector, cond=cond)
    dynamic = sess.dynamic()
    resources: dict[tuple[str, str], Any] = {}
    for raw in envs.values():
        for staged in raw.rendered.objects:
            key = (staged.obj["apiVersion"], staged.obj["kind"])
            if key not in resources:
                resources[key] = dynamic.resources.get(api_version=key[0], kind=key[1])
    writes = 0
    errors: list[BaseException] = []

    def send(raw: RawEnv, batch_: list[Staged]) -> None:
        # One environment's due objects in order (the Namespace before what lives in it).
        nonlocal writes
        try:
            for staged in batch_:
                obj = staged.obj
                resource = resources[(obj["apiVersion"], obj["kind"])]
                namespace = obj["metadata"].get("namespace")
                if obj["kind"] == "Secret":
                    try:
                        resource.create(body=obj, namespace=namespace)
                    except ApiException as exc:
                        if exc.status != 409:
                            raise
                else:
                    resource.server_side_apply(body=obj, name=obj["metadata"]["name"], namespace=namespace,
                                               field_manager="testenv-bench-raw", force_conflicts=True)
                with cond:
                    writes += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main loop
            errors.append(exc)
        finally:
            with cond:
                raw.in_flight -= 1
                cond.notify_all()

    started = time.time()
    deadline = time.monotonic() + timeout
    try:
        with ThreadPoolExecutor(workers) as pool:
            while True:
                if errors:
                    raise errors[0]
                with cond:
                    for ns, raw in envs.items():
                        if raw.ready_at is not None or raw.in_flight:
                            continue
                        ready = {c for c, d in raw.rendered.deployments.items()
                                 if (o := deployments.objects.get((ns, d))) and workload(o).ready}
                        ns_pods = [p for (pns, _), p in pods.objects.items() if pns == ns]
                        done = {s for s, j in raw.rendered.jobs.items()
                                if ((o := jobs.objects.get((ns, j))) and job(o).phase == JobPhase.SUCCEEDED)
                                or exited_ok(ns_pods, job=j, container=SEED_CONTAINER)}
                        if not raw.pending and len(ready) == len(raw.rendered.deployments):
                            raw.ready_at = time.time()
                            continue
                        due = [s for s in raw.pending if s.needs_ready <= ready and s.needs_done <= done]
                        if due:
                            raw.pending = [s for s in raw.pending if s not in due]
                            raw.in_flight += 1
                            pool.submit(send, raw, due)
                    if all(raw.ready_at is not None for raw in envs.values()):
                        break
                    if time.monotonic() > deadline:
                        late = [ns for ns, raw in envs.items() if raw.ready_at is None]
                        raise TimeoutError(f"raw: {len(late)} of {count} not ready after {timeout}s")
                    cond.wait(0.5)
        return RawResult(started, {ns: raw.ready_at for ns, raw in envs.items()}, writes, list(envs))
    finally:
        deployments.stop()
        jobs.stop()
        pods.stop()
        if cleanup or errors or any(raw.ready_at is None for raw in envs.values()):
            delete_namespaces(sess.core, list(envs))
