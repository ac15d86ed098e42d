"""What the planner does with pod-level reasons and images: the reason on the
component, seed or suite and its condition, one Event per cause, the run ended
early by a cause that will not fix itself, and the provenance of each."""

from __future__ import annotations

from dataclasses import replace

from plan_fixtures import (
    NS,
    POSTGRES,
    REDIS,
    SETTINGS,
    component_status,
    event_reasons,
    job_seen,
    jobs,
    later,
    make_spec,
    ready_workloads,
    result,
    run_plan,
    seed_status,
    service,
    settle,
    suite,
    suite_pod,
    suite_status,
    ts,
    with_jobs,
)
from testenv.diagnose import Diagnosis, PodOwner, Reason
from testenv.models import ConditionStatus, JobPhase, Phase
from testenv.observe import ImageRef, Observed
from testenv.plan import AT_ERROR, STOP_GRACE_SECONDS, STOPPING, ObjectRef

PULL = 'container "api" cannot pull image "ghcr.io/acme/api:1": not found'
API = PodOwner("service", "api")


def pulling(permanent: bool = False) -> Diagnosis:
    return Diagnosis(Reason.IMAGE_PULL_BACK_OFF, PULL, permanent=permanent, since=ts(later(0)), pod="api-1",
                     container="api", image="ghcr.io/acme/api:1")


def condition(p, type_: str):
    return next(c for c in p.status.conditions if c.type == type_)


def warnings(p, reason: str) -> list:
    return [e for e in p.events if e.reason == reason and e.type == "Warning"]


def api_spec(**fields):
    return make_spec(services=[service("api")], tests=[suite("e2e")], **fields)


def test_a_reason_goes_on_its_component_its_condition_and_one_event() -> None:
    spec = api_spec()
    first = run_plan(spec)
    observed = Observed(diagnoses={API: pulling()})
    p = run_plan(spec, previous=first.status, observed=observed, now=later(5))
    api = component_status(p, "api")
    assert api.reason == "ImagePullBackOff" and api.message == PULL
    assert p.status.phase == Phase.PROVISIONING
    ready = condition(p, "Ready")
    assert (ready.status, ready.reason) == (ConditionStatus.FALSE, "ImagePullBackOff")
    assert PULL in p.status.message
    [event] = warnings(p, "ImagePullBackOff")
    assert event.message == f"service api: {PULL}"
    # The next reconcile (another back-off, the same cause) says nothing more.
    again = run_plan(spec, previous=p.status, observed=observed, now=later(15))
    assert warnings(again, "ImagePullBackOff") == []
    assert component_status(again, "api").reason == "ImagePullBackOff"


def test_a_cause_that_goes_is_cleared() -> None:
    spec = api_spec()
    first = run_plan(spec)
    p = run_plan(spec, previous=first.status, observed=Observed(diagnoses={API: pulling()}), now=later(5))
    healed = run_plan(spec, previous=p.status, observed=Observed(), now=later(40))
    api = component_status(healed, "api")
    assert api.reason is None and api.message.startswith("starting")
    assert condition(healed, "Ready").reason == "ComponentsNotReady"
    assert healed.status.phase == Phase.PROVISIONING


def test_a_final_cause_ends_the_run_in_error_with_its_reason() -> None:
    spec = api_spec(lifecycle={"retainOnFailureSeconds": 900, "ttlSecondsAfterFinished": 60})
    first = run_plan(spec)
    observed = Observed(namespace_phase="Active", diagnoses={API: pulling(permanent=True)})
    p = run_plan(spec, previous=first.status, observed=observed, now=later(130))
    assert p.status.phase == Phase.ERROR
    assert p.status.message == f"service api: {PULL}"
    assert p.apply == [] and p.create == []
    tests = condition(p, "TestsPassed")
    assert (tests.status, tests.reason) == (ConditionStatus.FALSE, "ImagePullBackOff")
    assert condition(p, "Ready").reason == "ImagePullBackOff"
    # Retained and collected as any failure.
    assert p.status.finished_at == ts(later(130))
    assert p.status.expires_at == ts(later(130 + 900))
    assert [e.reason for e in p.events if e.type == "Warning"] == ["Error", "ImagePullBackOff"]
    # Finished: later reconciles keep the reason and do nothing more.
    after = run_plan(spec, previous=p.status, observed=Observed(), now=later(200))
    assert after.status.phase == Phase.ERROR and after.events == [] and after.apply == []
    assert component_status(after, "api").reason == "ImagePullBackOff"


