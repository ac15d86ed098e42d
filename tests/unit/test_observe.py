"""Observations distilled from watched objects: Deployment readiness, Job
outcomes, and a suite's counts from its pods' termination messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from testenv.build.common import LABEL_COMPONENT, LABEL_KIND, LABEL_RUN
from testenv.models import Counts, JobPhase
from testenv.observe import SPEC_HASH, job, suite_result, workload

# --- workload() ---------------------------------------------------------------


def deployment(
    *,
    replicas: int | None = 1,
    generation: int = 2,
    observed_generation: int | None = 2,
    ready: int | None = 1,
    updated: int | None = 1,
    conditions: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec = {} if replicas is None else {"replicas": replicas}
    st: dict[str, Any] = {
        k: v
        for k, v in {
            "observedGeneration": observed_generation,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "conditions": conditions,
        }.items()
        if v is not None
    }
    st.update(status or {})
    return {
        "metadata": {
            "name": "api",
            "generation": generation,
            "labels": labels if labels is not None else {LABEL_COMPONENT: "api"},
            "annotations": annotations if annotations is not None else {SPEC_HASH: "abc123"},
        },
        "spec": spec,
        "status": st,
    }


def test_rolled_out_deployment_with_every_replica_ready_is_ready() -> None:
    seen = workload(deployment())
    assert seen.ready is True
    assert seen.message == "1/1 replicas ready"


def test_deployment_whose_controller_has_not_seen_the_latest_spec_is_not_ready() -> None:
    seen = workload(deployment(generation=3, observed_generation=2))
    assert seen.ready is False


def test_deployment_without_any_status_is_not_ready() -> None:
    body = deployment()
    body["status"] = None
    seen = workload(body)
    assert seen.ready is False
    assert seen.message == "0/1 replicas ready"


def test_deployment_with_too_few_ready_replicas_is_not_ready() -> None:
    seen = workload(deployment(replicas=3, ready=2, updated=3))
    assert seen.ready is False
    assert seen.message == "2/3 replicas ready"


def test_deployment_with_old_replicas_still_counted_as_updated_is_not_ready() -> None:
    seen = workload(deployment(replicas=2, ready=2, updated=1))
    assert seen.ready is False


def test_deployment_mid_rollout_with_only_the_old_pod_ready_is_not_ready() -> None:
    # RollingUpdate with maxSurge 1: the new pod is created but not ready, the old one still is.
    mid_rollout = {"replicas": 2, "availableReplicas": 1, "unavailableReplicas": 1}
    seen = workload(deployment(replicas=1, ready=1, updated=1, status=mid_rollout))
    assert seen.ready is False


def test_deployment_scaled_to_zero_is_ready_once_rolled_out() -> None:
    seen = workload(deployment(replicas=0, ready=None, updated=None))
    assert seen.ready is True
    assert seen.message == "0/0 replicas ready"


def test_deployment_scaled_to_zero_waits_for_the_controller_to_observe_it() -> None:
    assert (
        workload(deployment(replicas=0, ready=None, updated=None, generation=4, observed_generation=3)).ready is False
    )


def test_replicas_default_to_one_when_unset() -> None:
    seen = workload(deployment(replicas=None, ready=None, updated=None))
    assert seen.ready is False
    assert seen.message == "0/1 replicas ready"


def test_replica_failure_message_is_appended() -> None:
    failure = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": 'pods "api-123" is forbidden: violates PodSecurity "restricted:latest"',
    }
    seen = workload(deployment(ready=0, updated=1, conditions=[failure]))
    assert seen.ready is False
    assert seen.message == '0/1 replicas ready; pods "api-123" is forbidden: violates PodSecurity "restricted:latest"'


def test_replica_failure_condition_that_is_false_is_ignored() -> None:
    cleared = {"type": "ReplicaFailure", "status": "False", "message": "old news"}
    assert "old news" not in workload(deployment(conditions=[cleared])).message


def test_other_conditions_do_not_change_the_message() -> None:
    available = {"type": "Available", "status": "True", "message": "Deployment has minimum availability."}
    assert workload(deployment(conditions=[available])).message == "1/1 replicas ready"


def test_workload_carries_the_spec_hash_annotation() -> None:
    assert workload(deployment()).spec_hash == "abc123"
    assert workload(deployment(annotations={})).spec_hash is None


def test_workload_is_named_by_its_component_label() -> None:
    assert workload(deployment(labels={LABEL_COMPONENT: "orders-db"})).name == "orders-db"


def test_workload_without_component_label_is_named_after_the_deployment() -> None:
    assert workload(deployment(labels={})).name == "api"


# --- job() ----------------------------------------------------------------------------


def job_body(conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "contract-r3",
            "labels": {LABEL_COMPONENT: "contract", LABEL_KIND: "test", LABEL_RUN: "3"},
        },
        "status": {"conditions": conditions or [], **status},
    }


def test_job_without_a_finishing_condition_is_running() -> None:
    seen = job(job_body(active=1, startTime="2024-05-01T12:00:00Z"))
    assert seen.phase == JobPhase.RUNNING
    assert (seen.reason, seen.message) == ("", "")
    assert seen.start_time == "2024-05-01T12:00:00Z" and seen.completion_time is None


def test_job_with_complete_condition_succeeded() -> None:
    seen = job(job_body([{"type": "Complete", "status": "True"}], completionTime="2024-05-01T12:01:00Z"))
    assert seen.phase == JobPhase.SUCCEEDED
    assert seen.completion_time == "2024-05-01T12:01:00Z"


def test_job_with_failed_condition_failed_with_its_reason_and_message() -> None:
    failed = {
        "type": "Failed",
        "status": "True",
        "reason": "DeadlineExceeded",
        "message": "Job was active longer than specified deadline",
    }
    seen = job(job_body([failed]))
    assert seen.phase == JobPhase.FAILED
    assert seen.reason == "DeadlineExceeded"
    assert seen.message == "Job was active longer than specified deadline"


def test_job_conditions_that_are_not_true_are_ignored() -> None:
    seen = job(job_body([{"type": "Failed", "status": "False", "reason": "BackoffLimitExceeded"}]))
    assert seen.phase == JobPhase.RUNNING
    assert seen.reason == ""


def test_job_failure_target_alone_is_still_running() -> None:
    # Kubernetes adds FailureTarget before the pods are gone and Failed is set.
    seen = job(job_body([{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"}]))
    assert seen.phase == JobPhase.RUNNING


def test_job_success_criteria_met_then_complete_succeeded() -> None:
    seen = job(job_body([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]))
    assert seen.phase == JobPhase.SUCCEEDED


def test_job_labels_give_component_kind_and_run() -> None:
    seen = job(job_body())
    assert (seen.name, seen.component, seen.kind, seen.run) == ("contract-r3", "contract", "test", 3)


def test_job_without_run_label_has_run_zero() -> None:
    body = job_body()
    del body["metadata"]["labels"][LABEL_RUN]
    assert job(body).run == 0


def test_job_without_status_is_running() -> None:
    body = job_body()
    body["status"] = None
    assert job(body).phase == JobPhase.RUNNING


# --- suite_result() -----------------------------------------------------------------


def summary(passed: int = 0, failed: int = 0, skipped: int = 0, failures: list[str] | None = None) -> str:
    return json.dumps({"passed": passed, "failed": failed, "skipped": skipped, "failures": failures or []})


def pod(
    message: str | None, *, index: str | None = None, created: str = "2024-05-01T12:00:00Z", containers: int = 1
) -> dict[str, Any]:
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index": index}
    terminated = {"exitCode": 0} if message is None else {"exitCode": 0, "message": message}
    return {
        "metadata": {"name": f"p-{index}-{created}", "annotations": annotations, "creationTimestamp": created},
        "status": {"containerStatuses": [{"name": "tests", "state": {"terminated": terminated}}] * containers},
    }


def test_a_single_pods_summary_gives_the_counts_and_failures() -> None:
    got = suite_result([pod(summary(8, 2, 1, ["test_refund", "test_void"]))], JobPhase.FAILED)
    assert got.counts == Counts(passed=8, failed=2, skipped=1)
    assert got.failures == ("test_refund", "test_void")
    assert got.reported is True


def test_shards_are_summed() -> None:
    pods = [pod(summary(passed=7, skipped=1), index=str(i)) for i in range(4)]
    got = suite_result(pods, JobPhase.SUCCEEDED)
    assert got.counts == Counts(passed=28, skipped=4)


def test_failures_of_all_shards_are_collected() -> None:
    pods = [pod(summary(failed=1, failures=["a"]), index="0"), pod(summary(failed=1, failures=["b"]), index="1")]
    assert sorted(suite_result(pods, JobPhase.FAILED).failures) == ["a", "b"]


def test_only_the_last_attempt_of_each_shard_counts() -> None:
    pods = [
        pod(summary(passed=5, failed=2), index="0", created="2024-05-01T12:00:00Z"),
        pod(summary(passed=7), index="0", created="2024-05-01T12:01:00Z"),  # the retry
        pod(summary(passed=3), index="1", created="2024-05-01T12:00:00Z"),
    ]
    assert suite_result(pods, JobPhase.SUCCEEDED).counts == Counts(passed=10)


def test_last_attempt_is_found_whatever_order_the_pods_are_listed_in() -> None:
    pods = [
        pod(summary(passed=7), index="0", created="2024-05-01T12:01:00Z"),
        pod(summary(failed=2), index="0", created="2024-05-01T12:00:00Z"),
    ]
    assert suite_result(pods, JobPhase.SUCCEEDED).counts == Counts(passed=7)


def test_retries_of_an_unsharded_job_count_only_the_last_pod() -> None:
    pods = [
        pod(summary(failed=1), created="2024-05-01T12:00:00Z"),
        pod(summary(passed=4), created="2024-05-01T12:00:30Z"),
    ]
    assert suite_result(pods, JobPhase.SUCCEEDED).counts == Counts(passed=4)


@pytest.mark.parametrize(
    "message",
    [
        "Traceback (most recent call last): ...",
        "[1, 2, 3]",
        json.dumps({"status": "ok"}),
        "",
        None,
    ],
    ids=["not-json", "json-list", "json-without-counts", "empty", "no-message"],
)
def test_messages_that_are_not_summaries_are_ignored(message: str | None) -> None:
    got = suite_result([pod(message, index="0"), pod(summary(passed=2), index="1")], JobPhase.SUCCEEDED)
    assert got.counts == Counts(passed=2)
    assert got.reported is True


def test_summary_with_only_some_counts_defaults_the_rest_to_zero() -> None:
    got = suite_result([pod(json.dumps({"failed": 3}))], JobPhase.FAILED)
    assert got.counts == Counts(failed=3)


def test_without_any_summary_a_succeeded_job_counts_one_passed() -> None:
    got = suite_result([pod("all good")], JobPhase.SUCCEEDED)
    assert got.counts == Counts(passed=1)
    assert got.reported is False and got.failures == ()


def test_without_any_summary_a_failed_job_counts_one_failed() -> None:
    got = suite_result([pod(None)], JobPhase.FAILED)
    assert got.counts == Counts(failed=1)
    assert got.reported is False


def test_without_any_pods_the_jobs_outcome_counts() -> None:
    assert suite_result([], JobPhase.FAILED).counts == Counts(failed=1)
    assert suite_result([], JobPhase.SUCCEEDED).counts == Counts(passed=1)


def test_pods_without_status_are_tolerated() -> None:
    bare = {"metadata": {"name": "p"}, "status": None}
    assert suite_result([bare], JobPhase.SUCCEEDED).counts == Counts(passed=1)


def test_containers_not_terminated_are_tolerated() -> None:
    waiting = {
        "metadata": {"name": "p"},
        "status": {"containerStatuses": [{"name": "tests", "state": {"waiting": {}}}]},
    }
    assert suite_result([waiting], JobPhase.FAILED).counts == Counts(failed=1)


@pytest.mark.parametrize("message", ['{"passed": null, "failed": 2}', '{"passed": "many"}'], ids=["null", "word"])
def test_a_summary_with_non_numeric_counts_does_not_crash(message: str) -> None:
    got = suite_result([pod(message)], JobPhase.FAILED)
    assert got.counts.failed >= 1


def test_a_failed_job_ends_when_its_failed_condition_was_set() -> None:
    from testenv.observe import job as job_observation

    body = {
        "metadata": {"name": "e2e-r1", "labels": {}},
        "status": {
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "lastTransitionTime": "2026-01-01T00:00:07Z"},
            ],
        },
    }
    assert job_observation(body).completion_time == "2026-01-01T00:00:07Z"
