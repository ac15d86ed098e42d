"""Lifecycle on the real control plane: collection after TTL, retention on
failure, deadlines, orphans, queueing, and surviving crashes and restarts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from testbed_support import wait_for

pytestmark = pytest.mark.component

EXIT = "testenv.dev/simulate-exit-code"
MESSAGE = "testenv.dev/simulate-termination-message"
DURATION = "testenv.dev/simulate-duration-ms"
HANG = "testenv.dev/simulate-hang"


def _time(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")


def _namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as exc:
        return exc.status == 404
    return False


def _owned_namespaces(core: client.CoreV1Api, uid: str) -> list[str]:
    return [n.metadata.name for n in core.list_namespace(label_selector=f"testenv.dev/environment-uid={uid}").items]


def _suite(name: str, annotations: dict[str, str], **fields) -> dict:
    return {"name": name, "image": "ghcr.io/acme/tests:1", "podAnnotations": annotations, **fields}


def test_a_succeeded_environment_is_collected_after_its_ttl(environments, core):
    environments.apply("ttl", {
        "lifecycle": {"ttlSecondsAfterFinished": 2, "retainOnFailureSeconds": 3600},
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [_suite("smoke", {MESSAGE: '{"passed": 1}'})],
    })
    status = environments.wait_phase("ttl", "Succeeded", timeout=90)
    assert _time(status["expiresAt"]) == _time(status["finishedAt"]) + timedelta(seconds=2)
    wait_for(lambda: _namespace_gone(core, status["namespace"]), timeout=30, what="namespace collected")
    record = wait_for(lambda: (s := environments.status("ttl"))["message"].startswith("collected") and s,
                      timeout=30, what="status says collected")
    assert record["phase"] == "Succeeded"  # the record stays by default, with its results
    assert record["summary"]["passed"] == 1


def test_a_failed_environment_is_kept_for_its_retention_then_collected(environments, core):
    environments.apply("kept", {
        "lifecycle": {"ttlSecondsAfterFinished": 0, "retainOnFailureSeconds": 4},
        "tests": [_suite("unit", {EXIT: "1"})],
    })
    status = environments.wait_phase("kept", "Failed", timeout=90)
    assert _time(status["expiresAt"]) == _time(status["finishedAt"]) + timedelta(seconds=4)
    assert not _namespace_gone(core, status["namespace"])  # a ttl of 0 does not apply to failures
    wait_for(lambda: _namespace_gone(core, status["namespace"]), timeout=30, what="namespace collected")


def test_a_run_past_its_deadline_is_timed_out_its_jobs_stopped_and_collected(environments, core, batch):
    environments.apply("late", {
        "lifecycle": {"activeDeadlineSeconds": 3, "retainOnFailureSeconds": 3},
        "tests": [_suite("forever", {HANG: "true"})],
    })
    testing = environments.wait_phase("late", "Testing", "TimedOut", timeout=60)
    assert _time(testing["expiresAt"]) == _time(testing["startedAt"]) + timedelta(seconds=6)
    status = environments.wait_phase("late", "TimedOut", timeout=60)
    assert "activeDeadlineSeconds" in status["message"]
    # The running suite was stopped first, through its pod's deadline, so its
    # collector could hand over (KWOK plays the kubelet's stop: stages.yaml;
    # tests/realnode/test_results.py keeps a real partial report this way).
    [suite] = status["tests"]
    assert (suite["phase"], suite["failed"]) == ("Failed", 1)
    assert suite["message"].startswith("stopped at the environment's activeDeadlineSeconds"), suite
    wait_for(lambda: not batch.list_namespaced_job(status["namespace"]).items or _namespace_gone(core, status["namespace"]),
             timeout=30, what="running Jobs stopped")
    wait_for(lambda: _namespace_gone(core, status["namespace"]), timeout=30, what="namespace collected")


def test_an_orphaned_environment_namespace_is_swept(core, operator):
    name = f"te-orphan-{uuid.uuid4().hex[:5]}"
    ghost = str(uuid.uuid4())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={
        "app.kubernetes.io/managed-by": "testenv-operator",
        "testenv.dev/environment": "gone",
        "testenv.dev/environment-namespace": "ci",
        "testenv.dev/environment-uid": ghost,
    })))
    wait_for(lambda: _namespace_gone(core, name), timeout=60, what="orphan namespace swept")
    assert f"deleting namespace {name}: orphaned" in operator.logs()
    def reasons() -> list[str]:
        return [e.reason for e in core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items]

    wait_for(reasons, timeout=10, what="the OrphanCollected Event")
    assert reasons() == ["OrphanCollected"]


def _finalizers(core: client.CoreV1Api, name: str) -> list[str]:
    return list(core.read_namespace(name).metadata.finalizers or [])


def test_an_environment_namespace_carries_no_finalizer_of_ours(environments, core):
    # Nothing but Kubernetes itself holds an environment namespace's deletion,
    # so it can finish while the operator is down.
    environments.apply("unheld", {"datastores": [{"name": "cache", "engine": "redis"}]})
    status = environments.wait_phase("unheld", "Ready", timeout=60)
    assert _finalizers(core, status["namespace"]) == []


def test_a_finalizer_an_earlier_build_left_on_a_namespace_is_removed(environments, core):
    owner = environments.apply("legacy", {"datastores": [{"name": "cache", "engine": "redis"}]})
    name = f"te-legacy-{uuid.uuid4().hex[:5]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name,
        finalizers=["testenv.dev/cleanup"],
        labels={
            "app.kubernetes.io/managed-by": "testenv-operator",
            "testenv.dev/environment": "legacy",
            "testenv.dev/environment-namespace": environments.namespace,
            "testenv.dev/environment-uid": owner["metadata"]["uid"],
        },
    )))
    try:
        wait_for(lambda: _finalizers(core, name) == [], timeout=30, what="leftover finalizer removed")
    finally:
        core.delete_namespace(name)
    wait_for(lambda: _namespace_gone(core, name), timeout=60, what="namespace deleted without the operator's help")


def test_environments_beyond_the_limit_wait_queued_in_creation_order(environments):
    # The test operator allows 3 active environments per namespace.
    spec = {"datastores": [{"name": "cache", "engine": "redis"}]}
    for i in range(4):
        environments.apply(f"env-{i}", spec)
    for i in range(3):
        environments.wait_phase(f"env-{i}", "Ready", timeout=60)
    environments.wait_phase("env-3", "Queued", timeout=30)
    # Progress within a phase is written at most once a second.
    queued = wait_for(lambda: (s := environments.status("env-3")) and "3/3 active in namespace" in s["message"] and s,
                      timeout=10, what="the queue position updated")
    assert queued["phase"] == "Queued"
    assert not queued.get("namespace")  # nothing provisioned while queued
    environments.delete("env-1")
    started = environments.wait_phase("env-3", "Ready", timeout=90)
    assert started["run"] == 1


def test_passwords_never_appear_in_status_events_or_logs(environments, core, operator):
    environments.apply("secretive", {
        "datastores": [{"name": "db", "engine": "postgres"}, {"name": "cache", "engine": "redis"}],
        "seed": [{"name": "schema", "datastore": "db", "sql": "CREATE TABLE t (id int);"}],
        "tests": [_suite("unit", {EXIT: "1", MESSAGE: "boom"})],
    })
    status = environments.wait_phase("secretive", "Failed", timeout=90)
    passwords = [
        base64.b64decode(core.read_namespaced_secret(f"{ds}-connection", status["namespace"]).data["password"]).decode()
        for ds in ("db", "cache")
    ]
    events = core.list_namespaced_event(environments.namespace).items
    observed = [yaml.safe_dump(status), json.dumps([e.message for e in events]), operator.logs()]
    for password in passwords:
        assert all(password not in text for text in observed)


# --- crashes and restarts ----------------------------------------------------------

RESTART_SPEC = {
    "datastores": [{"name": "db", "engine": "postgres"}],
    "seed": [{"name": "schema", "datastore": "db", "sql": "CREATE TABLE t (id int);",
              "podAnnotations": {DURATION: "1500"}}],
    "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "dependsOn": ["db"]}],
    "tests": [
        _suite("unit", {DURATION: "1500", MESSAGE: '{"passed": 3}'}, shards=2),
        _suite("e2e", {DURATION: "1500", MESSAGE: '{"passed": 2}'}, needs=["unit"]),
    ],
}


def _assert_exactly_once(status: dict, batch: client.BatchV1Api, core: client.CoreV1Api, uid: str) -> None:
    assert status["phase"] == "Succeeded", status["message"]
    assert status["summary"]["passed"] == 3 * 2 + 2
    jobs = sorted(j.metadata.name for j in batch.list_namespaced_job(status["namespace"]).items)
    assert jobs == ["e2e-r1", "schema-r1", "unit-r1"]
    unit_pods = core.list_namespaced_pod(status["namespace"], label_selector="job-name=unit-r1").items
    assert len(unit_pods) == 2  # one per shard, none duplicated
    assert _owned_namespaces(core, uid) == [status["namespace"]]


@pytest.mark.parametrize("kill_in", ["Provisioning", "Seeding", "Testing"])
def test_the_operator_killed_mid_run_resumes_without_duplicates(environments, operator, batch, core, kill_in):
    created = environments.apply("crashy", RESTART_SPEC)
    environments.wait_phase("crashy", kill_in, timeout=60)
    operator.kill()
    operator.start()
    status = environments.wait_phase("crashy", "Succeeded", "Failed", timeout=120)
    _assert_exactly_once(status, batch, core, created["metadata"]["uid"])


def test_the_operator_killed_right_after_apply_resumes(environments, operator, batch, core):
    operator.kill()
    created = environments.apply("crashy", RESTART_SPEC)
    operator.start()
    status = environments.wait_phase("crashy", "Succeeded", "Failed", timeout=120)
    _assert_exactly_once(status, batch, core, created["metadata"]["uid"])


def test_the_control_plane_restarted_mid_run_is_survived(environments, cluster, batch, core):
    if not cluster.owned:
        pytest.skip("the control plane of a cluster this session did not start cannot be restarted")
    created = environments.apply("bumpy", RESTART_SPEC)
    environments.wait_phase("bumpy", "Seeding", "Testing", timeout=60)
    cluster.restart()
    status = environments.wait_phase("bumpy", "Succeeded", "Failed", timeout=180)
    _assert_exactly_once(status, batch, core, created["metadata"]["uid"])
