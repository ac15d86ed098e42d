"""Kept results, the pure half: where they go, the run's index, the counts that
come from real reports, and what seed and suite pods get to write them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from plan_fixtures import (
    NOW,
    REDIS,
    SETTINGS,
    job_seen,
    make_spec,
    run_plan,
    settle,
    suite,
    suite_status,
    with_jobs,
)
from testenv.build.common import EnvRef
from testenv.build.jobs import suite_job
from testenv.build.results import Collector, with_results
from testenv.collect import FileEntry, Manifest
from testenv.models import Counts, JobPhase, Seed, TestSuite
from testenv.observe import suite_result, suite_results
from testenv.results import (
    AttemptResults,
    LogTail,
    Owner,
    archive_key,
    attempt_results,
    body_names,
    chunk,
    index_entry_name,
    index_name,
    last_attempts,
    run_index,
    shard_and_attempt,
    suites_of,
)

SUCCEEDED, FAILED = JobPhase.SUCCEEDED, JobPhase.FAILED
OWNER = Owner(namespace="ci", name="pr-1234", uid="uid-1234")
ENV = EnvRef(namespace="ci", name="pr-1234", uid="uid-1234", target_namespace="te-pr-1234-abcde")
COLLECTOR = Collector("registry.local/testenv-operator:1", 1024, 4096)

PYTEST_XML = b"""<?xml version="1.0"?>
<testsuites><testsuite name="pytest" tests="3" failures="1" skipped="1">
<testcase classname="tests.test_orders" name="test_create" time="0.5"/>
<testcase classname="tests.test_orders" name="test_refund" time="1.25">
  <failure message="assert 402 == 201">Traceback...\nAssertionError: assert 402 == 201</failure>
