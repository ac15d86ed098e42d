"""One reconciliation of one TestEnvironment: gather what is observed, plan,
act on the plan, write the status. Runs in a worker thread (blocking I/O)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from . import metrics
from .build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_RUN, EnvRef, environment_namespace_name
from .build.copies import credential_refs
from .build.services import CopySource
from .diagnose import (
    MAX_LOG_BYTES,
    PodOwner,
    diagnose_owners,
    grace_ends,
    log_key,
    rejected_apply,
    wants_log,
)
from .harvest import RunBudget, harvest_job, keep_run_end
from .kube import Kube
from .models import (
    FINISHED_PHASES,
    JobPhase,
    Phase,
    SuiteStatus,
    TestEnvironmentSpec,
    TestEnvironmentStatus,
)
from .observe import Observed, SuiteResult, images, suite_result
from .pacing import hold_status
from .plan import Admission, PlanInput, plan
from .results import Owner
from .resultstore import ResultsStore, StoreError
from .settings import Settings
from .stubaccess import admin_request
from .stubverify import StubUnreachable, verify_stub
from .validate import SpecError, validate

log = logging.getLogger(__name__)


@dataclass
class Memory:
    """Per-environment facts learned by reading, kept so they are read once."""

    copy_sources: dict[tuple[int, str], CopySource | None] = field(default_factory=dict)
    # Secrets whose keys a spec borrows, by (generation, namespace, name).
    credentials: dict[tuple[int, str, str], dict[str, Any] | None] = field(default_factory=dict)
    results: dict[str, SuiteResult] = field(default_factory=dict)
    stub_checks: dict[tuple[int, str], SuiteStatus] = field(default_factory=dict)
    # The status this process last wrote. The body kopf hands over may not
    # show it yet (its watch event can lag), and planning from an older
    # status would repeat phase Events or even count a run twice.
    status: dict[str, Any] | None = None
    status_written_at: float | None = None  # time.monotonic() of that write
    # Last log lines of failing containers by "<pod>/<container>", with the
    # time.monotonic() they were read: read again at most every LOG_REREAD.
    logs: dict[str, tuple[float, bytes | None]] = field(default_factory=dict)
    # Objects the API server refused, by owner: (kind, name, message, first refusal).
    rejected: dict[PodOwner, tuple[str, str, str, datetime]] = field(default_factory=dict)
    # Seed Jobs whose pods' results were kept; log tails kept, by run.
    harvested: set[str] = field(default_factory=set)
    logs_kept: dict[int, int] = field(default_factory=dict)
    run_budget: RunBudget | None = None

    def budget(self, settings: Settings) -> RunBudget:
        if self.run_budget is None:
            self.run_budget = RunBudget(settings.results_max_run_bytes)
        return self.run_budget


LOG_REREAD = 30.0
# An apply the API server refused is tried again this soon (and on any change).
REJECTED_RETRY = 5.0
# Refusals that say what is wrong with the object or its namespace; anything
# else (a conflict, a server error, no connection) is retried as an error.
REFUSALS = frozenset({400, 403, 422})


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
    store: ResultsStore | None = None,
) -> float | None:
    """Returns seconds until a time-driven change (a deadline, an expiry, a held
    status write), if any. Without a store, results are counted, not kept."""
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
        errors = validate(spec, settings.copy_allowlist, settings.copy_secrets)

    run = previous.run + (1 if previous.observed_generation != generation else 0)
    observed = replace(
        observed,
        copy_sources=_copy_sources(spec, generation, kube, memory, settings) if not errors else {},
        credentials=_credentials(spec, generation, kube, memory) if not errors else {},
        pull_secrets=_pull_secrets(settings, kube) if not errors else {},
        results={k: v for k, v in memory.results.items() if k.endswith(f"-r{run}")},
        stub_checks={stub: s for (r, stub), s in memory.stub_checks.items() if r == run},
        logs_kept=memory.logs_kept.get(run, 0),
    )
    owner = Owner(namespace, name, uid)
    now = _now()
    pods_wake = None
    if not errors and not (previous.phase in FINISHED_PHASES and previous.run == run):
        observed, pods_wake = _pod_facts(spec, run, observed, now, env.target_namespace, settings, kube, memory)
        if store is not None:
            _harvest_seeds(observed, run, env.target_namespace, kube, store, owner, memory, memory.budget(settings))

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

    result = planned()
    if result.read_results or result.verify_stubs:
        # Read what the plan asked for and plan again, so no half-known
        # status (a finished suite without its counts) is ever written.
        for job_name in result.read_results:
            pods = kube.job_pods(env.target_namespace, job_name)
            seen = observed.jobs[job_name]
            attempts = {} if store is None else harvest_job(
                kube, store, memory.budget(settings), owner, run, seen, pods, env.target_namespace)
            memory.results[job_name] = suite_result(pods, seen.phase, attempts)
        for stub_name in result.verify_stubs:
            memory.stub_checks[(result.status.run, stub_name)] = _verify(spec, stub_name, env, kube)
        observed = replace(
            observed,
            results={k: v for k, v in memory.results.items() if k.endswith(f"-r{run}")},
            stub_checks={stub: s for (r, stub), s in memory.stub_checks.items() if r == run},
        )
        result = planned()
    ended = result.status.phase in FINISHED_PHASES and (previous.run != run or previous.phase not in FINISHED_PHASES)
    if store is not None and ended and run not in memory.logs_kept:
        memory.logs_kept[run] = keep_run_end(kube, store, memory.budget(settings), owner, run, observed.pods,
                                             env.target_namespace)
        if memory.logs_kept[run]:
            observed = replace(observed, logs_kept=memory.logs_kept[run])
            result = planned()
    if store is not None and result.forget_results:
        try:
            store.forget(owner)
        except StoreError as exc:
            log.warning("expired results of %s/%s not deleted: %s", namespace, name, exc)

    refused = False
    # Created objects (Secrets: a datastore's, copied ones) go in as soon as
    # their namespace exists, before the workloads that name them.
    to_create = list(result.create)
    for obj in result.apply:
        refused = not _apply(kube, obj, memory, now) or refused
        if obj["kind"] == "Namespace":
            for created in to_create:
                kube.create_once(created)
            to_create = []
    for obj in to_create:
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
    if refused:
        pods_wake = REJECTED_RETRY if pods_wake is None else min(pods_wake, REJECTED_RETRY)
    if pods_wake is not None and result.status.phase not in FINISHED_PHASES:
        wake_after = pods_wake if wake_after is None else min(wake_after, pods_wake)
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
        kopf.event(_kopf_body(body), type=event.type, reason=event.reason, message=event.message[:1000])
    for job_name in result.log_tails:
        _post_log_tail(body, kube, env.target_namespace, job_name)
    metrics.observe_status(uid, previous, result.status)
    return wake_after


def _owner_of(obj: Mapping[str, Any]) -> PodOwner | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    kind, name, run = labels.get(LABEL_KIND), labels.get(LABEL_COMPONENT), labels.get(LABEL_RUN)
    if not kind or not name:
        return None
    return PodOwner(kind, name, int(run) if run and run.isdigit() else None)


def _apply(kube: Kube, obj: dict[str, Any], memory: Memory, now: datetime) -> bool:
    """Apply one object; a refusal of a component's, seed's or suite's object
    is remembered as its reason instead of failing the whole reconcile."""
    owner = _owner_of(obj)
    try:
        kube.apply(obj)
    except ApiException as exc:
        if owner is None or exc.status not in REFUSALS:
            raise
        message = _api_message(exc)
        log.warning("the API server refused %s %s: %s", obj["kind"], obj["metadata"]["name"], message)
        first = memory.rejected.get(owner)
        memory.rejected[owner] = (obj["kind"], obj["metadata"]["name"], message, first[3] if first else now)
        return False
    if owner is not None and (known := memory.rejected.get(owner)) and known[:2] == (obj["kind"], obj["metadata"]["name"]):
        del memory.rejected[owner]
    return True


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason or exc.status)


def _pod_owners(spec: TestEnvironmentSpec, run: int) -> list[PodOwner]:
    """Whose pods the run has: every component, and its run's seeds and suites."""
    owners = [PodOwner(kind, c.name) for kind, items in
              (("datastore", spec.datastores), ("stub", spec.stubs), ("service", spec.services)) for c in items]
    owners += [PodOwner("seed", s.name, run) for s in spec.seed]
    owners += [PodOwner("test", t.name, run) for t in spec.tests]
    return owners


