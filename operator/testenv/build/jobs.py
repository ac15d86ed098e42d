"""Test-suite Jobs: one per suite and run, Indexed when sharded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models import TestSuite
from .common import (
    LABEL_RUN,
    EnvRef,
    component_labels,
    container_security_context,
    env_list,
    merge_env,
    pod_security_context,
)
from .placement import NO_PLACEMENT, PodPlacement, place
from .results import Collector, deadlines, with_results

LABEL_SUITE = "testenv.dev/suite"


def job_name(name: str, run: int) -> str:
    return f"{name}-r{run}"


def suite_job(
    suite: TestSuite,
    env: EnvRef,
    run: int,
    injected_env: list[dict[str, Any]],
    placement: PodPlacement = NO_PLACEMENT,
    credentials: Mapping[tuple[str, str, str], str] | None = None,
    collector: Collector | None = None,
) -> dict[str, Any]:
    labels = component_labels(env, suite.name, "test") | {LABEL_RUN: str(run), LABEL_SUITE: suite.name}
    shard_index: dict[str, Any] = {"name": "TESTENV_SHARD_INDEX", "value": "0"}
    if suite.shards > 1:
        shard_index = {
            "name": "TESTENV_SHARD_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        }
    shard_env = [
        shard_index,
        {"name": "TESTENV_SHARD_TOTAL", "value": str(suite.shards)},
        {"name": "TESTENV_SUITE", "value": suite.name},
        {"name": "TESTENV_RUN", "value": str(run)},
    ]
    container: dict[str, Any] = {
        "name": "tests",
        "image": suite.image,
        "env": merge_env(injected_env + shard_env, env_list(suite.env, credentials)),
        "securityContext": container_security_context(),
        # The suite's counts travel in the termination message (see `testenv report`).
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if suite.command:
        container["command"] = suite.command
    if suite.args:
        container["args"] = suite.args
    spec: dict[str, Any] = {
        "backoffLimit": suite.retries,
        "completions": suite.shards,
        "parallelism": suite.shards,
        "template": {
            "metadata": {"labels": labels, "annotations": dict(suite.pod_annotations)},
            "spec": place(with_results({
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(),
                "containers": [container],
            }, collector), placement),
        },
    }
    if suite.shards > 1:
        spec["completionMode"] = "Indexed"
    spec = deadlines(spec, suite.timeout_seconds, suite.retries + 1)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(suite.name, run), "namespace": env.target_namespace, "labels": labels},
        "spec": spec,
    }
