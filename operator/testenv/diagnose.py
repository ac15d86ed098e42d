"""Why a component, seed or suite does not come up: a pure mapping from its
pods' observed states (and its controller's Warning Events) to one reason a
user can act on. No API calls here: pods and Events come in as the API's dicts.

Permanence says whether waiting longer can help. Some causes are final at
once (an invalid image name, a Pod Security rejection); some only after a
grace period the caller chooses (an image that may be pushed later, a Secret
that may be created, a node that may be added).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from .build.common import LABEL_COMPONENT, LABEL_ENV_UID, LABEL_KIND, LABEL_RUN
from .build.jobs import job_name

MAX_MESSAGE = 500
MAX_LOG_LINES = 5
MAX_LOG_LINE = 160
# Only the tail of a log is read; a secret cannot straddle the cut because
# the partial first line is dropped.
MAX_LOG_BYTES = 64 * 1024
# Shorter values would redact ordinary words; no real secret is this short.
MIN_SECRET_LENGTH = 4
# A container that has exited this often is crash-looping for good, not
# waiting once for something that was late.
CRASH_LOOP_RESTARTS = 3
DEFAULT_GRACE = timedelta(minutes=2)
REDACTED = "***"


class Reason(StrEnum):
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"  # ErrImagePull too: the two alternate
    START_ERROR = "StartError"
    OOM_KILLED = "OOMKilled"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    CONTAINER_FAILED = "ContainerFailed"  # a seed's container that exited non-zero
    POD_SECURITY_REJECTED = "PodSecurityRejected"
    LIMIT_RANGE_REJECTED = "LimitRangeRejected"
    QUOTA_EXCEEDED = "QuotaExceeded"
    FAILED_CREATE = "FailedCreate"  # any other refusal (an admission webhook, ...)
    UNSCHEDULABLE = "Unschedulable"
    READINESS_PROBE_FAILED = "ReadinessProbeFailed"
    APPLY_REJECTED = "ApplyRejected"  # the API server refused an object (a webhook, a full Service range)


# Most telling first: when an owner's pods show several causes, a cause that
# explains the others (a missing Secret explains a pod that never gets ready).
_RANK = {reason: rank for rank, reason in enumerate(Reason)}


@dataclass(frozen=True)
class Diagnosis:
    reason: Reason
    message: str  # capped at MAX_MESSAGE, secrets redacted
    permanent: bool  # waiting longer will not help
    since: str | None  # when the cause began, as far as the pod or Event tells
    _: KW_ONLY
    pod: str  # "" for a pod that could not be created
    container: str | None = None
    image: str | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class PodOwner:
    """What the operator made a pod for: a component (a Deployment's pods) or
    one run of a seed or suite (a Job's pods)."""

    kind: str  # "datastore", "stub", "service", "seed" or "test"
    name: str
    run: int | None = None  # seeds and suites only

    @property
    def workload(self) -> str:
        """The name of the Deployment or Job behind the pods."""
        return self.name if self.run is None else job_name(self.name, self.run)


def pod_owner(pod: Mapping[str, Any]) -> PodOwner | None:
    """The owner by the operator's labels; None for a pod that is not ours."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    kind, name = labels.get(LABEL_KIND), labels.get(LABEL_COMPONENT)
    if not kind or not name:
        return None
    run = labels.get(LABEL_RUN)
    try:
        return PodOwner(kind=kind, name=name, run=int(run) if run is not None else None)
    except ValueError:
        return None


def pods_by_owner(pods: Iterable[Mapping[str, Any]], env_uid: str | None = None) -> dict[PodOwner, list[dict[str, Any]]]:
    """Pods grouped by owner; pods of other environments (by uid, when given)
    and pods without our labels are left out."""
    grouped: dict[PodOwner, list[dict[str, Any]]] = {}
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if env_uid is not None and labels.get(LABEL_ENV_UID) != env_uid:
            continue
        owner = pod_owner(pod)
        if owner is not None:
            grouped.setdefault(owner, []).append(dict(pod))
    return grouped


def diagnose_pods(
    pods: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]] = (),
    *,
    now: datetime,
    owner: PodOwner | None = None,
    grace: timedelta = DEFAULT_GRACE,
    previous_logs: Mapping[str, str | bytes] | None = None,
    secrets: Iterable[str] = (),
) -> Diagnosis | None:
    """The most telling reason among one owner's pods, or None when nothing is wrong.

    `events` are Warning Events of the owner's ReplicaSet or Job (FailedCreate)
    and of its pods (Unhealthy, Failed); with `owner`, pods and controller
    Events of anything else are ignored. `previous_logs` maps "<pod>/<container>"
    to the previous container's log (the caller fetches it after a first call
    named the pod and container). Values of the pods' secretKeyRef env vars and
    `secrets` never appear in a message.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    pods = [p for p in pods if owner is None or pod_owner(p) == owner]
    pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    events = [e for e in events if (e.get("type") or "Warning") == "Warning"]
    redactor = _Redactor(secrets, pods)
    context = _Context(now=now, grace=grace, logs=previous_logs or {}, events=events, redactor=redactor)
    found: list[Diagnosis] = []
    for pod in pods:
        found.extend(_pod_diagnoses(pod, context))
    found.extend(_failed_create(events, pods, owner, context))
    if not found:
        return None
    best = min(found, key=lambda d: (not d.permanent, _RANK[d.reason], d.pod, d.container or ""))
    return replace(best, message=_cap(redactor.redact(best.message), MAX_MESSAGE))


def diagnose_owners(
    owners: Iterable[PodOwner],
    pods: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]] = (),
    *,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    previous_logs: Mapping[str, str | bytes] | None = None,
) -> dict[PodOwner, Diagnosis]:
    """The reason of each of `owners` that has one. Owners are given (not
    taken from the pods) because a quota or admission refusal leaves an owner
    without any pod; pods and Events of anything else are ignored."""
    pods, events = list(pods), list(events)
    found = {}
    for owner in owners:
        diagnosis = diagnose_pods(pods, events, now=now, owner=owner, grace=grace, previous_logs=previous_logs)
        if diagnosis is not None:
            found[owner] = diagnosis
    return found


