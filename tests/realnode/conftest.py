"""Fixtures of the real-node tests: the node itself, the images the test bed
built, and namespaces that enforce Pod Security `restricted`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from realnode_support import REAL_NODE, read_images
from testbed_support import Cluster


@pytest.fixture(scope="session")
def real_node(cluster: Cluster, core: client.CoreV1Api) -> str:
    try:
        node = core.read_node(REAL_NODE)
    except ApiException as e:
        if e.status != 404:
            raise
        if cluster.owned:
            pytest.fail("the test bed this session started has no real node (see .cluster logs/node)")
        pytest.skip("this cluster has no test-bed real node (TESTBED_REAL_NODE=0 or another cluster)")
    ready = {c.type: c.status for c in node.status.conditions or []}.get("Ready")
    assert ready == "True", f"real node {REAL_NODE} is not Ready: {node.status.conditions}"
    return REAL_NODE


@pytest.fixture(scope="session")
def images(cluster: Cluster, real_node: str) -> dict[str, str]:
    found = read_images(cluster)
    assert found, "no images.env beside the test bed's kubeconfig (hack/testbed/images.sh writes it)"
    return found


def _namespace(core: client.CoreV1Api, level: str = "restricted") -> Iterator[str]:
    name = f"rn-{uuid.uuid4().hex[:8]}"
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "warn", "audit")}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def restricted_namespace(core: client.CoreV1Api, real_node: str) -> Iterator[str]:
    """A namespace where Pod Security `restricted` is enforced, as in every environment."""
    yield from _namespace(core)


@pytest.fixture
def other_namespace(core: client.CoreV1Api, real_node: str) -> Iterator[str]:
    yield from _namespace(core)

