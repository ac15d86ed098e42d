"""How the CLI shows environments: progress (live for a terminal, one line per
change for logs), the result table, `status` and `list`. Rendering only; the
functions that make text are pure and unit-tested.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..models import JobPhase, Phase, TestEnvironmentStatus
from ..results import RunIndex

COUNTED = (JobPhase.SUCCEEDED, JobPhase.FAILED)  # suites whose counts are final
PHASE_STYLE = {
    "Succeeded": "green", "Ready": "green", "Failed": "red", "Error": "red", "TimedOut": "red",
    "Running": "yellow", "Testing": "yellow", "Seeding": "yellow", "Provisioning": "yellow",
    "Skipped": "dim", "Pending": "dim", "Queued": "dim", "Terminating": "dim",
}
MAX_FAILURES_SHOWN = 20


# --- small formats ---------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def human_age(seconds: float) -> str:
    """kubectl's way of showing an age: 45s, 5m30s, 95m, 5h30m, 2d3h, 40d."""
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(timestamp: str | None, now: datetime) -> str:
    moment = parse_time(timestamp)
    return human_age((now - moment).total_seconds()) if moment else "<unknown>"


def expires(timestamp: str | None, now: datetime) -> str:
    moment = parse_time(timestamp)
    if moment is None:
        return "<none>"
    left = (moment - now).total_seconds()
    return f"in {human_age(left)}" if left > 0 else "expired"


def counts(passed: int, failed: int, skipped: int) -> str:
    return f"{passed} passed, {failed} failed, {skipped} skipped"


# --- progress as lines -----------------------------------------------------------------


def status_facts(status: TestEnvironmentStatus) -> dict[str, str]:
    """One line per thing a person follows, keyed so that a change of it can be told."""
    # In progress, the phase's message repeats what the lines below say; it
    # is shown where it explains (queued, ready, finished).
    explains = status.phase not in (Phase.PROVISIONING, Phase.SEEDING, Phase.TESTING)
    facts = {"phase": f"phase {status.phase}" + (f": {status.message}" if status.message and explains else "")}
    for c in status.components:
        facts[f"component/{c.name}"] = f"{c.kind} {c.name}: " + (
            "ready" if c.ready else _detail(c.reason, c.message) or "not ready")
    for s in status.seeds:
        facts[f"seed/{s.name}"] = f"seed {s.name}: {s.phase}" + (
            f" ({_detail(s.reason, s.message)})" if s.message else "")
    for t in status.tests:
        if t.phase in COUNTED:
            detail = f" - {counts(t.passed, t.failed, t.skipped)} in {format_duration(t.duration_seconds)}"
            if t.phase == JobPhase.FAILED and t.message:
                detail += f" ({t.message})"
        else:
            detail = f" ({_detail(t.reason, t.message)})" if t.message and t.message != str(t.phase).lower() else ""
        facts[f"suite/{t.name}"] = f"suite {t.name}: {t.phase}{detail}"
    return facts


def progress_lines(before: Mapping[str, str] | None, after: Mapping[str, str]) -> list[str]:
    """The lines of `after` that are new or changed since `before`, in `after`'s order."""
    before = before or {}
    return [line for key, line in after.items() if before.get(key) != line]


def waiting_for_operator(generation: int, observed: int | None) -> str:
    seen = "no status yet" if observed is None else f"status is of generation {observed}"
    return f"waiting for the operator to pick up generation {generation} ({seen})"


# --- tables ------------------------------------------------------------------------------


def _phase(phase: str) -> Text:
    return Text(str(phase), style=PHASE_STYLE.get(str(phase), ""))


def result_table(status: TestEnvironmentStatus) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("SUITE", "PHASE"):
        table.add_column(column)
    for column in ("PASSED", "FAILED", "SKIPPED", "DURATION"):
        table.add_column(column, justify="right")
    for t in status.tests:
        table.add_row(t.name, _phase(t.phase), str(t.passed), str(t.failed), str(t.skipped),
                      format_duration(t.duration_seconds))
    return table


def summary_line(name: str, status: TestEnvironmentStatus) -> str:
    total = status.summary
    suites = len(status.tests)
    parts = [f"{name}: {status.phase}"]
    if suites:
        tallied = counts(total.passed, total.failed, total.skipped) if total else "no counts"
        parts.append(f"{suites} suite{'s' if suites != 1 else ''}, {tallied}")
    parts.append(f"run {status.run}" + (f", namespace {status.namespace}" if status.namespace else ""))
    line = " - ".join(parts)
    if status.phase not in (Phase.SUCCEEDED,) and status.message:
        line += f"\n{status.message}"
    return line