def test_a_ready_component_is_not_blamed_for_a_pod_of_its_rollout() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("e2e")])
    p, observed = settle(spec)
    cache = PodOwner("datastore", "cache")
    bad = replace(pulling(permanent=True), message="old pod")
    p = run_plan(spec, previous=p.status, observed=replace(observed, diagnoses={cache: bad}), now=later(5))
    assert component_status(p, "cache").reason is None
    assert p.status.phase != Phase.ERROR


def test_a_suite_that_cannot_start_ends_the_run_and_its_job_is_stopped() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("e2e")])
    p, observed = settle(spec)
    observed = with_jobs(observed, job_seen("e2e", JobPhase.RUNNING))
    owner = PodOwner("test", "e2e", 1)
    cause = Diagnosis(Reason.CREATE_CONTAINER_CONFIG_ERROR, 'container "main" cannot start: Secret "x" has no key "y"',
                      permanent=True, since=ts(later(0)), pod="e2e-r1-abc", container="main")
    p = run_plan(spec, previous=p.status, observed=replace(observed, diagnoses={owner: cause}), now=later(130))
    assert suite_status(p, "e2e").reason == "CreateContainerConfigError"
    assert p.status.phase == Phase.ERROR
    assert p.status.message.startswith("suite e2e: container \"main\" cannot start")
    assert ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="e2e-r1") in p.delete


def test_a_seed_waiting_for_quota_shows_it_on_the_tests_condition() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[{"name": "fixtures", "image": "ghcr.io/acme/fx:1"}],
                     tests=[suite("e2e")])
    p, observed = settle(spec, seed_phase=JobPhase.RUNNING)
    owner = PodOwner("seed", "fixtures", 1)
    quota = Diagnosis(Reason.QUOTA_EXCEEDED, 'Job "fixtures-r1" cannot create pods: exceeded quota: pods=1',
                      permanent=False, since=ts(later(0)), pod="")
    p = run_plan(spec, previous=p.status, observed=replace(observed, diagnoses={owner: quota}), now=later(3))
    assert seed_status(p, "fixtures").reason == "QuotaExceeded"
    tests = condition(p, "TestsPassed")
    assert (tests.status, tests.reason) == (ConditionStatus.UNKNOWN, "QuotaExceeded")
    assert p.status.phase == Phase.SEEDING
    assert len(warnings(p, "QuotaExceeded")) == 1


def test_a_failed_seeds_reason_replaces_the_jobs_words_without_a_second_event() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[{"name": "fixtures", "image": "ghcr.io/acme/fx:1"}],
                     tests=[suite("e2e")])
    p, observed = settle(spec, seed_phase=JobPhase.RUNNING)
    observed = with_jobs(observed, job_seen("fixtures", JobPhase.FAILED, kind="seed",
                                            message="Job has reached the specified backoff limit"))
    owner = PodOwner("seed", "fixtures", 1)
    failed = Diagnosis(Reason.CONTAINER_FAILED, 'container "main" failed: exit code 1 (Error)',
                       permanent=False, since=ts(later(0)), pod="fixtures-r1-x", container="main", exit_code=1)
    p = run_plan(spec, previous=p.status, observed=replace(observed, diagnoses={owner: failed}), now=later(3))
    assert p.status.phase == Phase.FAILED
    assert "exit code 1" in seed_status(p, "fixtures").message
    assert warnings(p, "ContainerFailed") == []
    assert len(warnings(p, "SeedFailed")) == 1


