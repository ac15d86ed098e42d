"""One reconciliation of one TestEnvironment, in steps: gather what is
observed, plan (reading the results it asks for), keep results at the run's
end, act on the plan, write the status, post Events. Runs in a worker thread
(blocking I/O)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from . import metrics
from .build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_RUN, EnvRef, environment_namespace_name
from .build.copies import credential_refs
from .build.services import CopySource
from .diagnose import (
    MAX_LOG_BYTES,
    Diagnosis,
    PodOwner,
    diagnose_owners,
    grace_ends,
    log_key,
    rejected_apply,
    wants_log,
)
from .harvest import KeptLogs, RunBudget, harvest_job, keep_run_end
from .kube import Kube, StatusWrite, WriteOutcome, announce, event_name
from .models import (
    API_VERSION,
    FINISHED_PHASES,
    KIND,
    JobPhase,
    Phase,
    SuiteStatus,
    TestEnvironmentSpec,
    TestEnvironmentStatus,
    pattern_message,
)
from .observe import Observed, SuiteResult, images, suite_result
from .pacing import hold_status
from .plan import Admission, Plan, PlanInput, plan
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
    # The resourceVersion each of those writes was based on -> the one it
    # made (or a change to nothing planned from, see _write_onto_current):
    # a body that lags only by those is no stale view.
    own_versions: dict[str, str] = field(default_factory=dict)
    # Last log lines of failing containers by "<pod>/<container>", with the
    # time.monotonic() they were read: read again at most every LOG_REREAD.
    logs: dict[str, tuple[float, bytes | None]] = field(default_factory=dict)
    # Objects the API server refused, by owner: (kind, name, message, first refusal).
    rejected: dict[PodOwner, tuple[str, str, str, datetime]] = field(default_factory=dict)
    # Seed Jobs whose pods' results were kept; log tails kept, by run.
    harvested: set[str] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)  # pods stopped at the deadline or for an ending cause
    logs_kept: dict[int, KeptLogs] = field(default_factory=dict)
    run_budget: RunBudget | None = None

    def last_status(self, body_status: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """The newest status known: the one this process wrote, else the body's."""
        return self.status if self.status is not None else body_status or {}

    def based_on(self, body_version: str | None) -> str | None:
        """The resource's version once our own writes after `body_version` are counted."""
        version = body_version
        for _ in range(len(self.own_versions)):
            if version not in self.own_versions:
                break
            version = self.own_versions[version]
        return version

    def wrote(self, status: dict[str, Any], based_on: str | None, version: str | None) -> None:
        self.status, self.status_written_at = status, time.monotonic()
        self.passed_over(based_on, version)

    def passed_over(self, older: str | None, newer: str | None) -> None:
        """Nothing a pass plans from changed from `older` to `newer`: our own
        write, or kopf's bookkeeping in the metadata."""
        if older is not None and newer is not None and older != newer:
            self.own_versions[older] = newer
            while len(self.own_versions) > OWN_VERSIONS_KEPT:
                del self.own_versions[next(iter(self.own_versions))]

    def forget_written(self) -> None:
        """Someone else wrote the resource: plan from what the API server has."""
        self.status, self.own_versions = None, {}

    def budget(self, settings: Settings) -> RunBudget:
        if self.run_budget is None:
            self.run_budget = RunBudget(settings.results_max_run_bytes, settings.results_max_suite_bytes)
        return self.run_budget

    def results_of(self, run: int) -> dict[str, SuiteResult]:
        """Suites' results read for this run, by Job name (which ends in -r<run>)."""
        return {job: found for job, found in self.results.items() if job.endswith(f"-r{run}")}

    def stub_checks_of(self, run: int) -> dict[str, SuiteStatus]:
        return {stub: checked for (r, stub), checked in self.stub_checks.items() if r == run}


