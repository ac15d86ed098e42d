"""Concurrency limits: which waiting environments may start, in creation order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .models import FINISHED_PHASES, Phase
from .plan import Admission

WAITING = frozenset({"", str(Phase.PENDING), str(Phase.QUEUED)})
FINISHED = frozenset(str(p) for p in FINISHED_PHASES)


@dataclass(frozen=True, kw_only=True)
class EnvSummary:
    namespace: str
    name: str
    uid: str
    created: str  # creationTimestamp: whole seconds, so ties are broken by name
    phase: str


def summary_of(resource: Mapping[str, Any]) -> EnvSummary:
    """A TestEnvironment as the queue sees it, from its body or a listed item."""
    meta = resource["metadata"]
    return EnvSummary(namespace=meta.get("namespace") or "", name=meta["name"], uid=meta["uid"],
                      created=meta.get("creationTimestamp", ""), phase=(resource.get("status") or {}).get("phase", ""))


def admit(me: EnvSummary, everyone: Iterable[EnvSummary], max_total: int, max_per_namespace: int) -> Admission:
    if me.phase not in WAITING or not (max_total or max_per_namespace):
        return Admission()
    envs = list(everyone)
    active = [e for e in envs if e.phase not in WAITING and e.phase not in FINISHED]
    waiting = sorted((e for e in envs if e.phase in WAITING), key=lambda e: (e.created, e.namespace, e.name, e.uid))
    mine = [e for e in waiting if e.namespace == me.namespace]
    ahead_total = next((i for i, e in enumerate(waiting) if e.uid == me.uid), len(waiting))
    ahead_ns = next((i for i, e in enumerate(mine) if e.uid == me.uid), len(mine))
    limits = []
    if max_total:
        free = max_total - len(active)
        if ahead_total >= free:
            limits.append(f"{len(active)}/{max_total} environments active, {ahead_total} queued ahead")
    if max_per_namespace:
        free = max_per_namespace - sum(1 for e in active if e.namespace == me.namespace)
        if ahead_ns >= free:
            used = max_per_namespace - free
            limits.append(f"{used}/{max_per_namespace} active in namespace {me.namespace}, {ahead_ns} queued ahead")
    if not limits:
        return Admission()
    return Admission(admitted=False, message="queued: " + "; ".join(limits))



def admit_confirmed(
    me: EnvSummary, indexed: Iterable[EnvSummary], listed: Callable[[], Iterable[EnvSummary]],
    max_total: int, max_per_namespace: int, phase: str,
) -> Admission:
    """`admit`, with the phase the reconciler knows as its own (the index and
    the body lag the status it last wrote). A start the index allows is
    confirmed against `listed`, the API's list, first: the index may not
    have seen yet the environments created just before this one."""
    me = replace(me, phase=phase)
    first = admit(me, indexed, max_total, max_per_namespace)
    if not first.admitted or phase not in WAITING or not (max_total or max_per_namespace):
        return first
    return admit(me, listed(), max_total, max_per_namespace)
