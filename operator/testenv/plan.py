"""The heart of the operator: from a spec, the previous status and what is
observed in the cluster, decide what to apply, create and delete next, and
what the status now says. Pure: no clock, no randomness, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from graphlib import TopologicalSorter
from typing import Any

from .build import copies as copy_build
from .build import datastores as datastore_build
from .build import jobs as job_build
from .build import namespace as namespace_build
from .build import placement as placement_build
from .build import seeds as seed_build
from .build import services as service_build
from .build import stubs as stub_build
from .build.common import EnvRef
from .diagnose import Diagnosis, PodOwner, Reason
from .models import (
    FINISHED_PHASES,
    ComponentKind,
    ComponentStatus,
    Condition,
    ConditionStatus,
    CopyFrom,
    Counts,
    Datastore,
    EndingCause,
    EnvVar,
    JobPhase,
    Phase,
    RunResults,
    SeedStatus,
    Service,
    Stub,
    SuiteStatus,
    TestEnvironmentSpec,
    TestEnvironmentStatus,
)
from .observe import SPEC_HASH, JobObservation, Observed, exited_ok, timed_out
from .ordering import gating_seeds, seed_fills, seed_waits_for
from .results import Owner, index_name
from .settings import Settings
from .validate import SpecError

STARTING = "starting"  # a seed's or suite's Job asked for, not seen yet
COLLECTING = "collecting results"  # a finished suite whose counts are not read yet
TIMED_OUT = "timed out (timeoutSeconds)"
# A suite running at the environment's activeDeadlineSeconds is stopped the
# way its own timeout stops it: its pods' deadline is brought forward, the
# kubelet stops them, the results collector hands over what was written so
# far, and the pods stay to be read. Only then do its Jobs go. A run ended
# early by a cause that will not fix itself (EndingCause) stops what is
# running the same way, from the moment the cause was found.


@dataclass(frozen=True)
class StopWords:
    """What a seed's or suite's status says while it is stopped, and after."""

    stopping: str
    stopped: str  # a suite: failed, counting what it reported
    not_handed_over: str
    seed_stopped: str

    def all(self) -> tuple[str, ...]:
        return self.stopping, self.stopped, self.not_handed_over, self.seed_stopped


AT_DEADLINE = StopWords(
    stopping="stopping: the environment's activeDeadlineSeconds was reached",
    stopped="stopped at the environment's activeDeadlineSeconds; counts are of what it reported until then",
    not_handed_over=("stopped at the environment's activeDeadlineSeconds; "
                     "its pods did not hand over results in time"),
    seed_stopped="stopped at the environment's activeDeadlineSeconds",
)
AT_ERROR = StopWords(
    stopping="stopping: the run is ending in Error",
    stopped="stopped as the run ended in Error; counts are of what it reported until then",
    not_handed_over="stopped as the run ended in Error; its pods did not hand over results in time",
    seed_stopped="stopped as the run ended in Error",
)
STOPPING, STOPPED = AT_DEADLINE.stopping, AT_DEADLINE.stopped
NOT_HANDED_OVER, SEED_STOPPED = AT_DEADLINE.not_handed_over, AT_DEADLINE.seed_stopped
# How long a stopped run waits for its stopped pods: the collector's own
# grace to pack, and the kubelet's to notice the new deadline.
STOP_GRACE_SECONDS = 90
COLLECTED = "collected at "  # how status.message starts once the namespace was collected
COPY_SOURCE_RECHECK = 30.0  # seconds between looks for a missing copy source (or pull Secret)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str


@dataclass
class Plan:
    status: TestEnvironmentStatus
    apply: list[dict[str, Any]] = field(default_factory=list)  # server-side apply, in this order
    create: list[dict[str, Any]] = field(default_factory=list)  # create once, never overwrite (Secrets)
    delete: list[ObjectRef] = field(default_factory=list)
    collect_namespace: bool = False
    forget_results: bool = False  # the run's results outlived results_retention_seconds
    read_results: list[str] = field(default_factory=list)  # finished test Jobs whose pods to read
    log_tails: list[str] = field(default_factory=list)  # newly failed Jobs whose last log lines to post
    verify_stubs: list[str] = field(default_factory=list)
    stop_pods: list[str] = field(default_factory=list)  # running seed and suite pods to stop (deadline, ending cause)
    events: list[Event] = field(default_factory=list)
    wake_after: float | None = None  # seconds until the next time-driven change


@dataclass(frozen=True)
class Admission:
    """Whether the concurrency limits let this environment start now."""

    admitted: bool = True
    message: str = ""


@dataclass(frozen=True)
class PlanInput:
    env: EnvRef
    spec: TestEnvironmentSpec
    generation: int
    previous: TestEnvironmentStatus
    observed: Observed
    now: datetime
    settings: Settings
    errors: list[SpecError] = field(default_factory=list)
    admission: Admission = Admission()
    new_password: Callable[[], str] = datastore_build.generate_password
    # The ending cause is this pass's own, not written yet: nothing is
    # stopped for it until it is (a pod stopped for a cause that was then
    # lost, with a kill or a failed write, and that went away since, left
    # the run going on to its deadline: the chaos soak's error-0115).
    cause_unwritten: bool = False


# A condition as the planner wants it: (type, status, reason, message).
_ConditionRow = tuple[str, ConditionStatus, str, str]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> datetime | None:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=None) if ts else None


def _stopped_early(job: SeedStatus | SuiteStatus) -> bool:
    """Stopped, or being stopped, at the environment's deadline or as the run ends in Error."""
    return job.message in AT_DEADLINE.all() or job.message in AT_ERROR.all()


def with_spec_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Stamp a workload with the hash of what we want, so readiness is only
    believed for the version we applied, never a stale one."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    meta = obj["metadata"]
    meta["annotations"] = {**(meta.get("annotations") or {}), SPEC_HASH: digest}
    return obj


