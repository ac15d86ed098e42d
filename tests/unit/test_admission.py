"""The concurrency limits: who starts, who waits, in creation order, and
that an environment already started never goes back to the queue."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fake_kube import RefusingKube
from testenv.admission import EnvSummary, admit, admit_confirmed, summary_of
from testenv.observe import Observed
from testenv.reconcile import Memory, reconcile
from testenv.settings import Settings


def env(name: str, phase: str = "", namespace: str = "ci", created: str = "2026-01-01T12:00:00Z") -> EnvSummary:
    return EnvSummary(namespace=namespace, name=name, uid=f"u-{namespace}-{name}", created=created, phase=phase)


def test_the_first_ones_created_start_and_the_rest_wait_with_their_place() -> None:
    everyone = [env(f"env-{i}") for i in range(4)]
    assert [admit(e, everyone, 0, 3).admitted for e in everyone] == [True, True, True, False]
    assert admit(everyone[3], everyone, 0, 3).message == "queued: 0/3 active in namespace ci, 3 queued ahead"


def test_creation_time_orders_the_queue_before_the_name() -> None:
    early = env("zz", created="2026-01-01T11:00:00Z")
    late = env("aa", created="2026-01-01T12:00:00Z")
    assert admit(early, [late, early], 1, 0).admitted
    assert not admit(late, [late, early], 1, 0).admitted


def test_a_slot_frees_when_an_active_environment_finishes() -> None:
    running = [env(f"env-{i}", "Testing") for i in range(3)]
    waiting = env("env-3", "Queued")
    assert not admit(waiting, [*running, waiting], 0, 3).admitted
    running[0] = env("env-0", "Succeeded")
    assert admit(waiting, [*running, waiting], 0, 3).admitted


def test_the_per_namespace_limit_counts_only_that_namespace() -> None:
    others = [env(f"o-{i}", "Testing", namespace="other") for i in range(3)]
    mine = env("mine")
    assert admit(mine, [*others, mine], 0, 3).admitted
    assert not admit(mine, [*others, mine], 3, 3).admitted  # but the total limit holds


def test_an_environment_past_the_queue_is_never_held() -> None:
    everyone = [env(f"env-{i}") for i in range(4)]
    unasked = lambda: pytest.fail("the API is asked only before a start")  # noqa: E731
    assert admit_confirmed(everyone[3], everyone, unasked, 0, 3, "Provisioning").admitted
    assert not admit_confirmed(everyone[3], everyone, unasked, 0, 3, "").admitted


def test_a_start_is_confirmed_against_the_api_when_the_index_has_not_seen_everyone() -> None:
    everyone = [env(f"env-{i}") for i in range(4)]
    index_without_env_2 = [everyone[0], everyone[1], everyone[3]]
    assert admit(everyone[3], index_without_env_2, 0, 3).admitted
    held = admit_confirmed(everyone[3], index_without_env_2, lambda: everyone, 0, 3, "")
    assert not held.admitted and held.message == "queued: 0/3 active in namespace ci, 3 queued ahead"


def test_a_summary_reads_a_body_or_a_listed_item() -> None:
    item = {"metadata": {"namespace": "ci", "name": "pr-1", "uid": "u1", "creationTimestamp": "2026-01-01T12:00:00Z"},
            "status": {"phase": "Queued"}}
    assert summary_of(item) == EnvSummary(namespace="ci", name="pr-1", uid="u1", created="2026-01-01T12:00:00Z",
                                          phase="Queued")
    assert summary_of({"metadata": {"namespace": "ci", "name": "new", "uid": "u2"}}).phase == ""


def test_a_started_environment_is_not_queued_again_while_its_body_lags(monkeypatch: Any) -> None:
    """One half of the race CI met: env-3's first pass was admitted (the
    index had not seen all four yet: see the test above for the other half)
    and wrote Provisioning; a wake-up before the body showed that write
    judged it as new, against the full index, and queued an environment
    whose namespace already existed."""
    settings = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system")
    body = {"metadata": {"name": "env-3", "namespace": "ci", "uid": "u-ci-env-3", "generation": 1},
            "spec": {"datastores": [{"name": "cache", "engine": "redis"}]}, "status": {}}
    me = env("env-3")
    kube, memory = RefusingKube(refused=None), Memory()
    partial_index = [env("env-0"), env("env-1"), me]
    full_index = [env(f"env-{i}") for i in range(4)]
    observed = Observed(namespace_phase="Active")

    def admission(index: list[EnvSummary]) -> Any:
        return lambda phase: admit(replace(me, phase=phase), index, 0, 3)

    reconcile(body, observed, kube, settings, memory, admission(partial_index))
    assert kube.patches[-1]["phase"] == "Provisioning" and kube.patches[-1]["namespace"]
    reconcile(body, observed, kube, settings, memory, admission(full_index))  # body["status"] is still {}
    assert memory.status is not None and memory.status["phase"] == "Provisioning"
    assert all(p["phase"] != "Queued" for p in kube.patches)