def _pod_facts(
    spec: TestEnvironmentSpec, run: int, observed: Observed, now: datetime, namespace: str,
    settings: Settings, kube: Kube, memory: Memory,
) -> tuple[Observed, float | None]:
    """Why owners' pods do not come up, and the images they run; and seconds
    until the first cause that may still fix itself is taken as final."""
    owners = _pod_owners(spec, run)
    memory.rejected = {o: r for o, r in memory.rejected.items() if o in owners}
    if not observed.pods and not observed.events and not memory.rejected:
        return observed, None
    grace_seconds = spec.lifecycle.failure_grace_seconds
    grace = timedelta(seconds=settings.failure_grace_seconds if grace_seconds is None else grace_seconds)
    diagnoses = diagnose_owners(owners, observed.pods, observed.events, now=now, grace=grace)
    wanted = [d for d in diagnoses.values() if wants_log(d)]
    if wanted:
        logs = {}
        for diagnosis in wanted:
            key = log_key(diagnosis.pod, diagnosis.container or "")
            read = memory.logs.get(key)
            if read is None or time.monotonic() - read[0] > LOG_REREAD:
                read = (time.monotonic(), kube.container_log(namespace, diagnosis.pod, diagnosis.container or "",
                                                             MAX_LOG_BYTES))
                memory.logs[key] = read
            if read[1]:
                logs[key] = read[1]
        diagnoses = diagnose_owners(owners, observed.pods, observed.events, now=now, grace=grace,
                                    previous_logs=logs)
    for owner, (kind, name, message, since) in memory.rejected.items():
        # Nothing of the owner exists to tell more: its refusal is the reason.
        diagnoses[owner] = rejected_apply(kind, name, message, since=since, now=now, grace=grace)
    live = {log_key(d.pod, d.container or "") for d in diagnoses.values()}
    for key in [k for k in memory.logs if k not in live]:
        del memory.logs[key]
    ends = [end for d in diagnoses.values() if (end := grace_ends(d, grace)) is not None]
    wake = None
    if ends:
        wake = max(0.0, (min(ends) - now.replace(tzinfo=UTC)).total_seconds()) + 0.5
    return replace(observed, diagnoses=diagnoses, images=images(observed.pods)), wake


