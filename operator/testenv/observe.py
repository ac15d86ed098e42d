"""The environment's children as the planner sees them: small immutable
observations distilled from watched objects (kopf indexes) and pod results."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_RUN
from .build.services import CopySource
from .models import Counts, JobPhase, SuiteStatus

SPEC_HASH = "testenv.dev/spec-hash"


@dataclass(frozen=True)
class WorkloadObservation:
    name: str
    ready: bool
    spec_hash: str | None
    message: str = ""


@dataclass(frozen=True)
class JobObservation:
    name: str
    component: str  # the seed or suite
    kind: str  # "seed" or "test"
    run: int
    phase: JobPhase
    reason: str = ""
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None


@dataclass(frozen=True)
class SuiteResult:
    """Counts summed over a finished Job's pods."""

    counts: Counts
    failures: tuple[str, ...] = ()
    reported: bool = False  # at least one pod wrote a summary


@dataclass(frozen=True)
class Observed:
    namespace_phase: str | None = None  # None: not seen; "Active"; "Terminating"
    workloads: Mapping[str, WorkloadObservation] = field(default_factory=dict)
    jobs: Mapping[str, JobObservation] = field(default_factory=dict)
    results: Mapping[str, SuiteResult] = field(default_factory=dict)
    copy_sources: Mapping[str, CopySource | None] = field(default_factory=dict)
    stub_checks: Mapping[str, SuiteStatus] = field(default_factory=dict)
    # The configured pull Secrets as read in the operator's namespace; None: not found.
    pull_secrets: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)


def _labels(body: Mapping[str, Any]) -> Mapping[str, str]:
    return body.get("metadata", {}).get("labels") or {}


def workload(body: Mapping[str, Any]) -> WorkloadObservation:
    """A Deployment is ready when its current spec is rolled out and every replica is ready."""
    meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status") or {}
    want = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0) or 0
    updated = status.get("updatedReplicas", 0) or 0
    total = status.get("replicas", 0) or 0  # old pods of a rollout count here, not in updated
    current = (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0)
    message = f"{ready}/{want} replicas ready"
    for condition in status.get("conditions") or []:
        # Pods the API refuses (Pod Security, quota) show up only here.
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            message += f"; {condition.get('message', 'pods cannot be created')}"
    return WorkloadObservation(
        name=_labels(body).get(LABEL_COMPONENT, meta.get("name", "")),
        ready=current and ready >= want and updated >= want and total <= updated,
        spec_hash=(meta.get("annotations") or {}).get(SPEC_HASH),
        message=message,
    )


def job(body: Mapping[str, Any]) -> JobObservation:
    meta, status = body.get("metadata", {}), body.get("status") or {}
    labels = _labels(body)
    phase, reason, message = JobPhase.RUNNING, "", ""
    ended = status.get("completionTime")  # set on success only
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            phase = JobPhase.SUCCEEDED
        elif condition.get("type") == "Failed":
            phase, reason, message = JobPhase.FAILED, condition.get("reason", ""), condition.get("message", "")
            ended = ended or condition.get("lastTransitionTime")
    return JobObservation(
        name=meta.get("name", ""),
        component=labels.get(LABEL_COMPONENT, ""),
        kind=labels.get(LABEL_KIND, ""),
        run=int(labels.get(LABEL_RUN, "0") or 0),
        phase=phase,
        reason=reason,
        message=message,
        start_time=status.get("startTime"),
        completion_time=ended,
    )


def _summary(message: str | None) -> dict[str, Any] | None:
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    keys = ("passed", "failed", "skipped")
    if not isinstance(data, dict) or not any(k in data for k in keys):
        return None
    # A malformed summary is treated as none, never allowed to break a reconcile.
    if any(not isinstance(data.get(k, 0), int) or isinstance(data.get(k, 0), bool) or data.get(k, 0) < 0
           for k in keys):
        return None
    return data


def suite_result(pods: Iterable[Mapping[str, Any]], job_phase: JobPhase) -> SuiteResult:
    """Sum the JSON summaries in the pods' termination messages.

    With retries a shard may have several pods; only the last attempt of each
    shard (by completion index) counts. Without any summary the Job's outcome
    counts as one passed or failed test.
    """
    last_per_shard: dict[str, Mapping[str, Any]] = {}
    for pod in sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp") or ""):
        annotations = pod.get("metadata", {}).get("annotations") or {}
        shard = annotations.get("batch.kubernetes.io/job-completion-index", "0")
        last_per_shard[shard] = pod
    counts, failures, reported = Counts(), [], False
    for pod in last_per_shard.values():
        summary = next(
            (
                found
                for status in (pod.get("status") or {}).get("containerStatuses") or []
                if (found := _summary(((status.get("state") or {}).get("terminated") or {}).get("message")))
            ),
            None,
        )
        if summary is None:
            # This shard said nothing: its own outcome counts as one test.
            if (pod.get("status") or {}).get("phase") == "Failed":
                counts = counts + Counts(failed=1)
            elif (pod.get("status") or {}).get("phase") == "Succeeded":
                counts = counts + Counts(passed=1)
            continue
        reported = True
        counts = counts + Counts(
            passed=summary.get("passed", 0), failed=summary.get("failed", 0), skipped=summary.get("skipped", 0)
        )
        failures.extend(str(f) for f in summary.get("failures") or [])
    if not reported and counts == Counts():
        counts = Counts(passed=1) if job_phase == JobPhase.SUCCEEDED else Counts(failed=1)
    return SuiteResult(counts=counts, failures=tuple(failures), reported=reported)
