"""The orphan sweep's decision: which environment namespaces lost their owner."""

from __future__ import annotations

from typing import Any

from testenv.build.common import LABEL_ENV_NAME, LABEL_ENV_NAMESPACE, LABEL_ENV_UID
from testenv.orphans import EnvironmentNamespace, environment_namespace, find_orphans, why


def namespace_body(name: str, uid: str, *, terminating: bool = False, phase: str | None = "Active") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"ns-{uid}",
        "labels": {LABEL_ENV_UID: uid, LABEL_ENV_NAMESPACE: "team-a", LABEL_ENV_NAME: f"env-{uid}"},
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-11-25T10:00:00Z"
    return {"metadata": meta, "status": {"phase": phase} if phase else {}}


def test_an_indexed_namespace_names_its_owner_and_phase() -> None:
    seen = environment_namespace(namespace_body("te-a-1", "u1"))
    assert seen == EnvironmentNamespace(name="te-a-1", phase="Active", env_uid="u1", env_namespace="team-a",
                                        env_name="env-u1", uid="ns-u1")
    assert seen.owner == "team-a/env-u1"


def test_a_namespace_being_deleted_is_terminating_even_before_its_phase_says_so() -> None:
    assert environment_namespace(namespace_body("te-a-1", "u1", terminating=True)).phase == "Terminating"


def test_a_namespace_without_a_status_yet_is_active() -> None:
    assert environment_namespace(namespace_body("te-a-1", "u1", phase=None)).phase == "Active"


def test_namespaces_whose_environment_is_gone_are_orphans_sorted_by_name() -> None:
    seen = [environment_namespace(namespace_body(n, u)) for n, u in [("te-c", "u3"), ("te-a", "u1"), ("te-b", "u2")]]
    assert [o.name for o in find_orphans(seen, {"u2"})] == ["te-a", "te-c"]


def test_a_namespace_already_terminating_is_not_deleted_again() -> None:
    seen = [environment_namespace(namespace_body("te-a", "u1", terminating=True))]
    assert find_orphans(seen, set()) == []


def test_a_namespace_without_an_owner_label_is_an_orphan() -> None:
    body = namespace_body("te-a", "u1")
    del body["metadata"]["labels"][LABEL_ENV_UID]
    assert [o.name for o in find_orphans([environment_namespace(body)], {"u1"})] == ["te-a"]


def test_the_reason_names_the_lost_environment_and_its_uid() -> None:
    orphan = environment_namespace(namespace_body("te-a", "u1"))
    assert why(orphan) == "orphaned: its TestEnvironment team-a/env-u1 (uid u1) no longer exists"
