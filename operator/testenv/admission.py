"""Concurrency limits: which waiting environments may start, in creation order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
