"""Why an environment does not come up, said on the resource, for real: the
operator (as a process on the host) places each environment's pods on the
real node, and each test provokes one cause with real pods, a real registry,
kubelet and scheduler. Each asserts what a user sees (the component's reason
and message, one Event) and the final phase: Error, after the environment's
grace period, long before any deadline."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_support import COPY_SOURCE_NAMESPACE, Environments, OperatorProcess
from realnode_support import host_operator
from testbed_support import Cluster, wait_for

pytestmark = pytest.mark.realnode

GRACE = 10  # seconds; lifecycle.failureGraceSeconds of every environment here
SECRET_VALUE = "s3cr3t-t0ken-4-diagnosis"


@pytest.fixture
def start_operator(cluster: Cluster, crd: None, images: dict[str, str], tmp_path) -> Iterator[Callable[..., None]]:
    """The operator on the host, placing pods on the real node; one at a time."""
    started: list[OperatorProcess] = []

    def start(**overrides: str) -> None:
        process = host_operator(cluster, images, tmp_path / f"operator-{len(started)}.log",
                                TESTENV_COPY_ALLOWLIST=json.dumps([COPY_SOURCE_NAMESPACE]), **overrides)
        process.start()
        started.append(process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def environments(api_client, namespace: str) -> Iterator[Environments]:
    envs = Environments(client.CustomObjectsApi(api_client), namespace)
    yield envs


@pytest.fixture
def collect(environments: Environments) -> Iterator[list[str]]:
    """Environments to delete (their namespaces with them) while the operator still runs."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            environments.delete(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for name in names:
        wait_for(lambda n=name: not environments.exists(n), timeout=120, what=f"{name} collected")


def lifecycle() -> dict[str, Any]:
    return {"failureGraceSeconds": GRACE, "activeDeadlineSeconds": 900, "retainOnFailureSeconds": 600}


def component(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in status.get("components") or [] if c["name"] == name)


def reason_of(environments: Environments, name: str, owner: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        status = environments.status(name)
        entries = status.get("components") or []
        found = next((c for c in entries if c["name"] == owner and c.get("reason")), None)
        return found
    return probe


def warnings(core: client.CoreV1Api, namespace: str, name: str) -> list[client.CoreV1Event]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e for e in events if e.type == "Warning"]


def ends_in_error(environments: Environments, core: client.CoreV1Api, name: str, reason: str,
                  timeout: float) -> dict[str, Any]:
    """Error with the reason on the resource, on its conditions and in one Event."""
    status = environments.wait_phase(name, "Error", "Failed", "TimedOut", "Succeeded", timeout=timeout)
    assert status["phase"] == "Error", status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["TestsPassed"]["reason"] == reason, conditions
    assert conditions["Ready"]["reason"] == reason, conditions
    assert status["expiresAt"] > status["finishedAt"]  # retained for a look, as any failure
    said = [e for e in warnings(core, environments.namespace, name) if e.reason == reason]
    assert len(said) == 1, [(e.reason, e.message, e.count) for e in warnings(core, environments.namespace, name)]
    assert SECRET_VALUE not in json.dumps(status) and SECRET_VALUE not in said[0].message
    assert len(status["message"]) <= 600
    return status


