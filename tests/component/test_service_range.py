"""An exhausted Service IP range, provoked for real: a control plane of its
own (KWOK plays the nodes and pods) whose API server has a /28 Service range,
filled with Services before an environment asks for one. The API server's
allocator refuses the environment's Service; the operator says so on the
component and ends the run, or clears the reason once an address frees."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from operator_support import Environments, OperatorProcess, free_ports, kubectl
from testbed_support import CLUSTER_SH, ROOT, Cluster, wait_for

pytestmark = pytest.mark.component

# 16 addresses: the network and broadcast ones are never given out, the
# first goes to the `kubernetes` Service; 13 remain to be filled.
SMALL_RANGE = "10.96.0.0/28"


@pytest.fixture(scope="module")
def small_range() -> Iterator[Cluster]:
    # A short path of its own: see testbed_support.start_or_reuse.
    state = Path(tempfile.gettempdir()) / f"testenv-svcrange-{os.getpid()}"
    bed = Cluster(str(state / "kubeconfig"), owned=True, state_dir=str(state))
    env = dict(bed._env(), TESTBED_REAL_NODE="0", TESTBED_SERVICE_CIDR=SMALL_RANGE)
    try:
        result = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"the small-range test bed did not start:\n{result.stdout}\n{result.stderr}"
        kubectl(bed, "apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl(bed, "wait", "--for=condition=Established", "crd/testenvironments.testenv.dev", "--timeout=60s")
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="module")
def api(small_range: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=small_range.kubeconfig)


@pytest.fixture(scope="module")
def range_operator(small_range: Cluster, tmp_path_factory) -> Iterator[OperatorProcess]:
    metrics_port, health_port = free_ports(2)
    env = dict(os.environ, KUBECONFIG=small_range.kubeconfig, PYTHONPATH=str(ROOT / "operator"),
               TESTENV_METRICS_PORT=str(metrics_port), TESTENV_HEALTH_PORT=str(health_port),
               TESTENV_HEALTH_HOST="127.0.0.1", TESTENV_DEFAULT_TTL_SECONDS_AFTER_FINISHED="3600")
    proc = OperatorProcess(small_range, env, tmp_path_factory.mktemp("range-operator") / "operator.log",
                           metrics_port, health_port)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def filled(api: client.ApiClient) -> Iterator[tuple[str, list[str]]]:
    """Services in a namespace of their own until the allocator says the range is full."""
    core = client.CoreV1Api(api)
    namespace = f"filler-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    names: list[str] = []
    try:
        for i in range(64):  # a bound: a /28 holds 13
            try:
                core.create_namespaced_service(namespace, {"metadata": {"name": f"fill-{i}"},
                                                           "spec": {"ports": [{"port": 80}]}})
            except ApiException as exc:
                assert "range is full" in (exc.body or ""), exc.body
                break
            names.append(f"fill-{i}")
        else:
            pytest.fail(f"{SMALL_RANGE} took 64 Services without refusing one")
        yield namespace, names
    finally:
        core.delete_namespace(namespace)
        # Its addresses are free only once its Services are gone.
        wait_for(lambda: not _exists(core, namespace), timeout=60, what=f"namespace {namespace} gone")


def _exists(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture
def environments(api: client.ApiClient, range_operator: OperatorProcess) -> Iterator[Environments]:
    core = client.CoreV1Api(api)
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        yield Environments(client.CustomObjectsApi(api), namespace)
    finally:
        core.delete_namespace(namespace)


def component(status: dict, name: str) -> dict:
    return next(c for c in status.get("components") or [] if c["name"] == name)


def warnings(api: client.ApiClient, namespace: str, name: str, reason: str) -> list:
    events = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return [e for e in events.items if e.reason == reason and e.type == "Warning"]


SPEC = {
    "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "ports": [{"port": 80}]}],
    # KWOK plays the test pod: it "succeeds" at once.
    "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
}


def test_a_service_range_that_stays_full_ends_the_run_with_the_allocators_message(api, filled, environments):
    environments.apply("full", {"lifecycle": {"failureGraceSeconds": 4}, **SPEC})
    status = environments.wait_phase("full", "Error", "Succeeded", "Failed", timeout=90)
    assert status["phase"] == "Error", status
    assert status["message"].startswith('service api: Service "api" was rejected by the API server: '), status
    assert "range is full" in status["message"], status
    assert component(status, "api")["reason"] == "ApplyRejected"
    tests = {c["type"]: c for c in status["conditions"]}["TestsPassed"]
    assert (tests["status"], tests["reason"]) == ("False", "ApplyRejected")
    wait_for(lambda: warnings(api, environments.namespace, "full", "ApplyRejected"), timeout=10,
             what="the ApplyRejected Event")
    assert len(warnings(api, environments.namespace, "full", "ApplyRejected")) == 1
    assert not warnings(api, environments.namespace, "full", "ReconcileError")


def test_a_range_that_frees_up_is_reported_while_full_and_then_cleared(api, filled, environments):
    filler_namespace, names = filled
    environments.apply("waits", {"lifecycle": {"failureGraceSeconds": 600}, **SPEC})
    seen = wait_for(lambda: (s := environments.status("waits")).get("components") and
                    component(s, "api").get("reason") == "ApplyRejected" and s,
                    timeout=60, what="api refused for a full range", interval=0.2)
    assert seen["phase"] == "Provisioning" and "range is full" in component(seen, "api")["message"]

    client.CoreV1Api(api).delete_namespaced_service(names[-1], filler_namespace)
    status = environments.wait_phase("waits", "Succeeded", "Failed", "Error", timeout=90)
    assert status["phase"] == "Succeeded", status
    assert not component(status, "api").get("reason"), status["components"]
