"""Pod-level reasons on the real control plane (KWOK plays the pods): the real
scheduler, quota admission and Job/ReplicaSet controllers refuse or hold pods,
the operator watches them and says why, ends the run when it will not fix
itself, and lets a preview end at its deadline."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from testbed_support import ROOT, wait_for

pytestmark = pytest.mark.component

DURATION = "testenv.dev/simulate-duration-ms"


def warning_events(core, namespace: str, name: str, reason: str) -> list:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e for e in events if e.reason == reason and e.type == "Warning"]


def one_warning_event(core, namespace: str, name: str, reason: str) -> None:
    """Exactly one Warning Event of `reason`, waited for: kopf posts Events
    after the status write that a test's watch may see first."""
    found = wait_for(lambda: warning_events(core, namespace, name, reason), timeout=10, what=f"the {reason} Event")
    assert len(found) == 1, [e.message for e in found]


def component(status: dict, name: str) -> dict:
    return next(c for c in status.get("components") or [] if c["name"] == name)


QUOTA_OF_ONE = {
    "lifecycle": {"failureGraceSeconds": 4, "retainOnFailureSeconds": 600},
    "isolation": {"resourceQuota": {"pods": "1"}},
    "datastores": [{"name": "cache", "engine": "redis"}],
    "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "dependsOn": ["cache"]}],
    "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
}


def test_a_quota_that_stays_full_ends_the_run_in_error_with_the_servers_message(environments, core):
    environments.apply("quota", QUOTA_OF_ONE)
    seen = wait_for(lambda: (s := environments.status("quota")).get("components") and
                    component(s, "api").get("reason") == "QuotaExceeded" and s,
                    timeout=60, what="api's reason QuotaExceeded", interval=0.2)
    assert seen["phase"] == "Provisioning"
    assert "exceeded quota" in component(seen, "api")["message"]
    ready = {c["type"]: c for c in seen["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "QuotaExceeded")

    status = environments.wait_phase("quota", "Error", timeout=60)
    assert status["message"].startswith("service api: ")
    assert "exceeded quota" in status["message"] and "pods=1" in status["message"]
    tests = {c["type"]: c for c in status["conditions"]}["TestsPassed"]
    assert (tests["status"], tests["reason"]) == ("False", "QuotaExceeded")
    # Retained as any failure, not collected at once.
    assert status["expiresAt"] > status["finishedAt"]
    # One Event for the cause however often the ReplicaSet retried.
    one_warning_event(core, environments.namespace, "quota", "QuotaExceeded")
    one_warning_event(core, environments.namespace, "quota", "Error")


def test_a_quota_that_frees_up_is_reported_while_it_lasts_and_then_cleared(environments, core):
    seed = {"image": "ghcr.io/acme/fixtures:1", "podAnnotations": {DURATION: "3000"}}
    environments.apply("queue", {
        "lifecycle": {"failureGraceSeconds": 300},
        "isolation": {"resourceQuota": {"pods": "1"}},
        "seed": [{"name": "first", **seed}, {"name": "second", **seed}],
        "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
    })

    def held() -> str | None:
        seeds = environments.status("queue").get("seeds") or []
        return next((s["name"] for s in seeds if s.get("reason") == "QuotaExceeded"), None)

    waiting = wait_for(held, timeout=60, what="a seed held by the quota", interval=0.2)
    status = environments.wait_phase("queue", "Succeeded", "Failed", "Error", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert all(not s.get("reason") for s in status["seeds"]), status["seeds"]
    assert {s["name"]: s["phase"] for s in status["seeds"]} == {"first": "Succeeded", "second": "Succeeded"}
    assert all(not t.get("reason") for t in status["tests"]), status["tests"]
    # One Event per held seed or suite, however often its Job retried. The
    # suite may be held too: the quota counts a finished seed's pod until the
    # quota controller sees it finish, and the suite's Job may come first.
    held = [e.message.split(":", 1)[0] for e in warning_events(core, environments.namespace, "queue", "QuotaExceeded")]
    assert held.count(f"seed {waiting}") == 1 and len(held) == len(set(held)), held


def test_a_preview_ends_normally_at_its_deadline(environments):
    environments.apply("preview", {
        "lifecycle": {"activeDeadlineSeconds": 6, "ttlSecondsAfterFinished": 3600, "retainOnFailureSeconds": 60},
        "datastores": [{"name": "cache", "engine": "redis"}],
    })
    ready = environments.wait_phase("preview", "Ready", timeout=60)
    assert ready["expiresAt"], "a Ready preview with a deadline shows when it ends"
    ended = environments.wait_phase("preview", "Succeeded", "TimedOut", timeout=30)
    assert ended["phase"] == "Succeeded" and "preview ended" in ended["message"]
    assert ended["expiresAt"] == ready["expiresAt"]  # kept ttlSecondsAfterFinished, as it said


def test_up_wait_prints_the_reason_and_exits_2(cluster, namespace, operator, tmp_path: Path):
    body = {"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment", "metadata": {"name": "cli-quota"},
            "spec": QUOTA_OF_ONE}
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(body))
    junit = tmp_path / "junit.xml"
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig, PYTHONPATH=str(ROOT / "operator"), COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "testenv.cli", "up", "-f", str(path), "-n", namespace, "--wait", "--timeout", "3m",
         "--junit", str(junit)],
        check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    explain = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2, explain
    assert "cli-quota: Error" in result.stdout, explain
    assert "service api: QuotaExceeded:" in result.stdout and "exceeded quota" in result.stdout, explain
    assert "exceeded quota" in junit.read_text()


@contextmanager
def admission_refusing(api_client, core, name: str, *, group: str, resource: str, message: str,
                       admits: str = "false", probe: str = "probe"):
    """A real admission policy (CEL, no webhook server needed) that refuses
    every `resource` created in environment `name`'s namespace but those the
    CEL expression `admits` admits; in force once an object named `probe` is refused."""
    admission = client.AdmissionregistrationV1Api(api_client)
    scope = {"namespaceSelector": {"matchLabels": {"testenv.dev/environment": name}}}
    admission.create_validating_admission_policy({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {**scope, "resourceRules": [{
                     "apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                     "resources": [resource]}]},
                 "validations": [{"expression": admits, "message": message}]},
    })
    admission.create_validating_admission_policy_binding({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"], "matchResources": scope},
    })
    probe_ns = core.create_namespace({"metadata": {"generateName": "vap-probe-",
                                                   "labels": {"testenv.dev/environment": name}}}).metadata.name
    probes = {
        "services": lambda: core.create_namespaced_service(
            probe_ns, {"metadata": {"name": probe}, "spec": {"ports": [{"port": 80}]}}, dry_run="All"),
        "jobs": lambda: client.BatchV1Api(api_client).create_namespaced_job(probe_ns, {
            "metadata": {"name": probe},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "probe:1"}]}}}}, dry_run="All"),
    }

    def enforced() -> bool:
        # The policy takes effect a moment after it is created; a dry run is admitted like the real thing.
        try:
            probes[resource]()
        except ApiException as exc:
            return exc.status in (403, 422)
        return False

    try:
        wait_for(enforced, timeout=30, what="the admission policy in force", interval=0.5)
        yield
    finally:
        core.delete_namespace(probe_ns)
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def test_an_object_the_api_server_keeps_refusing_is_the_reason(environments, core, api_client):
    """The environment's Services are refused: the refusal is the
    component's reason, then the run's, instead of a reconcile error
    retried until the deadline."""
    name = f"refused-{uuid.uuid4().hex[:6]}"
    with admission_refusing(api_client, core, name, group="", resource="services",
                            message="Services need a ticket in this cluster"):
        environments.apply(name, {
            "lifecycle": {"failureGraceSeconds": 4},
            "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "ports": [{"port": 80}]}],
            "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
        })
        status = environments.wait_phase(name, "Error", "Succeeded", "Failed", timeout=60)
        assert status["phase"] == "Error", status
        assert status["message"].startswith('service api: Service "api" was rejected by the API server: '), status
        assert "Services need a ticket in this cluster" in status["message"], status
        assert component(status, "api")["reason"] == "ApplyRejected"
        one_warning_event(core, environments.namespace, name, "ApplyRejected")
        assert not warning_events(core, environments.namespace, name, "ReconcileError")