def runner_service(images: dict[str, str], name: str = "api", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": images["runner"], **fields}


def test_a_tag_missing_from_the_registry(start_operator, environments, collect, core, images):
    start_operator()
    image = images["redis"].rsplit(":", 1)[0] + ":no-such-tag"
    collect.append("missing-tag")
    environments.apply("missing-tag", {"lifecycle": lifecycle(), "services": [{"name": "api", "image": image}],
                                       "tests": [{"name": "e2e", "image": images["runner"]}]})
    seen = wait_for(reason_of(environments, "missing-tag", "api"), timeout=60, what="api's reason")
    assert seen["reason"] == "ImagePullBackOff", seen
    status = ends_in_error(environments, core, "missing-tag", "ImagePullBackOff", timeout=GRACE + 60)
    assert status["message"].startswith(f'service api: container "api" cannot pull image "{image}"'), status
    assert "not found" in status["message"], status


def test_a_command_that_exits_1(start_operator, environments, collect, core, images):
    start_operator()
    collect.append("crashing")
    command = ["sh", "-c", 'echo "starting up"; echo "token=$API_TOKEN"; echo "config missing" >&2; exit 1']
    environments.apply("crashing", {
        "lifecycle": lifecycle(),
        # A probe, as a real service has: without one a container counts as
        # ready for the moment it runs, and the suites could start.
        "services": [runner_service(images, command=command, env=[{"name": "API_TOKEN", "value": SECRET_VALUE}],
                                    readinessProbe={"exec": {"command": ["true"]}, "initialDelaySeconds": 3})],
        "tests": [{"name": "e2e", "image": images["runner"]}],
    })
    # Three restarts (back-offs of 10, 20 and 40 s) make a crash loop final.
    status = ends_in_error(environments, core, "crashing", "CrashLoopBackOff", timeout=180)
    message = status["message"]
    assert message.startswith('service api: container "api" keeps exiting: exit code 1 (Error)'), message
    assert "config missing" in message and "token=***" in message, message


def test_a_missing_secret_key(start_operator, environments, collect, core, apps, images):
    start_operator()
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=COPY_SOURCE_NAMESPACE)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    source = f"keyless-{uuid.uuid4().hex[:6]}"
    apps.create_namespaced_deployment(COPY_SOURCE_NAMESPACE, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": source},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": source}}, "template": {
            "metadata": {"labels": {"app": source}},
            "spec": {"containers": [{
                "name": "app", "image": images["runner"], "command": ["sleep", "infinity"],
                "env": [{"name": "CACHE_PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "cache-connection", "key": "no-such-key"}}}],
            }]}}},
    })
    try:
        collect.append("keyless")
        environments.apply("keyless", {
            "lifecycle": lifecycle(),
            "datastores": [{"name": "cache", "engine": "redis"}],
            "services": [{"name": "api", "copyFrom": {"namespace": COPY_SOURCE_NAMESPACE, "deployment": source}}],
            "tests": [{"name": "e2e", "image": images["runner"]}],
        })
        status = ends_in_error(environments, core, "keyless", "CreateContainerConfigError", timeout=GRACE + 90)
        assert status["message"] == \
            'service api: container "app" cannot start: Secret "cache-connection" has no key "no-such-key"', status
    finally:
        apps.delete_namespaced_deployment(source, COPY_SOURCE_NAMESPACE)


def test_an_impossible_node_selector(start_operator, environments, collect, core, images):
    start_operator(TESTENV_POD_NODE_SELECTOR=json.dumps({"testenv.dev/node": "nowhere"}))
    collect.append("nowhere")
    environments.apply("nowhere", {"lifecycle": lifecycle(), "services": [runner_service(images)],
                                   "tests": [{"name": "e2e", "image": images["runner"]}]})
    status = ends_in_error(environments, core, "nowhere", "Unschedulable", timeout=GRACE + 60)
    assert status["message"].startswith('service api: pod "api-'), status
    assert "cannot be scheduled: 0/" in status["message"] and "node affinity/selector" in status["message"], status


def test_a_quota_of_one_pod(start_operator, environments, collect, core, images):
    start_operator()
    collect.append("one-pod")
    environments.apply("one-pod", {
        "lifecycle": lifecycle(),
        "isolation": {"resourceQuota": {"pods": "1"}},
        "datastores": [{"name": "cache", "engine": "redis"}],
        "services": [runner_service(images, command=["sleep", "infinity"], dependsOn=["cache"])],
        "tests": [{"name": "e2e", "image": images["runner"]}],
    })
    status = ends_in_error(environments, core, "one-pod", "QuotaExceeded", timeout=GRACE + 120)
    assert component(status, "cache")["ready"] is True
    message = status["message"]
    assert message.startswith('service api: ReplicaSet "api-'), message
    assert "exceeded quota" in message and "limited: pods=1" in message, message
    assert component(status, "cache")["imageDigest"].startswith("sha256:")
    assert component(status, "cache")["image"] == images["redis"]


def test_a_readiness_probe_on_a_closed_port(start_operator, environments, collect, core, images):
    start_operator()
    collect.append("closed-port")
    environments.apply("closed-port", {
        "lifecycle": lifecycle(),
        "services": [runner_service(images, command=["sleep", "infinity"],
                                    readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 2})],
        "tests": [{"name": "e2e", "image": images["runner"]}],
    })
    status = ends_in_error(environments, core, "closed-port", "ReadinessProbeFailed", timeout=GRACE + 90)
    message = status["message"]
    assert message.startswith('service api: container "api" is running but not ready: Readiness probe failed:'), \
        message
    assert "8080" in message and "connection refused" in message, message
    api = component(status, "api")
    assert api["imageDigest"].startswith("sha256:") and api["image"] == images["runner"]