def test_each_component_seed_and_suite_records_the_image_it_ran() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("e2e")])
    p, observed = settle(spec)
    images = {
        PodOwner("datastore", "cache"): ImageRef("redis:7", "sha256:aaa"),
        PodOwner("test", "e2e", 1): ImageRef("ghcr.io/acme/tests:1", "sha256:bbb"),
    }
    observed = with_jobs(replace(observed, images=images), job_seen("e2e", JobPhase.RUNNING))
    p = run_plan(spec, previous=p.status, observed=observed, now=later(5))
    cache, e2e = component_status(p, "cache"), suite_status(p, "e2e")
    assert (cache.image, cache.image_digest) == ("redis:7", "sha256:aaa")
    assert (e2e.image, e2e.image_digest) == ("ghcr.io/acme/tests:1", "sha256:bbb")
    # The pods go (a finished Job's, a collected namespace): the record stays.
    p = run_plan(spec, previous=p.status, observed=replace(observed, images={}), now=later(6))
    assert suite_status(p, "e2e").image_digest == "sha256:bbb"
    assert component_status(p, "cache").image_digest == "sha256:aaa"
    # A new run may run other images: it records its own.
    rerun = run_plan(spec, previous=p.status, observed=replace(observed, images={}), generation=2, now=later(7))
    assert component_status(rerun, "cache").image_digest is None


def test_the_grace_setting_has_a_default_and_an_environment_may_override_it() -> None:
    assert SETTINGS.failure_grace_seconds == 120
    spec = make_spec(lifecycle={"failureGraceSeconds": 10})
    assert spec.lifecycle.failure_grace_seconds == 10


# A cause that ends the run while suites or seeds run stops them the way the
# environment's deadline does (test_plan.py), from the moment it was found,
# so what they wrote so far is kept before the run ends Error.

CRASH = Diagnosis(Reason.CRASH_LOOP_BACK_OFF, 'container "redis" keeps crashing (exit 1)', permanent=True,
                  since=ts(later(0)), pod="cache-1", container="redis")
CACHE = PodOwner("datastore", "cache")


def crashed(observed: Observed, *pods: dict) -> Observed:
    """The datastore `cache` no longer ready, its pod crash-looping; `pods` are the Jobs'."""
    cache = replace(observed.workloads["cache"], ready=False, message="0/1 ready")
    return replace(observed, workloads={**observed.workloads, "cache": cache}, pods=pods, diagnoses={CACHE: CRASH})


def crashing_while_testing(*pods: dict) -> tuple:
    spec = make_spec(datastores=[REDIS], tests=[suite("a"), suite("b", needs=["a"])])
    p, observed = settle(spec)
    return spec, p, crashed(with_jobs(observed, job_seen("a")), *pods)


