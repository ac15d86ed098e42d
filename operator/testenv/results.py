"""What a run kept: each seed and suite attempt's files and real reports, and
the log tails of what failed, indexed per run.

Pure: the index's models, where things are stored (keys and ConfigMap names),
and how an attempt's real reports become the suite's counts. Reading logs and
writing stores are the reconciler's and resultstore's business.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from .cases import parse_cases, summarize_cases
from .collect import Manifest, is_report
from .models import Counts, JobPhase, Model, SuiteStatus
from .report import ReportError, Summary

INDEX_LABEL = "testenv.dev/results"  # "index" or "body"
KEY_ANNOTATION = "testenv.dev/results-key"
CHUNKS_ANNOTATION = "testenv.dev/results-chunks"
SHA_ANNOTATION = "testenv.dev/results-sha256"
# A ConfigMap holds at most 1 MiB (keys and metadata included).
CONFIGMAP_CHUNK = 900 * 1024
# On the status and in the index (one ConfigMap per run, at most 1 MiB):
# the archive's own manifest.json lists every file, the report every case.
MAX_NOTES = 20
MAX_FILES_LISTED = 100
MAX_FAILURES_LISTED = 100
LOG_TAIL_BYTES = 64 * 1024


class StoredFile(Model):
    path: str
    size: int
    sha256: str


class AttemptResults(Model):
    """One pod of a seed or suite Job: a shard's attempt."""

    kind: str  # "test" or "seed"
    component: str
    shard: int = 0
    attempt: int = 0
    pod: str
    phase: str = ""  # the pod's phase when read
    key: str | None = None  # the archive in the store; None when nothing was kept
    url: str | None = None  # a presigned GET for it (S3)
    bytes: int = 0
    files: list[StoredFile] = Field(default_factory=list)
    reports: list[str] = Field(default_factory=list)
    counts: Counts | None = None  # from the reports; None: no readable report
    failures: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return f"shard {self.shard}, attempt {self.attempt}"


class LogTail(Model):
    pod: str
    container: str
    reason: str = ""
    key: str | None = None
    url: str | None = None
    bytes: int = 0
    notes: list[str] = Field(default_factory=list)


class RunIndex(Model):
    environment: str
    namespace: str
    uid: str
    run: int
    store: str  # "configmap" or "s3" ("memory" in unit tests)
    attempts: list[AttemptResults] = Field(default_factory=list)
    logs: list[LogTail] = Field(default_factory=list)
    # Where its presigned URLs may point: from the TestEnvironment's status
    # (which only the operator writes), never from the index itself.
    endpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The TestEnvironment that results belong to (and are deleted with)."""

    namespace: str
    name: str
    uid: str

    def prefix(self, run: int | None = None) -> str:
        base = f"{self.namespace}/{self.name}/{self.uid}"
        return base if run is None else f"{base}/r{run}"


def archive_key(owner: Owner, run: int, kind: str, component: str, shard: int, attempt: int) -> str:
    return f"{owner.prefix(run)}/{kind}-{component}-s{shard}-a{attempt}.tar.gz"


def log_key(owner: Owner, run: int, *, pod: str, container: str) -> str:
    return f"{owner.prefix(run)}/logs/{pod}.{container}.log"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def index_name(owner: Owner, run: int) -> str:
    """The run's index ConfigMap in the TestEnvironment's namespace."""
    suffix = f"-r{run}-results"
    base = owner.name if len(owner.name) + len(suffix) <= 253 else f"{owner.name[:200]}-{_digest(owner.uid, 8)}"
    return base + suffix


def body_names(key: str, chunks: int) -> list[str]:
    """The ConfigMaps that hold one stored body, chunk by chunk."""
    return [f"testenv-results-{_digest(key, 24)}-{i}" for i in range(chunks)]


def chunk(data: bytes, size: int = CONFIGMAP_CHUNK) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def shard_and_attempt(pods: Iterable[Mapping[str, object]]) -> dict[str, tuple[int, int]]:
    """Pod name -> (shard, attempt): attempts numbered by creation within a shard."""
    seen: dict[int, int] = {}
    out: dict[str, tuple[int, int]] = {}
    def created(pod: Mapping[str, object]) -> tuple[str, str]:
        meta = pod.get("metadata") or {}
        assert isinstance(meta, Mapping)
        return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")
    for pod in sorted(pods, key=created):
        meta = pod.get("metadata") or {}
        assert isinstance(meta, Mapping)
        annotations = meta.get("annotations") or {}
        assert isinstance(annotations, Mapping)
        try:
            shard = int(str(annotations.get("batch.kubernetes.io/job-completion-index", "0")))
        except ValueError:
            shard = 0
        seen[shard] = seen.get(shard, -1) + 1
        out[str(meta.get("name") or "")] = (shard, seen[shard])
    return out


def last_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each shard's last attempt (its newest pod), in shard order."""
    pods = list(pods)
    numbering = shard_and_attempt(pods)
    last: dict[int, tuple[int, Mapping[str, Any]]] = {}
    for pod in pods:
        shard, attempt = numbering[str((pod.get("metadata") or {}).get("name") or "")]
        if shard not in last or attempt > last[shard][0]:
            last[shard] = (attempt, pod)
    return [last[shard][1] for shard in sorted(last)]