def _owners(status: TestEnvironmentStatus) -> list[tuple[str, str, Any]]:
    return ([(str(c.kind), c.name, c) for c in status.components] + [("seed", s.name, s) for s in status.seeds]
            + [("suite", t.name, t) for t in status.tests])


def reason_lines(status: TestEnvironmentStatus) -> list[str]:
    """Why components, seeds or suites did not come up, as the operator diagnosed it."""
    return [f"  {kind} {name}: {entry.reason}: {entry.message}"
            for kind, name, entry in _owners(status) if entry.reason]


def image_ref(image: str | None, digest: str | None) -> str:
    """image@digest, as a pull would name exactly what ran."""
    if not image:
        return "-"
    if not digest:
        return image
    return f"{image.split('@', 1)[0]}@{digest}"


def provenance_table(status: TestEnvironmentStatus) -> Table | None:
    """What ran: each component's, seed's and suite's image and resolved digest."""
    rows = [(kind, name, entry) for kind, name, entry in _owners(status) if entry.image]
    if not rows:
        return None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("KIND", "NAME", "IMAGE", "DIGEST"):
        table.add_column(column, overflow="fold")
    for kind, name, entry in rows:
        table.add_row(kind, name, entry.image, entry.image_digest or "(not resolved yet)")
    return table


