"""What must hold through the chaos soak (bench/chaos.py), as pure functions
over what the soak recorded: phase histories from its watch, the API
server's audit log, Events, the Secrets' values and every log and status.
Each returns its violations, so the report can count them and show one.

Pure and free of cluster clients, so tests/unit/test_soak_invariants.py
can show that each one catches what it names."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.utils.quantity import parse_quantity

FINISHED = frozenset({"Succeeded", "Failed", "TimedOut", "Error"})
# How far along a run each phase is. Ready (a preview's) and Testing never
# follow one another in one run, so they share a rank.
RANK = {"": 0, "Pending": 0, "Queued": 0, "Provisioning": 1, "Seeding": 2, "Ready": 3, "Testing": 3,
        **{phase: 4 for phase in FINISHED}, "Terminating": 5}
GONE = "(deleted)"


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.subject}: {self.detail}"


def phases_backwards(histories: Mapping[str, list[str]]) -> list[Violation]:
    """A phase that moves back (Testing -> Seeding), or leaves a finished one
    for anything but Terminating (a delete may come at any time)."""
    out = []
    for name, history in histories.items():
        for before, after in itertools.pairwise(history):
            if before == after:
                continue
            if RANK.get(after, -1) < RANK.get(before, -1) or (before in FINISHED and after != "Terminating"):
                out.append(Violation("phase went backwards", name, f"{before} -> {after} in {' -> '.join(history)}"))
    return out


def wrong_endings(expected: Mapping[str, str], ended: Mapping[str, str | None]) -> list[Violation]:
    """Each environment's end: the finished phase its spec implies, or GONE
    for one deleted on purpose. `ended` has the first finished phase seen
    (GONE once deleted), None when it never ended."""
    return [Violation("wrong final phase", name, f"expected {want}, got {ended.get(name) or 'no end'}")
            for name, want in sorted(expected.items()) if ended.get(name) != want]


@dataclass(frozen=True)
class Create:
    """A create request of the operator's, as the audit log has it."""

    resource: str
    namespace: str
    name: str
    code: int


def jobs_created_twice(creates: Iterable[Create]) -> list[Violation]:
    """A Job's name says its run, and an Indexed Job holds every shard: a
    second successful create of one name is a Job created twice."""
    counts = Counter((c.namespace, c.name) for c in creates if c.resource == "jobs" and c.code == 201)
    return [Violation("Job created more than once", f"{ns}/{name}", f"{n} creates")
            for (ns, name), n in sorted(counts.items()) if n > 1]


@dataclass(frozen=True)
class PhaseEvent:
    """An Event about a TestEnvironment: its uid, reason and count."""

    uid: str
    subject: str
    reason: str
    count: int


def duplicate_phase_events(events: Iterable[PhaseEvent], phases: Iterable[str]) -> list[Violation]:
    """One Event per phase a run enters (each soak environment runs once).
    No phase Event at all is a violation too: the soak's environments all
    change phase, so an empty list means the Events were not found (as when
    they lacked the involvedObject.kind they are selected by), not that
    none was duplicated."""
    names = frozenset(phases)
    totals: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        if e.reason in names:
            totals[(e.uid, e.subject, e.reason)] += max(e.count, 1)
    if not totals:
        return [Violation("duplicate phase Event", "every environment", "no phase Event found: nothing was checked")]
    return [Violation("duplicate phase Event", subject, f"{reason} x{n}")
            for (_, subject, reason), n in sorted(totals.items()) if n > 1]


def secrets_leaked(secrets: Iterable[str], texts: Iterable[tuple[str, str]], min_length: int = 12) -> list[Violation]:
    """A generated credential anywhere it must not be: a log, a status, an
    Event. Short values are skipped: they would match by chance."""
    values = sorted({s for s in secrets if len(s) >= min_length})
    out = []
    for where, text in texts:
        for value in values:
            if value in text:
                out.append(Violation("secret in the open", where, f"a credential ({value[:3]}...) appears"))
    return out


def memory_limit_kib(baseline_kib: int, tolerance: float = 0.15, slack_kib: int = 10 * 1024) -> float:
    """The most RSS counted as back to a baseline: 15 % and 10 MiB over it."""
    return baseline_kib * (1 + tolerance) + slack_kib