def wants_log(diagnosis: Diagnosis) -> bool:
    """A reason that reads better with the container's last log lines."""
    return bool(diagnosis.pod and diagnosis.container) and diagnosis.reason in (
        Reason.CRASH_LOOP_BACK_OFF, Reason.OOM_KILLED, Reason.CONTAINER_FAILED)


def grace_ends(diagnosis: Diagnosis, grace: timedelta) -> datetime | None:
    """When a cause that may still fix itself is taken as final; None when
    it is final already or its start is unknown (then a later change of
    the pod or its Events tells)."""
    started = _parse_time(diagnosis.since)
    if diagnosis.permanent or started is None:
        return None
    return started + grace


def rejected_apply(
    kind: str, name: str, message: str, *, since: datetime, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> Diagnosis:
    """An object of the owner that the API server keeps refusing, in its words
    (an admission webhook may be fixed, a Service range may free up: final
    only after the grace period)."""
    text = _Redactor((), []).redact(_clean(message)) or "no reason given"
    return Diagnosis(Reason.APPLY_REJECTED, _cap(f'{kind} "{name}" was rejected by the API server: {text}', MAX_MESSAGE),
                     permanent=now - since >= grace, since=since.strftime("%Y-%m-%dT%H:%M:%SZ"), pod="")


def log_key(*, pod: str, container: str) -> str:
    """The key of a container's previous log in `previous_logs`."""
    return f"{pod}/{container}"


# The kubelet keeps one dead container per container: asked for one it has
# already removed (`previous` while the pod shows Error, the next crash
# already recorded), it answers 200 with this notice for a body.
_LOG_RECLAIMED = re.compile(rb"unable to retrieve container logs for \S+\s*")


def log_reclaimed(body: bytes) -> bool:
    """Whether a log read is the kubelet's notice of a removed container, not a log."""
    return _LOG_RECLAIMED.fullmatch(body) is not None


# --- pods --------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    now: datetime
    grace: timedelta
    logs: Mapping[str, str | bytes]
    events: list[Mapping[str, Any]]
    redactor: _Redactor

    def past_grace(self, since: str | None) -> bool:
        started = _parse_time(since)
        return started is not None and self.now - started >= self.grace


def _pod_diagnoses(pod: Mapping[str, Any], ctx: _Context) -> list[Diagnosis]:
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    name = meta.get("name", "")
    kind = ((meta.get("labels") or {}).get(LABEL_KIND)) or ""
    started = status.get("startTime") or meta.get("creationTimestamp")
    found: list[Diagnosis] = []
    scheduled = _condition(status, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        since = scheduled.get("lastTransitionTime") or started
        found.append(
            Diagnosis(Reason.UNSCHEDULABLE,
                      f'pod "{name}" cannot be scheduled: {_clean(scheduled.get("message") or "no node fits")}',
                      permanent=ctx.past_grace(since), since=since, pod=name)
        )
    specs = {c.get("name"): c for c in ((pod.get("spec") or {}).get("initContainers") or [])
             + ((pod.get("spec") or {}).get("containers") or [])}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        spec = specs.get(container.get("name")) or {}
        diagnosis = _container_diagnosis(pod=pod, container=container, spec=spec, kind=kind, started=started, ctx=ctx)
        if diagnosis is not None:
            found.append(diagnosis)
    return found


def _container_diagnosis(
    *,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    spec: Mapping[str, Any],
    kind: str,
    started: str | None,
    ctx: _Context,
) -> Diagnosis | None:
    pod_name = (pod.get("metadata") or {}).get("name", "")
    name = container.get("name", "")
    image = spec.get("image") or container.get("image")
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = (container.get("lastState") or {}).get("terminated") or {}
    restarts = container.get("restartCount") or 0
    where = dict(pod=pod_name, container=name, image=image)
    reason = waiting.get("reason")

    if reason == "InvalidImageName":
        return Diagnosis(Reason.INVALID_IMAGE_NAME,
                         f'container "{name}" has an invalid image name "{image}": {_clean(waiting.get("message"))}',
                         permanent=True, since=started, **where)
    if reason in _PULL_FAILURES:
        detail = _pull_error(waiting.get("message") or "", image, pod_name, ctx.events)
        return Diagnosis(Reason.IMAGE_PULL_BACK_OFF,
                         f'container "{name}" cannot pull image "{image}": {detail}',
                         permanent=ctx.past_grace(started), since=started, **where)
    if reason == "CreateContainerConfigError":
        message = waiting.get("message") or ""
        # A missing Secret may be created in a moment; the image's user will not change.
        final = "runAsNonRoot" in message or ctx.past_grace(started)
        return Diagnosis(Reason.CREATE_CONTAINER_CONFIG_ERROR,
                         f'container "{name}" cannot start: {_config_error(message)}',
                         permanent=final, since=started, **where)
    if reason == "RunContainerError":  # the runtime could not start the command
        return Diagnosis(Reason.START_ERROR,
                         f'container "{name}" could not start: {_clean(waiting.get("message"))}',
                         permanent=True, since=started, **where)
    if reason == "CreateContainerError":
        return Diagnosis(Reason.CREATE_CONTAINER_ERROR,
                         f'container "{name}" cannot be created: {_clean(waiting.get("message"))}',
                         permanent=ctx.past_grace(started), since=started, **where)

    # What ended last: the running attempt's predecessor, or the attempt that just ended.
    ended = terminated or last
    exit_code = ended.get("exitCode")
    code = "unknown" if exit_code is None else exit_code
    if ended and ended.get("reason") in ("StartError", "ContainerCannotRun"):
        return Diagnosis(Reason.START_ERROR,
                         f'container "{name}" could not start (exit code {code}): {_clean(ended.get("message"))}',
                         permanent=True, since=ended.get("finishedAt") or started, exit_code=exit_code, **where)
    pod_failed = (pod.get("status") or {}).get("phase") == "Failed"
    restarting = reason == "CrashLoopBackOff" or (restarts > 0 and bool(last))
    if ended and ended.get("reason") == "OOMKilled" and (restarting or pod_failed):
        limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
        text = f'container "{name}" ran out of memory (OOMKilled, exit code {code}'
        text += f", memory limit {limit})" if limit else ")"
        text += f", restarted {restarts} times" if restarts else ""
        return Diagnosis(Reason.OOM_KILLED, text + _log_tail(ctx, ended, pod=pod_name, container=name),
                         permanent=pod_failed or restarts >= CRASH_LOOP_RESTARTS,
                         since=started, exit_code=exit_code, **where)
    if restarting and not container.get("ready"):
        text = (f'container "{name}" keeps exiting: exit code {code} ({ended.get("reason") or "Error"}), '
                f"restarted {restarts} times")
        text += _probe_hint(ctx.events, "Liveness", "Startup", pod=pod_name, container=name)
        return Diagnosis(Reason.CRASH_LOOP_BACK_OFF, text + _log_tail(ctx, ended, pod=pod_name, container=name),
                         permanent=restarts >= CRASH_LOOP_RESTARTS, since=started, exit_code=exit_code, **where)
    # A failing test is the suite's result, not a reason: only seeds say how they ended.
    if pod_failed and terminated and exit_code not in (None, 0) and kind == "seed":
        text = f'container "{name}" failed: exit code {exit_code} ({terminated.get("reason") or "Error"})'
        return Diagnosis(Reason.CONTAINER_FAILED, text + _log_tail(ctx, terminated, pod=pod_name, container=name),
                         permanent=False, since=terminated.get("finishedAt") or started, exit_code=exit_code,
                         **where)
    running = state.get("running") or {}
    if running and not container.get("ready"):
        since = running.get("startedAt") or started
        probe = _probe_message(ctx.events, "Readiness", pod=pod_name, container=name, after=since)
        if probe is None and (spec.get("readinessProbe") is None or not ctx.past_grace(since)):
            return None  # still starting up, and no probe has failed yet
        text = f'container "{name}" is running but not ready'
        text += f": {probe}" if probe else f" since {since}"
        return Diagnosis(Reason.READINESS_PROBE_FAILED, text, permanent=ctx.past_grace(since), since=since,
                         **where)
    return None


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable")
_RPC_PREFIX = re.compile(r"rpc error: code = \w+ desc = ")
_BACK_OFF = re.compile(r'^Back-off pulling image "[^"]*"(: )?(ErrImagePull: )?')


def _pull_error(message: str, image: str | None, pod: str, events: list[Mapping[str, Any]]) -> str:
    """The registry's words: kubelets before 1.30 say only "Back-off pulling
    image" in the waiting state; then the pod's last "Failed" Event has them."""
    detail = _RPC_PREFIX.sub("", _BACK_OFF.sub("", message)).strip()
    if not detail:
        failed = [e for e in _pod_events(events, pod=pod, container=None)
                  if e.get("reason") == "Failed" and "pull" in _event_message(e).lower()]
        if failed:
            latest = max(failed, key=_event_last_seen)
            detail = _RPC_PREFIX.sub("", _event_message(latest)).strip()
    return _clean(detail) or "the image could not be pulled"


_MISSING_OBJECT = re.compile(r'^(secret|configmap) "([^"]+)" not found$', re.IGNORECASE)
_MISSING_KEY = re.compile(r"^couldn't find key (\S+) in (Secret|ConfigMap) ([^/\s]+)/(\S+)$")
_KINDS = {"secret": "Secret", "configmap": "ConfigMap"}


def _config_error(message: str) -> str:
    """The kubelet's message, said as what is missing."""
    text = _clean(message)
    if match := _MISSING_OBJECT.match(text):
        return f'{_KINDS[match.group(1).lower()]} "{match.group(2)}" not found'
    if match := _MISSING_KEY.match(text):
        key, kind, _namespace, obj = match.groups()
        return f'{kind} "{obj}" has no key "{key}"'
    return text or "its configuration is invalid"


def _log_tail(ctx: _Context, ended: Mapping[str, Any], *, pod: str, container: str) -> str:
    """The previous container's last log lines, or its termination message."""
    text = ctx.logs.get(log_key(pod=pod, container=container))
    source = "last log lines"
    if text is None:
        text, source = ended.get("message"), "termination message"
    lines = _last_lines(text, ctx.redactor)
    return f"; {source}: " + " | ".join(lines) if lines else ""


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _last_lines(text: str | bytes | None, redactor: _Redactor) -> list[str]:
    if not text:
        return []
    if isinstance(text, str):
        text = text.encode("utf-8", errors="replace")
    cut = len(text) > MAX_LOG_BYTES
    text = text[-MAX_LOG_BYTES:].decode("utf-8", errors="replace")
    lines = text.splitlines()
    if cut:
        lines = lines[1:]  # the partial first line
    # Redacted whole, then cut: a cut could leave the head of a secret unrecognised.
    cleaned = [_cap(redactor.redact(_clean(line)), MAX_LOG_LINE) for line in lines]
    return [line for line in cleaned if line][-MAX_LOG_LINES:]


def _clean(text: str | None) -> str:
    text = _ANSI.sub("", text or "")
    return " ".join(_CONTROL.sub(" ", text).split())


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- events ------------------------------------------------------------------


def _event_message(event: Mapping[str, Any]) -> str:
    return event.get("message") or event.get("note") or ""


def _involved(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event.get("involvedObject") or event.get("regarding") or {}


def _event_last_seen(event: Mapping[str, Any]) -> datetime:
    """Event times come in several fields over API versions; the latest wins."""
    candidates = [
        event.get("lastTimestamp"),
        event.get("deprecatedLastTimestamp"),
        (event.get("series") or {}).get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ]
    return max((_parse_time(c) or _EPOCH for c in candidates), default=_EPOCH)


def _event_first_time(event: Mapping[str, Any]) -> str | None:
    return (event.get("firstTimestamp") or event.get("deprecatedFirstTimestamp") or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp"))


def _pod_events(events: list[Mapping[str, Any]], *, pod: str, container: str | None) -> list[Mapping[str, Any]]:
    found = []
    for event in events:
        obj = _involved(event)
        if obj.get("kind") != "Pod" or obj.get("name") != pod:
            continue
        if container is not None and obj.get("fieldPath") not in (None, f"spec.containers{{{container}}}",
                                                                    f"spec.initContainers{{{container}}}"):
            continue
        found.append(event)
    return found


def _probe_message(
    events: list[Mapping[str, Any]], *probes: str, pod: str, container: str, after: str | None = None
) -> str | None:
    """The latest failure of one of `probes`, seen since `after` (an earlier
    container's failures say nothing about this one)."""
    since = _parse_time(after) or _EPOCH
    prefixes = tuple(f"{p} probe" for p in probes)
    failing = [e for e in _pod_events(events, pod=pod, container=container)
               if e.get("reason") == "Unhealthy" and _event_message(e).startswith(prefixes)
               and _event_last_seen(e) >= since]
    if not failing:
        return None
    return _clean(_event_message(max(failing, key=_event_last_seen)))


def _probe_hint(events: list[Mapping[str, Any]], *probes: str, pod: str, container: str) -> str:
    message = _probe_message(events, *probes, pod=pod, container=container)
    return f"; {message}" if message else ""


_FORBIDDEN = re.compile(r'^Error creating: pods( "[^"]*")? is forbidden: ')
_LIMIT_RANGE = re.compile(r"(maximum|minimum) \S+ usage per (Container|Pod)|LimitRange", re.IGNORECASE)


def _failed_create(
    events: list[Mapping[str, Any]], pods: list[Mapping[str, Any]], owner: PodOwner | None, ctx: _Context
) -> list[Diagnosis]:
    """The controller's refusals: pods the API server would not create."""
    newest_pod = max((_parse_time((p.get("metadata") or {}).get("creationTimestamp")) or _EPOCH for p in pods),
                     default=_EPOCH)
    found = []
    for event in events:
        obj = _involved(event)
        if event.get("reason") != "FailedCreate" or obj.get("kind") not in ("ReplicaSet", "Job"):
            continue
        if owner is not None and not _controls(obj, owner):
            continue
        if _event_last_seen(event) < newest_pod:
            continue  # a pod was created since: the refusal is over
        message = _clean(_event_message(event))
        detail = _FORBIDDEN.sub("", message)
        since = _event_first_time(event)
        if "violates PodSecurity" in detail:
            reason, permanent = Reason.POD_SECURITY_REJECTED, True
        elif "exceeded quota" in detail:
            # Pods of the environment that finish free the quota again.
            reason, permanent = Reason.QUOTA_EXCEEDED, ctx.past_grace(since)
        elif _LIMIT_RANGE.search(detail):
            reason, permanent = Reason.LIMIT_RANGE_REJECTED, True
        else:
            reason, permanent = Reason.FAILED_CREATE, ctx.past_grace(since)
        found.append(Diagnosis(reason, f'{obj.get("kind")} "{obj.get("name")}" cannot create pods: {detail}',
                               permanent=permanent, since=since, pod=""))
    return found


def _controls(obj: Mapping[str, Any], owner: PodOwner) -> bool:
    """A Job by its name; a Deployment's ReplicaSet is "<deployment>-<hash>"."""
    name = obj.get("name") or ""
    if obj.get("kind") == "Job":
        return owner.run is not None and name == owner.workload
    return owner.run is None and name.rsplit("-", 1)[0] == owner.workload


# --- time and secrets ----------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_SECRET_WORDS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
_SECRET_ASSIGNMENT = re.compile(
    rf"""(?ix)
    (\b[\w.-]*{_SECRET_WORDS}[\w.-]*        # a secret-looking name
     (?:\s*=\s*|:\s+|["']\s*:\s*)["']?)    # = or ": " (not "secret-app:1.0", an image)
    ([^\s"',;&]+)                           # its value
    """
)
_SECRET_NAME = re.compile(_SECRET_WORDS, re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^/\s:@]*):([^/\s@]+)@", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer|basic)(\s+)[\w.~+/=-]+", re.IGNORECASE)


def redacts(var: Mapping[str, Any]) -> bool:
    """Whether a container's env var gives the redactor something to remove:
    it is read from a Secret, or has a secret-looking name and a literal value."""
    name = var.get("name") or ""
    if not name:
        return False
    if (var.get("valueFrom") or {}).get("secretKeyRef"):
        return True
    return bool(_SECRET_NAME.search(name)) and len(var.get("value") or "") >= MIN_SECRET_LENGTH


class _Redactor:
    """Removes what may be a secret: the caller's values, the values of env
    vars read from Secrets (as `NAME=value` in a log), literal values of
    secret-looking env vars, `password=...` pairs, passwords in URLs and
    Authorization credentials."""

    def __init__(self, secrets: Iterable[str], pods: list[Mapping[str, Any]]) -> None:
        values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        names: set[str] = set()
        for pod in pods:
            spec = pod.get("spec") or {}
            for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                for var in container.get("env") or []:
                    if not redacts(var):
                        continue
                    if (var.get("valueFrom") or {}).get("secretKeyRef"):
                        names.add(var["name"])
                    else:
                        values.add(var["value"])
        self._values = sorted(values, key=len, reverse=True)
        alternatives = "|".join(re.escape(n) for n in sorted(names))
        self._by_name = re.compile(rf"""\b({alternatives})(["']?\s*[=:]\s*["']?)([^\s"',;&]+)""") if names else None

    def redact(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        if self._by_name is not None:
            text = self._by_name.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + ":" + REDACTED + "@", text)
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        return _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, text)
