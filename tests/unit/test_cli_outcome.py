"""Exit codes and the end of a wait: the CLI's contract with CI pipelines."""

from __future__ import annotations

from typing import Any

import pytest
from testenv.cli.outcome import exit_code, is_current, is_done, parse_duration, stuck_message


def env(phase: str | None, observed: int | None = 2, tests: bool = True) -> dict[str, Any]:
    status = {} if phase is None else {"phase": phase, "message": f"{phase} because"}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": 2}, "spec": {"tests": [{"name": "t", "image": "x"}] if tests else []},
            "status": status}


@pytest.mark.parametrize(
    ("phase", "code"),
    [("Succeeded", 0), ("Ready", 0), ("Failed", 1), ("Error", 2), ("TimedOut", 2), (None, 2), ("Testing", 2)],
)
def test_exit_codes(phase, code):
    assert exit_code(phase) == code


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "TimedOut", "Error"])
def test_a_finished_phase_of_the_applied_generation_ends_the_wait(phase):
    assert is_done(env(phase), generation=2)


@pytest.mark.parametrize("phase", ["Pending", "Queued", "Provisioning", "Seeding", "Testing", "Terminating"])
def test_a_phase_in_progress_does_not(phase):
    assert not is_done(env(phase), generation=2)


@pytest.mark.parametrize("observed", [1, None])
def test_an_older_runs_result_never_ends_the_wait(observed):
    assert not is_done(env("Succeeded", observed=observed), generation=2)
    assert not is_current(env("Succeeded", observed=observed), generation=2)


def test_a_newer_generation_counts_as_current():
    assert is_done(env("Failed", observed=3), generation=2)


def test_ready_ends_the_wait_only_without_tests():
    assert is_done(env("Ready", tests=False), generation=2)
    assert not is_done(env("Ready", tests=True), generation=2)


def test_no_status_yet_is_not_done():
    assert not is_done({"metadata": {"generation": 1}, "spec": {}}, generation=1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("90s", 90), ("1h30m", 5400), ("45", 45), ("2.5", 2.5), ("1d", 86400), ("500ms", 0.5),
     ("1H", 3600)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30 minutes", "m30", "-5m"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="90s, 30m, 1h30m"):
        parse_duration(text)


def test_a_stuck_wait_names_the_phase_and_the_message():
    assert stuck_message(env("Testing"), 2) == "stuck in phase Testing: Testing because"


def test_a_wait_the_operator_never_answered_says_so():
    message = stuck_message(env("Succeeded", observed=1), 2)
    assert "has not picked up generation 2" in message and "operator running" in message
