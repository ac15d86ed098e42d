"""The environments the benchmarks run, and the raw baseline: the same
objects rendered by the operator's own planner and builders."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from harness import COPY_SOURCE_NAMESPACE, ROOT
from testenv.build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_MANAGED_BY, LABEL_RUN, EnvRef
from testenv.models import JobPhase, TestEnvironmentSpec, TestEnvironmentStatus
from testenv.observe import SPEC_HASH, JobObservation, Observed, WorkloadObservation
from testenv.ordering import gating_seeds, seed_fills, seed_waits_for
from testenv.plan import PlanInput, plan
from testenv.settings import Settings

# The design guide's environment without its tests (tests/component/test_provisioning.py's
# GUIDE_ENVIRONMENT): two datastores, a stub, a service from an image, one copied from
# a staging Deployment, and a seed that gates the service on its datastore.
GUIDE: dict[str, Any] = {
    "lifecycle": {"activeDeadlineSeconds": 1800},
    "isolation": {"networkPolicy": True, "resourceQuota": {"cpu": "4", "memory": "8Gi", "pods": "30"}},
    "datastores": [
        {"name": "orders-db", "engine": "postgres", "version": "16", "database": "orders_test"},
        {"name": "cache", "engine": "redis", "version": "7"},
    ],
    "stubs": [
        {
            "name": "payment-gateway",
            "port": 8080,
            "mappings": [
                {
                    "request": {"method": "POST", "urlPath": "/charge"},
                    "response": {"status": 200, "jsonBody": {"status": "success"}, "fixedDelayMilliseconds": 50},
                }
            ],
        }
    ],
    "services": [
        {
            "name": "order-service",
            "image": "ghcr.io/acme/order-service:sha-abc123",
            "ports": [{"port": 80, "targetPort": 8080}],
            "env": [{"name": "PAYMENT_URL", "value": "http://payment-gateway:8080"}],
            "dependsOn": ["orders-db", "cache", "payment-gateway"],
            "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}},
        },
        {
            "name": "inventory-service",
            "copyFrom": {"namespace": COPY_SOURCE_NAMESPACE, "deployment": "inventory-service"},
            "image": "ghcr.io/acme/inventory-service:sha-def456",
        },
    ],
    "seed": [
        {
            "name": "schema",
            "datastore": "orders-db",
            "sql": "CREATE TABLE orders (id text primary key, status text, total numeric);",
        }
    ],
}

# Three components, no tests: the scale and idle-traffic environments.
SMALL: dict[str, Any] = {
    "datastores": [{"name": "cache", "engine": "redis", "version": "7"}],
    "stubs": [{"name": "payments", "port": 8080,
               "mappings": [{"request": {"method": "GET", "urlPath": "/ok"}, "response": {"status": 200}}]}],
    "services": [{"name": "app", "image": "ghcr.io/acme/app:1", "ports": [{"port": 80, "targetPort": 8080}],
                  "dependsOn": ["cache", "payments"]}],
}


# How KWOK ends a pod of the bench test bed (hack/testbed's stages): after
# DURATION ms, with EXIT's code and MESSAGE as its termination message; HANG never.
DURATION, EXIT, MESSAGE, HANG = (f"testenv.dev/simulate-{k}" for k in ("duration-ms", "exit-code",
                                                                        "termination-message", "hang"))


def kwok_suite(name: str, ms: int, *, fail: bool = False, **more: Any) -> dict[str, Any]:
    """A test suite whose pods KWOK ends after `ms` with 4 passed (or 1 failed)."""
    annotations = {DURATION: str(ms), MESSAGE: json.dumps({"passed": 0 if fail else 4, "failed": 1 if fail else 0})}
    if fail:
        annotations[EXIT] = "1"
    return {"name": name, "image": "ghcr.io/acme/tests:1", "podAnnotations": annotations, **more}


def order_flow(ttl_seconds: int = 1) -> dict[str, Any]:
    """examples/order-flow.yaml's spec (seeds, three suites, one sharded), with
    the copy source in the bench's namespace and a short TTL."""
    doc = yaml.safe_load((ROOT / "examples" / "order-flow.yaml").read_text())
    spec = copy.deepcopy(doc["spec"])
    spec["lifecycle"]["ttlSecondsAfterFinished"] = ttl_seconds
    for svc in spec["services"]:
        if "copyFrom" in svc:
            svc["copyFrom"]["namespace"] = COPY_SOURCE_NAMESPACE
    return spec


