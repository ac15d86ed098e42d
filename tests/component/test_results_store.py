"""The default results store against the real API server: archives chunked
into ConfigMaps beside the TestEnvironment, the run's index, pruning to the
last runs, and never a ConfigMap that is not the environment's."""

from __future__ import annotations

import os

import pytest
from kubernetes import client
from testenv.cli.cluster import Connection, Environments
from testenv.kube import Kube
from testenv.models import Counts
from testenv.results import AttemptResults, LogTail, Owner, archive_key, index_name, log_key, run_index
from testenv.resultstore import ConfigMapBodies, ResultsStore

pytestmark = pytest.mark.component


@pytest.fixture
def store(api_client: client.ApiClient) -> ResultsStore:
    kube = Kube(api_client, "testenv-operator")
    return ResultsStore(kube, ConfigMapBodies(kube), keep_runs=2)


@pytest.fixture
def reader(api_client: client.ApiClient, namespace: str) -> Environments:
    """What `testenv results` reads with."""
    return Environments(Connection(api=api_client, source="test", server="test", namespace=namespace, fix=""))


def _environment(api_client: client.ApiClient, namespace: str, name: str) -> Owner:
    """A TestEnvironment for results to belong to (the garbage collector
    deletes what a missing owner owns); no operator acts on it here."""
    custom = client.CustomObjectsApi(api_client)
    body = {"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
            "metadata": {"name": name, "namespace": namespace}, "spec": {}}
    created = custom.create_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", body)
    return Owner(namespace=namespace, name=name, uid=created["metadata"]["uid"])


@pytest.fixture
def owner(api_client: client.ApiClient, namespace: str, crd: None) -> Owner:
    return _environment(api_client, namespace, "kept")


def attempt(component: str, shard: int = 0) -> AttemptResults:
    return AttemptResults(kind="test", component=component, shard=shard, pod=f"{component}-r1-{shard}",
                          counts=Counts(passed=3))


def test_a_large_archive_round_trips_through_chunked_configmaps(store, reader, owner) -> None:
    archive = os.urandom(2 * 1024 * 1024 + 17)  # three chunks
    key = archive_key(owner, 1, "test", "e2e", 0, 0)
    kept = store.keep_attempt(owner, 1, attempt("e2e"), key, archive)
    assert (kept.key, kept.bytes, kept.notes) == (key, len(archive), [])
    assert reader.results_body(owner.namespace, key) == archive
    index = run_index(reader.results_index(namespace=owner.namespace, name=index_name(owner, 1)))
    assert [(a.component, a.bytes) for a in index.attempts] == [("e2e", len(archive))]
    # Kept again (an operator that restarted): the same objects, one entry.
    store.keep_attempt(owner, 1, attempt("e2e"), key, archive)
    again = run_index(reader.results_index(namespace=owner.namespace, name=index_name(owner, 1)))
    assert len(again.attempts) == 1


def test_index_entries_of_one_run_add_up(store, reader, owner) -> None:
    store.keep_attempt(owner, 1, attempt("e2e", 0), archive_key(owner, 1, "test", "e2e", 0, 0), b"a")
    store.keep_attempt(owner, 1, attempt("e2e", 1), archive_key(owner, 1, "test", "e2e", 1, 0), b"b")
    store.keep_log(owner, 1, LogTail(pod="orders-1", container="orders"),
                   log_key(owner, 1, pod="orders-1", container="orders"), b"boom\n")
    index = run_index(reader.results_index(namespace=owner.namespace, name=index_name(owner, 1)))
    assert [a.shard for a in index.attempts] == [0, 1]
    assert [t.container for t in index.logs] == ["orders"]


def test_pruning_keeps_the_last_runs_and_nothing_of_another_environment(store, reader, owner, api_client) -> None:
    other = _environment(api_client, owner.namespace, "other")
    for run in (1, 2, 3):
        store.keep_attempt(owner, run, attempt("e2e"), archive_key(owner, run, "test", "e2e", 0, 0), b"x")
    store.keep_attempt(other, 1, attempt("e2e"), archive_key(other, 1, "test", "e2e", 0, 0), b"y")
    store.prune(owner, 3)
    assert reader.results_runs(namespace=owner.namespace, uid=owner.uid) == [2, 3]
    assert reader.results_body(owner.namespace, archive_key(owner, 1, "test", "e2e", 0, 0)) is None
    assert reader.results_body(owner.namespace, archive_key(owner, 3, "test", "e2e", 0, 0)) == b"x"
    assert reader.results_runs(namespace=owner.namespace, uid=other.uid) == [1]
    store.forget(owner)
    assert reader.results_runs(namespace=owner.namespace, uid=owner.uid) == []
    assert reader.results_body(other.namespace, archive_key(other, 1, "test", "e2e", 0, 0)) == b"y"


def test_a_configmap_that_is_not_the_environments_is_never_taken(store, reader, owner, core) -> None:
    name = index_name(owner, 1)
    core.create_namespaced_config_map(owner.namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={"team": "payments"}), data={"mine": "yes"}))
    kept = store.keep_attempt(owner, 1, attempt("e2e"), archive_key(owner, 1, "test", "e2e", 0, 0), b"z")
    assert any(f"ConfigMap {owner.namespace}/{name} exists and is not this environment's" in n for n in kept.notes)
    untouched = core.read_namespaced_config_map(name, owner.namespace)
    assert untouched.data == {"mine": "yes"} and untouched.metadata.labels == {"team": "payments"}
    store.forget(owner)
    assert core.read_namespaced_config_map(name, owner.namespace).data == {"mine": "yes"}
