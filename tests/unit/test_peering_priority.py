"""Reading kopf's peering status: is this operator the one acting?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from testenv.peering import outranked

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def peer(priority: int, seen_ago: float = 5, lifetime: int = 60) -> dict:
    return {"priority": priority, "lastseen": (NOW - timedelta(seconds=seen_ago)).isoformat(), "lifetime": lifetime}


def test_alone_it_acts() -> None:
    assert not outranked({"me": peer(100)}, 100, NOW)


def test_a_live_peer_of_higher_priority_pauses_it() -> None:
    assert outranked({"me": peer(100), "dev": peer(666)}, 100, NOW)


def test_the_highest_priority_acts() -> None:
    assert not outranked({"me": peer(666), "other": peer(100)}, 666, NOW)


def test_a_dead_higher_peer_does_not_count() -> None:
    assert not outranked({"me": peer(100), "gone": peer(666, seen_ago=61)}, 100, NOW)


def test_two_of_the_same_priority_both_pause() -> None:
    assert outranked({"me": peer(100), "twin": peer(100)}, 100, NOW)


def test_an_unreadable_entry_is_not_a_live_peer() -> None:
    assert not outranked({"me": peer(100), "odd": {"priority": 900}}, 100, NOW)


def test_kopf_defaults_apply_to_missing_fields() -> None:
    zero = {"lastseen": (NOW - timedelta(seconds=30)).isoformat()}
    assert outranked({"me": peer(0), "other": zero}, 0, NOW)
