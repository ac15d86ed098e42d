"""Give memory back to the system once the operator goes quiet.

A burst of work (a hundred environments applied, then deleted) leaves the
RSS near its peak long after: the garbage of parsed watch events waits for a
full collection, and the allocator keeps the freed pages. Two things bring
it back, and the image does both (bench/RESULTS.md, the chaos soak's "eighth session"):

- the objects come from jemalloc, not pymalloc (IMAGE_ALLOCATOR, set in the
  Dockerfile): pymalloc keeps a 1 MiB arena while any object in it lives,
  and a few survivors of a burst pin dozens; jemalloc's background thread
  hands back pages that have been free for a second;
- one full collection once the burst is over, so that the cyclic garbage
  is freed, not kept until the oldest generation's threshold is reached.

Quiet, not periodic: under load a collection costs CPU and frees nothing
the next events would not take again."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

QUIET_SECONDS = 10.0

# The operator image's allocator (the Dockerfile's ENV, which
# tests/unit/test_idle_memory.py holds to this); bench/ runs its operators
# with it too, so that what it measures is what the image runs.
IMAGE_ALLOCATOR = {
    "PYTHONMALLOC": "malloc",
    "LD_PRELOAD": "libjemalloc.so.2",
    "MALLOC_CONF": "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1",
}


def release() -> None:
    """A full collection: cyclic garbage freed now, and its pages with it."""
    started = time.monotonic()
    found = gc.collect()
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
