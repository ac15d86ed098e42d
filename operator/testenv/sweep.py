"""The orphan sweep: one task per operator that deletes the environment
namespaces whose TestEnvironment is gone. orphans.py decides which from the
indexes; this module asks the API before it deletes and runs the passes.
handlers.py starts and stops it with the operator.

One task, not a kopf timer per namespace: kopf keeps a finalizer on
everything a timer watches, and a finalizer on every environment namespace
would hold its deletion until this operator runs (and cost two writes each).
Namespaces no handler needs a finalizer for lose the one an earlier version
left at their next event: kopf removes it by itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime

from . import metrics
from .kube import Kube, announce, event_name
from .orphans import EnvironmentNamespace, find_orphans, why
from .peering import outranked

log = logging.getLogger(__name__)

# kopf's indexes as the sweep reads them: the environment namespaces by name,
# and the TestEnvironments by uid (only the keys count).
NamespaceIndex = Mapping[str, Iterable[EnvironmentNamespace]]
EnvironmentIndex = Collection[str]


class OrphanSweep:
    """A pass as soon as kopf's indexes are filled (orphans pile up while the
    operator is down), then one every interval, until stopped."""

    def __init__(self, kube: Callable[[], Kube]) -> None:
        # Asked for at each pass: the client is made on first use, not at import.
        self._kube = kube
        self._indexed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._peering: tuple[str, int] | None = None
        self._dry_run = False

    def indexes_filled(self) -> None:
        # kopf calls event handlers only once every index has been filled, so
        # the first call says the sweep may trust them (an orphan brings an event).
        if self._indexed is not None:
            self._indexed.set()

    def start(
        self, namespaces: NamespaceIndex, environments: EnvironmentIndex, *,
        interval: float, dry_run: bool, peering: tuple[str, int] | None,
    ) -> None:
        """peering: the cluster-wide peering's (name, priority), when replicas share the work."""
        self._peering, self._dry_run = peering, dry_run
        self._indexed = indexed = asyncio.Event()
        self._task = asyncio.create_task(self._forever(indexed, namespaces, environments, interval))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _forever(
        self, indexed: asyncio.Event, namespaces: NamespaceIndex, environments: EnvironmentIndex, interval: float,
    ) -> None:
        await indexed.wait()
        while True:
            try:
                await self.sweep_once(namespaces, environments)
            except Exception:  # the next pass tries again; the operator goes on
                log.exception("orphan sweep failed; next pass in %ss", interval)
            await asyncio.sleep(interval)

    async def sweep_once(self, namespaces: NamespaceIndex, environments: EnvironmentIndex) -> None:
        candidates = find_orphans((ns for found in namespaces.values() for ns in found), set(environments))
        if not candidates or await self._paused():
            return
        # The index may lag (an environment created a moment ago, or an operator
        # still filling it): only the API's current list may condemn a namespace.
        live = await asyncio.to_thread(self._kube().environment_uids)
        for orphan in find_orphans(candidates, live):
            if self._dry_run:
                log.warning("would delete namespace %s (dry run): %s", orphan.name, why(orphan))
            else:
                await self._collect(orphan)

    async def _paused(self) -> bool:
        """kopf pauses its watches and daemons when a peer outranks this
        operator, not tasks of ours: the sweep asks the peering object itself."""
        if self._peering is None:
            return False
        name, priority = self._peering
        peers = await asyncio.to_thread(self._kube().cluster_peers, name)
        return outranked(peers, priority, datetime.now(UTC))

    async def _collect(self, orphan: EnvironmentNamespace) -> None:
        kube = self._kube()
        if not await asyncio.to_thread(kube.delete_namespace, orphan.name):
            return  # gone already; the index has not caught up
        log.warning("deleting namespace %s: %s", orphan.name, why(orphan))
        metrics.collected(reason="Orphan")
        involved = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": orphan.name, "uid": orphan.uid}}
        await asyncio.to_thread(announce, kube, involved, type="Warning", reason="OrphanCollected",
                                message=why(orphan), name=event_name(orphan.name, orphan.uid, "OrphanCollected"))
