"""Component fixtures: the CRD installed, the operator running against the test bed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_support import (
    COPY_SOURCE_NAMESPACE,
    COPYABLE_SECRET,
    Environments,
    OperatorProcess,
    free_ports,
)
from testbed_support import ROOT, Cluster


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crd: None, core: client.CoreV1Api, tmp_path_factory) -> Iterator[OperatorProcess]:
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=COPY_SOURCE_NAMESPACE)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    env = dict(os.environ)
    metrics_port, health_port = free_ports(2)
    env.update(
        KUBECONFIG=cluster.kubeconfig,
        PYTHONPATH=str(ROOT / "operator"),
        TESTENV_COPY_ALLOWLIST=f'["{COPY_SOURCE_NAMESPACE}"]',
        # Secrets of the copy source: only this one (tests/component/test_copying.py).
        TESTENV_COPY_SECRETS=f'{{"{COPY_SOURCE_NAMESPACE}": {{"names": ["{COPYABLE_SECRET}"]}}}}',
        TESTENV_METRICS_PORT=str(metrics_port),
        TESTENV_HEALTH_PORT=str(health_port),
        TESTENV_HEALTH_HOST="127.0.0.1",
        TESTENV_DEFAULT_TTL_SECONDS_AFTER_FINISHED="3600",
        TESTENV_ORPHAN_SWEEP_INTERVAL_SECONDS="3",
        TESTENV_MAX_ACTIVE_PER_NAMESPACE="3",
    )
    proc = OperatorProcess(cluster, env, tmp_path_factory.mktemp("operator") / "operator.log", metrics_port, health_port)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def environments(api_client, namespace, operator) -> Environments:
    return Environments(client.CustomObjectsApi(api_client), namespace)
