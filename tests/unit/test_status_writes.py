"""How a pass writes the status: only onto the version of the resource it
planned from (with our own writes since counted), nothing remembered or
announced when that version is stale, and a write that failed tried again.
The API is a fake; tests/component/test_status_concurrency.py holds the real API
server to the same rules."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest
from fake_kube import RefusingKube
from kubernetes.client.exceptions import ApiException
from testenv import reconcile as reconcile_module
from testenv.kube import StatusWrite, WriteOutcome
from testenv.observe import Observed
from testenv.reconcile import Memory, StaleView, reconcile
from testenv.settings import Settings

SETTINGS = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system")


class VersionedKube(RefusingKube):
    """Refuses nothing; keeps the resource and its resourceVersion as the API
    server does, and answers a write based on another version as stale (409)."""

    def __init__(self) -> None:
        super().__init__(refused=None)
        self.version, self.based_on, self.failure, self.read_failure = 10, [], None, None
        self.stored = body(10)

    def patch_status(self, *, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None = None) -> StatusWrite:
        self.based_on.append(resource_version)
        if self.failure is not None:
            raise self.failure
        if resource_version is not None and resource_version != str(self.version):
            return StatusWrite(WriteOutcome.STALE)
        self.patches.append(status)
        self.stored["status"] = status
        self.changed()
        return StatusWrite(WriteOutcome.WRITTEN, str(self.version))

    def read_environment(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        if self.read_failure is not None:
            raise self.read_failure
        return copy.deepcopy(self.stored)

    def changed(self, **metadata: Any) -> None:
        """A write by anyone: the version moves on."""
        self.version += 1
        self.stored["metadata"] |= metadata | {"resourceVersion": str(self.version)}


CLOCK = [datetime(2026, 1, 1, 12, 0, 0)]


@pytest.fixture
def clock(monkeypatch) -> None:
    CLOCK[:] = [datetime(2026, 1, 1, 12, 0, 0)]
    monkeypatch.setattr(reconcile_module, "_now", lambda: CLOCK[0])


@pytest.fixture
def events(monkeypatch, clock) -> list[str]:
    posted: list[str] = []
    monkeypatch.setattr(RefusingKube, "post_event",
                        lambda self, involved, *, type, reason, message, name=None: posted.append(reason))
    return posted


def later() -> Observed:
    """What the next pass sees: the deadline passed, a change announced with an Event."""
    CLOCK[0] += timedelta(seconds=61)
    return Observed(namespace_phase="Active")


def body(version: int, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "pr-1", "namespace": "ci", "uid": "u-1", "generation": 1,
                         "resourceVersion": str(version)},
            "spec": {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
                     "lifecycle": {"activeDeadlineSeconds": 60}},
            "status": status or {}}


def test_a_write_goes_onto_the_version_the_pass_read(events) -> None:
    kube, memory = VersionedKube(), Memory()
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert kube.based_on == ["10"] and kube.patches[-1]["phase"] in events


def test_a_body_behind_only_by_our_own_write_is_not_stale(events) -> None:
    """kopf's body may not show the write this process just made: that is
    counted, or every second pass would conflict with itself."""
    kube, memory = VersionedKube(), Memory()
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    reconcile(body(10), later(), kube, SETTINGS, memory)  # the body still at 10
    assert kube.based_on == ["10", "11"]
    assert memory.status is not None and memory.status["phase"] == "TimedOut" and "TimedOut" in events


def test_a_stale_write_is_neither_remembered_nor_announced(events) -> None:
    """Someone else wrote since (the delete handler's Terminating, another
    replica): the pass raises, and nothing of it counts as written."""
    kube, memory = VersionedKube(), Memory()
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    written, announced = dict(memory.status or {}), list(events)
    kube.changed(deletionTimestamp="2026-01-01T12:00:30Z")
    with pytest.raises(StaleView, match="changed since version 11"):
        reconcile(body(10), later(), kube, SETTINGS, memory)
    assert memory.status == written and events == announced and len(kube.patches) == 1


def test_after_a_stale_write_the_next_pass_plans_from_the_apis_copy(events) -> None:
    kube, memory = VersionedKube(), Memory()
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    theirs = {**kube.patches[-1], "message": "written by another replica"}
    kube.stored["status"] = theirs
    kube.changed()
    with pytest.raises(StaleView):
        reconcile(body(10), later(), kube, SETTINGS, memory)
    memory.forget_written()
    reconcile(body(12, theirs), Observed(namespace_phase="Active"), kube, SETTINGS, memory)
    assert kube.based_on[-1] == "12" and kube.patches[-1]["phase"] == "TimedOut"


def test_a_change_to_nothing_planned_from_does_not_cost_the_pass(events) -> None:
    """kopf adds its finalizer to a new environment while the first pass
    runs: that pass's status, and its Provisioning Event, still count."""
    kube, memory = VersionedKube(), Memory()
    kube.changed(finalizers=["testenv.dev/cleanup"], annotations={"testenv.dev/touched": "yes"})
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert kube.based_on == ["10", "11"] and kube.patches[-1]["phase"] in events
    # kopf's body may still be the one from before its own change.
    reconcile(body(10), later(), kube, SETTINGS, memory)
    assert kube.based_on[-1] == "12" and "TimedOut" in events