def memory_not_back(baseline_kib: int, after_kib: int) -> list[Violation]:
    """RSS after the soak, with nothing left to manage, within 15 % (and
    10 MiB) of a fresh operator's idle RSS."""
    if after_kib <= memory_limit_kib(baseline_kib):
        return []
    return [Violation("memory not back to baseline", "operator",
                      f"{after_kib / 1024:.0f} MiB after, baseline {baseline_kib / 1024:.0f} MiB")]


def heap_not_back(baseline: int, after: int, tolerance: float = 0.05, unit: str = "blocks") -> list[Violation]:
    """Live allocations after the soak, once collected, within 5 % of a
    fresh operator's (pymalloc's blocks, or jemalloc's bytes: heapprobe.py):
    what a leak would grow, and fragmentation does not (RSS, above, counts both)."""
    limit = baseline * (1 + tolerance)
    if after <= limit:
        return []
    return [Violation("heap not back to baseline", "operator",
                      f"{after} live {unit} after, baseline {baseline} (limit {limit:.0f})")]


def new_kopf_memories(fresh: Mapping[str, object], after: Mapping[str, object]) -> Counter[str]:
    """kopf's per-object memories after the soak (heapprobe.py) of objects it
    did not remember when fresh, by kind and namespace: what the heap kept.
    An environment's namespaces count as one place, "te-*"."""
    def objects(heap: Mapping[str, object]) -> set[str]:
        memories = heap.get("kopf_memories")
        return set(memories.get("objects", [])) if isinstance(memories, Mapping) else set()

    def where(ref: str) -> str:
        kind, _, path = ref.partition(" ")
        namespace = path.rpartition("/")[0]
        return f"{kind} in {'te-*' if namespace.startswith('te-') else namespace or '(cluster)'}"

    return Counter(where(ref) for ref in objects(after) - objects(fresh))


def heap_growth(fresh: Mapping[str, Any], after: Mapping[str, Any], top: int = 8) -> list[str]:
    """What a heap (heapprobe.py) grew by between two moments, as lines: each
    of jemalloc's statistics in MiB (allocated is what lives, active less
    allocated is fragmentation, resident less active is pages not yet handed
    back), then the object types the collector tracks that grew most."""
    lines = []
    stats_fresh, stats_after = fresh.get("jemalloc") or {}, after.get("jemalloc") or {}
    if stats_fresh and stats_after:
        lines.append("jemalloc MiB, fresh -> after: " + ", ".join(
            f"{name} {stats_fresh[name] / 2**20:.1f} -> {stats_after[name] / 2**20:.1f}"
            for name in stats_fresh if stats_fresh.get(name) is not None and stats_after.get(name) is not None))
    conns_fresh, conns_after = fresh.get("connections") or {}, after.get("connections") or {}
    if conns_fresh and conns_after:
        lines.append("connections, fresh -> after: " + ", ".join(
            f"{name} {conns_fresh.get(name, 0)} -> {conns_after.get(name, 0)}"
            for name in dict.fromkeys([*conns_fresh, *conns_after])))
    types_fresh, types_after = fresh.get("types") or {}, after.get("types") or {}
    grown = Counter({t: n - types_fresh.get(t, 0) for t, n in types_after.items() if n > types_fresh.get(t, 0)})
    if grown:
        lines.append("objects grown most, by type: " + ", ".join(f"{t} +{n}" for t, n in grown.most_common(top)))
    return lines


def leaked_namespaces(namespaces: Iterable[str]) -> list[Violation]:
    return [Violation("namespace leaked", ns, "still there after collection") for ns in sorted(namespaces)]


def pods_past_quota(quota: Mapping[str, Any]) -> bool:
    """Whether a ResourceQuota counts more pods in use than it allows: the
    API server admitted pods it did not yet know the quota of. Its quota
    admission reads quotas from an informer, and a lookup that found none
    is believed for 30 s, so pods created within moments of their quota
    may pass while the API server's informers lag (after etcd came back,
    say). Then a spec that counts on the quota to refuse a pod cannot end
    as it implies; the soak counts such runs apart."""
    status = quota.get("status") or {}
    hard, used = (status.get("hard") or {}).get("pods"), (status.get("used") or {}).get("pods")
    return hard is not None and used is not None and parse_quantity(used) > parse_quantity(hard)
