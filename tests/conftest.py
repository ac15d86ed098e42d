"""Shared fixtures: the test bed cluster (session) and a fresh namespace per test."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from testbed_support import BIN, ROOT, Cluster, start_or_reuse


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The teardown test starts and stops a test bed of its own with a real
    node, and needs the host without one: it runs before anything starts the
    shared test bed. The real-node tests come next, before the component
    tests' session-wide operator starts: their chart-installed operator must
    be the only one acting on the cluster."""

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("teardown"):
            return 0
        return 1 if item.get_closest_marker("realnode") else 2

    items.sort(key=order)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    started = start_or_reuse()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=cluster.kubeconfig)


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def batch(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    kubectl = [str(BIN / "kubectl"), "--kubeconfig", cluster.kubeconfig]
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")], check=True)
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "crd/testenvironments.testenv.dev", "--timeout=60s"],
        check=True,
    )
