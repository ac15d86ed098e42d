"""Real pods on the test bed's real node: the few steps every real-node test
takes (apply what the operator's builders render, wait for a pod, read its
log). Nothing here is played by KWOK."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client
from operator_support import OperatorProcess, free_ports
from testbed_support import BIN, ROOT, Cluster, wait_for
from testenv.build.common import EnvRef, container_security_context, pod_security_context
from testenv.build.placement import PodPlacement, Toleration, place

REAL_NODE = "testbed-node"
# How the test bed marks its real node (hack/testbed/node.sh); the operator
# reaches it the way an administrator's CI node pool is reached.
PLACEMENT = PodPlacement.of(
    {"testenv.dev/node": "real"},
    [Toleration(key="testenv.dev/real-node", operator="Exists", effect="NoSchedule")],
)
RUNNER_UID = 10001


def host_operator(cluster: Cluster, images: dict[str, str], log_path: Path, **settings: str) -> OperatorProcess:
    """The operator of this checkout on the host (as `make demo` runs it),
    placing every pod on the real node with the test bed's images; `settings`
    are more TESTENV_* variables. Not started yet."""
    metrics_port, health_port = free_ports(2)
    env = {
        **os.environ,
        "KUBECONFIG": cluster.kubeconfig,
        "PYTHONPATH": str(ROOT / "operator"),
        "TESTENV_METRICS_PORT": str(metrics_port),
        "TESTENV_HEALTH_PORT": str(health_port),
        "TESTENV_HEALTH_HOST": "127.0.0.1",
        "TESTENV_ENGINE_IMAGES": json.dumps({"postgres": images["postgres"], "mysql": images["mysql"],
                                             "redis": images["redis"], "mongodb": "mongo:7"}),
        "TESTENV_WIREMOCK_IMAGE": images["wiremock"],
        "TESTENV_COLLECTOR_IMAGE": images["collector"],
        "TESTENV_POD_NODE_SELECTOR": json.dumps(dict(PLACEMENT.node_selector)),
        "TESTENV_POD_TOLERATIONS": json.dumps([t.wire() for t in PLACEMENT.tolerations]),
        "TESTENV_ORPHAN_SWEEP_DRY_RUN": "true",
        **settings,
    }
    return OperatorProcess(cluster, env, log_path, metrics_port, health_port)


def read_images(cluster: Cluster) -> dict[str, str]:
    state = Path(cluster.state_dir) if cluster.state_dir else ROOT / ".cluster"
    path = state / "images.env"
    images: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("TESTBED_IMAGE_"):
                images[key.removeprefix("TESTBED_IMAGE_").lower()] = value.strip().strip('"')
    return images


def env_ref(namespace: str) -> EnvRef:
    return EnvRef(name="realnode", namespace="default", uid=str(uuid.uuid4()), target_namespace=namespace)


def apply(cluster: Cluster, objects: list[dict[str, Any]]) -> None:
    """Server-side apply, as the operator does (same objects, same API path)."""
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    result = subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", cluster.kubeconfig, "apply", "--server-side",
         "--field-manager", "testenv-operator", "-f", "-"],
        input=document, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"apply failed: {result.stderr}"


def deployment_available(apps: client.AppsV1Api, namespace: str, name: str) -> bool:
    d = apps.read_namespaced_deployment(name, namespace)
    return bool(d.status.available_replicas) and d.status.available_replicas >= (d.spec.replicas or 1)


def wait_available(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str,
                   timeout: float = 180) -> None:
    try:
        wait_for(lambda: deployment_available(apps, namespace, name), timeout=timeout,
                 what=f"Deployment {namespace}/{name} Available on the real node", interval=0.5)
    except AssertionError:
        raise AssertionError(f"{name} never became available; pods: {pod_states(core, namespace)}") from None


def pod_states(core: client.CoreV1Api, namespace: str) -> list[dict[str, Any]]:
    """What a user sees in `kubectl describe`: phase, node, container states."""
    out = []
    for pod in core.list_namespaced_pod(namespace).items:
        statuses = pod.status.container_statuses or []
        out.append({
            "pod": pod.metadata.name,
            "node": pod.spec.node_name,
            "phase": pod.status.phase,
            "containers": [{"name": s.name, "state": s.state.to_dict(), "restarts": s.restart_count}
                           for s in statuses],
        })
    return out


def client_pod(name: str, image: str, command: list[str], *, env: list[dict[str, Any]] | None = None,
               uid: int = RUNNER_UID) -> dict[str, Any]:
    """A one-shot pod on the real node under the restricted profile, like a seed or test Job's pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": place({
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(uid),
            "containers": [{
                "name": "main",
                "image": image,
                "command": command,
                "env": env or [],
                "securityContext": container_security_context(uid),
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                              "requests": {"cpu": "50m", "memory": "64Mi"}},
            }],
        }, PLACEMENT),
    }


def create_pod(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> str:
    """Apply a pod built by client_pod in `namespace`; return its name."""
    apply(cluster, [{**pod, "metadata": {**pod["metadata"], "namespace": namespace}}])
    return pod["metadata"]["name"]


def run_to_end(cluster: Cluster, core: client.CoreV1Api, namespace: str, pod: dict[str, Any],
               timeout: float = 120) -> tuple[str, str]:
    """Create the pod, wait for it to end, return (phase, log)."""
    name = create_pod(cluster, namespace, pod)

    def ended() -> str | None:
        phase = core.read_namespaced_pod(name, namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    try:
        phase = wait_for(ended, timeout=timeout, what=f"pod {name} to end", interval=0.5)
    except AssertionError:
        raise AssertionError(f"pod {name} did not end: {pod_states(core, namespace)}") from None
    log = core.read_namespaced_pod_log(name, namespace)
    return phase, log


def waiting_reason(core: client.CoreV1Api, namespace: str, name_prefix: str) -> str | None:
    for pod in core.list_namespaced_pod(namespace).items:
        if not pod.metadata.name.startswith(name_prefix):
            continue
        for s in pod.status.container_statuses or []:
            if s.state.waiting and s.state.waiting.reason:
                return s.state.waiting.reason
    return None