# --- the raw baseline ------------------------------------------------------------------------

RAW_MANAGED_BY = "testenv-bench-raw"


@dataclass
class Staged:
    """One object of the raw baseline and what must be ready before it is applied."""

    obj: dict[str, Any]
    needs_ready: frozenset[str] = frozenset()  # components whose Deployment must be ready
    needs_done: frozenset[str] = frozenset()  # seeds whose Job must have succeeded


@dataclass
class Rendered:
    objects: list[Staged] = field(default_factory=list)
    deployments: dict[str, str] = field(default_factory=dict)  # component -> Deployment name
    jobs: dict[str, str] = field(default_factory=dict)  # seed -> Job name
    rounds: int = 0


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def _relabel(value: Any) -> Any:
    """Not ours: the operator must neither index these objects nor sweep their
    namespace as an orphan. Only the managed-by label value changes."""
    if isinstance(value, dict):
        out = {k: _relabel(v) for k, v in value.items()}
        if out.get(LABEL_MANAGED_BY) == "testenv-operator":
            out[LABEL_MANAGED_BY] = RAW_MANAGED_BY
        return out
    if isinstance(value, list):
        return [_relabel(v) for v in value]
    return value


def render(spec_dict: dict[str, Any], env: EnvRef, settings: Settings, copy_sources: dict[str, Any]) -> Rendered:
    """Run the operator's planner against a fake cluster in which everything it
    asks for becomes ready at once, until it asks for nothing new: every object
    the operator would write, in the order it writes them. Each object's
    prerequisites come from the same ordering rules the planner follows."""
    spec = TestEnvironmentSpec.model_validate(spec_dict)
    fills = seed_fills(spec)
    components = {c.name: c for c in spec.components()}
    seeds = {s.name: s for s in spec.seed}
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    workloads: dict[str, WorkloadObservation] = {}
    jobs: dict[str, JobObservation] = {}
    previous = TestEnvironmentStatus()
    out = Rendered()
    seen: set[tuple[str, str, str, str]] = set()
    for round_ in range(50):
        observed = Observed(namespace_phase="Active", workloads=dict(workloads), jobs=dict(jobs),
                            copy_sources=copy_sources)
        result = plan(PlanInput(env=env, spec=spec, generation=1, previous=previous, observed=observed,
                                now=now, settings=settings))
        fresh = [o for o in [*result.apply, *result.create] if _key(o) not in seen]
        if not fresh:
            out.rounds = round_
            break
        for obj in fresh:
            seen.add(_key(obj))
            labels = obj["metadata"].get("labels") or {}
            name, kind = labels.get(LABEL_COMPONENT), labels.get(LABEL_KIND)
            needs_ready: set[str] = set()
            needs_done: set[str] = set()
            if name in components and kind != "seed":
                component = components[name]
                needs_ready = set(component.depends_on)
                needs_done = set(gating_seeds(spec, component, fills))
            elif name in seeds and kind == "seed":
                needs_ready = set(seed_waits_for(spec, seeds[name]))
                needs_done = set(seeds[name].needs)
            out.objects.append(Staged(_relabel(obj), frozenset(needs_ready), frozenset(needs_done)))
            if obj["kind"] == "Deployment":
                workloads[name] = WorkloadObservation(name=name, ready=True,
                                                      spec_hash=obj["metadata"]["annotations"][SPEC_HASH])
                out.deployments[name] = obj["metadata"]["name"]
            elif obj["kind"] == "Job":
                job_name = obj["metadata"]["name"]
                jobs[job_name] = JobObservation(name=job_name, component=name, kind=kind,
                                                run=int(labels.get(LABEL_RUN, "1")), phase=JobPhase.SUCCEEDED)
                if kind == "seed":
                    out.jobs[name] = job_name
        previous = result.status
    return out
