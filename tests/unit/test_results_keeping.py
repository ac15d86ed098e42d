"""Keeping a run's results, our logic only: which pods' archives and which
containers' logs are read, how attempts are numbered and keyed, what the
run's byte cap lets through, and how a store or log that fails becomes a
note (or an error the reconcile retries) instead of lost counts.

The store's bodies are kept in memory (resultstore.MemoryBodies) and the
API is a stand-in for the three Kube methods harvest.py and resultstore.py
call (read_log, upsert_config_map, delete_config_maps), not a mock of the
Kubernetes API: a mock of the API is no substitute for the control plane.
How the ConfigMap store behaves against the real API server is proved in
tests/component/test_results_store.py."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from testenv import reconcile as reconcile_module
from testenv.build.common import environment_namespace_name
from testenv.collect import COLLECTOR_CONTAINER, frame, human_size, pack, unframe
from testenv.harvest import (
    FINAL_LOG_ERRORS,
    RunBudget,
    _failed_containers,
    harvest_job,
    harvest_logs,
    keep_run_end,
)
from testenv.kube import StatusWrite, WriteOutcome
from testenv.models import JobPhase
from testenv.observe import JobObservation, Observed
from testenv.reconcile import Memory, reconcile
from testenv.results import (
    LOG_TAIL_BYTES,
    AttemptResults,
    Owner,
    archive_key,
    index_name,
    log_key,
    run_index,
)
from testenv.resultstore import ConfigMapBodies, MemoryBodies, ResultsStore, Unusable
from testenv.settings import Settings

OWNER = Owner(namespace="ci", name="pr-1", uid="uid-1")
TARGET = "te-pr-1-abcde"  # the environment's namespace, where the pods ran
E2E = JobObservation(name="e2e-r1", component="e2e", kind="test", run=1, phase=JobPhase.FAILED)
JUNIT = b"""<testsuite tests="3" failures="1" skipped="0">
<testcase classname="t" name="test_a"/><testcase classname="t" name="test_b"/>
<testcase classname="t" name="test_c"><failure message="boom">boom</failure></testcase>
</testsuite>"""


class ResultsKube:
    """Stands in for Kube where results are kept: logs by (namespace, pod,
    container, previous instance), ConfigMaps by name with keys added as
    upserted, and the selectors deletes were asked for. Errors are raised as
    Kube raises them: ApiException."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, str, str, bool], bytes | ApiException] = {}
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.deletes: list[tuple[str, str]] = []  # (namespace, label selector)
        self.refusal: ApiException | None = None  # raised by every ConfigMap write
        self.delete_refusal: ApiException | None = None

    def read_log(
        self, *, namespace: str, pod: str, container: str, tail_lines: int | None = None, previous: bool = False,
    ) -> bytes:
        found = self.logs.get((namespace, pod, container, previous))
        if found is None:  # as the API server answers for a pod or container that is gone
            raise ApiException(status=404, reason="Not Found")
        if isinstance(found, ApiException):
            raise found
        return found

    def upsert_config_map(self, body: dict[str, Any], owner_label: tuple[str, str]) -> None:
        if self.refusal is not None:
            raise self.refusal
        kept = self.config_maps.setdefault(body["metadata"]["name"], copy.deepcopy(body))
        for field_name in ("data", "binaryData"):
            kept.setdefault(field_name, {}).update(body.get(field_name) or {})

    def delete_config_maps(self, *, namespace: str, selector: str) -> None:
        if self.delete_refusal is not None:
            raise self.delete_refusal
        self.deletes.append((namespace, selector))


def refused(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason)


def collector_log(tmp_path: Path, report: bytes = JUNIT) -> bytes:
    """What a collector prints: its results archive, framed."""
    root = tmp_path / "results"
    root.mkdir(exist_ok=True)
    (root / "junit.xml").write_bytes(report)
    archive, _ = pack(root)
    return frame(archive).encode()


def pod(name: str, *, shard: int = 0, created: str = "2026-01-01T12:00:00Z", phase: str = "Failed",
        collector: bool = True, **status: Any) -> dict[str, Any]:
    init = [{"name": COLLECTOR_CONTAINER}] if collector else []
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(shard)}},
            "spec": {"initContainers": init, "containers": [{"name": "tests"}]},
            "status": {"phase": phase, **status}}


