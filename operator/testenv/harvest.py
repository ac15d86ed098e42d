"""Reading what a run leaves in its pods before the namespace goes: each
finished seed or suite pod's collector archive, and the log tails of the
containers that failed. Both go to the results store (resultstore.py).

Nothing read here is trusted: the archive is unframed, checked and unpacked
in memory (collect.py), and whatever is wrong becomes a note on the suite's
status, never an exception out of a reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from .build.common import LABEL_RUN
from .collect import COLLECTOR_CONTAINER, MAX_TOTAL_BYTES, CollectError, human_size, unframe, unpack
from .observe import JobObservation
from .results import (
    LOG_TAIL_BYTES,
    AttemptResults,
    LogTail,
    Owner,
    archive_key,
    attempt_results,
    log_key,
    shard_and_attempt,
)
from .resultstore import ResultsStore, StoreError


class LogApi(Protocol):
    """What harvesting asks of the Kubernetes API (kube.Kube is one): logs."""

    def read_log(
        self, *, namespace: str, pod: str, container: str, tail_lines: int | None = None, previous: bool = False,
    ) -> bytes: ...


log = logging.getLogger(__name__)

# A log tail is the end of at most this many lines.
LOG_LINES = 5000
# A log that cannot be had: the pod or container is gone (400, 404), the
# operator may not read it (403), or the API server cannot reach the
# kubelet (500; KWOK's pods have no kubelet at all). Its results are a note.
# Anything else (429, 502-504: a busy API server) is tried again.
FINAL_LOG_ERRORS = frozenset({400, 403, 404, 500})


@dataclass
class RunBudget:
    """Bytes kept of each run (archives and log tails, by key), against the
    run's cap, and of each seed or suite (its shards and attempts together)
    against its own, so one suite's files never use up what a later suite's
    report needs. Known to this process only: after a restart a run may keep
    up to one cap more."""

    limit: int
    suite_limit: int | None = None
    used: dict[int, dict[str, int]] = field(default_factory=dict)
    suite_of: dict[str, str] = field(default_factory=dict)  # key -> "<kind>/<name>"

    def over(self, run: int, key: str, size: int, suite: str | None = None) -> str | None:
        """Which cap keeping `size` more bytes under `key` would break ("run"
        or "suite"), or None when it fits or the key is kept already."""
        kept = self.used.get(run, {})
        if key in kept:
            return None
        if sum(kept.values()) + size > self.limit:
            return "run"
        if suite is not None and self.suite_limit is not None:
            if sum(b for k, b in kept.items() if self.suite_of.get(k) == suite) + size > self.suite_limit:
                return "suite"
        return None

    def allows(self, run: int, key: str, size: int, suite: str | None = None) -> bool:
        return self.over(run, key, size, suite) is None

    def charge(self, run: int, key: str, size: int, suite: str | None = None) -> None:
        self.used.setdefault(run, {})[key] = size
        if suite is not None:
            self.suite_of[key] = suite


def _has_collector(pod: Mapping[str, Any]) -> bool:
    return any(c.get("name") == COLLECTOR_CONTAINER for c in (pod.get("spec") or {}).get("initContainers") or [])


def _read_attempt(kube: LogApi, *, namespace: str, pod: str) -> tuple[bytes | None, Any, dict[str, bytes], list[str]]:
    """(archive, manifest, files, notes) of one pod's collector. An API
    error that may pass (a kubelet that is busy, 429, 5xx) is raised: the
    reconcile is tried again, and the suite waits for its results."""
    try:
        log_bytes = kube.read_log(namespace=namespace, pod=pod, container=COLLECTOR_CONTAINER)
        archive = unframe(log_bytes.decode("ascii", errors="replace"))
        manifest, files = unpack(archive, max_total_bytes=MAX_TOTAL_BYTES)
    except ApiException as exc:
        if exc.status not in FINAL_LOG_ERRORS:
            raise
        return None, None, {}, [f"the collector's log could not be read: {exc.status} {exc.reason}"]
    except CollectError as exc:
        return None, None, {}, [f"no results from the collector: {exc}"]
    return archive, manifest, files, []


def harvest_job(
    kube: LogApi, store: ResultsStore, budget: RunBudget, owner: Owner, run: int,
    job: JobObservation, pods: Iterable[Mapping[str, Any]], *, namespace: str,
) -> dict[str, AttemptResults]:
    """Each finished pod's attempt, kept and indexed, by pod name."""
    pods = list(pods)
    numbering = shard_and_attempt(pods)
    kept: dict[str, AttemptResults] = {}
    for pod in pods:
        meta, phase = pod.get("metadata") or {}, (pod.get("status") or {}).get("phase", "")
        if phase not in ("Succeeded", "Failed") or not _has_collector(pod):
            continue
        name = meta.get("name", "")
        shard, attempt = numbering[name]
        archive, manifest, files, notes = _read_attempt(kube, namespace=namespace, pod=name)
        if manifest is None:
            found = AttemptResults(kind=job.kind, component=job.component, shard=shard, attempt=attempt,
                                   pod=name, phase=phase, notes=notes)
        else:
            found = attempt_results(kind=job.kind, component=job.component, pod=name, phase=phase, shard=shard,
                                    attempt=attempt, manifest=manifest, files=files)
        key = archive_key(owner, run, job.kind, job.component, shard, attempt)
        suite = f"{job.kind}/{job.component}"
        if archive is not None and (cap := budget.over(run, key, len(archive), suite)) is not None:
            limit, whose = ((budget.limit, "the run's results are") if cap == "run" else
                            (budget.suite_limit or 0, f"this {'seed' if job.kind == 'seed' else 'suite'}'s results are"))
            found.notes.append(f"files not kept ({human_size(len(archive))}): {whose} over the "
                               f"{human_size(limit)} cap; the counts are")
            archive = None
        kept[name] = store.keep_attempt(owner, run, found, key, archive)
        if kept[name].key is not None:
            budget.charge(run, key, kept[name].bytes, suite)
    return kept


