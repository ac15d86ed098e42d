"""Waiting for eventual consistency: ask again until the answer is right or
the deadline passes, then fail with the last answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], check: Callable[[T], bool], *, within: float = 20, what: str) -> T:
    deadline = time.monotonic() + within
    delay = 0.05
    while True:
        value = probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:g}s; last: {value!r}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