def terminated(name: str, exit_code: int, reason: str | None = None, **entry: Any) -> dict[str, Any]:
    ended = {"exitCode": exit_code, **({"reason": reason} if reason else {})}
    return {"name": name, "state": {"terminated": ended}, **entry}


def running(name: str, **entry: Any) -> dict[str, Any]:
    return {"name": name, "state": {"running": {}}, **entry}


@pytest.fixture
def kube() -> ResultsKube:
    return ResultsKube()


@pytest.fixture
def bodies() -> MemoryBodies:
    return MemoryBodies()


@pytest.fixture
def store(kube: ResultsKube, bodies: MemoryBodies) -> ResultsStore:
    return ResultsStore(kube, bodies, keep_runs=2)  # type: ignore[arg-type]


def index_of(kube: ResultsKube, run: int = 1) -> Any:
    return run_index(kube.config_maps[index_name(OWNER, run)]["data"])


# --- the run's cap ---------------------------------------------------------------------


def test_the_budget_lets_a_run_keep_bytes_up_to_its_cap() -> None:
    budget = RunBudget(limit=100)
    assert budget.allows(1, "a", 60)
    budget.charge(1, "a", 60)
    assert not budget.allows(1, "b", 41)
    assert budget.allows(1, "b", 40)
    assert budget.allows(2, "b", 100)  # each run has a cap of its own


def test_keeping_one_key_again_is_charged_once() -> None:
    budget = RunBudget(limit=100)
    budget.charge(1, "a", 60)
    budget.charge(1, "a", 60)  # the same attempt kept again (a reconcile retried)
    assert budget.allows(1, "b", 40)
    assert budget.allows(1, "a", 60)  # already kept: no new bytes, even at the cap
    budget.charge(1, "b", 40)
    assert budget.allows(1, "a", 60) and not budget.allows(1, "c", 1)


# --- which containers failed ------------------------------------------------------------


def test_a_container_that_exited_non_zero_failed_with_its_reason_or_exit_code() -> None:
    failed = pod("p", containerStatuses=[terminated("tests", 1, "Error"), terminated("sidecar", 3),
                                         terminated("fine", 0, "Completed")])
    assert list(_failed_containers(failed)) == [("tests", "Error", False), ("sidecar", "exit code 3", False)]


