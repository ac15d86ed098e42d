"""The delete handler's wait for a namespace to go: woken by the watch, and
asking the API only when the watch has said nothing for a while."""

from __future__ import annotations

import asyncio

from testenv.wakeups import until_gone


def test_returns_as_soon_as_the_watch_reports_it_gone() -> None:
    index = {"ns"}
    asked: list[str] = []

    async def still_there() -> bool:
        asked.append("asked")
        return True

    async def scenario() -> None:
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def watched_deletion() -> None:
            index.discard("ns")
            wake.set()

        loop.call_later(0.05, watched_deletion)
        await asyncio.wait_for(until_gone(wake, present=lambda: "ns" in index, still_there=still_there,
                                          recheck=30), timeout=5)

    asyncio.run(scenario())
    assert asked == []


def test_keeps_waiting_while_the_api_says_it_is_there_then_ends_when_it_is_not() -> None:
    """A namespace the controller takes minutes over is waited for in one call:
    nothing is raised back to kopf, which would write its retry state on every try."""
    answers = iter([True, True, True, False])
    asked = 0

    async def still_there() -> bool:
        nonlocal asked
        asked += 1
        return next(answers)

    async def scenario() -> None:
        # The index never hears of the deletion: a watch that reconnected after it.
        await asyncio.wait_for(until_gone(asyncio.Event(), present=lambda: True, still_there=still_there,
                                          recheck=0.01), timeout=5)

    asyncio.run(scenario())
    assert asked == 4


def test_a_wake_for_something_else_is_not_taken_for_the_deletion() -> None:
    index = {"ns"}
    looks = 0
    looked = [asyncio.Event(), asyncio.Event()]

    def present() -> bool:
        nonlocal looks
        looks += 1
        if looks <= len(looked):
            looked[looks - 1].set()
        return "ns" in index

    async def scenario() -> bool:
        wake = asyncio.Event()
        waiting = asyncio.ensure_future(until_gone(wake, present=present, still_there=_never_asked, recheck=30))
        await asyncio.wait_for(looked[0].wait(), timeout=5)
        wake.set()  # another object of the environment changed
        await asyncio.wait_for(looked[1].wait(), timeout=5)
        still_waiting = not waiting.done()
        index.discard("ns")
        wake.set()
        await asyncio.wait_for(waiting, timeout=5)
        return still_waiting

    assert asyncio.run(scenario())


async def _never_asked() -> bool:
    raise AssertionError("the API was asked although the watch was not silent for a whole recheck")
