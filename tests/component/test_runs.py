"""Seeds and test suites on the real control plane. KWOK plays the pods: the
annotations in podAnnotations decide how each simulated container ends."""

from __future__ import annotations

import json

import pytest
from operator_support import kubectl
from testbed_support import wait_for

pytestmark = pytest.mark.component

EXIT = "testenv.dev/simulate-exit-code"
MESSAGE = "testenv.dev/simulate-termination-message"
DURATION = "testenv.dev/simulate-duration-ms"
HANG = "testenv.dev/simulate-hang"


def summary(passed: int = 0, failed: int = 0, skipped: int = 0, failures: list[str] | None = None) -> str:
    return json.dumps({"passed": passed, "failed": failed, "skipped": skipped, "failures": failures or []})


def suite(name: str, annotations: dict[str, str] | None = None, **fields) -> dict:
    return {"name": name, "image": "ghcr.io/acme/tests:1", "podAnnotations": annotations or {}, **fields}


BASE = {
    "datastores": [{"name": "cache", "engine": "redis"}],
    "seed": [{"name": "warm", "datastore": "cache", "sql": "SET greeting hello"}],
}


def by_name(status: dict, key: str = "tests") -> dict[str, dict]:
    return {s["name"]: s for s in status.get(key, [])}


def events(core, namespace: str, name: str) -> list:
    return core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items


