"""Wake-ups reach every waiter of an environment and nobody else's."""

from __future__ import annotations

import asyncio

from testenv.wakeups import Wakeups


def test_a_wake_reaches_every_waiter_of_that_environment_only() -> None:
    wakeups = Wakeups()
    with wakeups.listen("a") as loop, wakeups.listen("a") as deleter, wakeups.listen("b") as other:
        wakeups.wake("a")
        assert loop.is_set() and deleter.is_set()
        assert not other.is_set()


def test_one_waiter_leaving_does_not_deafen_another() -> None:
    wakeups = Wakeups()
    with wakeups.listen("a") as stays:
        with wakeups.listen("a"):
            pass
        wakeups.wake("a")
        assert stays.is_set()
    assert wakeups.listening() == 0


def test_waking_nobody_or_no_uid_is_harmless() -> None:
    wakeups = Wakeups()
    wakeups.wake("nobody")
    wakeups.wake(None)
    assert wakeups.listening() == 0


def test_wake_all_reaches_every_environment() -> None:
    wakeups = Wakeups()
    with wakeups.listen("a") as a, wakeups.listen("b") as b:
        wakeups.wake_all()
        assert a.is_set() and b.is_set()


def test_a_waiting_task_is_woken() -> None:
    async def scenario() -> bool:
        wakeups = Wakeups()
        with wakeups.listen("a") as event:
            asyncio.get_running_loop().call_soon(wakeups.wake, "a")
            await asyncio.wait_for(event.wait(), timeout=5)
            return event.is_set()

    assert asyncio.run(scenario())
