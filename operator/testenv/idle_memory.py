"""Hand freed memory back to the system once the operator goes quiet.

A burst of work (a hundred environments applied, then deleted) leaves the
process's RSS near its peak long after: the garbage of parsed watch events
waits for a full collection, and freed blocks sit in the allocator's heap.
Measured with 100 environments Ready and then deleted (bench/RESULTS.md,
"The operator's memory"): 102 MiB fresh, 133-136 MiB after. A full
collection, then glibc's malloc_trim, once the operator has been quiet for a
while, brings it back near the fresh figure, but only when Python's objects
come from malloc (PYTHONMALLOC=malloc, as the image runs it): pymalloc
keeps a 1 MiB arena while any object in it lives, and gives few back.

Quiet, not periodic: under load a release would cost CPU and return nothing
that the next events would not take again."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

QUIET_SECONDS = 10.0


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where there is none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def release() -> None:
    """A full collection, then the free pages of every malloc arena back to the system."""
    started = time.monotonic()
    found = gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)  # type: ignore[call-arg]
    log.debug("released memory: %d unreachable objects, %.0f ms", found, (time.monotonic() - started) * 1000)


class IdleMemory:
    """Releases memory once after each spell of activity, when none has been
    noted for `quiet` seconds; waits on an event, not a timer, in between."""

    def __init__(self, release: Callable[[], None] = release, quiet: float = QUIET_SECONDS) -> None:
        self._release, self._quiet = release, quiet
        self._active: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._active = asyncio.Event()
        self._task = asyncio.create_task(self._forever(self._active))

    def busy(self) -> None:
        """Something was done: the next release waits for quiet after it."""
        if self._active is not None:
            self._active.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _forever(self, active: asyncio.Event) -> None:
        while True:
            await active.wait()
            while active.is_set():
                active.clear()
                try:
                    await asyncio.wait_for(active.wait(), timeout=self._quiet)
                except TimeoutError:
                    break
            try:
                self._release()
            except Exception:  # a failed release must not end the task
                log.exception("releasing memory failed")
