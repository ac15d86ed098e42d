"""Events posted by name against the real API server: a post of an Event
already made (a retry after its answer was lost) is no error and makes no
second Event, which an Event under a generated name would."""

from __future__ import annotations

import pytest
from kubernetes import client
from testenv.kube import Kube, announce

pytestmark = pytest.mark.component


def test_an_event_posted_twice_under_its_name_exists_once(api_client: client.ApiClient, namespace: str) -> None:
    kube = Kube(api_client, "testenv-operator")
    involved = {"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
                "metadata": {"name": "pr-1", "namespace": namespace, "uid": "u-1"}}
    for _ in range(2):
        kube.post_event(involved, type="Warning", reason="Failed", message="suite e2e failed", name="pr-1.0123abcd")
    kube.post_event(involved, type="Normal", reason="Terminating", message="deleting")  # generated name
    found = client.CoreV1Api(api_client).list_namespaced_event(namespace, field_selector="involvedObject.name=pr-1")
    assert sorted((e.reason, e.involved_object.kind) for e in found.items) == [
        ("Failed", "TestEnvironment"), ("Terminating", "TestEnvironment")]
    assert [e.metadata.name for e in found.items if e.reason == "Failed"] == ["pr-1.0123abcd"]


def test_an_announcement_the_api_refuses_is_logged_not_raised(api_client: client.ApiClient, caplog) -> None:
    """What an Event tells of is done already: the API's refusal (here, a
    namespace that does not exist) is a log line naming the Event and its object."""
    kube = Kube(api_client, "testenv-operator")
    involved = {"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
                "metadata": {"name": "pr-2", "namespace": "no-such-namespace-here", "uid": "u-2"}}
    announce(kube, involved, type="Warning", reason="ResultsNotDeleted", message="results left", name="pr-2.4567cdef")
    assert "Event ResultsNotDeleted about TestEnvironment no-such-namespace-here/pr-2 not posted" in caplog.text
    assert "404" in caplog.text
