"""A run's kept results, fetched for `testenv results` and `testenv up --junit`:
the index beside the TestEnvironment, the archives and log tails it lists
(from ConfigMaps or by presigned URL), unpacked in memory and checked
again: the CLI trusts what it fetches no more than the operator did."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from ..collect import MAX_TOTAL_BYTES, CollectError, is_report, unpack
from ..results import AttemptResults, LogTail, Owner, RunIndex, index_name, last_attempts, run_index
from .cluster import CliError, Environments, fetch_url

# Names of kinds, components and pods: what may become a directory's name.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def kept_run(envs: Environments, owner: Owner, run: int, endpoint: str | None = None) -> RunIndex | None:
    """The run's index, if it is this TestEnvironment's (by uid)."""
    data = envs.results_index(namespace=owner.namespace, name=index_name(owner, run))
    if data is None:
        return None
    index = run_index(data)
    if index.uid != owner.uid:
        raise CliError(f"{index_name(owner, run)} is the results index of another TestEnvironment of that name "
                       f"(uid {index.uid}); its results are not this one's")
    index.endpoint = endpoint
    return index


def body(envs: Environments, index: RunIndex, entry: AttemptResults | LogTail) -> bytes | None:
    """A stored body, or None when nothing was kept or it is gone."""
    if entry.key is None:
        return None
    if entry.url:
        return fetch_url(entry.url, index.endpoint)
    return envs.results_body(index.namespace, entry.key)


def _files(envs: Environments, index: RunIndex, attempt: AttemptResults) -> dict[str, bytes]:
    archive = body(envs, index, attempt)
    if archive is None:
        return {}
    try:
        _, files = unpack(archive, max_total_bytes=MAX_TOTAL_BYTES)
    except CollectError as exc:
        raise CliError(f"the kept results of {attempt.component} ({attempt.label}) cannot be read: {exc}") from None
    return files


def suite_reports(envs: Environments, index: RunIndex) -> dict[str, list[tuple[str, bytes]]]:
    """Each suite's JUnit documents from its shards' last attempts: (label, XML)."""
    by_suite: dict[str, list[AttemptResults]] = defaultdict(list)
    for attempt in index.attempts:
        if attempt.kind == "test":
            by_suite[attempt.component].append(attempt)
    reports: dict[str, list[tuple[str, bytes]]] = {}
    for suite, attempts in by_suite.items():
        for attempt in last_attempts(attempts):
            files = _files(envs, index, attempt) if attempt.reports else {}
            for path in sorted(p for p in files if is_report(p)):
                reports.setdefault(suite, []).append((f"shard {attempt.shard}: {path}", files[path]))
    return reports


def _inside(root: Path, relative: str) -> Path:
    """root/relative, refusing anything that would land outside root."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise CliError(f"refusing to write {relative!r}: it is outside {root}")
    return target


def _write(directory: Path, relative: str, data: bytes) -> Path:
    target = _inside(directory, relative)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def write_artifacts(envs: Environments, index: RunIndex, directory: Path) -> Iterator[Path]:
    """Every attempt's files under DIR/<kind>-<name>/shard-<s>/attempt-<a>/, and
    the log tails under DIR/logs/; yields each file written."""
    names = [n for a in index.attempts for n in (a.kind, a.component)] + [
        n for t in index.logs for n in (t.pod, t.container)]
    if bad := [n for n in names if not NAME.match(n)]:
        raise CliError(f"the results index names {bad[0]!r}, which is not a Kubernetes name: not the operator's")
    for attempt in index.attempts:
        where = f"{attempt.kind}-{attempt.component}/shard-{attempt.shard}/attempt-{attempt.attempt}"
        for path, data in sorted(_files(envs, index, attempt).items()):
            yield _write(directory, f"{where}/{path}", data)
    for tail in index.logs:
        kept = body(envs, index, tail)
        if kept is not None:
            yield _write(directory, f"logs/{tail.pod}.{tail.container}.log", kept)


def log_tails(envs: Environments, index: RunIndex) -> Iterator[tuple[LogTail, bytes | None]]:
    for tail in index.logs:
        yield tail, body(envs, index, tail)
