"""An object the API server refuses (an admission webhook, an exhausted
Service range) becomes the reason of its component instead of a reconcile
error, and ends the run once it outlasts the grace period. The API is a fake."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fake_kube import RefusingKube
from kubernetes.client.exceptions import ApiException
from testenv import reconcile as reconcile_module
from testenv.observe import Observed
from testenv.reconcile import Memory, reconcile
from testenv.settings import Settings

SETTINGS = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system", failure_grace_seconds=60)
@pytest.fixture
def events(monkeypatch) -> list[tuple[str, str]]:
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr(RefusingKube, "post_event",
                        lambda self, involved, *, type, reason, message, name=None: posted.append((reason, message)))
    return posted


def body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "pr-1", "namespace": "ci", "uid": "u-1", "generation": 1},
            "spec": {"services": [{"name": "api", "image": "ghcr.io/acme/api:1", "ports": [{"port": 80}]}],
                     "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}]},
            "status": status or {}}


def test_a_refused_service_is_its_components_reason_and_ends_the_run_after_the_grace(monkeypatch, events) -> None:
    clock = [datetime(2026, 1, 1, 12, 0, 0)]
    monkeypatch.setattr(reconcile_module, "_now", lambda: clock[0])
    kube, memory = RefusingKube(), Memory()
    observed = Observed(namespace_phase="Active")
    delay = reconcile(body(), observed, kube, SETTINGS, memory)  # refused: retried soon, not raised
    assert delay is not None and delay <= reconcile_module.REJECTED_RETRY
    clock[0] += timedelta(seconds=5)
    reconcile(body(), observed, kube, SETTINGS, memory)
    api = next(c for c in memory.status["components"] if c["name"] == "api")
    assert api["reason"] == "ApplyRejected"
    assert "range is full" in api["message"] and "hunter2" not in api["message"]
    assert memory.status["phase"] == "Provisioning"
    clock[0] += timedelta(seconds=61)
    reconcile(body(), observed, kube, SETTINGS, memory)
    assert memory.status["phase"] == "Error"
    assert memory.status["message"].startswith('service api: Service "api" was rejected by the API server')
    assert [r for r, _ in events].count("ApplyRejected") == 1


def test_a_refusal_that_stops_is_cleared(monkeypatch, events) -> None:
    monkeypatch.setattr(reconcile_module, "_now", lambda: datetime(2026, 1, 1, 12, 0, 0))
    kube, memory = RefusingKube(), Memory()
    observed = Observed(namespace_phase="Active")
    reconcile(body(), observed, kube, SETTINGS, memory)
    reconcile(body(), observed, kube, SETTINGS, memory)
    assert next(c for c in memory.status["components"] if c["name"] == "api")["reason"] == "ApplyRejected"
    kube.refused = None  # the range freed up, the webhook was fixed
    # This pass planned its status before the apply went through: it asks
    # for another pass at once, since nothing else may wake the environment
    # (CI saw one whose Deployment had long been ready wait forever).
    delay = reconcile(body(), observed, kube, SETTINGS, memory)
    assert delay is not None and delay <= 0.5
    assert memory.rejected == {}
    reconcile(body(), observed, kube, SETTINGS, memory)
    api = next(c for c in memory.status["components"] if c["name"] == "api")
    assert api.get("reason") is None


@pytest.mark.parametrize("status", [422, 403, 400])
def test_a_webhooks_or_policys_refusal_is_the_reason_too(monkeypatch, events, status) -> None:
    monkeypatch.setattr(reconcile_module, "_now", lambda: datetime(2026, 1, 1, 12, 0, 0))
    kube, memory = RefusingKube(status=status, message='admission webhook "policy.acme" denied the request'), Memory()
    reconcile(body(), Observed(namespace_phase="Active"), kube, SETTINGS, memory)
    reconcile(body(), Observed(namespace_phase="Active"), kube, SETTINGS, memory)
    api = next(c for c in memory.status["components"] if c["name"] == "api")
    assert api["reason"] == "ApplyRejected" and "denied the request" in api["message"]


def test_other_api_errors_still_fail_the_reconcile(monkeypatch, events) -> None:
    kube = RefusingKube(status=500, message="etcdserver: request timed out")
    with pytest.raises(ApiException):
        reconcile(body(), Observed(namespace_phase="Active"), kube, SETTINGS, Memory())


@pytest.mark.parametrize(("spec", "job", "where"), [
    ({"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}]}, "e2e-r1", "suite e2e"),
    ({"seed": [{"name": "fill", "image": "ghcr.io/acme/fill:1"}],
      "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}]}, "fill-r1", "seed fill"),
])
def test_a_refused_job_is_its_seeds_or_suites_reason_and_ends_the_run_after_the_grace(
        monkeypatch, events, spec, job, where) -> None:
    """Found by fuzz_manifests.py: a Job the API server refused left its
    seed or suite 'starting' with no reason, and the run never ended."""
    clock = [datetime(2026, 1, 1, 12, 0, 0)]
    monkeypatch.setattr(reconcile_module, "_now", lambda: clock[0])
    kube = RefusingKube(refused=job, kind="Job", status=422, message='Job.batch "x" is invalid: policy says no')
    memory, observed = Memory(), Observed(namespace_phase="Active")
    resource = {**body(), "spec": spec}
    reconcile(resource, observed, kube, SETTINGS, memory)
    clock[0] += timedelta(seconds=5)
    reconcile(resource, observed, kube, SETTINGS, memory)
    kind = "seeds" if where.startswith("seed") else "tests"
    entry = next(e for e in memory.status[kind] if e["name"] == where.split()[1])
    assert entry["reason"] == "ApplyRejected" and "policy says no" in entry["message"], entry
    clock[0] += timedelta(seconds=61)
    reconcile(resource, observed, kube, SETTINGS, memory)
    assert memory.status["phase"] == "Error", memory.status
    assert memory.status["message"].startswith(f'{where}: Job "{job}" was rejected by the API server'), memory.status
    assert [r for r, _ in events].count("ApplyRejected") == 1


def test_an_apply_server_side_apply_cannot_merge_is_a_refusal_not_a_retried_error(monkeypatch, events) -> None:
    """The API server answers an object it cannot merge with a 500 (found by
    fuzz_manifests.py): like the other refusals it is the reason, not a
    reconcile error retried before any phase was written."""
    monkeypatch.setattr(reconcile_module, "_now", lambda: datetime(2026, 1, 1, 12, 0, 0))
    message = ('failed to create typed patch object (te-a0/fill-r1; batch/v1, Kind=Job): '
               '.spec.template.spec.containers[name="seed"].env: duplicate entries for key [name="A"]')
    kube = RefusingKube(refused="e2e-r1", kind="Job", status=500, message=message)
    resource = {**body(), "spec": {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}]}}
    memory = Memory()
    reconcile(resource, Observed(namespace_phase="Active"), kube, SETTINGS, memory)
    reconcile(resource, Observed(namespace_phase="Active"), kube, SETTINGS, memory)
    suite = next(t for t in memory.status["tests"] if t["name"] == "e2e")
    assert suite["reason"] == "ApplyRejected" and "duplicate entries" in suite["message"], suite


def test_a_duration_stored_before_the_int32_bound_ends_the_run_in_error_naming_it(monkeypatch, events) -> None:
    """An object admitted before the schema bounded durations (fuzz_manifests.py:
    every pass raised OverflowError, no phase) is judged by the models."""
    monkeypatch.setattr(reconcile_module, "_now", lambda: datetime(2026, 1, 1, 12, 0, 0))
    kube, memory = RefusingKube(), Memory()
    stored = body()
    stored["spec"]["lifecycle"] = {"activeDeadlineSeconds": 1418617818948}
    reconcile(stored, Observed(), kube, SETTINGS, memory)
    assert memory.status["phase"] == "Error"
    assert memory.status["message"].startswith("spec.lifecycle.activeDeadlineSeconds: "), memory.status["message"]
    assert "2147483647" in memory.status["message"]