class StaleView(Exception):
    """The resource changed since the body this pass planned from; nothing
    was written. The caller goes on from the API's copy: `current`, when the
    pass read it already (`read`; None when it is gone), else read afresh."""

    def __init__(self, message: str, *, read: bool = False, current: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.read, self.current = read, current


LOG_REREAD = 30.0
# Enough for the writes one watch event may lag behind.
OWN_VERSIONS_KEPT = 8
# An apply the API server refused is tried again this soon (and on any change).
REJECTED_RETRY = 5.0
CLEARED_REPLAN = 0.2
# Expired results the store would not delete are tried again this soon.
FORGET_RETRY = 60.0
# Refusals that say what is wrong with the object or its namespace; anything
# else (a conflict, a server error, no connection) is retried as an error.
REFUSALS = frozenset({400, 403, 422})
# ...but for one 500: the API server answers an exhausted Service IP (or
# NodePort) range with InternalError "failed to allocate a serviceIP for
# Service "api": range is full" (seen on a real one, tests/component/
# test_service_range.py). It is about the object, and lasts.
ALLOCATION_FAILED = "failed to allocate"
# ...and another: server-side apply answers an object it cannot merge (a
# list keyed by name holding a name twice) with InternalError "failed to
# create typed patch object (...): duplicate entries for key" (found by
# fuzz_manifests.py). Also about the object, and lasting.
UNMERGEABLE = "failed to create typed patch object"


def _refused(exc: ApiException) -> bool:
    return exc.status in REFUSALS or (
        exc.status == 500 and any(words in _api_message(exc) for words in (ALLOCATION_FAILED, UNMERGEABLE))
    )


def _parse_spec(raw: Mapping[str, Any]) -> tuple[TestEnvironmentSpec, list[SpecError]]:
    try:
        return TestEnvironmentSpec.model_validate(dict(raw)), []
    except ValidationError as exc:
        # The CRD schema rejects nearly all of this at admission; what remains
        # (an older CRD, a rule only pydantic knows) is reported, not crashed on.
        errors = [
            SpecError("spec." + ".".join(str(p) for p in err["loc"]) if err["loc"] else "spec",
                      pattern_message(err) or err["msg"])
            for err in exc.errors()
        ]
        return TestEnvironmentSpec(), errors


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class _Pass:
    """One reconcile of one environment: the resource as read, what is observed
    of it (which grows as the pass reads more), and where it acts."""

    body: Mapping[str, Any]
    env: EnvRef
    generation: int
    spec: TestEnvironmentSpec
    errors: list[SpecError]
    previous: TestEnvironmentStatus
    run: int
    now: datetime
    observed: Observed
    kube: Kube
    settings: Settings
    memory: Memory
    admission: Admission
    store: ResultsStore | None

    @property
    def owner(self) -> Owner:
        return Owner(namespace=self.env.namespace, name=self.env.name, uid=self.env.uid)

    def budget(self) -> RunBudget:
        return self.memory.budget(self.settings)

    def plan(self) -> Plan:
        return plan(PlanInput(
            env=self.env, spec=self.spec, generation=self.generation, previous=self.previous,
            observed=self.observed, now=self.now, settings=self.settings, errors=self.errors, admission=self.admission,
        ))


def reconcile(
    body: Mapping[str, Any],
    observed: Observed,
    kube: Kube,
    settings: Settings,
    memory: Memory,
    admit: Callable[[str], Admission] = lambda phase: Admission(),
    store: ResultsStore | None = None,
) -> float | None:
    """One pass, in the steps below. Returns seconds until a time-driven change
    (a deadline, an expiry, a held status write), if any. `admit` says, from
    the environment's own phase, whether the concurrency limits let it start.
    Without a store, results are counted, not kept."""
    this = _gather(body, observed, kube, settings, memory, admit, store)
    pods_wake = _look_at_pods(this)
    result = _plan_reading_results(this)
    result = _keep_results_at_run_end(this, result)
    forgotten = _forget_expired_results(this, result)
    refused, cleared = _act_on_plan(this, result)
    collected = _collect_namespace(this, result)
    if _delete_resource_once_collected(this, result):
        return None
    wake_after = _next_wake(result, pods_wake, refused=refused, cleared=cleared)
    if not forgotten:
        wake_after = FORGET_RETRY if wake_after is None else min(wake_after, FORGET_RETRY)
    if held := _write_status(this, result, collected=collected):
        # Planned again from the same status when it is due; nothing is lost.
        return held if wake_after is None else min(wake_after, held)
    _post_events(this, result)
    metrics.observe_status(this.env.uid, this.previous, result.status)
    return wake_after


# --- observe ------------------------------------------------------------------------


def _gather(
    body: Mapping[str, Any], observed: Observed, kube: Kube, settings: Settings, memory: Memory,
    admit: Callable[[str], Admission], store: ResultsStore | None,
) -> _Pass:
    """The resource as this pass reads it, and what the planner needs beyond kopf's indexes."""
    meta = body["metadata"]
    namespace, name, uid, generation = meta["namespace"], meta["name"], meta["uid"], meta.get("generation", 1)
    target = environment_namespace_name(namespace=namespace, name=name, uid=uid, prefix=settings.namespace_prefix)
    previous = TestEnvironmentStatus.model_validate(memory.last_status(body.get("status")))
    spec, errors = _checked_spec(body.get("spec") or {}, settings)
    run = previous.run + (1 if previous.observed_generation != generation else 0)
    observed = _with_inputs(observed, spec, generation=generation, run=run, valid=not errors,
                            kube=kube, memory=memory, settings=settings)
    return _Pass(
        body=body, env=EnvRef(namespace=namespace, name=name, uid=uid, target_namespace=target),
        generation=generation, spec=spec, errors=errors, previous=previous, run=run, now=_now(), observed=observed,
        kube=kube, settings=settings, memory=memory, store=store,
        # From the status this process last wrote: the body lags our writes,
        # and an environment already provisioning must not queue again.
        admission=admit(previous.phase),
    )


def _checked_spec(raw: Mapping[str, Any], settings: Settings) -> tuple[TestEnvironmentSpec, list[SpecError]]:
    spec, errors = _parse_spec(raw)
    return spec, errors or validate(spec, settings.copy_allowlist, settings.copy_secrets)


def _with_inputs(
    observed: Observed, spec: TestEnvironmentSpec, *, generation: int, run: int, valid: bool,
    kube: Kube, memory: Memory, settings: Settings,
) -> Observed:
    """What nothing watches (copy sources, borrowed and pull Secrets: read
    only for a valid spec), and what earlier passes read of this run."""
    kept_logs = memory.logs_kept.get(run, KeptLogs())
    return replace(
        observed,
        copy_sources=_copy_sources(spec, generation, kube, memory, settings) if valid else {},
        credentials=_credentials(spec, generation, kube, memory) if valid else {},
        pull_secrets=_pull_secrets(settings, kube) if valid else {},
        results=memory.results_of(run),
        stub_checks=memory.stub_checks_of(run),
        logs_kept=kept_logs.count,
        log_notes=kept_logs.notes,
    )


def _look_at_pods(this: _Pass) -> float | None:
    """Why the run's pods do not come up, and its finished seeds' results
    kept; seconds until a cause that may still fix itself is taken as final.
    A spec in error or a run that is over has nothing to look at."""
    if this.errors or (this.previous.phase in FINISHED_PHASES and this.previous.run == this.run):
        return None
    wake = _pod_facts(this)
    _harvest_seeds(this)
    return wake


# --- plan, and read what it asks for --------------------------------------------------


def _plan_reading_results(this: _Pass) -> Plan:
    """Read what the plan asks for (finished suites' pods, stubs' requests)
    and plan again, so no half-known status (a finished suite without its
    counts) is ever written."""
    result = this.plan()
    if not (result.read_results or result.verify_stubs):
        return result
    for job_name in result.read_results:
        this.memory.results[job_name] = _read_suite(this, job_name)
    for stub_name in result.verify_stubs:
        this.memory.stub_checks[(result.status.run, stub_name)] = _verify(this.spec, stub_name, this.env, this.kube)
    this.observed = replace(
        this.observed, results=this.memory.results_of(this.run), stub_checks=this.memory.stub_checks_of(this.run))
    return this.plan()


def _read_suite(this: _Pass, job_name: str) -> SuiteResult:
    """A finished suite's counts from its pods, their results kept when there is a store."""
    pods = this.kube.job_pods(namespace=this.env.target_namespace, job=job_name)
    seen = this.observed.jobs[job_name]
    attempts = {} if this.store is None else harvest_job(
        this.kube, this.store, this.budget(), this.owner, this.run, seen, pods, namespace=this.env.target_namespace)
    return suite_result(pods, seen.phase, attempts)


# --- keep results ---------------------------------------------------------------------


def _keep_results_at_run_end(this: _Pass, result: Plan) -> Plan:
    """The run just ended: keep what failed containers said before the
    namespace goes (once per run), and plan again to count it."""
    previous, run, memory = this.previous, this.run, this.memory
    ended = result.status.phase in FINISHED_PHASES and (previous.run != run or previous.phase not in FINISHED_PHASES)
    if this.store is None or not ended or run in memory.logs_kept:
        return result
    status = result.status
    # A run cut short deletes its running Jobs next: what they said so far goes first.
    stopped = f"still running when the run ended {status.phase}: {status.message}" if status.phase in (
        Phase.TIMED_OUT, Phase.ERROR) else None
    kept = memory.logs_kept[run] = keep_run_end(
        this.kube, this.store, this.budget(), this.owner, run, this.observed.pods, this.env.target_namespace,
        stopped=stopped)
    if not (kept.count or kept.notes):
        return result
    this.observed = replace(this.observed, logs_kept=kept.count, log_notes=kept.notes)
    return this.plan()


def _forget_expired_results(this: _Pass, result: Plan) -> bool:
    """Delete the results the retention ended; False when the store refused
    (the status then does not say they are gone, and a later pass tries again)."""
    if this.store is None or not result.forget_results:
        return True
    try:
        this.store.forget(this.owner)
    except StoreError as exc:
        log.warning("expired results of %s/%s not deleted: %s", this.env.namespace, this.env.name, exc)
        if result.status.results is not None:
            result.status.results.expired = False
        return False
    return True


# --- act on the plan ------------------------------------------------------------------


def _act_on_plan(this: _Pass, result: Plan) -> tuple[bool, bool]:
    """Apply, create and delete what the plan says; whether the API server
    refused an object, and whether a refusal known before is over."""
    refused = False
    known = set(this.memory.rejected)
    # Created objects (Secrets: a datastore's, copied ones) go in as soon as
    # their namespace exists, before the workloads that name them.
    to_create = list(result.create)
    for obj in result.apply:
        refused = not _apply(this.kube, obj, this.memory, this.now) or refused
        if obj["kind"] == "Namespace":
            for created in to_create:
                this.kube.create_once(created)
            to_create = []
    for obj in to_create:
        this.kube.create_once(obj)
    for ref in result.delete:
        this.kube.delete(ref)
    for pod in result.stop_pods:
        if pod in this.memory.stopped:
            continue
        try:
            this.kube.stop_pod(namespace=this.env.target_namespace, name=pod)
        except ApiException as exc:  # tried again next pass; after the grace the Job just goes
            log.warning("pod %s/%s not stopped: %s", this.env.target_namespace, pod, exc.reason)
            continue
        this.memory.stopped.add(pod)
    return refused, bool(known - set(this.memory.rejected))


def _collect_namespace(this: _Pass, result: Plan) -> bool:
    """Whether this pass deleted the environment's namespace, as the plan asked."""
    if not result.collect_namespace or this.observed.namespace_phase in (None, "Terminating"):
        return False
    collected = this.kube.delete_namespace(this.env.target_namespace)
    if collected:
        metrics.collected(reason=str(result.status.phase))
    return collected


def _delete_resource_once_collected(this: _Pass, result: Plan) -> bool:
    """The namespace is gone; the record goes too, as configured. Whether it went."""
    if not (result.collect_namespace and this.settings.delete_resource_after_collection
            and this.observed.namespace_phase is None):
        return False
    this.kube.delete_environment(namespace=this.env.namespace, name=this.env.name)
    return True


def _next_wake(result: Plan, pods_wake: float | None, *, refused: bool, cleared: bool) -> float | None:
    """The plan's own wake-up, or sooner: a refused apply is retried; a
    refusal just over is planned again at once, since this pass's status
    was planned before the apply and still shows it, and nothing else may
    wake the environment (its Deployment may have been ready long since);
    a pod's cause may turn final while the run is on."""
    if cleared:
        return CLEARED_REPLAN
    if refused:
        pods_wake = REJECTED_RETRY if pods_wake is None else min(pods_wake, REJECTED_RETRY)
    if pods_wake is None or result.status.phase in FINISHED_PHASES:
        return result.wake_after
    return pods_wake if result.wake_after is None else min(result.wake_after, pods_wake)


# --- write the status, post Events ----------------------------------------------------


def _write_status(this: _Pass, result: Plan, *, collected: bool) -> float:
    """Write the planned status if it changed; seconds it is held back
    instead (pacing.py), 0 when written or unchanged."""
    status, before = result.status.wire(), this.previous.wire()
    if status == before:
        return 0.0
    memory = this.memory
    since = None if memory.status_written_at is None else time.monotonic() - memory.status_written_at
    # A collection is written at once too: planned again from the old
    # status, it would delete (and count) the namespace again.
    announced = bool(result.events or result.log_tails or collected)
    hold = hold_status(before, status, since_last_write=since, announces=announced)
    if hold:
        return hold
    planned = result.status.model_dump(by_alias=True, mode="json")
    # Only onto the version this pass planned from: a pass that outlived its
    # daemon, or a watch that lags a deletion, must not write over the
    # Terminating the delete handler wrote, nor finish a deleted run.
    based_on = memory.based_on(this.body["metadata"].get("resourceVersion"))
    written = this.kube.patch_status(
        namespace=this.env.namespace, name=this.env.name, status=planned, resource_version=based_on)
    if written.outcome == WriteOutcome.STALE:
        based_on, written = _write_onto_current(this, planned, stale=based_on)
    # Remembered once written, not before: a write that failed is tried again.
    memory.wrote(planned, based_on, written.resource_version)
    return 0.0


def _write_onto_current(
    this: _Pass, planned: dict[str, Any], *, stale: str | None
) -> tuple[str | None, StatusWrite]:
    """The resource changed after this pass read it. Most often that is kopf
    adding its finalizer to a new environment: nothing the plan was made
    from, so the plan holds and goes onto the version the API server has now
    (dropping it would skip a new environment's Provisioning and its Event).
    A change to what the plan was made from (a deletion, the delete
    handler's Terminating, a new spec, another replica's status) makes the
    whole pass stale."""
    where = f"{this.env.namespace}/{this.env.name}"
    try:
        current = this.kube.read_environment(namespace=this.env.namespace, name=this.env.name)
    except Exception as exc:  # the caller reads it again, or goes on from kopf's copy
        raise StaleView(f"{where} changed since version {stale}, and was not read again: {exc}") from exc
    if current is None or not _plans_from_the_same(this, current):
        raise StaleView(f"{where} changed since version {stale}", read=True, current=current)
    version = current["metadata"].get("resourceVersion")
    written = this.kube.patch_status(
        namespace=this.env.namespace, name=this.env.name, status=planned, resource_version=version)
    if written.outcome == WriteOutcome.STALE:
        raise StaleView(f"{where} changed since version {version}")
    this.memory.passed_over(stale, version)
    return version, written


def _plans_from_the_same(this: _Pass, current: Mapping[str, Any]) -> bool:
    """Whether `current` holds everything this pass planned from as it read it."""
    meta = current.get("metadata") or {}
    if meta.get("uid") != this.env.uid or meta.get("deletionTimestamp"):
        return False
    if meta.get("generation", 1) != this.generation or (current.get("spec") or {}) != (this.body.get("spec") or {}):
        return False
    try:
        status = TestEnvironmentStatus.model_validate(current.get("status") or {})
    except ValidationError:
        return False
    return status.wire() == this.previous.wire()


def _post_events(this: _Pass, result: Plan) -> None:
    for event in result.events:
        _announce(this, type=event.type, reason=event.reason, message=event.message[:1000])
    for job_name in result.log_tails:
        _post_log_tail(this, job_name)


def _announce(this: _Pass, *, type: str, reason: str, message: str) -> None:
    """One Event about the environment, named after what it announces: the
    status write it follows (the version it made), its reason and message.
    A post tried again, by us or by the HTTP client after a lost answer,
    then cannot announce the same thing twice."""
    version = this.memory.based_on(this.body["metadata"].get("resourceVersion"))
    announce(this.kube, _involved(this.body), type=type, reason=reason, message=message,
             name=event_name(this.env.name, this.env.uid, version, reason, message))


# --- the steps' parts -----------------------------------------------------------------


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
        if owner is None or not _refused(exc):
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


def _pod_facts(this: _Pass) -> float | None:
    """Why owners' pods do not come up, and the images they run, onto the
    observed state; seconds until the first cause that may still fix itself
    is taken as final."""
    owners = _pod_owners(this.spec, this.run)
    observed, memory, now = this.observed, this.memory, this.now
    memory.rejected = {o: r for o, r in memory.rejected.items() if o in owners}
    if not observed.pods and not observed.events and not memory.rejected:
        return None
    grace_seconds = this.spec.lifecycle.failure_grace_seconds
    grace = timedelta(seconds=this.settings.failure_grace_seconds if grace_seconds is None else grace_seconds)
    diagnoses = diagnose_owners(owners, observed.pods, observed.events, now=now, grace=grace)
    if wanted := [d for d in diagnoses.values() if wants_log(d)]:
        diagnoses = diagnose_owners(owners, observed.pods, observed.events, now=now, grace=grace,
                                    previous_logs=_failing_logs(this, wanted))
    for owner, (kind, name, message, since) in memory.rejected.items():
        # Nothing of the owner exists to tell more: its refusal is the reason.
        diagnoses[owner] = rejected_apply(kind, name, message, since=since, now=now, grace=grace)
    live = {log_key(pod=d.pod, container=d.container or "") for d in diagnoses.values()}
    for key in [k for k in memory.logs if k not in live]:
        del memory.logs[key]
    this.observed = replace(observed, diagnoses=diagnoses, images=images(observed.pods))
    ends = [end for d in diagnoses.values() if (end := grace_ends(d, grace)) is not None]
    return max(0.0, (min(ends) - now.replace(tzinfo=UTC)).total_seconds()) + 0.5 if ends else None


def _failing_logs(this: _Pass, wanted: list[Diagnosis]) -> dict[str, bytes]:
    """The last lines of failing containers' logs by log_key, each read
    again at most every LOG_REREAD."""
    logs = {}
    for diagnosis in wanted:
        key = log_key(pod=diagnosis.pod, container=diagnosis.container or "")
        read = this.memory.logs.get(key)
        if read is None or time.monotonic() - read[0] > LOG_REREAD:
            read = (time.monotonic(), this.kube.container_log(
                namespace=this.env.target_namespace, pod=diagnosis.pod, container=diagnosis.container or "",
                limit_bytes=MAX_LOG_BYTES))
            this.memory.logs[key] = read
        if read[1]:
            logs[key] = read[1]
    return logs


def _harvest_seeds(this: _Pass) -> None:
    """Keep each finished seed's results once (a seed's counts are not
    summed, so nothing waits for this)."""
    if this.store is None:
        return
    for seen in this.observed.jobs.values():
        if seen.kind != "seed" or seen.run != this.run or seen.phase == JobPhase.RUNNING:
            continue
        if seen.name in this.memory.harvested:
            continue
        pods = this.kube.job_pods(namespace=this.env.target_namespace, job=seen.name)
        harvest_job(this.kube, this.store, this.budget(), this.owner, this.run, seen, pods,
                    namespace=this.env.target_namespace)
        this.memory.harvested.add(seen.name)


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
            source = svc.copy_from
            memory.copy_sources[key] = kube.read_copy_source(
                namespace=source.namespace, deployment=source.deployment, rule=settings.copy_secrets.get(source.namespace)
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
            memory.credentials[key] = known = kube.read_secret(namespace=namespace, name=name)
        found[(namespace, name)] = known
    return found


def _pull_secrets(settings: Settings, kube: Kube) -> dict[str, dict[str, Any] | None]:
    """The configured pull Secrets as they are in the operator's namespace now."""
    return {
        name: kube.read_pull_secret(namespace=settings.operator_namespace, name=name)
        for name in settings.image_pull_secrets
    }


def _involved(body: Mapping[str, Any]) -> dict[str, Any]:
    """The environment as an Event's involvedObject names it. The loop's
    snapshot is plain data without a kind, and `kubectl describe` and
    `kubectl events --for` select an object's Events by kind, name and uid."""
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": body["metadata"]}


def _post_log_tail(this: _Pass, job: str) -> None:
    """The last log lines of a failed Job's last failed pod, as a Warning Event."""
    pods = this.kube.job_pods(namespace=this.env.target_namespace, job=job)
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    if not failed:
        return
    pod = failed[-1]
    name = pod["metadata"]["name"]
    tail = this.kube.log_tail(namespace=this.env.target_namespace, pod=name)
    if not tail:  # no kubelet logs (gone, or a simulated pod): the termination message is the next best
        states = [(c.get("state") or {}).get("terminated") or {} for c in pod["status"].get("containerStatuses") or []]
        tail = next((t["message"] for t in states if t.get("message")), "(no logs available)")
    _announce(this, type="Warning", reason="FailureLogs", message=f"{job} ({name}), last lines:\n{tail[-900:]}")


def _verify(spec: TestEnvironmentSpec, stub_name: str, env: EnvRef, kube: Kube) -> SuiteStatus:
    stub = next(s for s in spec.stubs if s.name == stub_name)
    admin, where = admin_request(kube, namespace=env.target_namespace, service=stub.name, port=stub.port)
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
