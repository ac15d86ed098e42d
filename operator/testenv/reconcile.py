"""One reconciliation of one TestEnvironment: gather what is observed, plan,
act on the plan, write the status. Runs in a worker thread (blocking I/O)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf
from pydantic import ValidationError

from . import metrics
from .build.common import EnvRef, environment_namespace_name
from .build.services import CopySource
from .kube import Kube
from .models import (
    FINISHED_PHASES,
    JobPhase,
    Phase,
    SuiteStatus,
    TestEnvironmentSpec,
    TestEnvironmentStatus,
)
from .observe import Observed, SuiteResult, suite_result
from .pacing import hold_status
from .plan import Admission, PlanInput, plan
from .settings import Settings
from .stubverify import verify_stub
from .validate import SpecError, validate

log = logging.getLogger(__name__)


@dataclass
class Memory:
    """Per-environment facts learned by reading, kept so they are read once."""

    copy_sources: dict[tuple[int, str], CopySource | None] = field(default_factory=dict)
    results: dict[str, SuiteResult] = field(default_factory=dict)
    stub_checks: dict[tuple[int, str], SuiteStatus] = field(default_factory=dict)
    # The status this process last wrote. The body kopf hands over may not
    # show it yet (its watch event can lag), and planning from an older
    # status would repeat phase Events or even count a run twice.
    status: dict[str, Any] | None = None
    status_written_at: float | None = None  # time.monotonic() of that write


def _parse_spec(raw: Mapping[str, Any]) -> tuple[TestEnvironmentSpec, list[SpecError]]:
    try:
        return TestEnvironmentSpec.model_validate(dict(raw)), []
    except ValidationError as exc:
        # The CRD schema rejects nearly all of this at admission; what remains
        # (an older CRD, a rule only pydantic knows) is reported, not crashed on.
        errors = [
            SpecError("spec." + ".".join(str(p) for p in err["loc"]) if err["loc"] else "spec", err["msg"])
            for err in exc.errors()
        ]
        return TestEnvironmentSpec(), errors


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def reconcile(
    body: Mapping[str, Any],
    observed: Observed,
    kube: Kube,
    settings: Settings,
    memory: Memory,
    admission: Admission = Admission(),
) -> float | None:
    """Returns seconds until a time-driven change (a deadline, an expiry, a held
    status write), if any."""
    meta = body["metadata"]
    name, namespace, uid, generation = meta["name"], meta["namespace"], meta["uid"], meta.get("generation", 1)
    env = EnvRef(
        name=name,
        namespace=namespace,
        uid=uid,
        target_namespace=environment_namespace_name(name, namespace, uid, settings.namespace_prefix),
    )
    written = memory.status if memory.status is not None else body.get("status") or {}
    previous = TestEnvironmentStatus.model_validate(written)
    spec, errors = _parse_spec(body.get("spec") or {})
    if not errors:
        errors = validate(spec, settings.copy_allowlist)

    run = previous.run + (1 if previous.observed_generation != generation else 0)
    observed = replace(
        observed,
        copy_sources=_copy_sources(spec, generation, kube, memory) if not errors else {},
        pull_secrets=_pull_secrets(settings, kube) if not errors else {},
        results={k: v for k, v in memory.results.items() if k.endswith(f"-r{run}")},
        stub_checks={stub: s for (r, stub), s in memory.stub_checks.items() if r == run},
    )
    def planned() -> Any:
        return plan(
            PlanInput(
                env=env,
                spec=spec,
                generation=generation,
                previous=previous,
                observed=observed,
                now=now,
                settings=settings,
                errors=errors,
                admission=admission,
            )
        )

    now = _now()
    result = planned()
    if result.read_results or result.verify_stubs:
        # Read what the plan asked for and plan again, so no half-known
        # status (a finished suite without its counts) is ever written.
        for job_name in result.read_results:
            pods = kube.job_pods(env.target_namespace, job_name)
            memory.results[job_name] = suite_result(pods, observed.jobs[job_name].phase)
        for stub_name in result.verify_stubs:
            memory.stub_checks[(result.status.run, stub_name)] = _verify(spec, stub_name, env, settings)
        observed = replace(
            observed,
            results={k: v for k, v in memory.results.items() if k.endswith(f"-r{run}")},
            stub_checks={stub: s for (r, stub), s in memory.stub_checks.items() if r == run},
        )
        result = planned()

    for obj in result.apply:
        kube.apply(obj)
    for obj in result.create:
        kube.create_once(obj)
    for ref in result.delete:
        kube.delete(ref)
    collected = False
    if result.collect_namespace and observed.namespace_phase not in (None, "Terminating"):
        collected = kube.delete_namespace(env.target_namespace)
        if collected:
            metrics.collected(reason=str(result.status.phase))
    if result.collect_namespace and settings.delete_resource_after_collection and observed.namespace_phase is None:
        # The namespace is gone; the record goes too, as configured.
        kube.delete_environment(namespace, name)
        return None

    wake_after = result.wake_after
    status, before = result.status.wire(), previous.wire()
    if status != before:
        since = None if memory.status_written_at is None else time.monotonic() - memory.status_written_at
        # A collection is written at once too: planned again from the old
        # status, it would delete (and count) the namespace again.
        announced = bool(result.events or result.log_tails or collected)
        hold = hold_status(before, status, since_last_write=since, announces=announced)
        if hold:
            # Planned again from the same status when it is due; nothing is lost.
            return hold if wake_after is None else min(wake_after, hold)
        memory.status = result.status.model_dump(by_alias=True, mode="json")
        kube.patch_status(namespace, name, memory.status)
        memory.status_written_at = time.monotonic()
    for event in result.events:
        kopf.event(dict(body), type=event.type, reason=event.reason, message=event.message[:1000])
    for job_name in result.log_tails:
        _post_log_tail(body, kube, env.target_namespace, job_name)
    metrics.observe_status(uid, previous, result.status)
    return wake_after


def _copy_sources(
    spec: TestEnvironmentSpec, generation: int, kube: Kube, memory: Memory
) -> dict[str, CopySource | None]:
    sources = {}
    for svc in spec.services:
        if svc.copy_from is None:
            continue
        key = (generation, svc.name)
        if memory.copy_sources.get(key) is None:
            # A missing source is read again next time: it may appear.
            memory.copy_sources[key] = kube.read_copy_source(svc.copy_from.namespace, svc.copy_from.deployment)
        sources[svc.name] = memory.copy_sources[key]
    return sources


def _pull_secrets(settings: Settings, kube: Kube) -> dict[str, dict[str, Any] | None]:
    """The configured pull Secrets as they are in the operator's namespace now."""
    return {
        name: kube.read_pull_secret(settings.operator_namespace, name) for name in settings.image_pull_secrets
    }


