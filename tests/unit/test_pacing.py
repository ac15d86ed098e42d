"""Status write pacing: phase and condition changes go out at once, progress
within a phase at most once per interval."""

from __future__ import annotations

from typing import Any

import pytest
from testenv.pacing import STATUS_INTERVAL, hold_status


def status(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phase": "Provisioning",
        "message": "waiting for 2 of 3 components: api (0/1 replicas ready); cache (0/1 replicas ready)",
        "run": 1,
        "readyComponents": "1/3",
        "components": [{"name": "db", "ready": True}, {"name": "api", "ready": False}],
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ComponentsNotReady", "message": "api; cache"},
            {"type": "TestsPassed", "status": "Unknown", "reason": "Pending", "message": ""},
        ],
    }
    base.update(overrides)
    return base


ONE_MORE_READY = {
    "readyComponents": "2/3",
    "components": [{"name": "db", "ready": True}, {"name": "api", "ready": True}],
    "message": "waiting for 1 of 3 components: cache (0/1 replicas ready)",
    "conditions": [
        {"type": "Ready", "status": "False", "reason": "ComponentsNotReady", "message": "cache"},
        {"type": "TestsPassed", "status": "Unknown", "reason": "Pending", "message": ""},
    ],
}


def test_progress_soon_after_a_write_is_held_for_the_rest_of_the_interval() -> None:
    assert hold_status(status(), status(**ONE_MORE_READY), since_last_write=0.25) == pytest.approx(0.75)


def test_progress_is_written_once_the_interval_has_passed() -> None:
    assert hold_status(status(), status(**ONE_MORE_READY), since_last_write=STATUS_INTERVAL) == 0


def test_the_first_write_is_never_held() -> None:
    assert hold_status({}, status(), since_last_write=None) == 0


def test_a_phase_change_is_written_at_once() -> None:
    assert hold_status(status(), status(phase="Seeding"), since_last_write=0.1) == 0


def test_a_condition_changing_state_is_written_at_once() -> None:
    ready = status(conditions=[
        {"type": "Ready", "status": "True", "reason": "AllComponentsReady", "message": ""},
        {"type": "TestsPassed", "status": "Unknown", "reason": "Pending", "message": ""},
    ])
    assert hold_status(status(), ready, since_last_write=0.1) == 0


def test_a_condition_whose_message_alone_changes_is_progress() -> None:
    quieter = status(conditions=[
        {"type": "Ready", "status": "False", "reason": "ComponentsNotReady", "message": "cache"},
        {"type": "TestsPassed", "status": "Unknown", "reason": "Pending", "message": ""},
    ])
    assert hold_status(status(), quieter, since_last_write=0.1) > 0


@pytest.mark.parametrize("field,value", [
    ("readyAt", "2026-11-25T10:00:00Z"),
    ("finishedAt", "2026-11-25T10:00:00Z"),
    ("expiresAt", "2026-11-25T10:10:00Z"),
    ("observedGeneration", 2),
    ("run", 2),
    ("namespace", "te-x-1234"),
])
def test_lifecycle_fields_are_written_at_once(field: str, value: Any) -> None:
    assert hold_status(status(), status(**{field: value}), since_last_write=0.1) == 0


def test_a_change_announced_by_events_is_never_held() -> None:
    suite_done = status(tests=[{"name": "smoke", "phase": "Succeeded", "passed": 3}], testCounts="3/0")
    assert hold_status(status(), suite_done, since_last_write=0.1, announces=True) == 0
    assert hold_status(status(), suite_done, since_last_write=0.1) > 0
