"""kopf wiring: indexes of the children, wake-ups on their changes, one
event-driven loop per TestEnvironment, and the finalizer. Kept thin: the
work is in reconcile.py and plan.py."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from . import metrics, models
from .admission import WAITING, EnvSummary, admit
from .build.common import (
    LABEL_ENV_UID,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    environment_namespace_name,
)
from .kube import Kube, load_client
from .observe import Observed, job, workload
from .reconcile import Memory, reconcile
from .settings import get_settings

log = logging.getLogger(__name__)
OURS = {LABEL_MANAGED_BY: MANAGED_BY}
FINALIZER = "testenv.dev/cleanup"
TE = (models.GROUP, models.VERSION, models.PLURAL)


class Wakeups:
    """One asyncio.Event per environment, set whenever something it owns changes."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def wake(self, uid: str | None) -> None:
        if uid and uid in self._events:
            self._events[uid].set()

    def wake_all(self) -> None:
        for event in self._events.values():
            event.set()

    def forget(self, uid: str) -> None:
        self._events.pop(uid, None)


WAKEUPS = Wakeups()
_state: dict[str, Any] = {}


def _kube() -> Kube:
    if "kube" not in _state:
        _state["kube"] = Kube(load_client(), get_settings().field_manager)
    return _state["kube"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="testenv.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="testenv.dev", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our Events are posted explicitly
    # kopf logs every handled watch event at INFO; children change often.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 20
    port = int(os.environ.get("TESTENV_METRICS_PORT", "0") or 0)
    if port:
        metrics.serve(port)


@kopf.on.cleanup()
def wake_everyone(**_: Any) -> None:
    WAKEUPS.wake_all()


# --- what the environments own, indexed by namespace --------------------------


@kopf.index("apps", "v1", "deployments", labels=OURS)
def workloads_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {namespace: workload(body)}


@kopf.index("batch", "v1", "jobs", labels=OURS)
def jobs_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {namespace: job(body)}


@kopf.index("", "v1", "namespaces", labels=OURS)
def environment_namespaces(name: str, body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, Any]:
    phase = "Terminating" if body.metadata.get("deletionTimestamp") else (body.get("status") or {}).get("phase", "Active")
    return {name: (phase, labels.get(LABEL_ENV_UID))}


@kopf.on.event("apps", "v1", "deployments", labels=OURS)
@kopf.on.event("batch", "v1", "jobs", labels=OURS)
@kopf.on.event("", "v1", "namespaces", labels=OURS)
def wake_owner(labels: kopf.Labels, **_: Any) -> None:
    WAKEUPS.wake(labels.get(LABEL_ENV_UID))


@kopf.index(*TE)
def environments_by_uid(
    uid: str, name: str, namespace: str, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[str, Any]:
    summary = EnvSummary(uid, namespace, name, meta.get("creationTimestamp", ""), status.get("phase", ""))
    return {uid: summary}


def _wake_waiting(environments: kopf.Index) -> None:
    """A slot may have freed: let queued environments look again."""
    for _, store in environments.items():
        for summary in store:
            if summary.phase in WAITING:
                WAKEUPS.wake(summary.uid)


@kopf.on.event(*TE)
def wake_self(uid: str, status: kopf.Status, environments_by_uid: kopf.Index, **_: Any) -> None:
    WAKEUPS.wake(uid)
    settings = get_settings()
    if settings.max_active_environments or settings.max_active_per_namespace:
        # Any change of another environment can change a queued one's place.
        _wake_waiting(environments_by_uid)


@kopf.timer("", "v1", "namespaces", labels=OURS, interval=get_settings().orphan_sweep_interval_seconds)
def sweep_orphan(
    name: str, labels: kopf.Labels, body: kopf.Body, environments_by_uid: kopf.Index, logger: logging.Logger, **_: Any
) -> None:
    """An environment namespace whose TestEnvironment (by uid) is gone is an orphan."""
    uid = labels.get(LABEL_ENV_UID)
    if uid in environments_by_uid or body.metadata.get("deletionTimestamp"):
        return
    owner = f"{labels.get('testenv.dev/environment-namespace')}/{labels.get('testenv.dev/environment')}"
    why = f"orphaned: its TestEnvironment {owner} (uid {uid}) no longer exists"
    if get_settings().orphan_sweep_dry_run:
        logger.warning("would delete namespace %s (dry run): %s", name, why)
        return
    logger.warning("deleting namespace %s: %s", name, why)
    kopf.warn(body, reason="OrphanCollected", message=why)
    _kube().delete_namespace(name)
    metrics.collected(reason="Orphan")


def _observed(target: str, workloads: kopf.Index, jobs: kopf.Index, namespaces: kopf.Index) -> Observed:
    ns = next(iter(namespaces.get(target, [])), None)
    return Observed(
        namespace_phase=ns[0] if ns else None,
        workloads={w.name: w for w in workloads.get(target, [])},
        jobs={j.name: j for j in jobs.get(target, [])},
    )


# --- one loop per environment ------------------------------------------------------


async def _until_woken(wake: asyncio.Event, stopped: kopf.DaemonStopped, timeout: float | None) -> None:
    async def on_stop() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(on_stop())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@kopf.daemon(*TE, cancellation_timeout=10)
async def run_environment(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    uid: str,
    logger: logging.Logger,
    workloads_by_namespace: kopf.Index,
    jobs_by_namespace: kopf.Index,
    environment_namespaces: kopf.Index,
    environments_by_uid: kopf.Index,
    **_: Any,
) -> None:
    settings = get_settings()
    wake = WAKEUPS.event(uid)
    memory = Memory()
    failures = 0
    while not stopped:
        wake.clear()
        if body.metadata.get("deletionTimestamp"):
            return
        meta = body.metadata
        target = environment_namespace_name(meta["name"], meta["namespace"], uid, settings.namespace_prefix)
        observed = _observed(target, workloads_by_namespace, jobs_by_namespace, environment_namespaces)
        snapshot = {"metadata": dict(meta), "spec": dict(body.spec), "status": dict(body.status)}
        snapshot["metadata"]["uid"] = uid
        me = EnvSummary(
            uid, meta["namespace"], meta["name"], meta.get("creationTimestamp", ""), body.status.get("phase", "")
        )
        everyone = [summary for _, store in environments_by_uid.items() for summary in store]
        admission = admit(me, everyone, settings.max_active_environments, settings.max_active_per_namespace)
        try:
            delay = await asyncio.to_thread(reconcile, snapshot, observed, _kube(), settings, memory, admission)
            failures = 0
        except Exception as exc:  # never crash-loop: report, back off, try again
            failures += 1
            metrics.RECONCILE_ERRORS.inc()
            delay = min(2 ** failures, 60)
            logger.exception("reconcile failed (attempt %d); retrying in %ss", failures, delay)
            kopf.warn(body, reason="ReconcileError", message=f"{exc.__class__.__name__}: {exc}"[:500])
        await _until_woken(wake, stopped, delay)
    WAKEUPS.forget(uid)


@kopf.on.delete(*TE)
def collect_on_delete(
    name: str, namespace: str, uid: str, body: kopf.Body, status: kopf.Status, environments_by_uid: kopf.Index,
    **_: Any,
) -> None:
    """Delete the environment's namespace; release the finalizer only once it is gone."""
    settings = get_settings()
    target = environment_namespace_name(name, namespace, uid, settings.namespace_prefix)
    kube = _kube()
    phase = kube.namespace_phase(target)
    if phase is not None:
        if phase != "Terminating":  # one delete; the retries below only wait
            message = f"deleting namespace {target}"
            kube.patch_status(namespace, name, {"phase": "Terminating", "message": message})
            kopf.event(body, type="Normal", reason="Terminating", message=message)
            kube.delete_namespace(target)
        raise kopf.TemporaryError(f"waiting for namespace {target} to be deleted", delay=2)
    metrics.forget(uid)
    _wake_waiting(environments_by_uid)