def test_a_final_cause_while_a_suite_runs_stops_it_before_the_run_ends_in_error() -> None:
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    status = stopping.status
    assert status.phase == Phase.TESTING and "Error" not in event_reasons(stopping)
    assert status.ending_cause is not None
    assert (status.ending_cause.since, status.ending_cause.reason) == (ts(later(100)), "CrashLoopBackOff")
    assert status.ending_cause.message == f"datastore cache: {CRASH.message}"
    # Nothing is stopped until the cause is written: planned at once again.
    assert stopping.stop_pods == [] and stopping.apply == [] and stopping.delete == []
    assert suite_status(stopping, "a").message == AT_ERROR.stopping and stopping.wake_after == 0
    assert status.message == f"datastore cache: {CRASH.message}; stopping a to keep what they wrote so far"
    tests = condition(stopping, "TestsPassed")
    assert (tests.status, tests.reason) == (ConditionStatus.FALSE, "CrashLoopBackOff")
    written = run_plan(spec, previous=status, observed=observed, now=later(101))
    assert written.stop_pods == ["a-r1-x"] and written.wake_after == STOP_GRACE_SECONDS - 1
    assert written.status.ending_cause == status.ending_cause and written.events == []

    stopped = replace(observed, pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=30, reason="DeadlineExceeded"),))
    reading = run_plan(spec, previous=status, observed=stopped, now=later(110))
    assert reading.read_results == ["a-r1"] and reading.stop_pods == []  # planned again once read
    ended = run_plan(spec, previous=status, observed=replace(stopped, results={"a-r1": result(passed=4, failed=1)}),
                     now=later(110))
    a = suite_status(ended, "a")
    assert (a.phase, a.message, a.passed, a.failed) == (JobPhase.FAILED, AT_ERROR.stopped, 4, 1)
    assert ended.status.phase == Phase.ERROR and ended.status.message == f"datastore cache: {CRASH.message}"
    assert suite_status(ended, "b").phase == JobPhase.SKIPPED
    assert ended.delete == [ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="a-r1")]
    assert event_reasons(ended)[0] == "Error" and "SuiteFailed" in event_reasons(ended)
    assert ended.status.finished_at == ts(later(110))
    # Planned again from what was written, nothing is read or announced twice.
    again = run_plan(spec, previous=ended.status, observed=stopped, now=later(120))
    assert again.status.phase == Phase.ERROR and again.events == [] and again.read_results == []


def test_the_ending_cause_holds_when_its_pod_goes_during_the_stop() -> None:
    """Found once, the cause is the run's: a crash-looping pod replaced, or
    its diagnosis gone, does not bring the stopped run back."""
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    gone = replace(observed, diagnoses={}, results={"a-r1": result(passed=2)},
                   pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=30, reason="DeadlineExceeded"),))
    ended = run_plan(spec, previous=stopping.status, observed=gone, now=later(105))
    assert ended.status.phase == Phase.ERROR and suite_status(ended, "a").message == AT_ERROR.stopped
    assert ended.status.message == f"datastore cache: {CRASH.message}"


def test_a_cause_lost_before_it_was_written_stopped_nothing() -> None:
    """The chaos soak's error-0115 ended TimedOut: a pod was stopped, the
    status naming the cause was lost (a kill, a failed write), and the cause
    went (the quota freed), so the run went on to its deadline. A cause is
    acted on only once written; lost, it is found again, nothing stopped."""
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    lost = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    assert lost.stop_pods == []
    again = run_plan(spec, previous=p.status, observed=observed, now=later(104))
    assert again.stop_pods == [] and again.status.ending_cause is not None


def test_a_stop_whose_suites_status_was_never_written_is_known_from_the_pods() -> None:
    """The pass that stopped the pod may have its status lost with a killed
    operator: the next pass, from the written cause, counts the pod it
    stopped as stopped, not as a failed suite."""
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    found = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    before_stop = found.status.model_copy(deep=True)
    before_stop.tests[0].message = "running"
    failed = replace(with_jobs(observed, job_seen("a", JobPhase.FAILED, reason="BackoffLimitExceeded")),
                     pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=30, reason="DeadlineExceeded"),),
                     results={"a-r1": result(passed=3)})
    ended = run_plan(spec, previous=before_stop, observed=failed, now=later(108))
    assert suite_status(ended, "a").message == AT_ERROR.stopped and suite_status(ended, "a").passed == 3
    assert ended.status.phase == Phase.ERROR


def test_pods_that_do_not_stop_within_the_grace_leave_the_run_in_error_unread() -> None:
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    ended = run_plan(spec, previous=stopping.status, observed=observed, now=later(100 + STOP_GRACE_SECONDS))
    assert ended.status.phase == Phase.ERROR and ended.read_results == [] and ended.stop_pods == []
    assert suite_status(ended, "a").message == AT_ERROR.not_handed_over
    assert ended.delete == [ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="a-r1")]


