"""The environment's children as the planner sees them: small immutable
observations distilled from watched objects (kopf indexes) and pod results.
Pods and Warning Events are kept slimmed (what diagnosis and provenance read)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_RUN
from .build.services import CopySource
from .diagnose import Diagnosis, PodOwner, pod_owner, redacts
from .models import Counts, JobPhase, SuiteResults, SuiteStatus
from .results import MAX_FAILURES_LISTED, MAX_NOTES, AttemptResults, capped, last_pods

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
    reported: bool = False  # at least one pod wrote a summary or a report
    # What was kept of the last attempts (see results.py), for the status.
    kept: SuiteResults | None = None


@dataclass(frozen=True)
class Observed:
    namespace_phase: str | None = None  # None: not seen; "Active"; "Terminating"
    workloads: Mapping[str, WorkloadObservation] = field(default_factory=dict)
    jobs: Mapping[str, JobObservation] = field(default_factory=dict)
    results: Mapping[str, SuiteResult] = field(default_factory=dict)
    copy_sources: Mapping[str, CopySource | None] = field(default_factory=dict)
    # Secrets whose keys the spec borrows (env[].valueFrom), by (namespace, name); None: not found.
    credentials: Mapping[tuple[str, str], Mapping[str, Any] | None] = field(default_factory=dict)
    stub_checks: Mapping[str, SuiteStatus] = field(default_factory=dict)
    # Log tails of failed containers this run kept in the results store.
    logs_kept: int = 0
    # What was not kept of them, and why.
    log_notes: tuple[str, ...] = ()
    # The configured pull Secrets as read in the operator's namespace; None: not found.
    pull_secrets: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    # The environment's pods and the Warning Events of its namespace, slimmed.
    pods: tuple[Mapping[str, Any], ...] = ()
    events: tuple[Mapping[str, Any], ...] = ()
    # Derived from pods and events by the reconciler (diagnose.diagnose_owners, images).
    diagnoses: Mapping[PodOwner, Diagnosis] = field(default_factory=dict)
    images: Mapping[PodOwner, ImageRef] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageRef:
    """What a pod ran: the image it asked for and the digest the node resolved."""

    image: str | None
    digest: str | None = None


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


def suite_result(
    pods: Iterable[Mapping[str, Any]],
    job_phase: JobPhase,
    attempts: Mapping[str, AttemptResults] | None = None,
) -> SuiteResult:
    """Sum the real JUnit reports each shard's last attempt kept (`attempts`,
    by pod name), else the JSON summary in its termination message.

    With retries a shard may have several pods; only the last attempt of each
    shard (by completion index) counts. Without any summary the Job's outcome
    counts as one passed or failed test.
    """
    attempts = attempts or {}
    counts, reported = Counts(), False
    failures: list[str] = []
    for pod in last_pods(pods):
        kept = attempts.get(pod.get("metadata", {}).get("name", ""))
        if kept is not None and kept.counts is not None:
            reported = True
            counts = counts + kept.counts
            failures.extend(kept.failures)
            continue
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
    return SuiteResult(counts=counts, failures=tuple(capped(failures, MAX_FAILURES_LISTED, "failures")),
                       reported=reported,
                       kept=suite_results(attempts.values()) if attempts else None)


def exited_ok(pods: Iterable[Mapping[str, Any]], *, job: str, container: str) -> bool:
    """A pod of the Job has its `container` ended with exit code 0."""
    for pod in pods:
        if ((pod.get("metadata") or {}).get("labels") or {}).get("job-name") != job:
            continue
        for entry in (pod.get("status") or {}).get("containerStatuses") or []:
            ended = (entry.get("state") or {}).get("terminated") or {}
            if entry.get("name") == container and ended and ended.get("exitCode") == 0:
                return True
    return False


def timed_out(pods: Iterable[Mapping[str, Any]], job: str) -> bool:
    """An attempt of the Job was stopped at its deadline (its pod's activeDeadlineSeconds)."""
    return any(((p.get("metadata") or {}).get("labels") or {}).get("job-name") == job
               and (p.get("status") or {}).get("reason") == "DeadlineExceeded" for p in pods)


def suite_results(attempts: Iterable[AttemptResults]) -> SuiteResults:
    """What the status says was kept of a suite's attempts."""
    found = list(attempts)
    notes = capped([f"{a.label}: {note}" if len(found) > 1 else note for a in found for note in a.notes],
                   MAX_NOTES, "notes")
    return SuiteResults(
        attempts=len(found),
        files=sum(len(a.files) for a in found),
        reports=sum(len(a.reports) for a in found),
        bytes=sum(a.bytes for a in found),
        notes=notes,
    )


# --- pods and Events, slimmed for the indexes -------------------------------------

# Only what diagnosis and provenance read: a namespace's pods and Events are
# kept in memory for as long as they exist, every pod of every environment.
_POD_META = ("name", "namespace", "labels", "creationTimestamp", "deletionTimestamp")
_POD_STATUS = ("phase", "reason", "startTime", "conditions", "containerStatuses", "initContainerStatuses")
# Warning Events that say why pods do not come up (kubelet, scheduler, controllers).
DIAGNOSTIC_EVENTS = frozenset({"FailedCreate", "Unhealthy", "Failed", "FailedScheduling", "BackOff"})
MAX_EVENT_MESSAGE = 4000
# Strings up to this length are shared between pods (sys.intern): label keys
# and values, condition types, timestamps, images recur across a namespace's
# pods, while each watch event parses its own copies.
_SHARED_STRING = 64


def _slim_container(container: Mapping[str, Any]) -> dict[str, Any]:
    """Name and image; the env vars the redactor reads; the memory limit an
    OOM message names; whether there is a readiness probe (not the probe)."""
    slim = {k: container[k] for k in ("name", "image") if k in container}
    if env := [var for var in container.get("env") or [] if redacts(var)]:
        slim["env"] = env
    if memory := ((container.get("resources") or {}).get("limits") or {}).get("memory"):
        slim["resources"] = {"limits": {"memory": memory}}
    if container.get("readinessProbe") is not None:
        slim["readinessProbe"] = {}
    return slim


def _shared(value: Any) -> Any:
    if isinstance(value, dict):
        return {sys.intern(k): _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value]
    if isinstance(value, str) and len(value) <= _SHARED_STRING:
        return sys.intern(value)
    return value


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """The pod as the index keeps it: about a third of what its watch event
    parses to (bench/RESULTS.md, "A thousand environments")."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    slim_status = {k: v for k, v in status.items() if k in _POD_STATUS}
    if "conditions" in slim_status:
        slim_status["conditions"] = [{k: v for k, v in c.items() if v is not None and k != "lastProbeTime"}
                                     for c in slim_status["conditions"] or []]
    slim: dict[str, Any] = _shared({
        "metadata": {k: meta[k] for k in _POD_META if k in meta},
        "spec": {key: [_slim_container(c) for c in spec.get(key) or []] for key in ("initContainers", "containers")},
        "status": slim_status,
    })
    return slim


def slim_event(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Warning Event that diagnosis reads, or None (then it is not kept)."""
    if body.get("type") != "Warning" or body.get("reason") not in DIAGNOSTIC_EVENTS:
        return None
    meta = body.get("metadata") or {}
    slim = {k: body[k] for k in ("type", "reason", "involvedObject", "regarding", "firstTimestamp",
                                  "lastTimestamp", "eventTime", "series", "count") if body.get(k) is not None}
    slim["message"] = str(body.get("message") or body.get("note") or "")[:MAX_EVENT_MESSAGE]
    slim["metadata"] = {k: meta[k] for k in ("name", "namespace", "creationTimestamp") if k in meta}
    return slim


def _digest(image_id: str | None) -> str | None:
    """`registry/repo@sha256:...` (or a bare `sha256:...`) -> `sha256:...`."""
    if not image_id:
        return None
    _, at, digest = image_id.rpartition("@")
    digest = digest if at else image_id
    return digest if digest.startswith("sha") else None


def images(pods: Iterable[Mapping[str, Any]]) -> dict[PodOwner, ImageRef]:
    """Per owner, the image of its main (first) container in its newest pod,
    with the digest from the newest pod that has one resolved."""
    found: dict[PodOwner, ImageRef] = {}
    newest_first = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)
    for pod in newest_first:
        owner = pod_owner(pod)
        containers = (pod.get("spec") or {}).get("containers") or []
        if owner is None or not containers:
            continue
        main = containers[0]
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        seen: Mapping[str, Any] = next((c for c in statuses if c.get("name") == main.get("name")), {})
        ref = ImageRef(image=main.get("image") or seen.get("image"), digest=_digest(seen.get("imageID")))
        known = found.get(owner)
        resolves = known is not None and known.digest is None and ref.digest is not None and ref.image == known.image
        if known is None or resolves:
            found[owner] = ref
    return found
