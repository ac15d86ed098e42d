"""Wake-ups: the watch handlers tell an environment's waiters (its loop, its
delete handler) that something it owns changed. Used on the event loop only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager


class Wakeups:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def listen(self, uid: str) -> Iterator[asyncio.Event]:
        """An event set on every wake(uid) while the block runs; each waiter
        has its own, so one leaving never deafens another."""
        event = asyncio.Event()
        self._waiters.setdefault(uid, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(uid, set())
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(uid, None)

    def wake(self, uid: str | None) -> None:
        for event in self._waiters.get(uid or "", ()):
            event.set()

    def wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def listening(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())


async def until_gone(
    wake: asyncio.Event, *, present: Callable[[], bool], still_there: Callable[[], Awaitable[bool]], recheck: float,
) -> None:
    """Wait, woken by `wake`, until `present()` (an index) says the object is
    gone. Every `recheck` seconds without news, `still_there()` asks the API:
    a watch that reconnected after the object went may never report it.
    Waiting here, rather than handing back to kopf to be called again, costs
    no request while the object goes, however long that takes."""
    while True:
        wake.clear()
        if not present():
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout=recheck)
        except TimeoutError:
            if present() and not await still_there():
                return
