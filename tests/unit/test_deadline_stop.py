"""A pass past the environment's activeDeadlineSeconds stops each running
suite pod once (its deadline brought forward, see plan.STOPPING), and a
refusal to stop one is tried again, not a failed pass. The API is a fake;
tests/component/test_lifecycle.py and tests/realnode/test_results.py run it
against the real API server and kubelet."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fake_kube import RefusingKube
from kubernetes.client.exceptions import ApiException
from testenv import reconcile as reconcile_module
from testenv.models import JobPhase
from testenv.observe import JobObservation, Observed
from testenv.plan import STOPPING
from testenv.reconcile import Memory, reconcile
from testenv.settings import Settings

SETTINGS = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system")


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


START = datetime(2026, 1, 1, 12, 0, 0)


@pytest.fixture(autouse=True)
def two_minutes_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The passes run 120 s after the start: past the 60 s deadline, within the grace to stop."""
    monkeypatch.setattr(reconcile_module, "_now", lambda: START + timedelta(seconds=120))


def started() -> datetime:
    return START


def body(start: datetime) -> dict[str, Any]:
    return {"metadata": {"name": "pr-1", "namespace": "ci", "uid": "u-1", "generation": 1, "resourceVersion": "7"},
            "spec": {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
                     "lifecycle": {"activeDeadlineSeconds": 60}},
            "status": {"phase": "Testing", "run": 1, "observedGeneration": 1, "startedAt": _ts(start),
                       "readyAt": _ts(start), "tests": [{"name": "e2e", "phase": "Running", "message": "running"}]}}


def observed(start: datetime) -> Observed:
    pod = {"metadata": {"name": "e2e-r1-abc", "labels": {"job-name": "e2e-r1"}},
           "status": {"phase": "Running", "startTime": _ts(start + timedelta(seconds=5))}}
    return Observed(namespace_phase="Active", pods=(pod,),
                    jobs={"e2e-r1": JobObservation(name="e2e-r1", component="e2e", kind="test", run=1,
                                                   phase=JobPhase.RUNNING)})


def test_a_running_suite_pod_is_stopped_once_past_the_deadline() -> None:
    kube, memory, start = RefusingKube(refused=None), Memory(), started()
    reconcile(body(start), observed(start), kube, SETTINGS, memory)
    reconcile(body(start), observed(start), kube, SETTINGS, memory)
    assert kube.stopped == ["e2e-r1-abc"]
    assert kube.patches[-1]["phase"] == "Testing" and kube.patches[-1]["tests"][0]["message"] == STOPPING


def test_a_refused_stop_is_tried_again_by_the_next_pass(caplog: pytest.LogCaptureFixture) -> None:
    kube, memory, start = RefusingKube(refused=None), Memory(), started()
    kube.stop_refusal = ApiException(status=403, reason="Forbidden")
    reconcile(body(start), observed(start), kube, SETTINGS, memory)
    assert kube.stopped == [] and "not stopped: Forbidden" in caplog.text and kube.patches
    kube.stop_refusal = None
    reconcile(body(start), observed(start), kube, SETTINGS, memory)
    assert kube.stopped == ["e2e-r1-abc"]
