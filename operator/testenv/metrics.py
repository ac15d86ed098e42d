"""Prometheus metrics of the operator, served on /metrics."""

from __future__ import annotations

import threading
from collections import Counter as CounterOf
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from .models import FINISHED_PHASES, JobPhase, Phase, TestEnvironmentStatus
from .plan import COLLECTING

ENVIRONMENTS = Gauge("testenv_environments", "TestEnvironments by phase, as this operator last saw them", ["phase"])
PROVISIONING = Histogram(
    "testenv_provisioning_seconds",
    "From the start of a run until every component is Ready",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200),
)
SUITE_DURATION = Histogram(
    "testenv_suite_duration_seconds",
    "Test-suite Job durations by result",
    ["result"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
TEST_RESULTS = Counter("testenv_test_results_total", "Test cases reported by suites, by result", ["result"])
RUNS = Counter("testenv_runs_total", "Finished runs by outcome", ["outcome"])
COLLECTED = Counter("testenv_collected_namespaces_total", "Environment namespaces deleted, by reason", ["reason"])
RECONCILE_ERRORS = Counter("testenv_reconcile_errors_total", "Reconciliations that raised an error")

_phases: dict[str, str] = {}
# Environments per phase, kept as _phases changes: counting _phases on every
# status would cost each pass time in proportion to all environments.
_counts: CounterOf[str] = CounterOf()
_lock = threading.Lock()
for _phase in Phase:  # every phase has its series from the start, 0 until seen
    ENVIRONMENTS.labels(str(_phase)).set(0)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds()


def observe_status(uid: str, before: TestEnvironmentStatus, after: TestEnvironmentStatus) -> None:
    """Count what changed between two statuses of one environment."""
    with _lock:
        _set_phase(uid, str(after.phase))
    same_run = before.run == after.run
    if after.ready_at and not (same_run and before.ready_at):
        if (took := _seconds(after.started_at, after.ready_at)) is not None:
            PROVISIONING.observe(took)
    done_before = {
        s.name for s in before.tests
        if same_run and s.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED) and s.message != COLLECTING
    }
    for suite in after.tests:
        if suite.name in done_before or suite.phase not in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            continue
        if suite.message == COLLECTING:
            continue  # counted once its results are in
        result = "passed" if suite.phase == JobPhase.SUCCEEDED else "failed"
        if suite.duration_seconds is not None:
            SUITE_DURATION.labels(result).observe(suite.duration_seconds)
        for name, count in (("passed", suite.passed), ("failed", suite.failed), ("skipped", suite.skipped)):
            if count:
                TEST_RESULTS.labels(name).inc(count)
    if after.phase in FINISHED_PHASES and not (same_run and before.phase in FINISHED_PHASES):
        RUNS.labels(str(after.phase)).inc()


def forget(uid: str) -> None:
    with _lock:
        _set_phase(uid, None)


def _set_phase(uid: str, phase: str | None) -> None:
    old = _phases.pop(uid, None)
    if phase is not None:
        _phases[uid] = phase
    if old == phase:
        return
    for changed, delta in ((old, -1), (phase, 1)):
        if changed is not None:
            _counts[changed] += delta
            ENVIRONMENTS.labels(changed).set(_counts[changed])


def collected(reason: str) -> None:
    COLLECTED.labels(reason).inc()


def serve(port: int) -> None:
    start_http_server(port)
