"""What the CLI prints: progress lines for logs, the result table, `list`."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from testenv.cli import display
from testenv.models import (
    ComponentKind,
    ComponentStatus,
    Counts,
    JobPhase,
    Phase,
    SeedStatus,
    SuiteStatus,
    TestEnvironmentStatus,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def render(renderable, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def provisioning() -> TestEnvironmentStatus:
    return TestEnvironmentStatus(
        phase=Phase.PROVISIONING, run=1, message="waiting for 1 of 2 components",
        components=[
            ComponentStatus(name="cache", kind=ComponentKind.DATASTORE, ready=True),
            ComponentStatus(name="api", kind=ComponentKind.SERVICE, message="waiting for cache"),
        ],
        seeds=[SeedStatus(name="schema")],
        tests=[SuiteStatus(name="e2e", message="waiting for the environment")],
    )


def done() -> TestEnvironmentStatus:
    return TestEnvironmentStatus(
        phase=Phase.FAILED, run=2, namespace="te-pr-1-abcde", message="1 suite(s) failed: e2e",
        tests=[
            SuiteStatus(name="unit", phase=JobPhase.SUCCEEDED, passed=12, skipped=1, duration_seconds=14.2),
            SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=3, failed=1, duration_seconds=75,
                        failures=["tests.test_orders::test_refund"]),
        ],
        summary=Counts(passed=15, failed=1, skipped=1),
    )


# --- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0.04, "0.0s"), (14.25, "14.2s"), (75, "1m15s"), (3600, "1h00m"),
                          (5400, "1h30m")],
)
def test_durations(seconds, text):
    assert display.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (119, "119s"), (330, "5m30s"), (300, "5m"), (95 * 60, "95m"), (5 * 3600 + 1800, "5h30m"),
     (30 * 3600, "30h"), (51 * 3600, "2d3h"), (40 * 86400, "40d")],
)
def test_ages_read_like_kubectl(seconds, text):
    assert display.human_age(seconds) == text


def test_expiry_is_relative_or_expired_or_none():
    assert display.expires("2024-05-01T12:10:00Z", NOW) == "in 10m"
    assert display.expires("2024-05-01T11:00:00Z", NOW) == "expired"
    assert display.expires(None, NOW) == "<none>"


# --- progress lines ----------------------------------------------------------------------


def test_the_first_status_prints_every_fact():
    lines = display.progress_lines(None, display.status_facts(provisioning()))
    assert lines == [
        "phase Provisioning",
        "datastore cache: ready",
        "service api: waiting for cache",
        "seed schema: Pending",
        "suite e2e: Pending (waiting for the environment)",
    ]


def test_only_what_changed_is_printed_again():
    before = provisioning()
    after = before.model_copy(deep=True)
    after.components[1].ready, after.components[1].message = True, ""
    after.seeds[0].phase = JobPhase.SUCCEEDED
    lines = display.progress_lines(display.status_facts(before), display.status_facts(after))
    assert lines == ["service api: ready", "seed schema: Succeeded"]


def test_an_unchanged_status_prints_nothing():
    facts = display.status_facts(provisioning())
    assert display.progress_lines(facts, display.status_facts(provisioning())) == []


def test_the_phase_message_is_shown_where_it_explains_something():
    queued = TestEnvironmentStatus(phase=Phase.QUEUED, message="3 environments active in ci (limit 3)")
    testing = TestEnvironmentStatus(phase=Phase.TESTING, message="testing: e2e")
    assert display.status_facts(queued)["phase"] == "phase Queued: 3 environments active in ci (limit 3)"
    assert display.status_facts(testing)["phase"] == "phase Testing"


def test_a_running_suite_does_not_repeat_itself():
    running = TestEnvironmentStatus(tests=[SuiteStatus(name="e2e", phase=JobPhase.RUNNING, message="running")])
    assert display.status_facts(running)["suite/e2e"] == "suite e2e: Running"


def test_a_finished_suite_line_has_counts_duration_and_reason():
    facts = display.status_facts(TestEnvironmentStatus(tests=[
        SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=3, failed=1, duration_seconds=75, message="exit 1"),
        SuiteStatus(name="unit", phase=JobPhase.SUCCEEDED, passed=12, duration_seconds=2),
    ]))
    assert facts["suite/e2e"] == "suite e2e: Failed - 3 passed, 1 failed, 0 skipped in 1m15s (exit 1)"
    assert facts["suite/unit"] == "suite unit: Succeeded - 12 passed, 0 failed, 0 skipped in 2.0s"


def test_plain_progress_prefixes_the_elapsed_time_and_skips_repeats():
    console = Console(file=io.StringIO(), width=200, color_system=None)
    progress = display.PlainProgress(console, namespace="ci", name="pr-1")
    progress.waiting("waiting for the operator to pick up generation 2 (no status yet)")
    progress.waiting("waiting for the operator to pick up generation 2 (no status yet)")
    progress.update(provisioning())
    progress.update(provisioning())
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("[   0.0s] waiting for the operator")
    assert lines[1].endswith("phase Provisioning")


# --- tables --------------------------------------------------------------------------------


def test_the_result_table_has_a_row_per_suite():
    text = render(display.result_table(done()))
    header, *rows = [line.split() for line in text.splitlines() if line.strip() and "─" not in line]
    assert [h for h in header if h != "│"] == ["SUITE", "PHASE", "PASSED", "FAILED", "SKIPPED", "DURATION"]
    assert [c for c in rows[0] if c != "│"] == ["unit", "Succeeded", "12", "0", "1", "14.2s"]
    assert [c for c in rows[1] if c != "│"] == ["e2e", "Failed", "3", "1", "0", "1m15s"]


def test_the_summary_line_tallies_and_explains_a_failure():
    assert display.summary_line("pr-1", done()) == (
        "pr-1: Failed - 2 suites, 15 passed, 1 failed, 1 skipped - run 2, namespace te-pr-1-abcde\n"
        "1 suite(s) failed: e2e")


def test_a_preview_environment_summary_has_no_suites():
    status = TestEnvironmentStatus(phase=Phase.READY, run=1, message="all components ready")
    assert display.summary_line("pv", status) == "pr-1: Ready".replace("pr-1", "pv") + " - run 1\nall components ready"


def test_failures_are_listed_up_to_a_limit():
    status = done()
    status.tests[1].failures = [f"m::t{i}" for i in range(25)]
    lines = display.failure_lines(status, limit=20)
    assert lines[0] == "  e2e: m::t0" and len(lines) == 21 and "and 5 more" in lines[-1]


def test_list_shows_the_kubectl_columns():
    items = [{
        "metadata": {"name": "pr-1", "namespace": "ci", "creationTimestamp": "2024-05-01T11:55:00Z"},
        "status": {"phase": "Testing", "readyComponents": "3/3", "testCounts": "12/0",
                   "expiresAt": "2024-05-01T12:30:00Z"},
    }, {"metadata": {"name": "new", "namespace": "ci", "creationTimestamp": "2024-05-01T11:59:50Z"}}]
    lines = [line.split() for line in render(display.list_table(items, NOW, all_namespaces=False)).splitlines()]
    assert lines[0] == ["NAME", "PHASE", "READY", "TESTS", "AGE", "EXPIRES"]
    assert lines[1] == ["new", "Pending", "-", "-", "10s", "<none>"]
    assert lines[2] == ["pr-1", "Testing", "3/3", "12/0", "5m", "in", "30m"]


def test_list_across_namespaces_adds_the_namespace():
    items = [{"metadata": {"name": "a", "namespace": "team-b"}}, {"metadata": {"name": "b", "namespace": "team-a"}}]
    lines = [line.split() for line in render(display.list_table(items, NOW, all_namespaces=True)).splitlines()]
    assert lines[0][0] == "NAMESPACE"
    assert [line[:2] for line in lines[1:]] == [["team-a", "b"], ["team-b", "a"]]


def test_status_view_shows_suites_failures_and_conditions():
    obj = {"metadata": {"name": "pr-1", "namespace": "ci", "generation": 2,
                        "creationTimestamp": (NOW - timedelta(minutes=3)).isoformat()},
           "status": done().model_dump(by_alias=True, mode="json")
           | {"conditions": [{"type": "TestsPassed", "status": "False", "reason": "SuitesFailed", "message": "e2e"}]}}
    text = render(display.status_view(obj, NOW))
    assert "ci/pr-1  Failed  run 2" in text
    assert "e2e: tests.test_orders::test_refund" in text
    assert "TestsPassed" in text and "SuitesFailed" in text
    assert "3 passed, 1 failed, 0 skipped in 1m15s" in text