def test_a_restarted_container_is_read_from_its_previous_instance() -> None:
    restarted = pod("p", phase="Running", containerStatuses=[
        running("api", restartCount=2, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled"}})])
    assert list(_failed_containers(restarted)) == [("api", "restarted 2 times, last OOMKilled", True)]


def test_every_container_of_a_pod_past_its_deadline_failed_with_deadline_exceeded() -> None:
    timed_out = pod("p", reason="DeadlineExceeded", initContainerStatuses=[terminated("setup", 0)],
                    containerStatuses=[running("tests")])
    assert list(_failed_containers(timed_out)) == [("setup", "DeadlineExceeded", False),
                                                   ("tests", "DeadlineExceeded", False)]


def test_the_collector_and_init_containers_are_looked_at_and_the_collector_never_listed() -> None:
    failed = pod("p", initContainerStatuses=[terminated("migrate", 2, "Error"), terminated(COLLECTOR_CONTAINER, 1)],
                 containerStatuses=[terminated("tests", 0)])
    assert list(_failed_containers(failed)) == [("migrate", "Error", False)]


def test_when_the_run_is_stopped_its_still_running_containers_count_too() -> None:
    """A run cut short (its deadline, a final error) deletes its running Jobs:
    what their containers said so far is all there will ever be."""
    stopped = pod("p", phase="Running", containerStatuses=[running("tests"), terminated("fine", 0)],
                  initContainerStatuses=[running(COLLECTOR_CONTAINER)])
    assert list(_failed_containers(stopped)) == []
    assert list(_failed_containers(stopped, "the run timed out")) == [("tests", "the run timed out", False)]


# --- a Job's attempts ------------------------------------------------------------------


def test_each_finished_pod_with_a_collector_is_an_attempt_numbered_within_its_shard(tmp_path, kube, store, bodies):
    pods = [
        pod("e2e-r1-0-b", shard=0, created="2026-01-01T12:05:00Z", phase="Succeeded"),
        pod("e2e-r1-0-a", shard=0, created="2026-01-01T12:00:00Z"),
        pod("e2e-r1-1-a", shard=1, created="2026-01-01T12:00:00Z", phase="Succeeded"),
        pod("e2e-r1-1-b", shard=1, created="2026-01-01T12:06:00Z", phase="Running"),  # not finished
        pod("e2e-r1-2-a", shard=2, collector=False),  # no collector: nothing to read
    ]
    for name in ("e2e-r1-0-a", "e2e-r1-0-b", "e2e-r1-1-a"):
        kube.logs[(TARGET, name, COLLECTOR_CONTAINER, False)] = collector_log(tmp_path)
    kept = harvest_job(kube, store, RunBudget(10**6), OWNER, 1, E2E, pods, namespace=TARGET)  # type: ignore[arg-type]
    assert {name: (a.shard, a.attempt) for name, a in kept.items()} == {
        "e2e-r1-0-a": (0, 0), "e2e-r1-0-b": (0, 1), "e2e-r1-1-a": (1, 0)}
    assert kept["e2e-r1-0-b"].key == archive_key(OWNER, 1, "test", "e2e", 0, 1)
    assert kept["e2e-r1-0-b"].counts is not None and kept["e2e-r1-0-b"].counts.failed == 1
    assert set(bodies.bodies) == {a.key for a in kept.values()}
    assert [(a.shard, a.attempt) for a in index_of(kube).attempts] == [(0, 0), (0, 1), (1, 0)]


def test_a_collector_log_that_is_gone_is_a_note_and_the_attempt_still_listed(kube, store, bodies) -> None:
    """404 (the pod was deleted) is final: asking again would not help."""
    assert 404 in FINAL_LOG_ERRORS
    kept = harvest_job(kube, store, RunBudget(10**6), OWNER, 1, E2E, [pod("e2e-r1-0-a")], namespace=TARGET)  # type: ignore[arg-type]
    attempt = kept["e2e-r1-0-a"]
    assert attempt.notes == ["the collector's log could not be read: 404 Not Found"]
    assert (attempt.key, attempt.counts) == (None, None) and bodies.bodies == {}
    assert [a.pod for a in index_of(kube).attempts] == ["e2e-r1-0-a"]


def test_a_busy_api_server_is_raised_so_the_reconcile_is_tried_again(kube, store) -> None:
    kube.logs[(TARGET, "e2e-r1-0-a", COLLECTOR_CONTAINER, False)] = refused(429, "Too Many Requests")
    with pytest.raises(ApiException) as raised:
        harvest_job(kube, store, RunBudget(10**6), OWNER, 1, E2E, [pod("e2e-r1-0-a")], namespace=TARGET)  # type: ignore[arg-type]
    assert raised.value.status == 429
    assert kube.config_maps == {}  # nothing listed yet: the next try lists it


def test_a_log_without_a_results_frame_is_a_note(kube, store) -> None:
    kube.logs[(TARGET, "e2e-r1-0-a", COLLECTOR_CONTAINER, False)] = b"collector: out of memory\n"
    kept = harvest_job(kube, store, RunBudget(10**6), OWNER, 1, E2E, [pod("e2e-r1-0-a")], namespace=TARGET)  # type: ignore[arg-type]
    assert kept["e2e-r1-0-a"].notes == ["no results from the collector: no results frame in the collector's log"]


def test_an_archive_over_the_runs_cap_is_not_kept_but_its_counts_are(tmp_path, kube, store, bodies) -> None:
    kube.logs[(TARGET, "e2e-r1-0-a", COLLECTOR_CONTAINER, False)] = collector_log(tmp_path)
    budget = RunBudget(limit=10)
    kept = harvest_job(kube, store, budget, OWNER, 1, E2E, [pod("e2e-r1-0-a")], namespace=TARGET)  # type: ignore[arg-type]
    attempt = kept["e2e-r1-0-a"]
    assert attempt.key is None and bodies.bodies == {} and budget.used == {}
    assert attempt.counts is not None and (attempt.counts.passed, attempt.counts.failed) == (2, 1)
    assert attempt.notes[-1].startswith("files not kept (") and "over the 10 B cap; the counts are" in attempt.notes[-1]


def test_one_suite_over_its_own_cap_leaves_the_runs_room_to_the_next_suites_report(tmp_path, kube, store, bodies):
    """A sharded suite's big files stop at the suite's cap; a later suite's
    report, within the run's cap, is still kept."""
    kube.logs[(TARGET, "e2e-r1-0-a", COLLECTOR_CONTAINER, False)] = collector_log(tmp_path)
    kube.logs[(TARGET, "e2e-r1-1-a", COLLECTOR_CONTAINER, False)] = collector_log(tmp_path)
    kube.logs[(TARGET, "smoke-r1-0-a", COLLECTOR_CONTAINER, False)] = collector_log(tmp_path)
    one = len(unframe(collector_log(tmp_path).decode()))
    budget = RunBudget(limit=3 * one, suite_limit=one)
    shards = [pod("e2e-r1-0-a", shard=0), pod("e2e-r1-1-a", shard=1)]
    e2e = harvest_job(kube, store, budget, OWNER, 1, E2E, shards, namespace=TARGET)  # type: ignore[arg-type]
    assert e2e["e2e-r1-0-a"].key is not None
    assert e2e["e2e-r1-1-a"].key is None
    assert e2e["e2e-r1-1-a"].notes[-1] == (f"files not kept ({human_size(one)}): this suite's results are over "
                                           f"the {human_size(one)} cap; the counts are")
    assert e2e["e2e-r1-1-a"].counts is not None  # the counts still come from the report
    smoke = JobObservation(name="smoke-r1", component="smoke", kind="test", run=1, phase=JobPhase.FAILED)
    kept = harvest_job(kube, store, budget, OWNER, 1, smoke, [pod("smoke-r1-0-a")], namespace=TARGET)  # type: ignore[arg-type]
    assert kept["smoke-r1-0-a"].key is not None and kept["smoke-r1-0-a"].notes == []


def test_an_attempt_kept_already_is_never_refused_by_a_cap() -> None:
    budget = RunBudget(limit=100, suite_limit=50)
    budget.charge(1, "a", 50, "test/e2e")
    assert budget.over(1, "a", 50, "test/e2e") is None  # read again after a retry
    assert budget.over(1, "b", 1, "test/e2e") == "suite"
    assert budget.over(1, "c", 50, "test/smoke") is None
    assert budget.over(1, "c", 51, "test/smoke") == "run"


# --- the store's failures are notes ----------------------------------------------------


def test_a_store_that_cannot_keep_the_archive_leaves_a_note(kube) -> None:
    store = ResultsStore(kube, Unusable("s3", "the bucket refused the credentials"), keep_runs=2)  # type: ignore[arg-type]
    attempt = AttemptResults(kind="test", component="e2e", pod="e2e-r1-0-a")
    kept = store.keep_attempt(OWNER, 1, attempt, archive_key(OWNER, 1, "test", "e2e", 0, 0), b"archive")
    assert kept.notes == ["not kept: the bucket refused the credentials"]
    assert (kept.key, kept.bytes) == (None, 0)
    assert attempt.notes == []  # the caller's attempt is not changed
    assert index_of(kube).attempts[0].notes == kept.notes


def test_an_index_that_cannot_be_written_leaves_a_note(kube, store, bodies) -> None:
    kube.refusal = refused(422, "Unprocessable Entity")  # the ConfigMap there is someone else's
    attempt = AttemptResults(kind="test", component="e2e", pod="e2e-r1-0-a")
    kept = store.keep_attempt(OWNER, 1, attempt, archive_key(OWNER, 1, "test", "e2e", 0, 0), b"archive")
    assert kept.key is not None and bodies.bodies == {kept.key: b"archive"}
    assert kept.notes == [f"not listed, so `testenv results` cannot find it: ConfigMap ci/{index_name(OWNER, 1)} "
                          "exists and is not this environment's: rename or delete it"]


# --- failed containers' logs -----------------------------------------------------------


def test_a_failed_containers_log_tail_is_kept_cut_to_its_end(kube, store, bodies) -> None:
    long_log = b"x" * 100 + b"y" * LOG_TAIL_BYTES
    kube.logs[(TARGET, "api-1", "api", True)] = long_log  # restarted: its previous instance failed
    restarted = pod("api-1", phase="Running", containerStatuses=[
        running("api", restartCount=1, lastState={"terminated": {"exitCode": 1, "reason": "Error"}})])
    assert harvest_logs(kube, store, RunBudget(10**6), OWNER, 1, [restarted], TARGET).count == 1  # type: ignore[arg-type]
    kept = bodies.bodies[log_key(OWNER, 1, pod="api-1", container="api")]
    assert kept == b"[... the first 100 bytes cut]\n" + b"y" * LOG_TAIL_BYTES
    assert [(t.pod, t.container, t.reason) for t in index_of(kube).logs] == [
        ("api-1", "api", "restarted 1 times, last Error")]


def test_a_log_that_cannot_be_read_or_is_over_the_cap_is_not_kept(kube, store, bodies) -> None:
    kube.logs[(TARGET, "api-1", "api", False)] = b"boom\n"
    pods = [pod("api-1", containerStatuses=[terminated("api", 1)]),
            pod("gone-1", containerStatuses=[terminated("gone", 1)])]  # its log is gone (404)
    kept = harvest_logs(kube, store, RunBudget(limit=2), OWNER, 1, pods, TARGET)  # type: ignore[arg-type]
    assert kept.count == 0 and bodies.bodies == {}
    # Cut by the cap is said where a developer looks; a log that is gone is the pod's reason already.
    assert kept.notes == ("log tail of api-1/api not kept: the run's results are over the 2 B cap",)


def test_a_log_tail_the_store_cannot_keep_is_a_note(kube) -> None:
    store = ResultsStore(kube, Unusable("s3", "the bucket is full"), keep_runs=2)  # type: ignore[arg-type]
    kube.logs[(TARGET, "api-1", "api", False)] = b"boom\n"
    failed = pod("api-1", containerStatuses=[terminated("api", 1)])
    kept = harvest_logs(kube, store, RunBudget(10**6), OWNER, 1, [failed], TARGET)  # type: ignore[arg-type]
    assert (kept.count, kept.notes) == (0, ("log tail of api-1/api not kept: the bucket is full",))


def test_a_stopped_run_keeps_the_log_tails_of_its_own_running_seeds_and_suites_only(kube, store, bodies) -> None:
    kube.logs[(TARGET, "e2e-r2-0-a", "tests", False)] = b"test_slow ... still going\n"
    kube.logs[(TARGET, "e2e-r1-0-a", "tests", False)] = b"an older run's\n"
    kube.logs[(TARGET, "api-7f9c", "api", False)] = b"serving\n"
    this_run = {**pod("e2e-r2-0-a", phase="Running", containerStatuses=[running("tests")]),
                "metadata": {"name": "e2e-r2-0-a", "labels": {"testenv.dev/run": "2"}}}
    older_run = {**pod("e2e-r1-0-a", phase="Running", containerStatuses=[running("tests")]),
                 "metadata": {"name": "e2e-r1-0-a", "labels": {"testenv.dev/run": "1"}}}
    service = {**pod("api-7f9c", phase="Running", containerStatuses=[running("api")]),
               "metadata": {"name": "api-7f9c", "labels": {"testenv.dev/kind": "service"}}}
    pods = [this_run, older_run, service]
    assert harvest_logs(kube, store, RunBudget(10**6), OWNER, 2, pods, TARGET, stopped="stopped").count == 1  # type: ignore[arg-type]
    assert bodies.bodies == {log_key(OWNER, 2, pod="e2e-r2-0-a", container="tests"): b"test_slow ... still going\n"}
    assert [(t.pod, t.container, t.reason) for t in index_of(kube, run=2).logs] == [("e2e-r2-0-a", "tests", "stopped")]


# --- older runs ------------------------------------------------------------------------


def test_pruning_keeps_the_last_runs_of_this_environment_only(kube, store, bodies) -> None:
    other = Owner(namespace="ci", name="pr-1", uid="uid-2")  # a namesake, deleted and created again
    for run in (1, 2, 3):
        bodies.put(OWNER, run, archive_key(OWNER, run, "test", "e2e", 0, 0), b"x")
    bodies.put(other, 1, archive_key(other, 1, "test", "e2e", 0, 0), b"y")
    store.prune(OWNER, 3)
    assert sorted(bodies.bodies) == sorted([archive_key(OWNER, 2, "test", "e2e", 0, 0),
                                            archive_key(OWNER, 3, "test", "e2e", 0, 0),
                                            archive_key(other, 1, "test", "e2e", 0, 0)])
    assert kube.deletes == [("ci", "testenv.dev/environment-uid=uid-1,testenv.dev/results=index,"
                                   "testenv.dev/run notin (2,3)")]


def test_configmap_bodies_and_index_are_deleted_by_the_environments_uid_except_the_kept_runs(kube) -> None:
    store = ResultsStore(kube, ConfigMapBodies(kube), keep_runs=3)  # type: ignore[arg-type]
    store.prune(OWNER, 1)
    store.forget(OWNER)
    assert kube.deletes == [
        ("ci", "testenv.dev/environment-uid=uid-1,testenv.dev/results=body,testenv.dev/run notin (1)"),
        ("ci", "testenv.dev/environment-uid=uid-1,testenv.dev/results=index,testenv.dev/run notin (1)"),
        ("ci", "testenv.dev/environment-uid=uid-1,testenv.dev/results=body"),  # every run
        ("ci", "testenv.dev/environment-uid=uid-1,testenv.dev/results=index"),
    ]


def test_a_prune_that_fails_is_logged_and_the_log_tails_still_count(kube, store, bodies, caplog) -> None:
    kube.logs[(TARGET, "api-1", "api", False)] = b"boom\n"
    kube.delete_refusal = refused(403, "Forbidden")
    failed = pod("api-1", containerStatuses=[terminated("api", 1)])
    with caplog.at_level(logging.WARNING, logger="testenv.harvest"):
        kept = keep_run_end(kube, store, RunBudget(10**6), OWNER, 1, [failed], TARGET)  # type: ignore[arg-type]
    assert kept.count == 1 and list(bodies.bodies) == [log_key(OWNER, 1, pod="api-1", container="api")]
    assert "older results of ci/pr-1 not deleted: results ConfigMaps in ci could not be deleted: 403 Forbidden" \
        in caplog.text


# --- through the reconciler ----------------------------------------------------------


class EnvironmentKube(ResultsKube):
    """Adds what one reconcile of a finished run calls: writes accepted, the
    suite's Job pods as given, and no kubelet logs (diagnosis asks none here)."""

    def __init__(self, job_pods: list[dict[str, Any]]) -> None:
        super().__init__()
        self.pods, self.patches = job_pods, []

    def apply(self, obj: dict[str, Any]) -> bool:
        return True

    def create_once(self, obj: dict[str, Any]) -> bool:
        return True

    def delete(self, ref: Any) -> None: ...

    def patch_status(self, *, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None = None) -> StatusWrite:
        self.patches.append(status)
        return StatusWrite(WriteOutcome.WRITTEN)

    def job_pods(self, *, namespace: str, job: str) -> list[dict[str, Any]]:
        return self.pods

    def log_tail(self, *, namespace: str, pod: str, lines: int = 20) -> str:
        return ""

    def post_event(self, involved: dict[str, Any], *, type: str, reason: str, message: str,
                   name: str | None = None) -> None: ...

    def container_log(self, *, namespace: str, pod: str, container: str, limit_bytes: int) -> bytes | None:
        return None


def test_a_failed_suites_counts_come_from_its_kept_report_and_its_log_tail_is_kept(tmp_path, monkeypatch) -> None:
    target = environment_namespace_name(namespace="ci", name="pr-1", uid="uid-1")
    failed = pod("e2e-r1-0-a", containerStatuses=[terminated("tests", 1, "Error")])
    kube = EnvironmentKube([failed])
    kube.logs[(target, "e2e-r1-0-a", COLLECTOR_CONTAINER, False)] = collector_log(tmp_path)
    kube.logs[(target, "e2e-r1-0-a", "tests", False)] = b"AssertionError: boom\n"
    bodies = MemoryBodies()
    store = ResultsStore(kube, bodies, keep_runs=2)  # type: ignore[arg-type]
    body = {"metadata": {"name": "pr-1", "namespace": "ci", "uid": "uid-1", "generation": 1},
            "spec": {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}]},
            "status": {"phase": "Testing", "run": 1, "observedGeneration": 1, "startedAt": "2026-01-01T12:00:00Z"}}
    observed = Observed(namespace_phase="Active", jobs={"e2e-r1": E2E}, pods=(failed,))
    settings = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system")

    reconcile(body, observed, kube, settings, Memory(), store=store)  # type: ignore[arg-type]

    status = kube.patches[-1]
    suite = status["tests"][0]
    assert (status["phase"], suite["passed"], suite["failed"]) == ("Failed", 2, 1)
    assert status["results"]["index"] == index_name(OWNER, 1) and status["results"]["logs"] == 1
    assert set(bodies.bodies) == {archive_key(OWNER, 1, "test", "e2e", 0, 0), log_key(OWNER, 1, pod="e2e-r1-0-a", container="tests")}
    assert [a.pod for a in index_of(kube).attempts] == ["e2e-r1-0-a"]
    assert kube.deletes == [("ci", "testenv.dev/environment-uid=uid-1,testenv.dev/results=index,"
                                   "testenv.dev/run notin (1)")]  # the run's end prunes older runs


def test_a_run_past_its_deadline_keeps_what_its_running_suite_said_before_the_job_goes(monkeypatch) -> None:
    target = environment_namespace_name(namespace="ci", name="pr-1", uid="uid-1")
    still_running = {**pod("e2e-r1-0-a", phase="Running", containerStatuses=[running("tests")]),
                     "metadata": {"name": "e2e-r1-0-a", "labels": {"testenv.dev/run": "1"}}}
    kube = EnvironmentKube([still_running])
    kube.logs[(target, "e2e-r1-0-a", "tests", False)] = b"test_checkout ... waiting for the payment stub\n"
    bodies = MemoryBodies()
    store = ResultsStore(kube, bodies, keep_runs=2)  # type: ignore[arg-type]
    body = {"metadata": {"name": "pr-1", "namespace": "ci", "uid": "uid-1", "generation": 1},
            "spec": {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
                     "lifecycle": {"activeDeadlineSeconds": 60}},
            "status": {"phase": "Testing", "run": 1, "observedGeneration": 1, "startedAt": "2026-01-01T12:00:00Z"}}
    job = JobObservation(name="e2e-r1", component="e2e", kind="test", run=1, phase=JobPhase.RUNNING)
    observed = Observed(namespace_phase="Active", jobs={"e2e-r1": job}, pods=(still_running,))
    settings = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system")

    reconcile(body, observed, kube, settings, Memory(), store=store)  # type: ignore[arg-type]

    status = kube.patches[-1]
    assert status["phase"] == "TimedOut" and status["results"]["logs"] == 1
    assert bodies.bodies == {log_key(OWNER, 1, pod="e2e-r1-0-a", container="tests"): b"test_checkout ... waiting for the payment stub\n"}
    (tail,) = index_of(kube).logs
    assert tail.reason.startswith("still running when the run ended TimedOut: the run did not finish within")


def test_expired_results_the_store_will_not_delete_are_not_called_gone_and_are_tried_again(monkeypatch) -> None:
    kube = EnvironmentKube([])
    bodies = MemoryBodies()
    store = ResultsStore(kube, bodies, keep_runs=2)  # type: ignore[arg-type]
    bodies.put(OWNER, 1, archive_key(OWNER, 1, "test", "e2e", 0, 0), b"junit")
    settings = Settings(copy_allowlist=frozenset(), operator_namespace="testenv-system", results_retention_seconds=60)
    finished = {"phase": "Failed", "run": 1, "observedGeneration": 1, "startedAt": "2026-01-01T12:00:00Z",
                "finishedAt": "2026-01-01T12:01:00Z", "results": {"index": index_name(OWNER, 1), "store": "memory"},
                "tests": [{"name": "e2e", "phase": "Failed", "failed": 1}]}
    body = {"metadata": {"name": "pr-1", "namespace": "ci", "uid": "uid-1", "generation": 1},
            "spec": {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
                     "lifecycle": {"ttlSecondsAfterFinished": 10**9, "retainOnFailureSeconds": 10**9}},
            "status": finished}
    observed = Observed(namespace_phase="Active", jobs={"e2e-r1": E2E}, pods=())

    kube.delete_refusal = refused(503, "Service Unavailable")
    again = reconcile(body, observed, kube, settings, Memory(), store=store)  # type: ignore[arg-type]
    assert again is not None and again <= reconcile_module.FORGET_RETRY
    assert not any(p.get("results", {}).get("expired") for p in kube.patches)

    kube.delete_refusal = None
    reconcile(body, observed, kube, settings, Memory(), store=store)  # type: ignore[arg-type]
    assert kube.patches[-1]["results"]["expired"] is True
    assert bodies.bodies == {}
