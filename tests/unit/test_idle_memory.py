"""Memory is handed back once after each spell of activity, when the
operator has been quiet, never while it is busy (idle_memory.py)."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from pathlib import Path

from testenv import idle_memory
from testenv.idle_memory import IMAGE_ALLOCATOR, IdleMemory

QUIET = 0.2


async def _until(condition, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def test_nothing_is_released_before_anything_was_done():
    async def scenario() -> list[float]:
        released: list[float] = []
        idle = IdleMemory(release=lambda: released.append(time.monotonic()), quiet=QUIET)
        idle.start()
        await asyncio.sleep(QUIET * 3)  # the claim is about time passing with nothing done
        await idle.stop()
        return released

    assert asyncio.run(scenario()) == []


def test_one_release_per_spell_of_activity_once_quiet_for_the_whole_window():
    async def scenario() -> tuple[list[float], float, float]:
        released: list[float] = []
        idle = IdleMemory(release=lambda: released.append(time.monotonic()), quiet=QUIET)
        idle.start()
        busy_until = time.monotonic() + QUIET * 3
        last_busy = time.monotonic()
        while last_busy < busy_until:  # busy for three windows: no release in between
            idle.busy()
            last_busy = time.monotonic()
            await asyncio.sleep(QUIET / 4)
        await _until(lambda: len(released) == 1)
        first = released[0]
        idle.busy()  # a second spell
        await _until(lambda: len(released) == 2)
        await asyncio.sleep(QUIET * 2)  # and no third release without more work
        await idle.stop()
        return released, last_busy, first

    released, last_busy, first = asyncio.run(scenario())
    assert len(released) == 2
    assert first - last_busy >= QUIET * 0.9


def test_a_failing_release_does_not_end_the_task():
    calls: list[int] = []

    def release() -> None:
        calls.append(1)
        raise RuntimeError("no")

    async def scenario() -> None:
        idle = IdleMemory(release=release, quiet=0.05)
        idle.start()
        idle.busy()
        await _until(lambda: len(calls) == 1)
        idle.busy()
        await _until(lambda: len(calls) == 2)
        await idle.stop()

    asyncio.run(scenario())


def test_the_real_release_collects_cyclic_garbage():

    class Node:
        pass

    gc.disable()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        before = len(gc.get_objects())
        idle_memory.release()
        assert len(gc.get_objects()) < before
    finally:
        gc.enable()


def _dockerfile_runtime_stage() -> str:
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    return text.rsplit("\nFROM ", 1)[1]


def test_the_image_runs_python_on_the_allocator_the_release_is_measured_with():
    runtime = _dockerfile_runtime_stage()
    assert "apt-get install" in runtime and " libjemalloc2" in runtime
    for key, value in IMAGE_ALLOCATOR.items():
        assert re.search(rf"^(ENV |\s+){key}={re.escape(value)}\b", runtime, re.MULTILINE), (
            f"the Dockerfile's runtime stage does not set {key}={value}")
