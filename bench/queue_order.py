"""The queue's order as burst.py judges it, from the moments each environment
reached each phase (pure: tests/unit/test_queue_order.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from testenv.admission import WAITING  # the operator's own: the phases an environment waits in


def started_at(times: Mapping[str, float]) -> float | None:
    """When the environment left the queue: its first phase past waiting."""
    past = [t for phase, t in times.items() if phase not in WAITING]
    return min(past) if past else None


def inversions(order: Sequence[str], starts: Mapping[str, float], slack: float) -> tuple[int, float]:
    """(environments that started more than `slack` s before one ahead of them
    in `order`, the queue's order; the largest such lead in seconds)."""
    count, worst = 0, 0.0
    latest_ahead = float("-inf")  # the latest start among those ahead in the queue
    for name in order:
        if starts[name] < latest_ahead - slack:
            count += 1
            worst = max(worst, latest_ahead - starts[name])
        latest_ahead = max(latest_ahead, starts[name])
    return count, worst
