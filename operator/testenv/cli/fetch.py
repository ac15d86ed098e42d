"""A run's kept results, fetched for `testenv results` and `testenv up --junit`:
the index beside the TestEnvironment, the archives and log tails it lists
(from ConfigMaps or by presigned URL), unpacked in memory and checked
again: the CLI trusts what it fetches no more than the operator did."""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from ..collect import MAX_TOTAL_BYTES, CollectError, Manifest, is_report, path_problem, unpack
from ..results import AttemptResults, LogTail, Owner, RunIndex, capped, index_name, last_attempts, run_index
from .cluster import CliError, Environments, fetch_url

# Names of kinds, components and pods: what may become a directory's name.
NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # fullmatch: "$" would let a trailing newline in
KINDS = ("test", "seed")
MAX_SKIPS_SHOWN = 20


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


def _unpacked(envs: Environments, index: RunIndex, attempt: AttemptResults) -> tuple[Manifest, dict[str, bytes]]:
    archive = body(envs, index, attempt)
    if archive is None:
        return Manifest(), {}
    try:
        return unpack(archive, max_total_bytes=MAX_TOTAL_BYTES)
    except CollectError as exc:
        raise CliError(f"the kept results of {attempt.component} ({attempt.label}) cannot be read: {exc}") from None


def _files(envs: Environments, index: RunIndex, attempt: AttemptResults) -> dict[str, bytes]:
    return _unpacked(envs, index, attempt)[1]


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


def _name_problem(**names: str) -> str | None:
    """Why names from the index cannot be part of a local path (None: they can)."""
    for field, value in names.items():
        if not NAME.fullmatch(value):
            return f"its {field} {value!r} is not a Kubernetes name"
    return None


class _Writer:
    """Files written under one directory, never outside it, each at most once;
    what could not be written is kept, with why, for one message at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.root = directory.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise CliError(f"cannot write under {directory}: {getattr(exc, 'strerror', None) or exc}") from None
        # (device, inode) -> where it was written from: a second write there is a duplicate,
        # whatever the name (a case-insensitive file system's two spellings of one name included).
        self.written: dict[tuple[int, int], str] = {}
        self.count = 0
        self.skipped: list[str] = []

    def skip(self, what: str, why: str) -> None:
        self.skipped.append(f"{what}: {why}")

    def write(self, relative: str, data: bytes, source: str) -> Path | None:
        """directory/relative, or None (and a skip) when it cannot be written there."""
        if problem := path_problem(relative):  # unpack and NAME refuse these already: a last check
            self.skip(f"{source}: {relative!r}", problem)
            return None
        *dirs, name = relative.split("/")
        try:
            # Links already in the directory are followed for its directories, which must stay inside it;
            # the file itself is replaced, never written through (a link or hard link to elsewhere).
            parent = self.directory.joinpath(*dirs).resolve()
        except (OSError, RuntimeError) as exc:
            self.skip(relative, f"its directory cannot be resolved ({getattr(exc, 'strerror', None) or exc})")
            return None
        if not parent.is_relative_to(self.root):
            self.skip(relative, f"it would be written outside {self.directory} (through a link to {parent})")
            return None
        target = parent / name
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            self.skip(relative, f"a file stands where one of its directories would be ({source})")
            return None
        except OSError as exc:
            self.skip(relative, f"cannot write {target}: {exc.strerror or exc}")
            return None
        try:
            there = os.stat(target, follow_symlinks=False)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.skip(relative, f"cannot write {target}: {exc.strerror or exc}")
            return None
        else:
            if stat.S_ISDIR(there.st_mode):
                self.skip(relative, f"a directory stands where it would be ({source})")
                return None
            if first := self.written.get((there.st_dev, there.st_ino)):
                why = "the index lists it twice" if first == source else f"already written from {first}"
                self.skip(relative, f"{why}; the copy from {source} was not written")
                return None
        partial = parent / f".testenv-{secrets.token_hex(8)}.partial"
        try:
            with open(partial, "xb") as out:  # O_EXCL: never through a link
                out.write(data)
                written = os.fstat(out.fileno())
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            self.skip(relative, f"cannot write {target}: {exc.strerror or exc}")
            return None
        self.written[(written.st_dev, written.st_ino)] = source
        self.count += 1
        return target

    def done(self) -> None:
        if self.skipped:
            lines = "".join(f"\n  {line}" for line in capped(self.skipped, MAX_SKIPS_SHOWN, "skipped"))
            files = "file" if self.count == 1 else "files"
            raise CliError(f"wrote {self.count} {files} under {self.directory}, and skipped {len(self.skipped)} "
                           f"that could not be written there safely:{lines}")


def _unpack_skips(manifest: Manifest) -> list[str]:
    """Unpacking's notes on members it did not take (the archive's own notes are the collector's)."""
    return [note for note in manifest.notes if note.startswith(("rejected ", "stopped unpacking"))]


def write_artifacts(envs: Environments, index: RunIndex, directory: Path) -> Iterator[Path]:
    """Every attempt's files under DIR/<kind>-<name>/shard-<s>/attempt-<a>/, and
    the log tails under DIR/logs/; yields each file written.

    Nothing is written outside DIR. An entry, member or file that cannot be
    written safely is skipped and the rest written; then CliError names
    each one skipped and why."""
    writer = _Writer(directory)
    for attempt in index.attempts:
        source = f"{attempt.kind!r} {attempt.component!r} ({attempt.label})"
        problem = _name_problem(kind=attempt.kind, component=attempt.component)
        if problem is None and attempt.kind not in KINDS:
            problem = f"its kind {attempt.kind!r} is neither {' nor '.join(map(repr, KINDS))}"
        if problem:
            writer.skip(source, f"{problem}; none of its files were written")
            continue
        source = f"{attempt.kind} {attempt.component} ({attempt.label})"
        try:
            manifest, files = _unpacked(envs, index, attempt)
        except CliError as exc:
            writer.skip(source, exc.message)
            continue
        for note in _unpack_skips(manifest):
            writer.skip(source, note)
        where = f"{attempt.kind}-{attempt.component}/shard-{attempt.shard}/attempt-{attempt.attempt}"
        for path, data in sorted(files.items()):
            if (written := writer.write(f"{where}/{path}", data, source)) is not None:
                yield written
    for tail in index.logs:
        source = f"the log tail of {tail.pod!r}/{tail.container!r}"
        if problem := _name_problem(pod=tail.pod, container=tail.container):
            writer.skip(source, f"{problem}; it was not written")
            continue
        try:
            kept = body(envs, index, tail)
        except CliError as exc:
            writer.skip(source, exc.message)
            continue
        if kept is not None and (written := writer.write(f"logs/{tail.pod}.{tail.container}.log", kept,
                                                         f"the log tail of {tail.pod}/{tail.container}")) is not None:
            yield written
    writer.done()


def log_tails(envs: Environments, index: RunIndex) -> Iterator[tuple[LogTail, bytes | None]]:
    for tail in index.logs:
        yield tail, body(envs, index, tail)
