"""kopf wiring: indexes of the children, wake-ups on their changes, one
event-driven loop per TestEnvironment, the finalizer, and the start and stop
of the orphan sweep. Kept thin: the work is in reconcile.py, plan.py and
sweep.py."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import kopf

from . import metrics, models
from .admission import WAITING, EnvSummary, admit_confirmed, summary_of
from .build.common import (
    LABEL_ENV_UID,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    environment_namespace_name,
)
from .idle_memory import IdleMemory
from .kube import Kube, announce, event_name, load_client
from .observe import Observed, job, slim_event, slim_pod, workload
from .orphans import environment_namespace
from .plan import was_collected
from .reconcile import Memory, StaleView, reconcile
from .relist import install as forget_what_relisting_misses
from .results import Owner
from .resultstore import ResultsStore, StoreError, bodies_for
from .settings import Settings, get_settings
from .sweep import OrphanSweep
from .wakeups import Wakeups, until_gone

log = logging.getLogger(__name__)
OURS = {LABEL_MANAGED_BY: MANAGED_BY}
FINALIZER = "testenv.dev/cleanup"
TE = (models.GROUP, models.VERSION, models.PLURAL)
DEPLOYMENTS = ("apps", "v1", "deployments")
JOBS = ("batch", "v1", "jobs")
NAMESPACES = ("", "v1", "namespaces")
PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
WATCHED_OURS = (DEPLOYMENTS, JOBS, NAMESPACES, PODS)


WAKEUPS = Wakeups()
_state: dict[str, Any] = {}

# Before kopf starts any watch: each watch's listing then also forgets what
# was deleted while the watch was down (relist.py).
forget_what_relisting_misses()


def _index(kwargs: Mapping[str, Any], of: Callable[..., object]) -> kopf.Index[str, Any]:
    """The index kopf fills from the indexing function `of`. kopf hands every
    index to every handler as a keyword argument of that function's name; its
    handler protocols leave those to **kwargs, so they are read from there."""
    index: kopf.Index[str, Any] = kwargs[of.__name__]
    return index


def _namespaced(namespace: str | None) -> str:
    """kopf types every object's namespace as optional; everything watched
    here (TestEnvironments, Deployments, Jobs, pods, Events) is namespaced."""
    if namespace is None:
        raise kopf.PermanentError("a namespaced object came without a namespace")
    return namespace


def _kube() -> Kube:
    if "kube" not in _state:
        _state["kube"] = Kube(load_client(), get_settings().field_manager)
    return _state["kube"]


SWEEP = OrphanSweep(_kube)
IDLE = IdleMemory()


def _store() -> ResultsStore:
    if "store" not in _state:
        settings = get_settings()
        _state["store"] = ResultsStore(_kube(), bodies_for(settings, _kube()), settings.results_keep_runs)
    return _state["store"]


# kopf's default retries give up on the API server after 55 s, and the
# operator exits: one started during a control-plane restart that took 240 s
# (the chaos soak) did. An API server restart or upgrade takes minutes; this
# rides out about five of them, and once the API is back resumes within 30 s.
API_ERROR_BACKOFFS = (1, 1, 2, 3, 5, 8, 13, 21, 30, 30, 30, 30, 30, 30, 30, 30)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure_persistence(settings)
    settings.posting.level = logging.WARNING  # our Events are posted explicitly
    # kopf logs every handled watch event at INFO; children change often.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.networking.error_backoffs = API_ERROR_BACKOFFS
    filter_watches(settings)
    settings.execution.max_workers = 20
    port = int(os.environ.get("TESTENV_METRICS_PORT", "0") or 0)
    if port:
        metrics.serve(port)
    # Made here, in kopf's worker thread: an S3 client takes a while to build,
    # and the first reconcile would otherwise build it on the event loop.
    _store()


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: no handler here reacts to a change (the daemon
    reads the body itself; the delete handler needs no diff), so kopf need
    neither write a copy of each spec into an annotation (a request per
    environment, and a larger body in every watch event and in memory) nor
    deep-copy every watched object on every event to compare it. Every
    essence is the same empty one: kopf sees no change, never a creation.
    tests/unit/test_watch_filters.py fails if a handler that needs a diff is added."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def configure_persistence(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="testenv.dev")
    settings.persistence.diffbase_storage = NoDiffBase()


def filter_watches(settings: kopf.OperatorSettings) -> None:
    """Filtered by the API server, not here: kopf keeps a memory of every
    object a watch delivers until it is deleted, and handles each of its
    changes. Unfiltered, that is every pod, Deployment, Job and Event of a
    shared cluster, not just ours (bench/RESULTS.md, "A thousand environments")."""
    ours = ",".join(f"{k}={v}" for k, v in OURS.items())
    for resource in WATCHED_OURS:
        settings.watching.label_selectors[resource] = ours
    # Only Warnings say why pods do not come up (observe.slim_event); not the
    # ones this operator posts itself, about TestEnvironments (under faults, a
    # ReconcileError per retry) and about the namespaces the sweep collects,
    # which kopf would otherwise remember each of for the Event's hour
    # (bench/RESULTS.md, the chaos soak). Diagnosis reads those of pods,
    # ReplicaSets and Jobs only.
    settings.watching.field_selectors[EVENTS] = (
        f"type=Warning,involvedObject.kind!={models.KIND},involvedObject.kind!=Namespace")


@kopf.on.cleanup()
async def wake_everyone(**_: Any) -> None:
    WAKEUPS.wake_all()


# --- what the environments own, indexed by namespace --------------------------

# The indexing functions are async, though they do no I/O: kopf runs a sync
# handler in a worker thread, a hop for every watch event of every kind.


@kopf.index(*DEPLOYMENTS, labels=OURS)
async def workloads_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {_namespaced(namespace): workload(body)}


@kopf.index(*JOBS, labels=OURS)
async def jobs_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {_namespaced(namespace): job(body)}


@kopf.index(*NAMESPACES, labels=OURS)
async def environment_namespaces(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: environment_namespace(body)}


@kopf.index(*PODS, labels=OURS)
async def pods_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {_namespaced(namespace): slim_pod(body)}


def _in_environment_namespace(namespace: str | None, **_: Any) -> bool:
    return namespace is not None and namespace.startswith(f"{get_settings().namespace_prefix}-")


# Events carry no labels of ours: they are told apart by namespace, and only
# the Warnings that say why pods do not come up are kept.
@kopf.index(*EVENTS, when=_in_environment_namespace)
async def events_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any] | None:
    slim = slim_event(body)
    return None if slim is None else {_namespaced(namespace): slim}


@kopf.on.event(*DEPLOYMENTS, labels=OURS)
@kopf.on.event(*JOBS, labels=OURS)
@kopf.on.event(*NAMESPACES, labels=OURS)
@kopf.on.event(*PODS, labels=OURS)
async def wake_owner(labels: kopf.Labels, **_: Any) -> None:
    SWEEP.indexes_filled()
    IDLE.busy()
    WAKEUPS.wake(labels.get(LABEL_ENV_UID))


@kopf.on.event(*EVENTS, when=_in_environment_namespace)
async def wake_on_warning(namespace: str | None, body: kopf.Body, **kwargs: Any) -> None:
    if slim_event(body) is None:
        return
    seen = _namespace(_index(kwargs, environment_namespaces), _namespaced(namespace))
    if seen is not None:
        WAKEUPS.wake(seen.env_uid)


@kopf.index(*TE)
async def environments_by_uid(uid: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {uid: summary_of(body)}


def _listed_environments() -> list[EnvSummary]:
    """The environments as the API lists them now (blocking: called in the reconcile thread)."""
    return [summary_of(item) for item in _kube().environments()]


def _index_values(index: kopf.Index[str, Any]) -> list[Any]:
    return [value for _, store in index.items() for value in store]


def _queue(kwargs: Mapping[str, Any], status: Mapping[str, Any], settings: Settings) -> list[EnvSummary]:
    """Every environment as the index has it, read here in the event loop (the
    reconcile thread must not iterate kopf's index) and only when the queue
    decides something: limits are set and this environment is still waiting.
    Otherwise a pass of each of N environments would cost time in N."""
    if not settings.queues() or (status.get("phase") or "") not in WAITING:
        return []
    return _index_values(_index(kwargs, environments_by_uid))


def _wake_waiting(environments: kopf.Index[str, Any]) -> None:
    """A slot may have freed: let queued environments look again."""
    for store in environments.values():
        for summary in store:
            if summary.phase in WAITING:
                WAKEUPS.wake(summary.uid)


@kopf.on.event(*TE)
async def wake_self(uid: str, status: kopf.Status, type: str | None, **kwargs: Any) -> None:
    SWEEP.indexes_filled()
    IDLE.busy()
    if type == "DELETED":
        # Mostly forgotten by the delete handler already; not when another
        # replica handled the delete (relist.py sends it on resuming).
        metrics.forget(uid)
    WAKEUPS.wake(uid)
    settings = get_settings()
    if settings.queues():
        # Any change of another environment can change a queued one's place.
        _wake_waiting(_index(kwargs, environments_by_uid))


# --- the orphan sweep (sweep.py), started and stopped with the operator -------------


@kopf.on.startup()
async def start_orphan_sweep(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    peering = None
    if not settings.peering.standalone and settings.peering.clusterwide:
        peering = (settings.peering.name, settings.peering.priority)
    ours = get_settings()
    SWEEP.start(_index(kwargs, environment_namespaces), _index(kwargs, environments_by_uid),
                interval=ours.orphan_sweep_interval_seconds, dry_run=ours.orphan_sweep_dry_run, peering=peering)


@kopf.on.cleanup()
async def stop_orphan_sweep(**_: Any) -> None:
    await SWEEP.stop()


# --- memory back to the system once quiet (idle_memory.py) ------------------------


@kopf.on.startup()
async def start_idle_memory(**_: Any) -> None:
    IDLE.start()


@kopf.on.cleanup()
async def stop_idle_memory(**_: Any) -> None:
    await IDLE.stop()


def _namespace(namespaces: kopf.Index[str, Any], target: str) -> Any:
    """The environment namespace as the index has it, or None."""
    return next(iter(namespaces.get(target, [])), None)


def _observed(target: str, kwargs: Mapping[str, Any]) -> Observed:
    """What the indexes hold of the environment namespace `target`."""
    workloads, jobs = _index(kwargs, workloads_by_namespace), _index(kwargs, jobs_by_namespace)
    namespaces, pods = _index(kwargs, environment_namespaces), _index(kwargs, pods_by_namespace)
    events = _index(kwargs, events_by_namespace)
    ns = _namespace(namespaces, target)
    return Observed(
        namespace_phase=ns.phase if ns else None,
        workloads={w.name: w for w in workloads.get(target, [])},
        jobs={j.name: j for j in jobs.get(target, [])},
        pods=tuple(pods.get(target, [])),
        events=tuple(events.get(target, [])),
    )


# --- one loop per environment ------------------------------------------------------


# The timeout is asyncio.wait's: reaching it is a normal wake-up (time-driven
# work is due), not a cancellation, so asyncio.timeout() does not fit.
async def _until_woken(wake: asyncio.Event, stopped: kopf.DaemonStopped, timeout: float | None) -> None:  # noqa: ASYNC109
    async def on_stop() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(on_stop())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


# After a stale write, the next pass (from the API's copy) comes this soon.
STALE_RETRY = 0.5


@kopf.daemon(*TE, cancellation_timeout=10)
async def run_environment(
    stopped: kopf.DaemonStopped, body: kopf.Body, uid: str, logger: kopf.Logger, **kwargs: Any
) -> None:
    settings = get_settings()
    memory = Memory()
    failures = 0
    fresh: Mapping[str, Any] | None = None  # read after a stale write: newer than kopf's body
    with WAKEUPS.listen(uid) as wake:
        while not stopped:
            wake.clear()
            IDLE.busy()
            current, fresh = fresh or body, None
            meta = current["metadata"]
            if meta.get("deletionTimestamp"):
                return
            target = environment_namespace_name(namespace=meta["namespace"], name=meta["name"], uid=uid,
                                                prefix=settings.namespace_prefix)
            observed = _observed(target, kwargs)
            snapshot = {"metadata": dict(meta), "spec": dict(current.get("spec") or {}),
                        "status": dict(current.get("status") or {})}
            snapshot["metadata"]["uid"] = uid
            indexed = _queue(kwargs, memory.last_status(snapshot["status"]), settings)
            admission = partial(admit_confirmed, summary_of(snapshot), indexed, _listed_environments,
                                settings.max_active_environments, settings.max_active_per_namespace)
            try:
                delay = await asyncio.to_thread(reconcile, snapshot, observed, _kube(), settings, memory, admission,
                                                _store())
                failures = 0
            except StaleView as stale:
                # Changed under this pass (deleted, or written by another
                # replica): nothing was written; go on from the API's copy.
                memory.forget_written()
                try:
                    fresh = stale.current if stale.read else await asyncio.to_thread(
                        _kube().read_environment, namespace=meta["namespace"], name=meta["name"])
                except Exception as exc:  # noqa: BLE001 - unreachable for now: the next pass goes on from kopf's copy
                    logger.warning("environment not read again after a stale write: %s", exc)
                else:
                    if fresh is None or fresh["metadata"].get("uid") != uid:
                        return  # gone, or deleted and made anew under the same name
                delay = STALE_RETRY
            except Exception as exc:  # never crash-loop: report, back off, try again
                failures += 1
                metrics.RECONCILE_ERRORS.inc()
                delay = min(2 ** failures, 60)
                logger.exception("reconcile failed (attempt %d); retrying in %ss", failures, delay)
                kopf.warn(body, reason="ReconcileError", message=f"{exc.__class__.__name__}: {exc}"[:500])
            await _until_woken(wake, stopped, delay)


# How long the delete handler waits on the namespace watch before asking the
# API whether the namespace is still there.
COLLECT_RECHECK_SECONDS = 60


@kopf.on.delete(*TE)
async def collect_on_delete(
    name: str, namespace: str | None, uid: str, body: kopf.Body, status: kopf.Status, **kwargs: Any
) -> None:
    """Delete the environment's namespace; release the finalizer only once it is gone.
    Waits on the namespace index (its watch wakes us), not by polling the API."""
    namespace = _namespaced(namespace)
    namespaces = _index(kwargs, environment_namespaces)
    settings = get_settings()
    target = environment_namespace_name(namespace=namespace, name=name, uid=uid, prefix=settings.namespace_prefix)
    kube = _kube()
    seen = _namespace(namespaces, target)
    # Not in the index may also mean "created a moment ago, not seen yet":
    # unless the run's namespace was collected already, the DELETE itself
    # says whether there is one.
    unknown = seen is None and not was_collected(status)
    if (unknown or (seen and seen.phase != "Terminating")) and await asyncio.to_thread(kube.delete_namespace, target):
        message = f"deleting namespace {target}"
        await asyncio.to_thread(kube.patch_status, namespace=namespace, name=name,
                                status={"phase": "Terminating", "message": message})
        # Named, so that a post tried again after a lost answer is not made twice.
        await asyncio.to_thread(announce, kube, dict(body), type="Normal", reason="Terminating", message=message,
                                name=event_name(name, uid, "Terminating", target))
    with WAKEUPS.listen(uid) as wake:
        await until_gone(wake, present=lambda: target in namespaces, recheck=COLLECT_RECHECK_SECONDS,
                         still_there=partial(asyncio.to_thread, kube.namespace_exists, target))
    # ConfigMaps go with the resource they are owned by; objects in a bucket are ours to delete.
    try:
        await asyncio.to_thread(_store().forget_bucket, Owner(namespace=namespace, name=name, uid=uid))
    except StoreError as exc:
        # Never hold the resource's deletion for a store that is down: say what
        # stays behind, once, though a restart may run this handler again.
        await asyncio.to_thread(announce, kube, dict(body), type="Warning", reason="ResultsNotDeleted",
                                message=f"results left in the bucket: {exc}",
                                name=event_name(name, uid, "ResultsNotDeleted"))
    metrics.forget(uid)
    _wake_waiting(_index(kwargs, environments_by_uid))
