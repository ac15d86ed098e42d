"""The operator's /metrics, scraped like Prometheus would, around one run."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from testbed_support import wait_for

pytestmark = pytest.mark.component


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_run_shows_in_the_metrics(environments, operator):
    before = samples(operator.metrics())
    environments.apply("measured", {
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [
            {"name": "unit", "image": "t", "podAnnotations": {
                "testenv.dev/simulate-termination-message": '{"passed": 4, "failed": 0, "skipped": 1}'}},
            {"name": "e2e", "image": "t", "podAnnotations": {"testenv.dev/simulate-exit-code": "1"}},
        ],
    })
    environments.wait_phase("measured", "Failed", timeout=90)
    # The status is written first, the metrics right after: scrape until they agree.
    def counted() -> dict | None:
        scrape = samples(operator.metrics())
        runs = value(scrape, "testenv_runs_total", outcome="Failed")
        return scrape if runs > value(before, "testenv_runs_total", outcome="Failed") else None

    after = wait_for(counted, timeout=15, what="the finished run in the metrics")

    def grew(name: str, by: float, **labels: str) -> None:
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert delta == by, f"{name}{labels} grew by {delta}, expected {by}"

    grew("testenv_runs_total", 1, outcome="Failed")
    grew("testenv_test_results_total", 4, result="passed")
    grew("testenv_test_results_total", 1, result="skipped")
    grew("testenv_test_results_total", 1, result="failed")
    grew("testenv_suite_duration_seconds_count", 1, result="passed")
    grew("testenv_suite_duration_seconds_count", 1, result="failed")
    grew("testenv_provisioning_seconds_count", 1)
    assert value(after, "testenv_environments", phase="Failed") >= 1
    assert ("testenv_reconcile_errors_total", ()) in after