def _post_log_tail(body: Mapping[str, Any], kube: Kube, namespace: str, job: str) -> None:
    """The last log lines of a failed Job's last failed pod, as a Warning Event."""
    pods = kube.job_pods(namespace, job)
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    if not failed:
        return
    pod = failed[-1]
    name = pod["metadata"]["name"]
    tail = kube.log_tail(namespace, name)
    if not tail:  # no kubelet logs (gone, or a simulated pod): the termination message is the next best
        states = [(c.get("state") or {}).get("terminated") or {} for c in pod["status"].get("containerStatuses") or []]
        tail = next((t["message"] for t in states if t.get("message")), "(no logs available)")
    kopf.event(dict(body), type="Warning", reason="FailureLogs", message=f"{job} ({name}), last lines:\n{tail[-900:]}")


def _verify(spec: TestEnvironmentSpec, stub_name: str, env: EnvRef, settings: Settings) -> SuiteStatus:
    stub = next(s for s in spec.stubs if s.name == stub_name)
    base_url = f"http://{stub.name}.{env.target_namespace}.svc:{stub.port}"

    async def check() -> SuiteStatus:
        async with httpx.AsyncClient(timeout=10) as client:
            return await verify_stub(client, base_url, stub)

    try:
        return asyncio.run(check())
    except httpx.HTTPError as exc:
        return SuiteStatus(
            name=f"stubs/{stub.name}",
            phase=JobPhase.FAILED,
            failed=len(stub.verify),
            message=f"could not reach the stub's admin API at {base_url}: {exc.__class__.__name__}",
        )


def is_finished(status: Mapping[str, Any] | None) -> bool:
    return bool(status) and status.get("phase") in {str(p) for p in FINISHED_PHASES}


__all__ = ["Memory", "reconcile", "is_finished", "Phase"]
