"""Builders for the planner's input: specs, observations of children, and a
small simulator that plays the cluster (workloads become ready, Jobs finish)
so that a test can start from "the environment is ready" in one line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from testenv.build.common import LABEL_COMPONENT, LABEL_KIND, EnvRef
from testenv.models import (
    Counts,
    JobPhase,
    SuiteStatus,
    TestEnvironmentSpec,
    TestEnvironmentStatus,
)
from testenv.observe import (
    SPEC_HASH,
    JobObservation,
    Observed,
    SuiteResult,
    WorkloadObservation,
)
from testenv.plan import Plan, PlanInput, plan
from testenv.settings import Settings
from testenv.validate import SpecError

ENV = EnvRef(name="pr-1234", namespace="ci", uid="uid-1234", target_namespace="te-pr-1234-abcde")
NS = ENV.target_namespace
NOW = datetime(2024, 5, 1, 12, 0, 0)
PASSWORD = "s3cr3t-Pa55w0rd-never-in-apply"
# Explicit values: the tests must not depend on TESTENV_* in the environment.
SETTINGS = Settings(
    copy_allowlist=frozenset({"staging"}),
    default_ttl_seconds_after_finished=600,
    default_retain_on_failure_seconds=3600,
    pod_security_level="restricted",
    operator_namespace="testenv-system",
    namespace_prefix="te",
)


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


# --- specs -------------------------------------------------------------------


def make_spec(**fields: Any) -> TestEnvironmentSpec:
    """A spec from its wire (camelCase) form, parsed like the operator parses it."""
    return TestEnvironmentSpec.model_validate(fields)


def suite(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "ghcr.io/acme/tests:1", **fields}


def service(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": f"ghcr.io/acme/{name}:1", **fields}


POSTGRES = {"name": "orders-db", "engine": "postgres"}
REDIS = {"name": "cache", "engine": "redis"}
SCHEMA_SEED = {"name": "schema", "datastore": "orders-db", "sql": "CREATE TABLE t (id int);"}


# --- observations ------------------------------------------------------------


def job_seen(
    component: str,
    phase: JobPhase = JobPhase.RUNNING,
    *,
    run: int = 1,
    kind: str = "test",
    reason: str = "",
    message: str = "",
    start: str | None = None,
    end: str | None = None,
) -> JobObservation:
    if phase in (JobPhase.SUCCEEDED, JobPhase.FAILED) and start is None:
        start, end = ts(NOW), ts(later(10))
    return JobObservation(
        name=f"{component}-r{run}",
        component=component,
        kind=kind,
        run=run,
        phase=phase,
        reason=reason,
        message=message,
        start_time=start,
        completion_time=end,
    )


def jobs(*seen: JobObservation) -> dict[str, JobObservation]:
    return {j.name: j for j in seen}


def result(passed: int = 0, failed: int = 0, skipped: int = 0, failures: Iterable[str] = ()) -> SuiteResult:
    return SuiteResult(Counts(passed=passed, failed=failed, skipped=skipped), tuple(failures), reported=True)


# --- running the planner -----------------------------------------------------


def run_plan(
    spec: TestEnvironmentSpec,
    *,
    previous: TestEnvironmentStatus | None = None,
    observed: Observed | None = None,
    generation: int = 1,
    now: datetime = NOW,
    settings: Settings = SETTINGS,
    errors: Iterable[SpecError] = (),
) -> Plan:
    return plan(
        PlanInput(
            env=ENV,
            spec=spec,
            generation=generation,
            previous=previous if previous is not None else TestEnvironmentStatus(),
            observed=observed if observed is not None else Observed(),
            now=now,
            settings=settings,
            errors=list(errors),
            new_password=lambda: PASSWORD,
        )
    )


def applied(p: Plan, kind: str | None = None) -> list[dict[str, Any]]:
    return [o for o in p.apply if kind is None or o["kind"] == kind]


def applied_names(p: Plan, kind: str) -> list[str]:
    return [o["metadata"]["name"] for o in applied(p, kind)]


def applied_kinds(p: Plan) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in p.apply]


def desired_hash(p: Plan, component: str) -> str:
    [deployment] = [o for o in applied(p, "Deployment") if o["metadata"]["name"] == component]
    return deployment["metadata"]["annotations"][SPEC_HASH]


def ready_workloads(p: Plan, names: Iterable[str] | None = None) -> dict[str, WorkloadObservation]:
    """Every Deployment the plan applied (or those named), seen rolled out and ready."""
    wanted = set(names) if names is not None else None
    out = {}
    for deployment in applied(p, "Deployment"):
        name = deployment["metadata"]["labels"][LABEL_COMPONENT]
        if wanted is None or name in wanted:
            out[name] = WorkloadObservation(
                name, True, deployment["metadata"]["annotations"][SPEC_HASH], "1/1 replicas ready"
            )
    return out


def component_status(p: Plan, name: str) -> Any:
    return next(c for c in p.status.components if c.name == name)


def seed_status(p: Plan, name: str) -> Any:
    return next(s for s in p.status.seeds if s.name == name)


def suite_status(p: Plan, name: str) -> SuiteStatus:
    return next(s for s in p.status.tests if s.name == name)


def event_reasons(p: Plan) -> list[str]:
    return [e.reason for e in p.events]


def settle(
    spec: TestEnvironmentSpec,
    *,
    seed_phase: JobPhase = JobPhase.SUCCEEDED,
    observed: Observed | None = None,
    previous: TestEnvironmentStatus | None = None,
    generation: int = 1,
    now: datetime = NOW,
    rounds: int = 20,
) -> tuple[Plan, Observed]:
    """Play the cluster until nothing new is applied: every applied Deployment
    becomes ready, every applied seed Job ends in `seed_phase`. Suite Jobs are
    left alone (not observed), so the result is the moment testing starts."""
    observed = observed or Observed()
    p = run_plan(spec, previous=previous, observed=observed, generation=generation, now=now)
    for _ in range(rounds):
        workloads = {**observed.workloads, **ready_workloads(p)}
        seen_jobs = dict(observed.jobs)
        for job in applied(p, "Job"):
            labels = job["metadata"]["labels"]
            if labels[LABEL_KIND] == "seed" and job["metadata"]["name"] not in seen_jobs:
                seen_jobs[job["metadata"]["name"]] = job_seen(
                    labels[LABEL_COMPONENT], seed_phase, run=p.status.run, kind="seed"
                )
        new = replace(observed, workloads=workloads, jobs=seen_jobs)
        if new == observed:
            return p, observed
        observed = new
        p = run_plan(spec, previous=p.status, observed=observed, generation=generation, now=now)
    raise AssertionError("the environment did not settle")


def with_jobs(observed: Observed, *seen: JobObservation, results: Mapping[str, SuiteResult] | None = None) -> Observed:
    return replace(
        observed,
        jobs={**observed.jobs, **jobs(*seen)},
        results={**observed.results, **(results or {})},
    )


def suite_pod(name: str, job: str, phase: str = "Running", started: float | None = 0,
              reason: str | None = None) -> dict:
    """A pod of the Job `job`, started `started` seconds after NOW."""
    status: dict = {"phase": phase}
    if started is not None:
        status["startTime"] = ts(later(started))
    if reason:
        status["reason"] = reason
    return {"metadata": {"name": name, "labels": {"job-name": job}}, "status": status}