class _Planner:
    def __init__(self, given: PlanInput) -> None:
        self.given = given
        self.spec = given.spec
        self.env = given.env
        self.observed = given.observed
        self.settings = given.settings
        self.placement = given.settings.pod_placement()
        self.collector = given.settings.collector()
        self.plan = Plan(status=TestEnvironmentStatus())
        self.ready: dict[str, bool] = {}
        self.notes: dict[str, list[str]] = {}  # by copied service: what its copy changed or brought

    # -- run bookkeeping ---------------------------------------------------

    def _start_status(self) -> TestEnvironmentStatus:
        prev = self.given.previous
        new_run = prev.observed_generation != self.given.generation
        status = prev.model_copy(deep=True)
        status.namespace = self.env.target_namespace
        status.observed_generation = self.given.generation
        if new_run:
            status.run = prev.run + 1
            status.started_at = _ts(self.given.now)
            status.ready_at = status.finished_at = status.expires_at = None
            status.seeds, status.tests, status.summary, status.results = [], [], None, None
            status.message, status.ending_cause = "", None
        return status

    # -- components --------------------------------------------------------

    def _injected_env(self) -> list[dict[str, Any]]:
        env = [datastore_build.url_env(ds) for ds in self.spec.datastores]
        env += [
            {"name": f"{stub.name.upper().replace('-', '_')}_URL", "value": stub_build.stub_url(stub)}
            for stub in self.spec.stubs
        ]
        return env

    def _pull_secret_copies(self) -> list[dict[str, Any]]:
        """The configured pull Secrets, copied from the operator's namespace:
        a pod can use pull Secrets of its own namespace only."""
        found = (self.observed.pull_secrets.get(name) for name in self.placement.image_pull_secrets)
        return [placement_build.pull_secret_copy(source, self.env) for source in found if source is not None]

    def _missing_pull_secret(self) -> str | None:
        """Why no pod may start yet: a configured pull Secret that is not there
        to copy (its pods would fail to pull from the private registry)."""
        for name in self.placement.image_pull_secrets:
            if self.observed.pull_secrets.get(name) is None:
                # Nothing watches Secrets; look again in a while.
                self._wake_at(self.given.now + timedelta(seconds=COPY_SOURCE_RECHECK))
                return (
                    f"image pull Secret {self.settings.operator_namespace}/{name} not found; "
                    "create it in the operator's namespace or remove it from config.imagePullSecrets"
                )
        return None

    def _credentials(self, env_vars: list[EnvVar]) -> dict[tuple[str, str, str], str] | str:
        """The environment's copies of the Secret keys env_vars borrow (to be
        created), by reference; or why they cannot be made yet."""
        names: dict[tuple[str, str, str], str] = {}
        for ref in copy_build.credential_refs(env_vars):
            secret = self.observed.credentials.get((ref.namespace, ref.name))
            value = copy_build.credential_value(secret, ref)
            if secret is None or value is None:
                # Nothing watches Secrets of other namespaces; look again in a while.
                self._wake_at(self.given.now + timedelta(seconds=COPY_SOURCE_RECHECK))
                what = f"Secret {ref.namespace}/{ref.name}"
                problem = "not found; create it" if secret is None else f"has no key {ref.key!r}; add it"
                return f"{what} {problem} or fix env[].valueFrom.secretKeyRef"
            copied = copy_build.credential_secret(ref, value, self.env, secret)
            self.plan.create.append(copied)
            names[copy_build.credential_key(ref)] = copied["metadata"]["name"]
        return names

    def _operator_config_maps(self) -> dict[str, str]:
        """ConfigMap names the operator gives its own objects, and whose they are."""
        names = {stub_build.mappings_configmap_name(s): f"stub {s.name}'s mappings" for s in self.spec.stubs}
        names |= {seed_build.script_configmap_name(s.name, self.plan.status.run): f"seed {s.name}'s script"
                  for s in self.spec.seed if s.sql is not None}
        return names

    def _operator_secrets(self) -> dict[str, str]:
        """Secret names the operator gives its own objects in the environment:
        a copy's reference to one of them means the environment's."""
        names = {datastore_build.secret_name(d.name): f"datastore {d.name}'s connection"
                 for d in self.spec.datastores}
        names |= {name: "a pull Secret of config.imagePullSecrets" for name in self.placement.image_pull_secrets}
        return names

    def copy_errors(self) -> list[SpecError]:
        """What the copy sources, as read, make impossible, whatever happens
        next: a Secret the administrator's rule does not allow, one too large,
        a ConfigMap name the operator itself uses or two copies disagree on.
        Known before anything is provisioned, so nothing half-starts."""
        return self._copied_deployment_errors() + self._borrowed_secret_errors()

    def _copied_deployment_errors(self) -> list[SpecError]:
        errors: list[SpecError] = []
        reserved = self._operator_config_maps()
        copied_maps: dict[str, tuple[str, Any]] = {}
        for i, svc in enumerate(self.spec.services):
            source = self.observed.copy_sources.get(svc.name) if svc.copy_from else None
            if source is None or svc.copy_from is None:
                continue
            where, namespace = f"spec.services[{i}].copyFrom", svc.copy_from.namespace
            pod_spec = ((source.deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
            check = copy_build.check_references(
                pod_spec, namespace, source.config_maps, source.secrets, self.settings.copy_secrets.get(namespace),
                self._operator_secrets())
            errors += [SpecError(where, f"service {svc.name}: {message}") for message in check.errors]
            for name in copy_build.config_map_names(pod_spec):
                found = source.config_maps.get(name)
                if name in reserved:
                    errors.append(SpecError(where, (
                        f"ConfigMap {namespace}/{name}, which the copy references, has the name of "
                        f"{reserved[name]} in the environment; rename one of them")))
                elif found is not None:
                    content = (found.get("data"), found.get("binaryData"))
                    other = copied_maps.setdefault(name, (where, content))
                    if other[1] != content:
                        errors.append(SpecError(where, (
                            f"ConfigMap {name} differs from the one {other[0]} copies under the same name; "
                            "copies of one environment share a namespace, so they must agree")))
        return errors

    def _borrowed_secret_errors(self) -> list[SpecError]:
        errors: list[SpecError] = []
        for field_name in ("services", "seed", "tests"):
            for i, item in enumerate(getattr(self.spec, field_name)):
                for j, var in enumerate(item.env):
                    if var.value_from is None:
                        continue
                    ref = var.value_from.secret_key_ref
                    secret = self.observed.credentials.get((ref.namespace, ref.name))
                    rule = self.settings.copy_secrets.get(ref.namespace)
                    where = f"spec.{field_name}[{i}].env[{j}].valueFrom.secretKeyRef"
                    if secret is not None and rule is not None and not rule.allows(secret):
                        errors.append(SpecError(where, (
                            f"Secret {ref.namespace}/{ref.name} lacks the labels config.copySecrets."
                            f"{ref.namespace} requires ({rule.describe()}); label it or ask an administrator")))
                    value = copy_build.credential_value(secret, ref)
                    if value is not None and copy_build.decoded_size(value) > copy_build.MAX_SECRET_BYTES:
                        errors.append(SpecError(where, (
                            f"key {ref.key!r} of Secret {ref.namespace}/{ref.name} is larger than "
                            f"{copy_build.MAX_SECRET_BYTES // 1024} KiB; refer to a smaller one")))
        return errors

    def _component_objects(self, component: Datastore | Stub | Service) -> list[dict[str, Any]] | str:
        """The objects of one component, or why they cannot be built yet."""
        settings, placement = self.settings, self.placement
        if (missing := self._missing_pull_secret()) is not None:
            return missing
        if isinstance(component, Datastore):
            image = datastore_build.datastore_image(component, settings.engine_images)
            self.plan.create.append(
                datastore_build.datastore_secret(component, self.env, self.given.new_password())
            )
            return datastore_build.datastore_objects(component, self.env, image, placement, self.plan.status.run)
        if isinstance(component, Stub):
            return stub_build.stub_objects(
                component, self.env, component.image or settings.wiremock_image, placement, self.plan.status.run
            )
        if component.copy_from:
            return self._copied_service_objects(component, component.copy_from)
        credentials = self._credentials(component.env)
        if isinstance(credentials, str):
            return credentials
        return service_build.image_service_objects(
            component, self.env, self._injected_env(), placement, credentials
        )

    def _copied_service_objects(self, component: Service, copy_from: CopyFrom) -> list[dict[str, Any]] | str:
        """A service copied from a Deployment: its objects, or why they cannot be built yet."""
        settings, placement = self.settings, self.placement
        source = self.observed.copy_sources.get(component.name)
        if source is None:
            # Nothing is watched in source namespaces; look again in a while.
            self._wake_at(self.given.now + timedelta(seconds=COPY_SOURCE_RECHECK))
            return (
                f"source Deployment {copy_from.namespace}/{copy_from.deployment} "
                "not found; create it or fix spec.services[].copyFrom"
            )
        pod_spec = ((source.deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        check = copy_build.check_references(
            pod_spec, copy_from.namespace, source.config_maps, source.secrets,
            settings.copy_secrets.get(copy_from.namespace), self._operator_secrets())
        if check.missing is not None:
            self._wake_at(self.given.now + timedelta(seconds=COPY_SOURCE_RECHECK))
            return check.missing
        credentials = self._credentials(component.env)
        if isinstance(credentials, str):
            return credentials
        notes: list[str] = []
        usable = copy_build.usable_secrets(source.secrets, settings.copy_secrets.get(copy_from.namespace))
        objects = service_build.copied_service_objects(
            component, replace(source, secrets=usable), self.env, self._injected_env(), placement,
            credentials, notes, self._operator_secrets(),
        )
        self.notes[component.name] = notes
        # Copied Secrets are created once (named by the source's version), never applied.
        self.plan.create.extend(o for o in objects if o["kind"] == "Secret")
        return [o for o in objects if o["kind"] != "Secret"]

    def components(self, seed_phases: dict[str, JobPhase]) -> list[ComponentStatus]:
        fills = seed_fills(self.spec)
        kinds: dict[ComponentKind, Sequence[Datastore | Stub | Service]] = {
            ComponentKind.DATASTORE: self.spec.datastores, ComponentKind.STUB: self.spec.stubs,
            ComponentKind.SERVICE: self.spec.services}
        kind_of = {c.name: kind for kind, items in kinds.items() for c in items}
        by_name = {c.name: c for c in self.spec.components()}
        statuses: dict[str, ComponentStatus] = {}
        order = TopologicalSorter({c.name: c.depends_on for c in self.spec.components()}).static_order()
        for name in order:
            component = by_name[name]
            waiting = [d for d in component.depends_on if not self.ready.get(d)]
            waiting += [f"seed {s}" for s in gating_seeds(self.spec, component, fills)
                        if seed_phases.get(s) != JobPhase.SUCCEEDED]
            status = ComponentStatus(name=name, kind=kind_of[name])
            self.ready[name] = False
            if waiting:
                status.message = f"waiting for {', '.join(waiting)}"
            else:
                built = self._component_objects(component)
                status.notes = self.notes.get(name) or None
                if isinstance(built, str):
                    status.message = built
                else:
                    desired_hash = None
                    for obj in built:
                        if obj["kind"] == "Deployment":
                            desired_hash = with_spec_hash(obj)["metadata"]["annotations"][SPEC_HASH]
                        self.plan.apply.append(obj)
                    seen = self.observed.workloads.get(name)
                    if seen is None or seen.spec_hash != desired_hash:
                        status.message = "starting"
                    elif not seen.ready:
                        status.message = f"starting: {seen.message}"
                    elif self._refused(PodOwner(str(kind_of[name]), name)):
                        status.message = "starting"  # ready pods, but not all of it exists (its Service)
                    else:
                        self.ready[name] = True
                        status.ready = True
            statuses[name] = status
        return [statuses[c.name] for c in self.spec.components()]

    # -- jobs ---------------------------------------------------------------

    def _job(self, name: str, run: int) -> JobObservation | None:
        return self.observed.jobs.get(job_build.job_name(name, run))

    def seeds(self, run: int) -> list[SeedStatus]:
        by_name = {s.name: s for s in self.spec.seed}
        datastores = {d.name: d for d in self.spec.datastores}
        previous = self.given.previous
        known = {s.name: s.message for s in previous.seeds} if previous.run == run else {}
        phases: dict[str, JobPhase] = {}
        statuses: dict[str, SeedStatus] = {}
        for name in TopologicalSorter({s.name: s.needs for s in self.spec.seed}).static_order():
            seed = by_name[name]
            seen = self._job(name, run)
            status = SeedStatus(name=name)
            stop = None if seen is None else self._stop_of(seen, known.get(name), seed.timeout_seconds)
            if seen is not None and stop is not None:
                # A seed has no retries: once its pod has stopped, its Job
                # fails and its results are kept (reconcile._harvest_seeds);
                # until the Job says so, it is still being stopped.
                words = self._stop_words()
                status.phase, status.message = seen.phase, stop
                if stop == words.stopped and seen.phase == JobPhase.RUNNING:
                    status.message = words.not_handed_over if self._stop_grace_over() else words.stopping
                elif stop == words.stopped:
                    status.message = words.seed_stopped
            elif seen is not None:
                status.phase = seen.phase
                if seen.phase == JobPhase.RUNNING and exited_ok(self.observed.pods, job=seen.name,
                                                                  container=seed_build.SEED_CONTAINER):
                    # Done when its container exited 0: the Job completes
                    # seconds later, once the kubelet has stopped the results
                    # collector and the pod, and nothing need wait for that.
                    status.phase = JobPhase.SUCCEEDED
                if seen.phase == JobPhase.FAILED and timed_out(self.observed.pods, seen.name):
                    status.message = TIMED_OUT
                elif seen.phase == JobPhase.FAILED:
                    status.message = seen.message or seen.reason or "the seed Job failed"
            else:
                waiting = [t for t in seed_waits_for(self.spec, seed) if not self.ready.get(t)]
                failed_needs = [n for n in seed.needs if phases.get(n) in (JobPhase.FAILED, JobPhase.SKIPPED)]
                waiting += [n for n in seed.needs if phases.get(n) != JobPhase.SUCCEEDED and n not in failed_needs]
                if failed_needs:
                    status.phase, status.message = JobPhase.SKIPPED, f"needs {', '.join(failed_needs)}, which failed"
                elif waiting:
                    status.message = f"waiting for {', '.join(waiting)}"
                elif (missing := self._missing_pull_secret()) is not None:
                    status.message = missing
                elif isinstance(credentials := self._credentials(seed.env), str):
                    status.message = credentials
                else:
                    ds = datastores.get(seed.datastore) if seed.datastore else None
                    image = (
                        datastore_build.datastore_image(ds, self.settings.engine_images) if ds else seed.image or ""
                    )
                    self.plan.apply.extend(
                        seed_build.seed_objects(
                            seed, ds, self.env, image, run, self._injected_env(), self.placement, credentials,
                            self.collector,
                        )
                    )
                    status.message = STARTING
            phases[name] = status.phase
            statuses[name] = status
        return [statuses[s.name] for s in self.spec.seed]

    def suites(self, run: int, previous: list[SuiteStatus]) -> list[SuiteStatus]:
        by_name = {t.name: t for t in self.spec.tests}
        known = {s.name: s for s in previous}
        phases: dict[str, JobPhase] = {}
        statuses: dict[str, SuiteStatus] = {}
        # Outcomes come only from Jobs, so a fail-fast failure is known up front
        # and cancels every suite not started yet, in whatever order.
        fail_fast_tripped = any(
            t.fail_fast and (seen := self._job(t.name, run)) is not None and seen.phase == JobPhase.FAILED
            for t in self.spec.tests
        )
        for name in TopologicalSorter({t.name: t.needs for t in self.spec.tests}).static_order():
            suite = by_name[name]
            seen = self._job(name, run)
            status = SuiteStatus(name=name)
            if seen is not None:
                status = self._suite_from_job(suite.name, seen, known.get(name))
            else:
                failed_needs = [n for n in suite.needs if phases.get(n) in (JobPhase.FAILED, JobPhase.SKIPPED)]
                waiting = [n for n in suite.needs if phases.get(n) != JobPhase.SUCCEEDED]
                if failed_needs:
                    status.phase, status.message = JobPhase.SKIPPED, f"needs {', '.join(failed_needs)}, which did not pass"
                elif fail_fast_tripped:
                    status.phase, status.message = JobPhase.SKIPPED, "cancelled: an earlier suite failed (failFast)"
                elif waiting:
                    status.message = f"waiting for {', '.join(waiting)}"
                elif (missing := self._missing_pull_secret()) is not None:
                    status.message = missing
                elif isinstance(credentials := self._credentials(suite.env), str):
                    status.message = credentials
                else:
                    self.plan.apply.append(
                        job_build.suite_job(suite, self.env, run, self._injected_env(), self.placement, credentials,
                                            self.collector)
                    )
                    status.message = STARTING
            phases[name] = status.phase
            statuses[name] = status
        return [statuses[t.name] for t in self.spec.tests]

    def _suite_from_job(self, name: str, seen: JobObservation, known: SuiteStatus | None) -> SuiteStatus:
        status = SuiteStatus(name=name, phase=seen.phase)
        timeout = next((t.timeout_seconds for t in self.spec.tests if t.name == name), None)
        stop = self._stop_of(seen, known.message if known else None, timeout)
        if stop == self._stop_words().stopped:
            return self._stopped_suite(status, seen, known)
        if stop is not None:
            status.message = stop
            return status
        if seen.phase == JobPhase.RUNNING:
            status.message = "running"
            return status
        start, end = _parse(seen.start_time), _parse(seen.completion_time)
        if start and end:
            status.duration_seconds = (end - start).total_seconds()
        if seen.reason == "DeadlineExceeded" or (seen.phase == JobPhase.FAILED
                                                  and timed_out(self.observed.pods, seen.name)):
            status.message = TIMED_OUT
        elif seen.phase == JobPhase.FAILED:
            status.message = seen.message or seen.reason or "failed"
        if not self._counts(status, seen, known if known is not None and known.phase == seen.phase else None):
            # The outcome is known (and trips failFast); the counts follow
            # once the pods are read, and the run waits for them.
            status.message = COLLECTING
        return status

    def _counts(self, status: SuiteStatus, seen: JobObservation, known: SuiteStatus | None) -> bool:
        """Put the suite's counts on `status`: as read of its pods, else as
        `known` (the status before a restart) has them. False when they are
        still to be read (asked for in plan.read_results)."""
        result = self.observed.results.get(seen.name)
        if result is not None:
            status.passed, status.failed, status.skipped = (
                result.counts.passed, result.counts.failed, result.counts.skipped)
            status.failures = list(result.failures)
            status.results = result.kept
            return True
        if known is not None:
            status.passed, status.failed, status.skipped = known.passed, known.failed, known.skipped
            status.failures = list(known.failures)
            status.results = known.results
            status.duration_seconds = known.duration_seconds or status.duration_seconds
            return True
        self.plan.read_results.append(seen.name)
        return False

    def _stop_at(self) -> tuple[datetime, StopWords] | None:
        """When what runs is stopped, and what its statuses say: at the
        environment's deadline once it has passed, or from the moment a
        cause that ends the run was found, whichever came first."""
        status, stops = self.plan.status, []
        if status.ending_cause is not None and (found := _parse(status.ending_cause.since)) is not None:
            stops.append((found, AT_ERROR))
        deadline_at = self._deadline_at(status)
        if deadline_at is not None and self.given.now >= deadline_at:
            stops.append((deadline_at, AT_DEADLINE))
        return min(stops, key=lambda stop: stop[0]) if stops else None

    def _stop_words(self) -> StopWords:
        stop = self._stop_at()
        return AT_DEADLINE if stop is None else stop[1]

    def _stop_moment(self) -> datetime | None:
        """The moment what runs is stopped, once there is one and a collector
        to hand over what is stopped; else None."""
        stop = self._stop_at()
        return None if stop is None or self.collector is None else stop[0]

    def _pods_started_by(self, seen: JobObservation, moment: datetime) -> Iterator[Mapping[str, Any]]:
        """The Job's pods that had started by the stop. A retry the Job
        started after it has nothing to hand over: it goes with the Job."""
        for pod in self.observed.pods:
            if ((pod.get("metadata") or {}).get("labels") or {}).get("job-name") != seen.name:
                continue
            started = _parse((pod.get("status") or {}).get("startTime"))
            if started is not None and started <= moment:
                yield pod

    def _running_at_stop(self, seen: JobObservation) -> list[tuple[str, bool]] | None:
        """The Job's pods that ran at the stop and are still running, each
        with whether its containers have all ended (the collector is handing
        over already: nothing to stop, only to wait for). None when nothing
        is stopped: no deadline passed and no ending cause, or no collector
        to hand over."""
        if (moment := self._stop_moment()) is None:
            return None
        running = []
        for pod in self._pods_started_by(seen, moment):
            meta, pod_status = pod.get("metadata") or {}, pod.get("status") or {}
            if pod_status.get("phase") == "Running" and not meta.get("deletionTimestamp"):
                ended = [(c.get("state") or {}).get("terminated") for c in pod_status.get("containerStatuses") or []]
                running.append((meta.get("name", ""), bool(ended) and all(ended)))
        return running

    def _stop_of(self, seen: JobObservation, known: str | None, timeout: int | None) -> str | None:
        """Where a seed's or suite's Job is in being stopped (at the
        environment's deadline, or as the run ends in Error): stopping (its
        pods that ran at the stop are asked to stop, and waited for),
        stopped (they have), or not handed over (they did not within the
        grace), in the words of the stop; None when no stop concerns it."""
        words = self._stop_words()
        # From the pods, not only the status: a status saying "stopping" may
        # be held back (pacing.py) or lost with a killed operator, the stop not.
        stopping = known in (words.stopping, words.stopped, words.seed_stopped) or self._stopped_by_us(seen, timeout)
        if seen.phase == JobPhase.RUNNING and (pods := self._running_at_stop(seen)) is not None:
            if not pods and stopping:  # all that ran at the stop has stopped
                return words.stopped
            if pods and not self._stop_grace_over():
                if words is AT_ERROR and self.given.cause_unwritten:
                    self._wake_at(self.given.now)  # stopped in the pass after the cause is written
                else:
                    self.plan.stop_pods.extend(p for p, ended in pods if not ended and p not in self.plan.stop_pods)
                return words.stopping
            if pods and stopping:
                return words.not_handed_over
        if seen.phase == JobPhase.FAILED and stopping:
            return words.stopped
        return None

    def _stopped_by_us(self, seen: JobObservation, timeout: int | None) -> bool:
        """A pod of the Job was stopped by the run's stop: it ran at that
        moment and was stopped at a deadline, before its own timeoutSeconds
        (if any) would have stopped it."""
        if (moment := self._stop_moment()) is None:
            return False
        for pod in self._pods_started_by(seen, moment):
            started = _parse(pod["status"]["startTime"])
            if (pod["status"].get("reason") == "DeadlineExceeded" and started is not None
                    and (not timeout or started + timedelta(seconds=timeout) > moment)):
                return True
        return False

    def _stopped_suite(self, status: SuiteStatus, seen: JobObservation, known: SuiteStatus | None) -> SuiteStatus:
        """A suite stopped by the run's stop: failed, with the counts of what
        its stopped pods handed over."""
        words = self._stop_words()
        status.phase, status.message = JobPhase.FAILED, words.stopped
        self._counts(status, seen, known if known is not None and known.message == words.stopped else None)
        return status

    def _stop_grace_over(self) -> bool:
        stop = self._stop_at()
        return stop is not None and self.given.now >= stop[0] + timedelta(seconds=STOP_GRACE_SECONDS)

    def _deadline_at(self, status: TestEnvironmentStatus) -> datetime | None:
        deadline, started = self.spec.lifecycle.active_deadline_seconds, _parse(status.started_at)
        return started + timedelta(seconds=deadline) if deadline and started else None

    def old_jobs(self, run: int) -> None:
        for seen in self.observed.jobs.values():
            if seen.run and seen.run != run:
                self.plan.delete.append(ObjectRef(api_version="batch/v1", kind="Job",
                                                  namespace=self.env.target_namespace, name=seen.name))
                if seen.kind == "seed":
                    self.plan.delete.append(ObjectRef(
                        api_version="v1", kind="ConfigMap", namespace=self.env.target_namespace,
                        name=seed_build.script_configmap_name(seen.component, seen.run)))

    # -- the whole --------------------------------------------------------

    def run(self) -> Plan:
        given = self.given
        if not given.admission.admitted and not given.errors:
            return self._queued()
        status = self._start_status()
        self.plan.status = status
        if errors := (given.errors or self.copy_errors()):
            return self._invalid(status, errors)
        if given.previous.phase in FINISHED_PHASES and given.previous.run == status.run:
            status.phase = given.previous.phase  # the run is over: nothing more starts
            return self._finish(status)
        self._namespace(status.run)
        status.components, status.seeds = self._components_and_seeds(status.run)
        self._readiness(status)
        same_run = given.previous.run == status.run
        status.tests = self._tests(status, same_run)
        self._counts_and_results(status)
        final_causes = self._pod_facts(status, same_run)
        status.phase, status.message = self._phase(status)
        cause = self._end_on_final_cause(status, final_causes)
        self._end_at_deadline(status)
        status.conditions = _conditions(given.previous, given.now, [
            _ready_condition(status), self._tests_condition(status, cause)])
        self._suite_events(given.previous.tests if same_run else [], status.tests)
        self._seed_events(given.previous.seeds if same_run else [], status.seeds)
        return self._finish(status)

    def _queued(self) -> Plan:
        """Over the concurrency limits: the status says so and nothing starts."""
        status = self.given.previous.model_copy(deep=True)
        status.phase, status.message = Phase.QUEUED, self.given.admission.message
        self.plan.status = status
        return self._finish(status)

    def _invalid(self, status: TestEnvironmentStatus, errors: list[SpecError]) -> Plan:
        """A spec that cannot run: its errors on the status, nothing provisioned."""
        status.phase = Phase.ERROR
        status.message = "; ".join(str(e) for e in errors)
        status.components, status.seeds, status.tests = [], [], []
        status.summary = status.ready_components = status.test_counts = None
        status.conditions = _conditions(self.given.previous, self.given.now, [
            ("Ready", ConditionStatus.FALSE, "InvalidSpec", status.message)])
        return self._finish(status)

    def _namespace(self, run: int) -> None:
        """The namespace and what every run has in it; earlier runs' Jobs go."""
        settings = self.settings
        self.plan.apply.extend(namespace_build.namespace_objects(
            self.env, self.spec.isolation,
            pod_security_level=settings.pod_security_level,
            operator_namespace=settings.operator_namespace,
            quota_defaults={"cpu": settings.default_quota_cpu, "memory": settings.default_quota_memory,
                            "pods": settings.default_quota_pods},
            container_defaults={"cpu": settings.default_container_cpu, "memory": settings.default_container_memory},
        ))
        self.plan.apply.extend(self._pull_secret_copies())
        self.old_jobs(run)

    def _components_and_seeds(self, run: int) -> tuple[list[ComponentStatus], list[SeedStatus]]:
        # Seeds depend on datastore readiness and gate services: settle
        # readiness first (components), then seeds, then components again
        # with the seeds' outcome, which only ever unblocks more.
        previous = self.given.previous
        previous_seed_phases = {s.name: s.phase for s in previous.seeds if previous.run == run}
        applied = len(self.plan.apply)
        self.components(previous_seed_phases)
        seed_phases = {s.name: s.phase for s in self.seeds(run)}
        del self.plan.apply[applied:]
        self.plan.create.clear()
        return self.components(seed_phases), self.seeds(run)

    def _readiness(self, status: TestEnvironmentStatus) -> None:
        ready_count = sum(c.ready for c in status.components)
        status.ready_components = f"{ready_count}/{len(status.components)}"
        if _all_ready(status) and status.ready_at is None:
            status.ready_at = _ts(self.given.now)

    def _testing_started(self, run: int) -> bool:
        return any(self._job(t.name, run) for t in self.spec.tests)

    def _tests(self, status: TestEnvironmentStatus, same_run: bool) -> list[SuiteStatus]:
        """The suites and stub checks, once the environment is up and seeded."""
        seeds_done = all(s.phase == JobPhase.SUCCEEDED for s in status.seeds)
        # Once suites run, a component flapping does not undo their results.
        if not (self.spec.tests and seeds_done and (_all_ready(status) or self._testing_started(status.run))):
            return [SuiteStatus(name=t.name, message="waiting for the environment") for t in self.spec.tests]
        suites = self.suites(status.run, self.given.previous.tests if same_run else [])
        return suites + self._stub_checks(suites)

    def _counts_and_results(self, status: TestEnvironmentStatus) -> None:
        """The run's counts, and where what it kept is listed."""
        suites, settings = status.tests, self.settings
        logs_kept, log_notes = self.observed.logs_kept, self.observed.log_notes
        status.summary = sum((Counts(passed=s.passed, failed=s.failed, skipped=s.skipped) for s in suites), Counts())
        status.test_counts = f"{status.summary.passed}/{status.summary.failed}" if self.spec.tests else None
        if status.results is None and (any(s.results for s in suites) or logs_kept or log_notes):
            owner = Owner(namespace=self.env.namespace, name=self.env.name, uid=self.env.uid)
            s3 = settings.results_store == "s3"
            status.results = RunResults(index=index_name(owner, status.run), store=settings.results_store,
                                        endpoint=settings.results_download_endpoint() if s3 else None)
        if status.results is not None and logs_kept:
            status.results.logs = logs_kept
        if status.results is not None and log_notes:
            status.results.notes = list(log_notes)

    def _phase(self, status: TestEnvironmentStatus) -> tuple[Phase, str]:
        """Where the run is, from its components, seeds and suites."""
        components, seeds, suites = status.components, status.seeds, status.tests
        seed_failed = [s for s in seeds if s.phase == JobPhase.FAILED]
        failed_suites = [s.name for s in suites if s.phase == JobPhase.FAILED]
        waiting = _waiting(status)
        if seed_failed:
            return Phase.FAILED, f"seed {seed_failed[0].name} failed: {seed_failed[0].message}"
        if not _all_ready(status) and not self._testing_started(status.run):
            started_seeding = any(s.phase != JobPhase.PENDING or s.message == "starting" for s in seeds)
            return (Phase.SEEDING if started_seeding else Phase.PROVISIONING,
                    f"waiting for {len(waiting)} of {len(components)} components: " + "; ".join(waiting))
        if not all(s.phase == JobPhase.SUCCEEDED for s in seeds):
            return Phase.SEEDING, "seeding: " + ", ".join(s.name for s in seeds if s.phase != JobPhase.SUCCEEDED)
        if not self.spec.tests:
            return Phase.READY, "all components ready (no tests: preview environment)"
        running = [s.name for s in suites if s.phase not in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.SKIPPED)]
        if running or self.plan.read_results:
            return Phase.TESTING, "testing: " + ", ".join(running)
        if failed_suites:
            return Phase.FAILED, f"{len(failed_suites)} suite(s) failed: {', '.join(failed_suites)}"
        return Phase.SUCCEEDED, f"all {len(suites)} suite(s) passed"

    def _end_on_final_cause(self, status: TestEnvironmentStatus, final_causes: list[tuple[str, Diagnosis]]) -> str | None:
        """A cause that will not fix itself ends the run in Error, not at
        activeDeadlineSeconds: at once when nothing runs, else once what
        runs has handed over what it wrote so far. Returns its reason."""
        if status.ending_cause is None:
            deadline_at = self._deadline_at(status)
            past_deadline = deadline_at is not None and self.given.now >= deadline_at
            if not final_causes or past_deadline or status.phase in FINISHED_PHASES:
                return None  # past the deadline, the run is being timed out already
            where, found = final_causes[0]
            status.ending_cause = EndingCause(
                since=_ts(self.given.now), reason=str(found.reason), message=f"{where}: {found.message}")
        cause = status.ending_cause
        if self._waits_for_stopping(status, AT_ERROR, f"{cause.message};"):
            return cause.reason
        status.phase, status.message = Phase.ERROR, cause.message
        self._stop_run()
        return cause.reason

    def _waits_for_stopping(self, status: TestEnvironmentStatus, words: StopWords, why: str) -> bool:
        """While seeds or suites are being stopped, the run waits for them:
        the status says which and `why`, nothing more starts, and the
        planner wakes when the grace is over. False when none is."""
        jobs: list[SeedStatus | SuiteStatus] = [*status.seeds, *status.tests]
        stopping = [j.name for j in jobs if j.message == words.stopping]
        if not stopping or (stop := self._stop_at()) is None:
            return False
        status.message = f"{why} stopping {', '.join(stopping)} to keep what they wrote so far"
        self._wake_at(stop[0] + timedelta(seconds=STOP_GRACE_SECONDS))
        self.plan.apply = []  # nothing more starts; the running Jobs go once their pods have stopped
        return True

    def _end_at_deadline(self, status: TestEnvironmentStatus) -> None:
        deadline, deadline_at = self.spec.lifecycle.active_deadline_seconds, self._deadline_at(status)
        if deadline_at is None or self.given.now < deadline_at or status.ending_cause is not None:
            return
        # A run whose last seeds or suites were stopped at the deadline did not finish: it timed out.
        jobs: list[SeedStatus | SuiteStatus] = [*status.seeds, *status.tests]
        if status.phase in FINISHED_PHASES and not any(j.message in (STOPPED, SEED_STOPPED) for j in jobs):
            return
        if self._waits_for_stopping(status, AT_DEADLINE, f"activeDeadlineSeconds ({deadline}s) reached:"):
            return
        if not self.spec.tests and status.ready_at is not None:
            # A preview's deadline is its planned end, not a failure.
            status.phase = Phase.SUCCEEDED
            status.message = f"preview ended: activeDeadlineSeconds ({deadline}s) reached"
        else:
            status.phase = Phase.TIMED_OUT
            status.message = f"the run did not finish within activeDeadlineSeconds ({deadline}s)"
        self._stop_run()

    def _tests_condition(self, status: TestEnvironmentStatus, cause: str | None) -> _ConditionRow:
        failed_suites = [s.name for s in status.tests if s.phase == JobPhase.FAILED]
        seed_failed = any(s.phase == JobPhase.FAILED for s in status.seeds)
        jobs: list[SeedStatus | SuiteStatus] = [*status.seeds, *status.tests]
        job_reason = next((j.reason for j in jobs if j.reason and j.phase == JobPhase.RUNNING), None)
        if status.phase == Phase.TIMED_OUT:
            return ("TestsPassed", ConditionStatus.FALSE, "TimedOut", status.message)
        if not self.spec.tests:
            reason, message = ("PreviewEnded", status.message) if status.phase == Phase.SUCCEEDED else (
                "NoTests", "no test suites: preview environment")
            return ("TestsPassed", ConditionStatus.UNKNOWN, reason, message)
        if cause is not None:
            return ("TestsPassed", ConditionStatus.FALSE, cause, status.message)
        if failed_suites or seed_failed:
            return ("TestsPassed", ConditionStatus.FALSE, "SuitesFailed", ", ".join(failed_suites) or "a seed failed")
        if status.phase == Phase.SUCCEEDED:
            return ("TestsPassed", ConditionStatus.TRUE, "AllSuitesPassed", status.message)
        if job_reason is not None:
            return ("TestsPassed", ConditionStatus.UNKNOWN, job_reason,
                    next(j.message for j in jobs if j.reason == job_reason))
        return ("TestsPassed", ConditionStatus.UNKNOWN, "Running" if status.phase == Phase.TESTING else "Pending", "")

    def _refused(self, owner: PodOwner) -> bool:
        found = self.observed.diagnoses.get(owner)
        return found is not None and found.reason == Reason.APPLY_REJECTED

    def _stop_run(self) -> None:
        """Start nothing more; running Jobs are stopped (Deployments stay for a look)."""
        self.plan.apply = []
        for seen in self.observed.jobs.values():
            if seen.phase == JobPhase.RUNNING:
                self.plan.delete.append(ObjectRef(api_version="batch/v1", kind="Job",
                                                  namespace=self.env.target_namespace, name=seen.name))

    def _pod_facts(self, status: TestEnvironmentStatus, same_run: bool) -> list[tuple[str, Diagnosis]]:
        """Put what the pods tell on each component, seed and suite: the reason
        they do not come up (one Warning Event when it first shows) and the
        image they ran. Returns the reasons that are final, with where."""
        previous, run = self.given.previous, status.run
        # A new run may run other images: nothing of the last run's is kept.
        before: dict[tuple[str, str], Any] = {}
        if same_run:
            before = {("component", c.name): c for c in previous.components}
            before |= {("seed", s.name): s for s in previous.seeds} | {("test", t.name): t for t in previous.tests}
        entries: list[tuple[str, PodOwner, tuple[str, str], Any, bool]] = [
            (f"{c.kind} {c.name}", PodOwner(str(c.kind), c.name), ("component", c.name), c,
             not c.ready and c.message.startswith("starting"))
            for c in status.components
        ]
        # A Job asked for in this pass but not there yet is open too: if the
        # API server refuses it, that refusal is all there is to say.
        # A seed or suite stopped at the environment's deadline failed for that, whatever its pods say.
        entries += [(f"seed {s.name}", PodOwner("seed", s.name, run), ("seed", s.name), s,
                     (s.phase in (JobPhase.RUNNING, JobPhase.FAILED) or _starting(s)) and not _stopped_early(s))
                    for s in status.seeds]
        entries += [(f"suite {t.name}", PodOwner("test", t.name, run), ("test", t.name), t,
                     (t.phase == JobPhase.RUNNING or _starting(t)) and not _stopped_early(t)) for t in status.tests]
        final = []
        for where, owner, key, entry, open_ in entries:
            known = before.get(key)
            ref = self.observed.images.get(owner)
            if ref is not None:
                entry.image, entry.image_digest = ref.image, ref.digest
            elif known is not None:
                entry.image, entry.image_digest = known.image, known.image_digest
            diagnosis = self.observed.diagnoses.get(owner) if open_ else None
            entry.reason = str(diagnosis.reason) if diagnosis is not None else None
            if diagnosis is None:
                continue
            entry.message = diagnosis.message
            if getattr(entry, "phase", None) == JobPhase.FAILED:
                continue  # said by the SeedFailed Event; its run fails anyway
            if known is None or known.reason != entry.reason:
                self.plan.events.append(Event("Warning", entry.reason, f"{where}: {diagnosis.message}"))
            if diagnosis.permanent:
                final.append((where, diagnosis))
        return final

    def _stub_checks(self, suites: list[SuiteStatus]) -> list[SuiteStatus]:
        checked = [s for s in self.spec.stubs if s.verify]
        if not checked:
            return []
        done = all(s.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.SKIPPED) for s in suites)
        results = []
        for stub in checked:
            seen = self.observed.stub_checks.get(stub.name)
            if seen is not None:
                results.append(seen)
            else:
                if done:
                    self.plan.verify_stubs.append(stub.name)
                results.append(SuiteStatus(name=f"stubs/{stub.name}", message="checked after the suites"))
        return results

    def _suite_events(self, before: list[SuiteStatus], after: list[SuiteStatus]) -> None:
        phases = {s.name: s.phase for s in before}
        for suite in after:
            if suite.phase == phases.get(suite.name) or suite.message == COLLECTING:
                continue
            counts = f"{suite.passed} passed, {suite.failed} failed, {suite.skipped} skipped"
            if suite.phase == JobPhase.SUCCEEDED:
                self.plan.events.append(Event("Normal", "SuitePassed", f"suite {suite.name}: {counts}"))
            elif suite.phase == JobPhase.FAILED:
                detail = f"; {suite.message}" if suite.message else ""
                self.plan.events.append(Event("Warning", "SuiteFailed", f"suite {suite.name}: {counts}{detail}"))
                if not suite.name.startswith("stubs/"):
                    self.plan.log_tails.append(job_build.job_name(suite.name, self.plan.status.run))

    def _seed_events(self, before: list[SeedStatus], after: list[SeedStatus]) -> None:
        phases = {s.name: s.phase for s in before}
        for seed in after:
            if seed.phase == JobPhase.FAILED and phases.get(seed.name) != JobPhase.FAILED:
                self.plan.events.append(Event("Warning", "SeedFailed", f"seed {seed.name}: {seed.message}"))
                self.plan.log_tails.append(seed_build.run_name(seed.name, self.plan.status.run))

    def _wake_at(self, moment: datetime) -> None:
        """Ask to be woken at moment, unless something earlier already asked."""
        seconds = max(0.0, (moment - self.given.now).total_seconds())
        self.plan.wake_after = seconds if self.plan.wake_after is None else min(self.plan.wake_after, seconds)

    def _finish(self, status: TestEnvironmentStatus) -> Plan:
        given, now = self.given, self.given.now
        lifecycle, settings = self.spec.lifecycle, self.settings
        if status.phase in FINISHED_PHASES and status.finished_at is None:
            status.finished_at = _ts(now)
        finished = _parse(status.finished_at)
        retain = lifecycle.retain_on_failure_seconds
        retain = settings.default_retain_on_failure_seconds if retain is None else retain
        ttl = lifecycle.ttl_seconds_after_finished
        ttl = settings.default_ttl_seconds_after_finished if ttl is None else ttl
        expires: datetime | None = None
        left_behind = status.phase != Phase.ERROR or self.observed.namespace_phase is not None
        if finished and left_behind:
            expires = finished + timedelta(seconds=ttl if status.phase == Phase.SUCCEEDED else retain)
        elif (deadline_at := self._deadline_at(status)) is not None and status.phase not in FINISHED_PHASES:
            # A preview that comes up ends at its deadline as a finished run
            # (kept ttlSecondsAfterFinished); any other run would be TimedOut.
            after = ttl if not self.spec.tests and status.phase == Phase.READY else retain
            expires = deadline_at + timedelta(seconds=after)
            if now < deadline_at:
                self._wake_at(deadline_at)  # past it, jobs are being stopped: _end_at_deadline wakes
        status.expires_at = _ts(expires) if expires else None
        if status.results and not status.results.expired and finished:
            forget = finished + timedelta(seconds=settings.results_retention())
            if now >= forget:
                self.plan.forget_results, status.results.expired = True, True
            else:
                self._wake_at(forget)
        if expires and status.phase in FINISHED_PHASES:
            if now >= expires:
                self.plan.collect_namespace = True
                self.plan.apply, self.plan.create = [], []
                if not status.message.startswith(COLLECTED):
                    status.message = f"{COLLECTED}{_ts(expires)}: {status.message}"
            else:
                self._wake_at(expires)
        if status.phase != given.previous.phase:
            warning = status.phase in (Phase.FAILED, Phase.ERROR, Phase.TIMED_OUT)
            self.plan.events.insert(0, Event("Warning" if warning else "Normal", str(status.phase), status.message))
        return self.plan


def _starting(job: SeedStatus | SuiteStatus) -> bool:
    return job.phase == JobPhase.PENDING and job.message == STARTING


def _all_ready(status: TestEnvironmentStatus) -> bool:
    return all(c.ready for c in status.components)


def _waiting(status: TestEnvironmentStatus) -> list[str]:
    """The components not ready yet, with why."""
    return [f"{c.name} ({c.message})" for c in status.components if not c.ready]


def _ready_condition(status: TestEnvironmentStatus) -> _ConditionRow:
    if _all_ready(status):
        return ("Ready", ConditionStatus.TRUE, "AllComponentsReady", "")
    diagnosed = next((c.reason for c in status.components if not c.ready and c.reason), None)
    waiting = "; ".join(_waiting(status))
    if diagnosed is not None:
        return ("Ready", ConditionStatus.FALSE, diagnosed, waiting)
    return ("Ready", ConditionStatus.FALSE, "ComponentsNotReady", waiting)


def _conditions(previous: TestEnvironmentStatus, now: datetime, wanted: list[_ConditionRow]) -> list[Condition]:
    before = {c.type: c for c in previous.conditions}
    out = []
    for type_, state, reason, message in wanted:
        old = before.get(type_)
        since = _ts(now) if old is None or old.status != state else old.last_transition_time
        out.append(Condition(type=type_, status=state, reason=reason, message=message, last_transition_time=since))
    return out


def plan(given: PlanInput) -> Plan:
    planned = _Planner(given).run()
    found, previous = planned.status.ending_cause, given.previous
    if found is not None and previous.ending_cause is None and previous.observed_generation == given.generation:
        # What runs is stopped from the moment the cause was found: planned
        # again as if it had been known all along, each seed and suite says
        # so in this very pass, and is stopped once the cause is written.
        return _Planner(replace(given, previous=previous.model_copy(update={"ending_cause": found}),
                                cause_unwritten=True)).run()
    return planned


def was_collected(status: Mapping[str, Any]) -> bool:
    """The run's namespace was deleted by its TTL, retention or deadline."""
    return str(status.get("message", "")).startswith(COLLECTED)


__all__ = ["COLLECTING", "COLLECTED", "Admission", "Event", "ObjectRef", "Plan", "PlanInput", "plan", "was_collected"]