def _failed_containers(pod: Mapping[str, Any], stopped: str | None = None) -> Iterable[tuple[str, str, bool]]:
    """(container, why, its previous instance) for each container of the pod
    that failed, and, when the run was `stopped` (why) under it, each one
    still running: its Job is deleted next, and its log with it."""
    status = pod.get("status") or {}
    timed_out = status.get("reason") == "DeadlineExceeded"
    for entry in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        name = entry.get("name", "")
        if name == COLLECTOR_CONTAINER:
            continue
        ended = (entry.get("state") or {}).get("terminated") or {}
        before = (entry.get("lastState") or {}).get("terminated") or {}
        if ended and ended.get("exitCode", 0) != 0:
            yield name, ended.get("reason") or f"exit code {ended.get('exitCode')}", False
        elif before and (entry.get("restartCount") or 0) > 0:
            yield name, f"restarted {entry['restartCount']} times, last {before.get('reason') or 'Error'}", True
        elif timed_out:
            yield name, "DeadlineExceeded", False
        elif stopped and "running" in (entry.get("state") or {}):
            yield name, stopped, False


@dataclass(frozen=True)
class KeptLogs:
    """Log tails kept of a run, and a note for each one that was not."""

    count: int = 0
    notes: tuple[str, ...] = ()


def harvest_logs(
    kube: LogApi, store: ResultsStore, budget: RunBudget, owner: Owner, run: int,
    pods: Iterable[Mapping[str, Any]], namespace: str, *, stopped: str | None = None,
) -> KeptLogs:
    """Keep the last LOG_TAIL_BYTES of every failed container's log, and,
    when the run was `stopped` (why), of each seed or suite container of
    this run still running, within the run's cap."""
    count, notes = 0, []
    for pod in pods:
        meta = pod.get("metadata") or {}
        name = meta.get("name", "")
        of_this_run = (meta.get("labels") or {}).get(LABEL_RUN) == str(run)
        for container, why, previous in _failed_containers(pod, stopped if of_this_run else None):
            try:
                data = kube.read_log(namespace=namespace, pod=name, container=container, tail_lines=LOG_LINES,
                                     previous=previous)
            except ApiException:
                continue  # a vanished pod, or a container that never started: its reason is on the status
            tail = data[-LOG_TAIL_BYTES:]
            if len(data) > LOG_TAIL_BYTES:
                tail = f"[... the first {len(data) - LOG_TAIL_BYTES} bytes cut]\n".encode() + tail
            key = log_key(owner, run, pod=name, container=container)
            if not budget.allows(run, key, len(tail)):
                notes.append(f"log tail of {name}/{container} not kept: the run's results are over the "
                             f"{human_size(budget.limit)} cap")
                continue
            kept = store.keep_log(owner, run, LogTail(pod=name, container=container, reason=why), key, tail)
            if kept.key is not None:
                budget.charge(run, key, kept.bytes)
                count += 1
            notes += [f"log tail of {name}/{container} {note}" for note in kept.notes]
    return KeptLogs(count, tuple(notes))


def keep_run_end(
    kube: LogApi, store: ResultsStore, budget: RunBudget, owner: Owner, run: int,
    pods: Iterable[Mapping[str, Any]], namespace: str, stopped: str | None = None,
) -> KeptLogs:
    """The run just ended (`stopped`, why, if it was cut short): keep what
    failed said before its namespace goes, and drop the runs beyond the ones
    kept."""
    kept = harvest_logs(kube, store, budget, owner, run, pods, namespace, stopped=stopped)
    try:
        store.prune(owner, run)
    except StoreError as exc:
        log.warning("older results of %s/%s not deleted: %s", owner.namespace, owner.name, exc)
    return kept