def test_a_job_the_api_server_refuses_ends_the_run_with_that_reason(environments, core, api_client):
    """Found by fuzz_manifests.py: a suite's Job the API server refused left
    the suite 'starting' with no reason and the run in Testing for ever."""
    name = f"refused-job-{uuid.uuid4().hex[:6]}"
    with admission_refusing(api_client, core, name, group="batch", resource="jobs",
                            message="Jobs need a ticket in this cluster"):
        environments.apply(name, {
            "lifecycle": {"failureGraceSeconds": 4},
            "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
        })
        status = environments.wait_phase(name, "Error", "Succeeded", "Failed", timeout=60)
        assert status["phase"] == "Error", status
        assert status["message"].startswith('suite e2e: Job "e2e-r1" was rejected by the API server: '), status
        assert "Jobs need a ticket in this cluster" in status["message"], status
        suite = next(t for t in status["tests"] if t["name"] == "e2e")
        assert suite["reason"] == "ApplyRejected", suite
        one_warning_event(core, environments.namespace, name, "ApplyRejected")
        assert not warning_events(core, environments.namespace, name, "ReconcileError")


def test_a_suite_running_when_the_run_ends_in_error_is_stopped_first(environments, core, api_client):
    """Suite pay's Job is refused for good while suite slow runs: slow is
    stopped through its pod's deadline (KWOK plays the kubelet's stop:
    hack/testbed/stages.yaml) so its collector could hand over, and only then
    does the run end Error with pay's reason. tests/realnode/test_results.py
    keeps a real partial report this way."""
    name = f"ending-{uuid.uuid4().hex[:6]}"
    with admission_refusing(api_client, core, name, group="batch", resource="jobs",
                            message="Jobs need a ticket in this cluster",
                            admits="!object.metadata.name.startsWith('pay-')", probe="pay-probe"):
        environments.apply(name, {
            "lifecycle": {"failureGraceSeconds": 4, "retainOnFailureSeconds": 600},
            "tests": [{"name": "slow", "image": "ghcr.io/acme/e2e:1",
                       "podAnnotations": {"testenv.dev/simulate-hang": "true"}},
                      {"name": "pay", "image": "ghcr.io/acme/e2e:1"}],
        })
        stopping = wait_for(lambda: (s := environments.status(name)).get("endingCause") and s,
                            timeout=60, what="the ending cause", interval=0.2)
        status = environments.wait_phase(name, "Error", "Succeeded", "Failed", timeout=60)
    assert status["phase"] == "Error", status
    assert stopping["endingCause"]["reason"] == "ApplyRejected", stopping
    assert status["message"].startswith('suite pay: Job "pay-r1" was rejected by the API server: '), status
    slow = next(t for t in status["tests"] if t["name"] == "slow")
    assert slow["phase"] == "Failed" and slow["message"].startswith("stopped as the run ended in Error"), slow
    tests = {c["type"]: c for c in status["conditions"]}["TestsPassed"]
    assert (tests["status"], tests["reason"]) == ("False", "ApplyRejected")
    one_warning_event(core, environments.namespace, name, "Error")