@pytest.mark.parametrize("change", [
    pytest.param({"deletionTimestamp": "2026-01-01T12:00:01Z"}, id="deleted"),
    pytest.param({"generation": 2}, id="spec-changed"),
    pytest.param({"uid": "u-2"}, id="made-anew"),
])
def test_a_change_to_what_the_pass_planned_from_makes_it_stale(events, change) -> None:
    kube, memory = VersionedKube(), Memory()
    kube.changed(**change)
    with pytest.raises(StaleView) as raised:
        reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert kube.patches == [] and events == [] and memory.status is None
    # What the pass read comes with it: the daemon goes on from it, unread again.
    assert raised.value.read and raised.value.current == kube.stored


def test_a_stale_write_that_cannot_be_read_again_is_stale(events) -> None:
    kube, memory = VersionedKube(), Memory()
    kube.changed(finalizers=["testenv.dev/cleanup"])
    kube.read_failure = ApiException(status=503, reason="Service Unavailable")
    with pytest.raises(StaleView, match="not read again") as raised:
        reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert kube.patches == [] and events == []
    assert not raised.value.read  # the daemon reads it, or goes on from kopf's copy


def test_a_write_that_failed_is_tried_again_with_its_events(events) -> None:
    """Remembered only once written: before, a write lost to a reset
    connection left the status and its phase Event unwritten until the next change."""
    kube, memory = VersionedKube(), Memory()
    kube.failure = ApiException(status=503, reason="Service Unavailable")
    with pytest.raises(ApiException):
        reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert memory.status is None and events == []
    kube.failure = None
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert kube.patches[-1]["phase"] in events


def test_only_the_last_few_own_versions_are_kept() -> None:
    memory = Memory()
    for n in range(20):
        memory.wrote({}, str(n), str(n + 1))
    assert len(memory.own_versions) == reconcile_module.OWN_VERSIONS_KEPT
    assert memory.based_on("12") == "20" and memory.based_on("3") == "3" and memory.based_on(None) is None


def test_phase_events_name_the_environment_as_kubectl_describe_selects_it() -> None:
    """kubectl describe and kubectl events --for select by kind, name and uid:
    an Event posted for the loop's plain snapshot once lacked the kind."""
    kube = VersionedKube()
    reconcile(body(10), Observed(), kube, SETTINGS, Memory())
    assert kube.events and all(
        (e.involved["apiVersion"], e.involved["kind"], e.involved["metadata"]["name"], e.involved["metadata"]["uid"],
         e.involved["metadata"]["namespace"]) == ("testenv.dev/v1alpha1", "TestEnvironment", "pr-1", "u-1", "ci")
        for e in kube.events)


def test_an_announcement_has_one_name_however_often_it_is_posted() -> None:
    """The soak met two Failed Events for one environment: an Event posted
    under a generated name and tried again after a lost answer is made
    twice. Named after the status write it follows, a second post of the
    same announcement meets AlreadyExists instead."""
    first, again = VersionedKube(), VersionedKube()
    reconcile(body(10), Observed(), first, SETTINGS, Memory())
    reconcile(body(10), Observed(), again, SETTINGS, Memory())  # the same pass from the same version
    names = [e.name for e in first.events]
    assert names and all(n and n.startswith("pr-1.") for n in names) and len(set(names)) == len(names)
    assert [e.name for e in again.events] == names


def test_each_status_write_announces_under_a_name_of_its_own(clock) -> None:
    kube, memory = VersionedKube(), Memory()
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    reconcile(body(10), later(), kube, SETTINGS, memory)
    assert [e.reason for e in kube.events][-1] == "TimedOut"
    assert len({e.name for e in kube.events}) == len(kube.events) >= 2


def test_an_event_not_posted_does_not_undo_the_pass(clock, caplog) -> None:
    """Events are auxiliary: the status they announce is written and remembered."""
    kube, memory = VersionedKube(), Memory()
    def refuse(*_: Any, **__: Any) -> None:
        raise ApiException(status=503, reason="Service Unavailable")
    kube.post_event = refuse  # type: ignore[method-assign]
    reconcile(body(10), Observed(), kube, SETTINGS, memory)
    assert memory.status is not None and kube.patches and "not posted" in caplog.text
