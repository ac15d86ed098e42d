"""The operator's status writes against the real API server: only onto the
version of the TestEnvironment a pass planned from (optimistic concurrency),
so a pass that outlived its daemon, or a watch that lags a deletion, cannot
write over a newer status; and a write to one already gone is no error."""

from __future__ import annotations

import pytest
from kubernetes import client
from testenv.kube import Kube, WriteOutcome

pytestmark = pytest.mark.component

GROUP, VERSION, PLURAL = "testenv.dev", "v1alpha1", "testenvironments"
# Holds a deleted one with its deletionTimestamp set, as the operator's own finalizer does.
HOLD = "test.testenv.dev/hold"


@pytest.fixture
def kube(api_client: client.ApiClient) -> Kube:
    return Kube(api_client, "testenv-operator")


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def _create(custom: client.CustomObjectsApi, namespace: str, name: str, finalizers: list[str] | None = None) -> str:
    """A TestEnvironment no operator acts on; its resourceVersion."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestEnvironment",
            "metadata": {"name": name, "namespace": namespace, "finalizers": finalizers or []}, "spec": {}}
    return str(custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)["metadata"]["resourceVersion"])


def _status(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status") or {})


def test_a_status_write_to_an_environment_already_gone_is_no_error(kube, custom, namespace, crd) -> None:
    """A daemon's last pass may write after the deletion finished (the chaos
    soak logged it as a reconcile error); the real API server answers 404."""
    _create(custom, namespace, "here")
    assert kube.patch_status(namespace=namespace, name="here",
                             status={"phase": "Pending", "message": "m"}).outcome == WriteOutcome.WRITTEN
    assert _status(custom, namespace, "here")["message"] == "m"
    assert kube.patch_status(namespace=namespace, name="gone", status={"phase": "Pending"}).outcome == WriteOutcome.GONE


def _onto_current(kube: Kube, namespace: str, name: str, status: dict) -> WriteOutcome:
    """A write onto the version read just before. The suite's operator acts
    on every TestEnvironment and may write in between: then read again."""
    for _ in range(10):
        current = kube.read_environment(namespace=namespace, name=name)
        assert current is not None
        written = kube.patch_status(namespace=namespace, name=name, status=status,
                                    resource_version=current["metadata"]["resourceVersion"])
        if written.outcome != WriteOutcome.STALE:
            return written.outcome
    return WriteOutcome.STALE


def test_a_write_based_on_an_older_version_is_refused_and_changes_nothing(kube, custom, namespace, crd) -> None:
    created = _create(custom, namespace, "cas")
    assert _onto_current(kube, namespace, "cas", {"message": "first"}) == WriteOutcome.WRITTEN
    stale = kube.patch_status(namespace=namespace, name="cas", status={"message": "stale"},
                              resource_version=created)
    assert stale.outcome == WriteOutcome.STALE
    assert _status(custom, namespace, "cas").get("message") != "stale"
    assert _onto_current(kube, namespace, "cas", {"message": "next"}) == WriteOutcome.WRITTEN


def test_a_deletion_makes_the_version_before_it_stale(kube, custom, namespace, crd) -> None:
    """What the chaos soak caught: a pass planned before the user's delete
    wrote Testing, then Succeeded, over a deleted environment (its watch
    lagged), or Provisioning over the delete handler's Terminating."""
    before = _create(custom, namespace, "deleted", finalizers=[HOLD])
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "deleted")
    try:
        stale = kube.patch_status(namespace=namespace, name="deleted", status={"phase": "Succeeded"},
                                  resource_version=before)
        assert stale.outcome == WriteOutcome.STALE
        assert "phase" not in _status(custom, namespace, "deleted")
        fresh = kube.read_environment(namespace=namespace, name="deleted")
        assert fresh is not None and fresh["metadata"]["deletionTimestamp"]
    finally:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "deleted",
                                              {"metadata": {"finalizers": None}})
    assert kube.read_environment(namespace=namespace, name="deleted") is None