</testcase>
<testcase classname="tests.test_orders" name="test_later" time="0"><skipped message="later"/></testcase>
</testsuite></testsuites>"""


def manifest(*paths: str) -> Manifest:
    return Manifest(files=tuple(FileEntry(path=p, size=10, sha256="0" * 64) for p in paths), notes=())


def pod(name: str, created: str, shard: int | None = None, phase: str = "Succeeded") -> dict:
    annotations = {} if shard is None else {"batch.kubernetes.io/job-completion-index": str(shard)}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "status": {"phase": phase}}


# --- keys and names -------------------------------------------------------------------


def test_keys_name_the_environment_run_component_shard_and_attempt() -> None:
    assert archive_key(OWNER, 3, "test", "e2e", 1, 0) == "ci/pr-1234/uid-1234/r3/test-e2e-s1-a0.tar.gz"


def test_a_new_environment_of_the_same_name_never_shares_keys() -> None:
    other = replace(OWNER, uid="uid-5678")
    assert archive_key(OWNER, 1, "test", "e2e", 0, 0) != archive_key(other, 1, "test", "e2e", 0, 0)


def test_index_name_fits_a_configmap_name_even_for_the_longest_resource_name() -> None:
    long = replace(OWNER, name="x" * 253)
    assert len(index_name(long, 12345)) <= 253
    assert index_name(OWNER, 2) == "pr-1234-r2-results"


def test_bodies_are_chunked_under_the_configmap_limit_and_joined_back() -> None:
    data = bytes(range(256)) * 8000  # ~2 MiB
    parts = chunk(data)
    assert len(parts) == 3 and all(len(p) <= 900 * 1024 for p in parts)
    assert b"".join(parts) == data
    assert chunk(b"") == [b""]
    names = body_names("some/key", 3)
    assert len(set(names)) == 3 and all(len(n) <= 63 for n in names)


def test_attempts_are_numbered_per_shard_by_creation() -> None:
    pods = [pod("b", "2024-05-01T12:00:05Z", 0), pod("a", "2024-05-01T12:00:01Z", 0),
            pod("c", "2024-05-01T12:00:02Z", 1)]
    assert shard_and_attempt(pods) == {"a": (0, 0), "b": (0, 1), "c": (1, 0)}


def test_index_entries_are_valid_configmap_keys() -> None:
    attempt = AttemptResults(kind="test", component="e2e", shard=1, attempt=2, pod="e2e-r1-1-abcde")
    tail = LogTail(pod="orders-7d9f-x2", container="orders")
    for name in (index_entry_name(attempt), index_entry_name(tail)):
        assert all(c.isalnum() or c in "-._" for c in name), name


# --- counts from real reports ---------------------------------------------------------


def test_counts_and_failure_names_come_from_the_real_report() -> None:
    found = attempt_results(kind="test", component="unit", pod="p", phase="Failed", shard=0, attempt=0,
                            manifest=manifest("junit.xml", "shot.png"),
                            files={"junit.xml": PYTEST_XML, "shot.png": b"\x89PNG"})
    assert found.counts == Counts(passed=1, failed=1, skipped=1)
    assert found.failures == ["tests.test_orders::test_refund"]
    assert found.reports == ["junit.xml"]
    assert [f.path for f in found.files] == ["junit.xml", "shot.png"]


def test_junk_named_xml_is_a_note_and_not_a_count() -> None:
    found = attempt_results(kind="test", component="unit", pod="p", phase="Succeeded", shard=0, attempt=0,
                            manifest=manifest("junk.xml"), files={"junk.xml": b"\x00\xffnot xml"})
    assert found.counts is None
    assert found.notes and "junk.xml is not a JUnit report" in found.notes[0]


def test_a_report_beats_the_termination_message_and_other_shards_still_count() -> None:
    with_report = pod("u-0", "2024-05-01T12:00:00Z", 0, "Failed")
    summary_only = pod("u-1", "2024-05-01T12:00:00Z", 1)
    summary_only["status"]["containerStatuses"] = [
        {"state": {"terminated": {"message": '{"passed": 4, "failed": 0, "skipped": 0}'}}}]
    with_report["status"]["containerStatuses"] = [
        {"state": {"terminated": {"message": '{"passed": 99, "failed": 0, "skipped": 0}'}}}]
    kept = attempt_results(kind="test", component="unit", pod="u-0", phase="Failed", shard=0, attempt=0,
                           manifest=manifest("junit.xml"), files={"junit.xml": PYTEST_XML})
    result = suite_result([with_report, summary_only], JobPhase.FAILED, {"u-0": kept})
    assert result.counts == Counts(passed=5, failed=1, skipped=1)
    assert result.failures == ("tests.test_orders::test_refund",)
    assert result.kept is not None and result.kept.reports == 1


def test_the_status_lists_what_was_kept_and_the_notes() -> None:
    a = AttemptResults(kind="test", component="e2e", shard=0, attempt=0, pod="p0", bytes=100, notes=["cut x"])
    b = AttemptResults(kind="test", component="e2e", shard=1, attempt=0, pod="p1", bytes=50)
    kept = suite_results([a, b])
    assert (kept.attempts, kept.bytes) == (2, 150)
    assert kept.notes == ["shard 0, attempt 0: cut x"]


def test_each_shards_last_attempt_counts() -> None:
    attempts = [AttemptResults(kind="test", component="e2e", shard=s, attempt=a, pod=f"p{s}{a}")
                for s, a in ((0, 0), (0, 1), (1, 0))]
    assert [(a.shard, a.attempt) for a in last_attempts(attempts)] == [(0, 1), (1, 0)]


def test_the_index_reads_back_from_configmap_data() -> None:
    attempt = AttemptResults(kind="test", component="e2e", pod="p", counts=Counts(passed=2, failed=1),
                             failures=["t::x"], key="k")
    seed = AttemptResults(kind="seed", component="schema", pod="s")
    tail = LogTail(pod="orders-x", container="orders", reason="CrashLoopBackOff", key="l", bytes=10)
    data = {
        "environment.json": '{"environment": "pr-1234", "namespace": "ci", "uid": "uid-1234", "run": 2, '
                            '"store": "configmap"}',
        **{index_entry_name(e): e.model_dump_json(by_alias=True) for e in (attempt, seed, tail)},
    }
    index = run_index(data)
    assert (index.environment, index.run, index.store) == ("pr-1234", 2, "configmap")
    assert [a.kind for a in index.attempts] == ["seed", "test"]
    assert index.logs == [tail]
    [e2e] = suites_of(index)
    assert (e2e.name, e2e.phase, e2e.passed, e2e.failed, e2e.failures) == ("e2e", JobPhase.FAILED, 2, 1, ["t::x"])


# --- what pods get ------------------------------------------------------------------------


def test_suite_pods_get_a_results_directory_and_the_collector_sidecar() -> None:
    job = suite_job(TestSuite(name="e2e", image="acme/tests:1"), ENV, 1, [], collector=COLLECTOR)
    spec = job["spec"]["template"]["spec"]
    [tests] = spec["containers"]
    assert {"name": "TESTENV_RESULTS_DIR", "value": "/testenv/results"} in tests["env"]
    assert {"name": "testenv-results", "mountPath": "/testenv/results"} in tests["volumeMounts"]
    [sidecar] = spec["initContainers"]
    assert sidecar["name"] == "testenv-collect" and sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == COLLECTOR.image
    assert sidecar["volumeMounts"][0]["readOnly"] is True
    assert sidecar["resources"]["limits"]["memory"]  # never the LimitRange's service-sized default
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert {"name": "testenv-results", "emptyDir": {}} in spec["volumes"]


def test_a_suites_own_results_dir_variable_wins() -> None:
    own = TestSuite.model_validate({"name": "e2e", "image": "acme/tests:1",
                                    "env": [{"name": "TESTENV_RESULTS_DIR", "value": "/out"}]})
    [tests] = suite_job(own, ENV, 1, [], collector=COLLECTOR)["spec"]["template"]["spec"]["containers"]
    assert [e for e in tests["env"] if e["name"] == "TESTENV_RESULTS_DIR"] == [
        {"name": "TESTENV_RESULTS_DIR", "value": "/out"}]


def test_without_a_collector_image_pods_are_as_before() -> None:
    spec = {"containers": [{"name": "tests"}]}
    assert with_results(spec, None) is spec


def test_seed_pods_get_the_collector_too() -> None:
    from testenv.build.seeds import seed_objects

    seed = Seed.model_validate({"name": "catalog", "image": "acme/seed:1"})
    [job] = seed_objects(seed, None, ENV, "", 1, [], collector=COLLECTOR)
    assert job["spec"]["template"]["spec"]["initContainers"][0]["name"] == "testenv-collect"


# --- the plan --------------------------------------------------------------------------


def at_testing_start(spec_fields: dict) -> tuple:
    return settle(make_spec(datastores=[REDIS], **spec_fields))


def test_the_status_says_where_the_runs_results_are() -> None:
    spec = {"tests": [suite("unit")]}
    p, observed = at_testing_start(spec)
    kept = suite_results([AttemptResults(kind="test", component="unit", pod="p", bytes=10)])
    observed = with_jobs(observed, job_seen("unit", FAILED),
                         results={"unit-r1": replace(suite_result([], JobPhase.FAILED), kept=kept)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "unit").results == kept
    assert p.status.results is not None
    assert p.status.results.index == "pr-1234-r1-results"
    assert p.status.results.store == "configmap"


def test_results_are_forgotten_once_the_retention_passes() -> None:
    spec = {"tests": [suite("unit")]}
    p, observed = at_testing_start(spec)
    kept = suite_results([AttemptResults(kind="test", component="unit", pod="p", bytes=10)])
    observed = with_jobs(observed, job_seen("unit", SUCCEEDED),
                         results={"unit-r1": replace(suite_result([], JobPhase.SUCCEEDED), kept=kept)})
    done = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert not done.forget_results
    retention = SETTINGS.results_retention_seconds
    assert done.wake_after is not None and done.wake_after <= retention
    later = run_plan(make_spec(datastores=[REDIS], **spec), previous=done.status, observed=observed,
                     now=NOW + timedelta(seconds=retention + 1))
    assert later.forget_results and later.status.results.expired
    again = run_plan(make_spec(datastores=[REDIS], **spec), previous=later.status, observed=observed,
                     now=NOW + timedelta(seconds=retention + 5))
    assert not again.forget_results  # once


def test_log_tails_not_kept_are_noted_on_the_runs_results() -> None:
    spec = {"tests": [suite("unit")]}
    p, observed = at_testing_start(spec)
    observed = replace(with_jobs(observed, job_seen("unit", JobPhase.FAILED),
                                 results={"unit-r1": suite_result([], JobPhase.FAILED)}),
                       logs_kept=1, log_notes=("log tail of unit-r1-0-a/tests not kept: the bucket is full",))
    ended = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert ended.status.results is not None
    assert (ended.status.results.logs, ended.status.results.notes) == (
        1, ["log tail of unit-r1-0-a/tests not kept: the bucket is full"])


def test_a_buckets_results_are_kept_no_longer_than_their_download_links_live() -> None:
    week = 7 * 86400
    month = SETTINGS.model_copy(update={"results_retention_seconds": 30 * 86400})
    assert month.results_retention() == 30 * 86400
    assert month.model_copy(update={"results_store": "s3"}).results_retention() == week


def test_links_point_where_clients_reach_the_bucket() -> None:
    inside = SETTINGS.model_copy(update={"results_store": "s3", "results_s3_endpoint": "http://seaweedfs.storage:8333"})
    assert inside.results_download_endpoint() == "http://seaweedfs.storage:8333"
    outside = inside.model_copy(update={"results_s3_public_endpoint": "https://results.example.com"})
    assert outside.results_download_endpoint() == "https://results.example.com"
