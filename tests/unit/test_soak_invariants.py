"""The chaos soak's invariants (bench/soak_invariants.py) catch what they name
and pass what is fine: a soak that reports 0 violations means something."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak_invariants import (
    GONE,
    Create,
    PhaseEvent,
    duplicate_phase_events,
    heap_growth,
    heap_not_back,
    jobs_created_twice,
    leaked_namespaces,
    memory_not_back,
    new_kopf_memories,
    phases_backwards,
    pods_past_quota,
    secrets_leaked,
    wrong_endings,
)


def test_a_run_moving_forward_is_fine_and_a_step_back_is_caught() -> None:
    ok = {"a": ["Provisioning", "Seeding", "Testing", "Testing", "Succeeded"], "p": ["Queued", "Provisioning", "Ready",
                                                                                       "Succeeded"]}
    assert phases_backwards(ok) == []
    back = phases_backwards({"b": ["Provisioning", "Seeding", "Testing", "Seeding", "Failed"]})
    assert [str(v) for v in back] == [
        "phase went backwards: b: Testing -> Seeding in Provisioning -> Seeding -> Testing -> Seeding -> Failed"]
    assert phases_backwards({"c": ["Failed", "Testing"]})  # leaving a finished phase
    assert phases_backwards({"e": ["Provisioning", "Terminating"], "f": ["Failed", "Terminating"]}) == []
    assert phases_backwards({"g": ["Terminating", "Provisioning"]})
    assert phases_backwards({"d": ["TimedOut", "Succeeded"]})


def test_endings_are_compared_to_what_the_spec_implies() -> None:
    expected = {"pass": "Succeeded", "gone": GONE, "slow": "TimedOut"}
    assert wrong_endings(expected, {"pass": "Succeeded", "gone": GONE, "slow": "TimedOut"}) == []
    found = wrong_endings(expected, {"pass": "Failed", "gone": GONE})
    assert [(v.subject, v.detail) for v in found] == [("pass", "expected Succeeded, got Failed"),
                                                     ("slow", "expected TimedOut, got no end")]


def test_a_job_created_twice_is_caught_and_a_conflict_is_not_a_create() -> None:
    creates = [Create("jobs", "te-a", "e2e-r1", 201), Create("jobs", "te-a", "e2e-r1", 409),
               Create("jobs", "te-a", "seed-r1", 201), Create("deployments", "te-a", "api", 201),
               Create("deployments", "te-a", "api", 201)]
    assert jobs_created_twice(creates) == []
    found = jobs_created_twice([*creates, Create("jobs", "te-a", "seed-r1", 201)])
    assert [str(v) for v in found] == ["Job created more than once: te-a/seed-r1: 2 creates"]


def test_one_event_per_phase_and_aggregated_counts_are_counted() -> None:
    phases = ["Provisioning", "Testing", "Succeeded"]
    fine = [PhaseEvent("u1", "ci/a", "Provisioning", 1), PhaseEvent("u1", "ci/a", "Testing", 1),
            PhaseEvent("u1", "ci/a", "SuitePassed", 3), PhaseEvent("u2", "ci/b", "Provisioning", 1)]
    assert duplicate_phase_events(fine, phases) == []
    assert duplicate_phase_events([PhaseEvent("u1", "ci/a", "Testing", 2)], phases)
    found = duplicate_phase_events([*fine, PhaseEvent("u1", "ci/a", "Provisioning", 1)], phases)
    assert [str(v) for v in found] == ["duplicate phase Event: ci/a: Provisioning x2"]


def test_no_phase_event_found_at_all_is_no_pass() -> None:
    """The soak once selected Events by an involvedObject.kind the operator
    did not set: it found none, and counted 0 duplicates."""
    found = duplicate_phase_events([PhaseEvent("u1", "ci/a", "SuitePassed", 1)], ["Provisioning", "Succeeded"])
    assert [v.detail for v in found] == ["no phase Event found: nothing was checked"]


def test_a_credential_anywhere_is_caught_and_short_values_are_not_matched() -> None:
    secrets = ["Zt6Qv0mH2xkP9rWc", "5432"]
    texts = [("operator log", "connected to port 5432"), ("status ci/a", "{'message': 'ready'}")]
    assert secrets_leaked(secrets, texts) == []
    found = secrets_leaked(secrets, [*texts, ("Event ci/a", "password=Zt6Qv0mH2xkP9rWc in url")])
    assert [v.subject for v in found] == ["Event ci/a"] and "Zt6Qv0" not in found[0].detail


def test_memory_back_to_baseline_within_its_tolerance() -> None:
    assert memory_not_back(100 * 1024, 120 * 1024) == []
    assert memory_not_back(100 * 1024, 200 * 1024)


def test_the_live_heap_may_end_within_five_percent_of_a_fresh_one() -> None:
    assert heap_not_back(500_000, 525_000) == []
    grown = heap_not_back(500_000, 525_001)
    assert [v.invariant for v in grown] == ["heap not back to baseline"]
    assert "525001 live blocks after, baseline 500000" in grown[0].detail
    # Under jemalloc (the image's allocator) pymalloc counts nothing: bytes instead.
    assert heap_not_back(60_000_000, 63_000_000, unit="bytes") == []
    assert "63000001 live bytes after" in heap_not_back(60_000_000, 63_000_001, unit="bytes")[0].detail


def test_kopf_memories_left_are_those_of_objects_not_remembered_when_fresh() -> None:
    fresh = {"kopf_memories": {"objects": ["Namespace (cluster)/kube-system", "Event kube-system/a"]}}
    after = {"kopf_memories": {"objects": ["Namespace (cluster)/kube-system", "Event kube-system/b",
                                           "Pod te-x-1/p", "Pod te-y-2/q", "Namespace /te-x-1"]}}
    assert new_kopf_memories(fresh, after) == {"Event in kube-system": 1, "Pod in te-*": 2, "Namespace in (cluster)": 1}
    assert new_kopf_memories(fresh, {}) == {}


def test_heap_growth_says_what_grew_in_jemalloc_and_by_type() -> None:
    mib = 2**20
    fresh = {"jemalloc": {"allocated": 80 * mib, "active": 90 * mib, "resident": 100 * mib},
             "connections": {"tls": 7, "sockets": 11},
             "types": {"builtins.dict": 1000, "yarl.URL": 5, "builtins.list": 300}}
    after = {"jemalloc": {"allocated": 84 * mib, "active": 99 * mib, "resident": 120 * mib},
             "connections": {"tls": 31, "sockets": 40},
             "types": {"builtins.dict": 1400, "yarl.URL": 105, "builtins.list": 250, "weakref.ReferenceType": 7}}
    assert heap_growth(fresh, after) == [
        "jemalloc MiB, fresh -> after: allocated 80.0 -> 84.0, active 90.0 -> 99.0, resident 100.0 -> 120.0",
        "connections, fresh -> after: tls 7 -> 31, sockets 11 -> 40",
        "objects grown most, by type: builtins.dict +400, yarl.URL +100, weakref.ReferenceType +7"]
    # Under pymalloc there are no jemalloc statistics; a dead survivor leaves no heap at all.
    assert heap_growth({"types": {}}, {"types": {"a.B": 1}}) == ["objects grown most, by type: a.B +1"]
    assert heap_growth(fresh, {}) == []


def test_every_namespace_left_is_a_leak() -> None:
    assert leaked_namespaces([]) == []
    assert [v.subject for v in leaked_namespaces(["te-b", "te-a"])] == ["te-a", "te-b"]


def test_a_quota_is_overrun_only_when_it_counts_more_pods_in_use_than_it_allows() -> None:
    def quota(hard: str | None, used: str | None) -> dict[str, object]:
        return {"status": {"hard": {"pods": hard} if hard else {}, "used": {"pods": used} if used else {}}}

    assert pods_past_quota(quota("1", "2"))
    assert not pods_past_quota(quota("1", "1"))
    assert not pods_past_quota(quota("2k", "1999"))
    assert not pods_past_quota(quota("1", None))  # not yet counted by the quota controller
    assert not pods_past_quota({"spec": {"hard": {"pods": "1"}}})
