"""burst.py's judgement of the queue (bench/queue_order.py): an environment
that jumps the queue is counted, small races within the slack are not."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from queue_order import inversions, started_at


def test_an_environment_starts_at_its_first_phase_past_the_queue() -> None:
    assert started_at({"Queued": 1.0, "Provisioning": 5.0, "Ready": 9.0}) == 5.0
    assert started_at({"Pending": 0.5, "Queued": 1.0}) is None
    assert started_at({"Failed": 3.0}) == 3.0  # refused at once: it left the queue too


def test_starts_in_queue_order_have_no_inversion() -> None:
    assert inversions(["a", "b", "c"], {"a": 1.0, "b": 2.0, "c": 3.0}, slack=2.0) == (0, 0.0)


def test_a_start_within_the_slack_of_one_ahead_is_not_an_inversion() -> None:
    assert inversions(["a", "b"], {"a": 3.0, "b": 1.5}, slack=2.0) == (0, 0.0)


def test_environments_that_jump_the_queue_are_each_counted_with_the_largest_lead() -> None:
    # "a" waits while three created after it start: each of them jumped it.
    assert inversions(["a", "b", "c", "d"], {"a": 10.0, "b": 2.0, "c": 3.0, "d": 4.0}, slack=2.0) == (3, 8.0)
    # only the last one jumps those ahead of it
    assert inversions(["a", "b", "c", "d"], {"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.5}, slack=2.0) == (1, 2.5)
