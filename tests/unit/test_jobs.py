"""Test-suite Jobs: one per suite and run, Indexed when sharded, with the
shard's env, retries, timeout and the pod annotations the suite asks for."""

from __future__ import annotations

from typing import Any

from testenv.build.common import (
    LABEL_COMPONENT,
    LABEL_ENV_UID,
    LABEL_KIND,
    LABEL_RUN,
    RESTRICTED_CONTAINER_SECURITY,
    EnvRef,
)
from testenv.build.datastores import url_env
from testenv.build.jobs import LABEL_SUITE, job_name, suite_job
from testenv.models import Datastore, TestSuite

ENV = EnvRef(name="pr-1", namespace="ci", uid="uid-1", target_namespace="te-pr-1-abcde")
INJECTED = [url_env(Datastore(name="cache", engine="redis")), {"name": "PAYMENTS_URL", "value": "http://payments:8080"}]


def build(run: int = 2, **fields: Any) -> dict[str, Any]:
    suite = TestSuite.model_validate({"name": "component", "image": "ghcr.io/acme/tests:1", **fields})
    return suite_job(suite, ENV, run, INJECTED)


def container(job: dict[str, Any]) -> dict[str, Any]:
    [c] = job["spec"]["template"]["spec"]["containers"]
    return c


def env_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(job)["env"]}


def test_job_is_named_after_suite_and_run() -> None:
    job = build(run=3)
    assert job_name("component", 3) == "component-r3"
    assert job["metadata"]["name"] == "component-r3"
    assert job["metadata"]["namespace"] == ENV.target_namespace
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")


def test_job_and_pods_are_labelled_with_suite_kind_and_run() -> None:
    job = build(run=3)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[LABEL_COMPONENT] == "component" and labels[LABEL_SUITE] == "component"
        assert labels[LABEL_KIND] == "test" and labels[LABEL_RUN] == "3"
        assert labels[LABEL_ENV_UID] == "uid-1"


def test_unsharded_job_is_not_indexed() -> None:
    spec = build()["spec"]
    assert "completionMode" not in spec
    assert (spec["completions"], spec["parallelism"]) == (1, 1)


def test_sharded_job_is_indexed_with_one_pod_per_shard() -> None:
    spec = build(shards=4)["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (4, 4)


def test_unsharded_job_tells_the_container_it_is_shard_zero_of_one() -> None:
    env = env_of(build())
    assert env["TESTENV_SHARD_INDEX"] == {"name": "TESTENV_SHARD_INDEX", "value": "0"}
    assert env["TESTENV_SHARD_TOTAL"]["value"] == "1"


def test_sharded_job_reads_the_shard_index_from_the_completion_index() -> None:
    env = env_of(build(shards=4))
    field_path = env["TESTENV_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field_path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert env["TESTENV_SHARD_TOTAL"]["value"] == "4"


def test_container_knows_its_suite_and_run() -> None:
    env = env_of(build(run=5))
    assert (env["TESTENV_SUITE"]["value"], env["TESTENV_RUN"]["value"]) == ("component", "5")


def test_retries_are_the_backoff_limit() -> None:
    assert build()["spec"]["backoffLimit"] == 0
    assert build(retries=2)["spec"]["backoffLimit"] == 2


def test_timeout_is_each_attempts_pod_deadline_with_a_later_backstop_on_the_job() -> None:
    # On the pod, the kubelet stops it and the pod (its collector's log) stays;
    # the Job's own deadline would delete it.
    job = build(timeoutSeconds=600, retries=2)["spec"]
    assert job["template"]["spec"]["activeDeadlineSeconds"] == 600
    assert job["activeDeadlineSeconds"] == 600 * 3 + 60
    assert "activeDeadlineSeconds" not in build()["spec"]
    assert "activeDeadlineSeconds" not in build()["spec"]["template"]["spec"]


def test_pod_annotations_are_put_on_the_pods() -> None:
    job = build(podAnnotations={"sidecar.istio.io/inject": "false"})
    assert job["spec"]["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert "annotations" not in job["metadata"]


def test_injected_urls_are_in_the_env() -> None:
    env = env_of(build())
    assert env["CACHE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "cache-connection", "key": "url"}
    assert env["PAYMENTS_URL"]["value"] == "http://payments:8080"


def test_suites_own_env_wins_over_injected_and_shard_env() -> None:
    job = build(
        env=[
            {"name": "PAYMENTS_URL", "value": "http://fake"},
            {"name": "TESTENV_RUN", "value": "x"},
            {"name": "PYTEST_ADDOPTS", "value": "-x"},
        ]
    )
    env = env_of(job)
    assert env["PAYMENTS_URL"] == {"name": "PAYMENTS_URL", "value": "http://fake"}
    assert env["TESTENV_RUN"]["value"] == "x"
    assert env["PYTEST_ADDOPTS"]["value"] == "-x"
    names = [e["name"] for e in container(job)["env"]]
    assert len(names) == len(set(names))


def test_injected_env_comes_before_shard_env_and_own_env_last() -> None:
    names = [e["name"] for e in container(build(env=[{"name": "MINE", "value": "1"}]))["env"]]
    assert names == [
        "CACHE_URL",
        "PAYMENTS_URL",
        "TESTENV_SHARD_INDEX",
        "TESTENV_SHARD_TOTAL",
        "TESTENV_SUITE",
        "TESTENV_RUN",
        "MINE",
    ]


def test_command_and_args_are_passed_when_given() -> None:
    c = container(build(command=["pytest"], args=["tests/component"]))
    assert (c["command"], c["args"]) == (["pytest"], ["tests/component"])
    bare = container(build())
    assert "command" not in bare and "args" not in bare


def test_pods_never_restart_and_run_restricted_without_a_token() -> None:
    pod = build()["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container(build())["securityContext"] == RESTRICTED_CONTAINER_SECURITY


def test_counts_travel_in_the_termination_message() -> None:
    c = container(build())
    assert c["name"] == "tests" and c["image"] == "ghcr.io/acme/tests:1"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_building_twice_gives_the_same_job() -> None:
    assert build(shards=3, retries=1) == build(shards=3, retries=1)
