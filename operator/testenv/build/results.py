"""The results directory of seed and suite pods, and the collector sidecar
that hands its content to the operator when the pod's container has ended.

User images need nothing of ours: they write JUnit XML and any other files
to $TESTENV_RESULTS_DIR. The collector (the operator's own image) is a native
sidecar: the kubelet stops it once the test container has ended, and on
SIGTERM it prints the directory, packed, to its log, which the operator reads
through the API. No storage credentials ever enter the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..collect import COLLECTOR_CONTAINER, RESULTS_DIR, RESULTS_ENV
from .common import container_security_context

VOLUME = "testenv-results"
# Packing is quick, but a large directory on a slow disk is not instant.
GRACE_SECONDS = 60


# A Job's own deadline deletes its pods, and with them what their collector
# printed: each attempt gets the deadline on its pod instead (the kubelet
# stops it, the collector hands over, the pod stays), and the Job a later
# one as a backstop.
JOB_DEADLINE_SLACK = 60


def deadlines(job_spec: dict[str, Any], timeout: int | None, attempts: int) -> dict[str, Any]:
    """job_spec with each attempt's deadline on its pods and a backstop on the Job."""
    if not timeout:
        return job_spec
    template = job_spec["template"]
    return {
        **job_spec,
        "activeDeadlineSeconds": timeout * attempts + JOB_DEADLINE_SLACK,
        "template": {**template, "spec": {**template["spec"], "activeDeadlineSeconds": timeout}},
    }


@dataclass(frozen=True)
class Collector:
    image: str
    max_file_bytes: int
    max_attempt_bytes: int


def collector_container(collector: Collector) -> dict[str, Any]:
    return {
        "name": COLLECTOR_CONTAINER,
        "image": collector.image,
        "command": [
            "testenv-collect",
            "--dir", RESULTS_DIR,
            "--max-file-bytes", str(collector.max_file_bytes),
            "--max-archive-bytes", str(collector.max_attempt_bytes),
        ],
        # A native sidecar: started before, and stopped after, the test container.
        "restartPolicy": "Always",
        "volumeMounts": [{"name": VOLUME, "mountPath": RESULTS_DIR, "readOnly": True}],
        "securityContext": container_security_context(),
        # Explicit, so the namespace's LimitRange defaults (sized for services)
        # do not charge every test pod's quota for an idle sidecar.
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "500m", "memory": "192Mi"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def with_results(pod_spec: dict[str, Any], collector: Collector | None) -> dict[str, Any]:
    """`pod_spec` with a results directory in each container and, when the
    operator has a collector image, the collector sidecar. Without one the
    directory is still there (a runner may write to it), but nothing is kept."""
    if collector is None:
        return pod_spec
    containers = [
        {
            **c,
            # A variable of the suite's own of that name wins (as with every injected one).
            "env": c.get("env", []) + ([] if any(e["name"] == RESULTS_ENV for e in c.get("env", []))
                                       else [{"name": RESULTS_ENV, "value": RESULTS_DIR}]),
            "volumeMounts": [*c.get("volumeMounts", []), {"name": VOLUME, "mountPath": RESULTS_DIR}],
        }
        for c in pod_spec["containers"]
    ]
    return {
        **pod_spec,
        "containers": containers,
        "initContainers": [*pod_spec.get("initContainers", []), collector_container(collector)],
        "volumes": [*pod_spec.get("volumes", []), {"name": VOLUME, "emptyDir": {}}],
        "terminationGracePeriodSeconds": max(pod_spec.get("terminationGracePeriodSeconds", 30), GRACE_SECONDS),
    }
