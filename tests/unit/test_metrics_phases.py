"""The testenv_environments gauge counts environments by the phase this
operator last saw, as statuses change and environments are forgotten."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY
from testenv import metrics
from testenv.models import Phase, TestEnvironmentStatus


def _gauge(phase: Phase) -> float:
    return REGISTRY.get_sample_value("testenv_environments", {"phase": str(phase)}) or 0.0


def _status(phase: Phase) -> TestEnvironmentStatus:
    return TestEnvironmentStatus(phase=phase)


def test_every_phase_has_a_series_from_the_start() -> None:
    for phase in Phase:
        assert REGISTRY.get_sample_value("testenv_environments", {"phase": str(phase)}) is not None


def test_an_environment_moves_between_phases_and_is_forgotten() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    provisioning, ready = _gauge(Phase.PROVISIONING), _gauge(Phase.READY)
    metrics.observe_status(a, _status(Phase.PENDING), _status(Phase.PROVISIONING))
    metrics.observe_status(b, _status(Phase.PENDING), _status(Phase.PROVISIONING))
    assert _gauge(Phase.PROVISIONING) == provisioning + 2
    metrics.observe_status(a, _status(Phase.PROVISIONING), _status(Phase.READY))
    metrics.observe_status(a, _status(Phase.READY), _status(Phase.READY))  # the same phase again counts once
    assert (_gauge(Phase.PROVISIONING), _gauge(Phase.READY)) == (provisioning + 1, ready + 1)
    metrics.forget(a)
    metrics.forget(a)  # twice: the delete handler may run again
    metrics.forget(b)
    assert (_gauge(Phase.PROVISIONING), _gauge(Phase.READY)) == (provisioning, ready)