def test_without_a_collector_a_final_cause_ends_the_run_at_once() -> None:
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    ended = run_plan(spec, previous=p.status, observed=observed, now=later(100),
                     settings=SETTINGS.model_copy(update={"collector_image": ""}))
    assert ended.status.phase == Phase.ERROR and ended.stop_pods == []
    assert ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="a-r1") in ended.delete


def test_a_seed_running_when_the_run_ends_in_error_is_stopped_and_kept_first() -> None:
    spec = make_spec(datastores=[REDIS], seed=[{"name": "load", "image": "ghcr.io/acme/load:1"}],
                     tests=[suite("a")])
    first = run_plan(spec)
    seeding = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("load", JobPhase.RUNNING, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=seeding, now=later(10))
    crashing = crashed(seeding, suite_pod("load-r1-x", "load-r1", started=20))
    found = run_plan(spec, previous=p.status, observed=crashing, now=later(60))
    stopping = run_plan(spec, previous=found.status, observed=crashing, now=later(61))
    assert stopping.stop_pods == ["load-r1-x"] and seed_status(stopping, "load").message == AT_ERROR.stopping
    assert stopping.status.phase == Phase.SEEDING
    failed = replace(crashing, jobs=jobs(job_seen("load", JobPhase.FAILED, kind="seed", reason="BackoffLimitExceeded")),
                     pods=(suite_pod("load-r1-x", "load-r1", "Failed", started=20, reason="DeadlineExceeded"),))
    ended = run_plan(spec, previous=stopping.status, observed=failed, now=later(65))
    load = seed_status(ended, "load")
    assert (load.phase, load.message) == (JobPhase.FAILED, AT_ERROR.seed_stopped)
    assert ended.status.phase == Phase.ERROR and ended.status.message == f"datastore cache: {CRASH.message}"


def test_a_cause_found_past_the_deadline_leaves_the_run_to_time_out() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("a")], lifecycle={"activeDeadlineSeconds": 60})
    p, observed = settle(spec)
    crashing = crashed(with_jobs(observed, job_seen("a")), suite_pod("a-r1-x", "a-r1", started=30))
    stopping = run_plan(spec, previous=p.status, observed=crashing, now=later(70))
    assert stopping.status.ending_cause is None and suite_status(stopping, "a").message == STOPPING
    stopped = replace(crashing, pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=30, reason="DeadlineExceeded"),),
                      results={"a-r1": result(passed=1)})
    ended = run_plan(spec, previous=stopping.status, observed=stopped, now=later(75))
    assert ended.status.phase == Phase.TIMED_OUT


def test_a_deadline_passing_while_the_run_ends_in_error_does_not_make_it_time_out() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("a")], lifecycle={"activeDeadlineSeconds": 120})
    p, observed = settle(spec)
    crashing = crashed(with_jobs(observed, job_seen("a")), suite_pod("a-r1-x", "a-r1", started=30))
    stopping = run_plan(spec, previous=p.status, observed=crashing, now=later(100))
    still = run_plan(spec, previous=stopping.status, observed=crashing, now=later(130))
    assert still.status.phase == Phase.TESTING and suite_status(still, "a").message == AT_ERROR.stopping
    stopped = replace(crashing, pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=30, reason="DeadlineExceeded"),),
                      results={"a-r1": result(passed=1)})
    ended = run_plan(spec, previous=still.status, observed=stopped, now=later(135))
    assert ended.status.phase == Phase.ERROR and suite_status(ended, "a").message == AT_ERROR.stopped


def test_a_new_run_forgets_the_last_ones_ending_cause() -> None:
    spec, p, observed = crashing_while_testing(suite_pod("a-r1-x", "a-r1", started=30))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    rerun = run_plan(spec, previous=stopping.status, observed=Observed(), generation=2, now=later(110))
    assert rerun.status.ending_cause is None and rerun.status.phase == Phase.PROVISIONING