def test_passing_run_reports_counts_per_suite_and_in_total(environments, core, batch, cluster):
    spec = BASE | {"tests": [
        suite("contract", {MESSAGE: summary(passed=12)}),
        suite("component", {MESSAGE: summary(passed=30, skipped=2)}, needs=["contract"]),
    ]}
    environments.apply("green", spec)
    status = environments.wait_phase("green", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", status["message"]
    suites = by_name(status)
    assert (suites["contract"]["passed"], suites["component"]["passed"], suites["component"]["skipped"]) == (12, 30, 2)
    assert status["summary"] == {"passed": 42, "failed": 0, "skipped": 2}
    assert {c["type"]: c["status"] for c in status["conditions"]}["TestsPassed"] == "True"
    assert by_name(status, "seeds")["warm"]["phase"] == "Succeeded"
    assert status["finishedAt"] and status["expiresAt"]
    # Needs order: component's Job started after contract's finished.
    jobs = {j.metadata.labels["testenv.dev/suite"]: j for j in batch.list_namespaced_job(status["namespace"]).items
            if "testenv.dev/suite" in j.metadata.labels}
    assert jobs["component"].metadata.creation_timestamp >= jobs["contract"].status.completion_time
    reasons = [e.reason for e in events(core, environments.namespace, "green")]
    assert {"Seeding", "Testing", "Succeeded", "SuitePassed"} <= set(reasons)
    row = kubectl(cluster, "get", "tenv", "green", "-n", environments.namespace, "--no-headers").stdout.split()
    assert row[1:4] == ["Succeeded", "1/1", "42/0"]


def test_a_failed_suite_fails_the_run_and_cancels_suites_not_started(environments, core):
    spec = BASE | {"tests": [
        suite("unit", {EXIT: "1", MESSAGE: summary(passed=8, failed=2, failures=["test_refund", "test_void"])}),
        suite("slow", {DURATION: "4000", MESSAGE: summary(passed=3)}),
        suite("e2e", {MESSAGE: summary(passed=5)}, needs=["slow"]),
    ]}
    environments.apply("red", spec)
    status = environments.wait_phase("red", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Failed"
    suites = by_name(status)
    assert suites["unit"]["phase"] == "Failed"
    assert (suites["unit"]["passed"], suites["unit"]["failed"]) == (8, 2)
    assert suites["unit"]["failures"] == ["test_refund", "test_void"]
    assert suites["slow"]["phase"] == "Succeeded"  # already running: it finishes
    assert suites["e2e"]["phase"] == "Skipped" and "failFast" in suites["e2e"]["message"]
    tests_passed = {c["type"]: c for c in status["conditions"]}["TestsPassed"]
    assert tests_passed["status"] == "False" and "unit" in tests_passed["message"]
    # Events are posted after the status is written: wait for them too.
    wait_for(lambda: any(e.reason == "SuiteFailed" and "unit" in e.message
                         for e in events(core, environments.namespace, "red")), timeout=15, what="SuiteFailed event")
    wait_for(lambda: any(e.reason == "FailureLogs" and "unit-r1" in e.message
                         for e in events(core, environments.namespace, "red")), timeout=15, what="FailureLogs event")


def test_without_fail_fast_the_other_suites_still_run(environments):
    spec = BASE | {"tests": [
        suite("flaky", {EXIT: "1"}, failFast=False),
        suite("later", {DURATION: "1500", MESSAGE: summary(passed=1)}),
        suite("after-later", {MESSAGE: summary(passed=2)}, needs=["later"]),
    ]}
    environments.apply("lenient", spec)
    status = environments.wait_phase("lenient", "Succeeded", "Failed", timeout=120)
    suites = by_name(status)
    assert status["phase"] == "Failed"
    assert suites["flaky"] == suites["flaky"] | {"phase": "Failed", "failed": 1}  # no summary: the Job counts
    assert suites["after-later"]["phase"] == "Succeeded"


def test_sharded_suite_sums_its_shards(environments, batch):
    spec = BASE | {"tests": [suite("component", {MESSAGE: summary(passed=7, skipped=1)}, shards=4)]}
    environments.apply("sharded", spec)
    status = environments.wait_phase("sharded", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded"
    assert (by_name(status)["component"]["passed"], by_name(status)["component"]["skipped"]) == (28, 4)
    job = batch.read_namespaced_job("component-r1", status["namespace"])
    assert job.spec.completion_mode == "Indexed" and job.spec.completions == 4 and job.spec.parallelism == 4
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    assert env["TESTENV_SHARD_TOTAL"].value == "4"
    assert "job-completion-index" in env["TESTENV_SHARD_INDEX"].value_from.field_ref.field_path
    assert env["CACHE_URL"].value_from.secret_key_ref.name == "cache-connection"


def test_a_suite_past_its_timeout_fails_as_timed_out(environments, batch):
    """timeoutSeconds is each attempt's pod deadline, which a kubelet enforces
    (tests/realnode/test_results.py); KWOK does not, so here the Job's
    backstop after all attempts ends the run: slower, the same outcome."""
    spec = BASE | {"tests": [suite("stuck", {HANG: "true"}, timeoutSeconds=2, retries=2)]}
    environments.apply("stuck", spec)
    status = environments.wait_phase("stuck", "Succeeded", "Failed", timeout=120)
    stuck = by_name(status)["stuck"]
    assert stuck["phase"] == "Failed" and "timed out" in stuck["message"]
    job = batch.read_namespaced_job("stuck-r1", status["namespace"])
    assert job.spec.template.spec.active_deadline_seconds == 2
    assert (job.spec.active_deadline_seconds, job.spec.backoff_limit) == (2 * 3 + 60, 2)


def test_a_failed_seed_fails_the_run_before_any_suite(environments, core, batch):
    spec = {
        "datastores": [{"name": "db", "engine": "postgres"}],
        "seed": [{"name": "schema", "datastore": "db", "sql": "CREATE TABLE t (id int);",
                  "podAnnotations": {EXIT: "3", MESSAGE: "ERROR:  syntax error at or near \"CREAT\""}}],
        "services": [{"name": "api", "image": "ghcr.io/acme/api:1", "dependsOn": ["db"]}],
        "tests": [suite("smoke")],
    }
    environments.apply("bad-seed", spec)
    status = environments.wait_phase("bad-seed", "Failed", "Succeeded", timeout=120)
    assert status["phase"] == "Failed" and "seed schema failed" in status["message"]
    assert by_name(status, "seeds")["schema"]["phase"] == "Failed"
    components = by_name(status, "components")
    assert not components["api"]["ready"] and "seed schema" in components["api"]["message"]
    jobs = [j.metadata.name for j in batch.list_namespaced_job(status["namespace"]).items]
    assert jobs == ["schema-r1"]
    wait_for(lambda: any(e.reason == "FailureLogs" and "syntax error" in e.message
                         for e in events(core, environments.namespace, "bad-seed")),
             timeout=15, what="the seed's log tail as an Event")


def test_a_spec_change_starts_a_new_run_and_removes_the_old_runs_jobs(environments, batch):
    spec = BASE | {"tests": [suite("smoke", {MESSAGE: summary(passed=1)})]}
    environments.apply("rerun", spec)
    first = environments.wait_phase("rerun", "Succeeded", timeout=120)
    assert first["run"] == 1
    changed = BASE | {"tests": [suite("smoke", {EXIT: "1", MESSAGE: summary(passed=0, failed=1)}, image="ghcr.io/acme/tests:2")]}
    environments.apply("rerun", changed)
    wait_for(lambda: environments.status("rerun").get("run") == 2, timeout=30, what="run 2")
    second = environments.wait_phase("rerun", "Failed", "Succeeded", timeout=120)
    assert second["phase"] == "Failed" and second["run"] == 2 and second["observedGeneration"] == 2
    assert by_name(second)["smoke"]["failed"] == 1

    def only_run_two() -> list[str] | None:
        names = sorted(j.metadata.name for j in batch.list_namespaced_job(second["namespace"]).items)
        return names if names == ["smoke-r2", "warm-r2"] else None

    wait_for(only_run_two, timeout=60, what="only run 2's Jobs left")


def test_stub_verification_is_reported_like_a_suite(environments):
    spec = {
        "stubs": [{"name": "payments", "mappings": [{"request": {"method": "POST", "urlPath": "/charge"},
                                                    "response": {"status": 200}}],
                   "verify": [{"request": {"method": "POST", "urlPath": "/charge"}, "count": {"atLeast": 1}}]}],
        "tests": [suite("smoke", {MESSAGE: summary(passed=1)})],
    }
    environments.apply("verified", spec)
    status = environments.wait_phase("verified", "Succeeded", "Failed", timeout=120)
    stub = by_name(status)["stubs/payments"]
    # KWOK's pods answer nothing, so the check fails — and says why, instead of hanging.
    assert stub["phase"] == "Failed" and "could not reach" in stub["message"]
    assert status["phase"] == "Failed"