def capped(items: Sequence[str], limit: int, what: str) -> list[str]:
    """The first `limit` items, the last of them saying how many more there were."""
    if len(items) <= limit:
        return list(items)
    return [*items[: limit - 1], f"... and {len(items) - limit + 1} more {what}"]


def read_reports(manifest: Manifest, files: Mapping[str, bytes]) -> tuple[Counts | None, list[str], list[str]]:
    """The counts and failure names of an attempt's JUnit files, and notes on
    those that could not be read. (None, ...) when no report was readable."""
    total, readable, notes = Summary(), False, []
    for path in sorted(p for p in files if is_report(p)):
        try:
            summary = summarize_cases(parse_cases(files[path], path))
        except ReportError as exc:
            notes.append(f"{path} is not a JUnit report: {exc}")
            continue
        total, readable = total + summary, True
    if not readable:
        return None, [], notes
    counts = Counts(passed=total.passed, failed=total.failed, skipped=total.skipped)
    return counts, capped(total.failures, MAX_FAILURES_LISTED, "failures"), notes


def attempt_results(
    *,
    kind: str,
    component: str,
    pod: str,
    phase: str,
    shard: int,
    attempt: int,
    manifest: Manifest,
    files: Mapping[str, bytes],
    extra_notes: Sequence[str] = (),
) -> AttemptResults:
    counts, failures, report_notes = read_reports(manifest, files)
    notes = capped([*manifest.notes, *report_notes, *extra_notes], MAX_NOTES, "notes")
    if len(manifest.files) > MAX_FILES_LISTED:
        notes.append(f"{len(manifest.files)} files; the index lists the first {MAX_FILES_LISTED}, "
                     "`testenv results --artifacts` writes them all")
    listed = list(manifest.files)[:MAX_FILES_LISTED]
    return AttemptResults(
        kind=kind,
        component=component,
        shard=shard,
        attempt=attempt,
        pod=pod,
        phase=phase,
        files=[StoredFile(path=f.path, size=f.size, sha256=f.sha256) for f in listed],
        reports=sorted(p for p in files if is_report(p)),
        counts=counts,
        failures=failures,
        notes=notes,
    )


def last_attempts(attempts: Iterable[AttemptResults]) -> list[AttemptResults]:
    """Each shard's last attempt: what the suite's counts come from."""
    last: dict[int, AttemptResults] = {}
    for found in attempts:
        if found.shard not in last or found.attempt > last[found.shard].attempt:
            last[found.shard] = found
    return [last[s] for s in sorted(last)]


def index_entry_name(entry: AttemptResults | LogTail) -> str:
    """The entry's key in the index ConfigMap's data ([-._a-zA-Z0-9]+)."""
    if isinstance(entry, AttemptResults):
        return f"attempt.{entry.kind}.{entry.component}.s{entry.shard}.a{entry.attempt}.json"
    return f"log.{entry.pod}.{entry.container}.json"


def run_index(data: Mapping[str, str]) -> RunIndex:
    """The index ConfigMap's data as one RunIndex, attempts and logs in a stable order."""
    head = json.loads(data.get("environment.json") or "{}")
    index = RunIndex(
        environment=head.get("environment", ""),
        namespace=head.get("namespace", ""),
        uid=head.get("uid", ""),
        run=int(head.get("run", 0)),
        store=head.get("store", ""),
    )
    for name in sorted(data):
        if name.startswith("attempt."):
            index.attempts.append(AttemptResults.model_validate_json(data[name]))
        elif name.startswith("log."):
            index.logs.append(LogTail.model_validate_json(data[name]))
    index.attempts.sort(key=lambda a: (a.kind != "seed", a.component, a.shard, a.attempt))
    return index


def suites_of(index: RunIndex) -> list[SuiteStatus]:
    """An earlier run's suites as its index knows them (its status is gone):
    counts from each shard's last attempt."""
    by_suite: dict[str, list[AttemptResults]] = {}
    for attempt in index.attempts:
        if attempt.kind == "test":
            by_suite.setdefault(attempt.component, []).append(attempt)
    suites = []
    for name, attempts in sorted(by_suite.items()):
        last = last_attempts(attempts)
        counts = sum((a.counts or Counts() for a in last), Counts())
        failed = counts.failed > 0 or any(a.phase == "Failed" for a in last)
        suites.append(SuiteStatus(name=name, phase=JobPhase.FAILED if failed else JobPhase.SUCCEEDED,
                                  passed=counts.passed, failed=counts.failed, skipped=counts.skipped,
                                  failures=[f for a in last for f in a.failures]))
    return suites