def failure_lines(status: TestEnvironmentStatus, limit: int = MAX_FAILURES_SHOWN) -> list[str]:
    failures = [(t.name, f) for t in status.tests for f in t.failures]
    lines = [f"  {suite}: {failure}" for suite, failure in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more (see the JUnit report or `testenv status`)")
    return lines


def progress_table(status: TestEnvironmentStatus) -> Table:
    """Components, seeds and suites with their state: the live view and `status`."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    table.add_column("KIND")
    table.add_column("NAME")
    table.add_column("STATE")
    table.add_column("DETAIL", overflow="fold")
    for c in status.components:
        state = Text("ready", style="green") if c.ready else Text("not ready", style="yellow")
        table.add_row(str(c.kind), c.name, state, "" if c.ready else _detail(c.reason, c.message))
    for s in status.seeds:
        table.add_row("seed", s.name, _phase(s.phase), _detail(s.reason, s.message))
    for t in status.tests:
        detail = counts(t.passed, t.failed, t.skipped) if t.phase in COUNTED else _detail(t.reason, t.message)
        if t.phase in COUNTED and t.duration_seconds is not None:
            detail += f" in {format_duration(t.duration_seconds)}"
        table.add_row("suite", t.name, _phase(t.phase), detail)
    return table


def _detail(reason: str | None, message: str) -> str:
    return f"{reason}: {message}" if reason else message


def header(*, namespace: str, name: str, status: TestEnvironmentStatus | None, note: str = "") -> Text:
    text = Text()
    text.append(f"{namespace}/{name}", style="bold")
    if status is not None:
        text.append("  ")
        text.append_text(_phase(status.phase))
        text.append(f"  run {status.run}")
        if status.namespace:
            text.append(f"  in {status.namespace}", style="dim")
        if status.message:
            text.append(f"\n{status.message}", style="dim")
    if note:
        text.append(f"\n{note}", style="dim")
    return text


def status_view(obj: Mapping[str, Any], now: datetime) -> RenderableType:
    meta = obj.get("metadata") or {}
    status = TestEnvironmentStatus.model_validate(obj.get("status") or {})
    lines = Text()
    lines.append_text(header(namespace=meta.get("namespace", "?"), name=meta.get("name", "?"), status=status))
    lines.append(f"\ngeneration {meta.get('generation')}, observed {status.observed_generation}; "
                 f"age {age(meta.get('creationTimestamp'), now)}; expires {expires(status.expires_at, now)}")
    if status.summary and status.tests:
        lines.append(f"\ntests: {counts(status.summary.passed, status.summary.failed, status.summary.skipped)}")
    parts: list[RenderableType] = [lines, Text("")]
    if status.components or status.seeds or status.tests:
        parts += [progress_table(status), Text("")]
    if failures := failure_lines(status):
        parts.append(Text("failures:\n" + "\n".join(failures) + "\n"))
    if (images := provenance_table(status)) is not None:
        parts += [images, Text("")]
    if status.conditions:
        conditions = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
        for column in ("CONDITION", "STATUS", "REASON", "MESSAGE"):
            conditions.add_column(column, overflow="fold")
        for c in status.conditions:
            conditions.add_row(c.type, str(c.status), c.reason, c.message)
        parts.append(conditions)
    return Group(*parts)


def list_table(items: Iterable[Mapping[str, Any]], now: datetime, all_namespaces: bool) -> Table:
    table = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    columns = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "PHASE", "READY", "TESTS", "AGE", "EXPIRES"]
    for column in columns:
        table.add_column(column, no_wrap=True)
    for obj in sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        meta, status = obj["metadata"], obj.get("status") or {}
        row = [meta.get("namespace", "")] if all_namespaces else []
        row += [
            meta["name"],
            status.get("phase") or "Pending",
            status.get("readyComponents") or "-",
            status.get("testCounts") or "-",
            age(meta.get("creationTimestamp"), now),
            expires(status.get("expiresAt"), now),
        ]
        table.add_row(*row)
    return table


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- progress displays --------------------------------------------------------------


class PlainProgress:
    """One line per change, for CI logs: `[  1m12s] suite e2e: Running`."""

    def __init__(self, console: Console, *, namespace: str, name: str) -> None:
        self.console = console
        self.started = time.monotonic()
        self.facts: dict[str, str] | None = None
        self.note = ""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *_: Any) -> None:
        pass

    def _emit(self, line: str) -> None:
        elapsed = format_duration(time.monotonic() - self.started)
        self.console.print(f"[{elapsed:>7}] {line}", markup=False, highlight=False, soft_wrap=True)

    def waiting(self, note: str) -> None:
        if note != self.note:
            self.note = note
            self._emit(note)

    def update(self, status: TestEnvironmentStatus) -> None:
        facts = status_facts(status)
        for line in progress_lines(self.facts, facts):
            self._emit(line)
        self.facts = facts


class LiveProgress:
    """A live table for a terminal: components, seeds and suites, redrawn as they change."""

    def __init__(self, console: Console, *, namespace: str, name: str) -> None:
        self.console = console
        self.namespace, self.name = namespace, name
        self.started = time.monotonic()
        self.status: TestEnvironmentStatus | None = None
        self.note = ""
        self.live = Live(self, console=console, refresh_per_second=4, transient=True)

    def __rich__(self) -> RenderableType:
        elapsed = format_duration(time.monotonic() - self.started)
        title = header(namespace=self.namespace, name=self.name, status=self.status, note=self.note)
        title.append(f"\nwaiting {elapsed}", style="dim")
        if self.status is None:
            return title
        return Group(title, Text(""), progress_table(self.status))

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.live.stop()

    def waiting(self, note: str) -> None:
        self.note = note
        self.live.refresh()

    def update(self, status: TestEnvironmentStatus) -> None:
        self.status, self.note = status, ""
        self.live.refresh()


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def results_table(index: RunIndex) -> Table:
    """`testenv results`: each kept attempt of a seed or suite, and the log tails."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("KIND", "NAME", "SHARD", "ATTEMPT", "POD PHASE", "PASSED", "FAILED", "SKIPPED", "FILES", "KEPT"):
        table.add_column(column, justify="right" if column in ("SHARD", "ATTEMPT", "PASSED", "FAILED", "SKIPPED",
                                                               "FILES", "KEPT") else "left")
    for a in index.attempts:
        counts = [str(a.counts.passed), str(a.counts.failed), str(a.counts.skipped)] if a.counts else ["-"] * 3
        table.add_row("suite" if a.kind == "test" else a.kind, a.component, str(a.shard), str(a.attempt),
                      _phase(a.phase), *counts, str(len(a.files)), _size(a.bytes) if a.key else "-")
    return table


def results_notes(index: RunIndex) -> list[str]:
    lines = [f"  {a.component} ({a.label}): {note}" for a in index.attempts for note in a.notes]
    lines += [f"  log of {t.pod}/{t.container} ({t.reason}): " + (_size(t.bytes) if t.key else "not kept")
              for t in index.logs]
    return lines
