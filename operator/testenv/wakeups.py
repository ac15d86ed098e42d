"""Wake-ups: the watch handlers tell an environment's waiters (its loop, its
delete handler) that something it owns changed. Used on the event loop only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
