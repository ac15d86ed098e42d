"""The test bed behaves like a cluster where it matters to the operator:
controllers run, KWOK drives pods, annotations steer Job outcomes."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from testbed_support import BIN, wait_for

pytestmark = pytest.mark.component


def _container(name: str = "main") -> client.V1Container:
    return client.V1Container(name=name, image="registry.invalid/never-pulled:1")


def _job(name: str, annotations: dict[str, str] | None = None, **spec: object) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations=annotations),
                spec=client.V1PodSpec(restart_policy="Never", containers=[_container()]),
            ),
            **spec,
        ),
    )


def _job_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> bool:
    job = batch.read_namespaced_job(name, namespace)
    return any(c.type == kind and c.status == "True" for c in job.status.conditions or [])


def test_deployment_pods_become_running_and_ready(apps, core, namespace):
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(containers=[_container()])
                ),
            ),
        ),
    )
    wait_for(
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 3,
        timeout=60,
        what="3 ready replicas",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    assert all(c.type != "Ready" or c.status == "True" for p in pods for c in p.status.conditions)


def test_job_pod_completes_and_job_is_complete(batch, core, namespace):
    batch.create_namespaced_job(namespace, _job("ok"))
    wait_for(lambda: _job_condition(batch, namespace, "ok", "Complete"), timeout=60, what="Job Complete")
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=ok").items
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0


def test_annotated_pod_fails_with_exit_code_and_termination_message(batch, core, namespace):
    message = '{"passed": 3, "failed": 1, "skipped": 0, "failures": ["test_refund"]}'
    batch.create_namespaced_job(
        namespace,
        _job(
            "bad",
            {"testenv.dev/simulate-exit-code": "7", "testenv.dev/simulate-termination-message": message},
        ),
    )
    wait_for(lambda: _job_condition(batch, namespace, "bad", "Failed"), timeout=60, what="Job Failed")
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=bad").items
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Failed"
    assert terminated.exit_code == 7
    assert terminated.message == message


def test_successful_pod_can_carry_a_termination_message(batch, core, namespace):
    message = '{"passed": 5, "failed": 0}'
    batch.create_namespaced_job(namespace, _job("msg", {"testenv.dev/simulate-termination-message": message}))
    wait_for(lambda: _job_condition(batch, namespace, "msg", "Complete"), timeout=60, what="Job Complete")
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=msg").items
    assert pod.status.container_statuses[0].state.terminated.message == message


def test_hanging_pod_is_stopped_by_the_jobs_deadline(batch, namespace):
    batch.create_namespaced_job(
        namespace, _job("slow", {"testenv.dev/simulate-hang": "true"}, active_deadline_seconds=2)
    )
    wait_for(lambda: _job_condition(batch, namespace, "slow", "Failed"), timeout=60, what="Job Failed")
    reasons = [c.reason for c in batch.read_namespaced_job("slow", namespace).status.conditions]
    assert "DeadlineExceeded" in reasons


def test_deleting_a_namespace_finishes(core):
    doomed = f"t-doomed-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=doomed)))
    core.create_namespaced_config_map(doomed, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    core.delete_namespace(doomed)

    def gone() -> bool:
        try:
            core.read_namespace(doomed)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=60, what=f"namespace {doomed} deleted")


def test_owned_object_is_garbage_collected_with_its_owner(core, namespace):
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owned", owner_references=[ref]))
    )
    core.delete_namespaced_config_map("owner", namespace)
    names = lambda: {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}  # noqa: E731
    wait_for(lambda: "owned" not in names(), timeout=60, what="owned ConfigMap collected")


def test_finished_job_with_ttl_is_removed(batch, namespace):
    # Not 1 s: completionTime has whole seconds, so a TTL of 1 s may remove the
    # Job a few milliseconds after it completes, between two looks at it.
    batch.create_namespaced_job(namespace, _job("short", ttl_seconds_after_finished=5))
    wait_for(lambda: _job_condition(batch, namespace, "short", "Complete"), timeout=60, what="Job Complete")
    wait_for(
        lambda: "short" not in {j.metadata.name for j in batch.list_namespaced_job(namespace).items},
        timeout=60,
        what="Job removed after its TTL",
    )


def test_plain_kubectl_works_against_the_kubeconfig(cluster):
    out = subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", cluster.kubeconfig, "get", "nodes", "-o", "name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "node/kwok-node-0" in out


def test_service_range_holds_more_than_a_slash_24(core, namespace):
    # cluster.sh gives the API server a /16: the default /24 (254 ClusterIPs)
    # holds only 84 environments of three Services.
    outside_first_24 = "10.0.200.5"
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="wide"),
        spec=client.V1ServiceSpec(cluster_ip=outside_first_24, ports=[client.V1ServicePort(port=80)]),
    )
    try:
        created = core.create_namespaced_service(namespace, service)
    except ApiException as exc:
        pytest.fail(
            f"ClusterIP {outside_first_24} refused ({exc.status}: {exc.body}); a test bed started before "
            "cluster.sh's /16 Service range needs `make cluster-down && make cluster`"
        )
    assert created.spec.cluster_ip == outside_first_24