def _harvest_seeds(
    observed: Observed, run: int, namespace: str, kube: Kube, store: ResultsStore, owner: Owner, memory: Memory,
    budget: RunBudget,
) -> None:
    """Keep each finished seed's results once (a seed's counts are not
    summed, so nothing waits for this)."""
    for seen in observed.jobs.values():
        if seen.kind != "seed" or seen.run != run or seen.phase == JobPhase.RUNNING or seen.name in memory.harvested:
            continue
        pods = kube.job_pods(namespace, seen.name)
        harvest_job(kube, store, budget, owner, run, seen, pods, namespace)
        memory.harvested.add(seen.name)


def _copy_sources(
    spec: TestEnvironmentSpec, generation: int, kube: Kube, memory: Memory, settings: Settings
) -> dict[str, CopySource | None]:
    """Read once per run (generation): a source changed in between is copied
    again by the next run, not under a running one."""
    sources = {}
    for svc in spec.services:
        if svc.copy_from is None:
            continue
        key = (generation, svc.name)
        known = memory.copy_sources.get(key)
        if known is None or not known.complete:
            # A missing source (or a ConfigMap or Secret it needs) is read
            # again next time: it may appear.
            memory.copy_sources[key] = kube.read_copy_source(
                svc.copy_from.namespace, svc.copy_from.deployment, settings.copy_secrets.get(svc.copy_from.namespace)
            )
        sources[svc.name] = memory.copy_sources[key]
    return sources


def _credentials(
    spec: TestEnvironmentSpec, generation: int, kube: Kube, memory: Memory
) -> dict[tuple[str, str], dict[str, Any] | None]:
    """The Secrets whose keys the spec borrows (validated as allowed), read
    once per run; one that is missing, or lacks a key, is read again next time."""
    wanted: dict[tuple[str, str], set[str]] = {}
    env_lists = [s.env for s in spec.services] + [s.env for s in spec.seed] + [t.env for t in spec.tests]
    for env in env_lists:
        for ref in credential_refs(env):
            wanted.setdefault((ref.namespace, ref.name), set()).add(ref.key)
    found: dict[tuple[str, str], dict[str, Any] | None] = {}
    for (namespace, name), keys in wanted.items():
        key = (generation, namespace, name)
        known = memory.credentials.get(key)
        if known is None or not keys <= set(known.get("data") or {}):
            memory.credentials[key] = known = kube.read_secret(namespace, name)
        found[(namespace, name)] = known
    return found


def _pull_secrets(settings: Settings, kube: Kube) -> dict[str, dict[str, Any] | None]:
    """The configured pull Secrets as they are in the operator's namespace now."""
    return {
        name: kube.read_pull_secret(settings.operator_namespace, name) for name in settings.image_pull_secrets
    }


def _kopf_body(body: Mapping[str, Any]) -> kopf.Body:
    """The environment as kopf's own view of an object, which is what it posts Events for;
    the snapshot the loop hands over is that object as plain data."""
    return kopf.Body(cast(kopf.RawBody, dict(body)))


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
    kopf.event(_kopf_body(body), type="Warning", reason="FailureLogs",
               message=f"{job} ({name}), last lines:\n{tail[-900:]}")


def _verify(spec: TestEnvironmentSpec, stub_name: str, env: EnvRef, kube: Kube) -> SuiteStatus:
    stub = next(s for s in spec.stubs if s.name == stub_name)
    admin, where = admin_request(kube, env.target_namespace, stub.name, stub.port)
    try:
        return verify_stub(admin, stub)
    except StubUnreachable as exc:
        return SuiteStatus(
            name=f"stubs/{stub.name}",
            phase=JobPhase.FAILED,
            failed=len(stub.verify),
            message=f"could not reach the stub's admin API at {where}: {exc}",
        )


def is_finished(status: Mapping[str, Any] | None) -> bool:
    return status is not None and bool(status) and status.get("phase") in {str(p) for p in FINISHED_PHASES}


__all__ = ["Memory", "reconcile", "is_finished", "Phase"]
