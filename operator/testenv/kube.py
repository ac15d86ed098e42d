"""The only module that talks to the Kubernetes API: server-side apply,
create-once, delete, status patches and the few reads the planner needs."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from urllib3.exceptions import HTTPError as Urllib3Error

from . import models
from .build.copies import SecretRule, config_map_names, secret_names
from .build.services import CopySource, selects
from .diagnose import log_reclaimed
from .plan import ObjectRef
from .wire import apply_body

log = logging.getLogger(__name__)


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    GONE = "gone"  # the resource is not there (any more)
    STALE = "stale"  # it changed since the version the write was based on


@dataclass(frozen=True)
class StatusWrite:
    outcome: WriteOutcome
    resource_version: str | None = None  # the resource's, after a write


class _Unread(Protocol):
    """What a call with `_preload_content=False` returns (urllib3's response),
    whatever the generated method's annotation says."""

    data: bytes


def _json_object(found: object) -> dict[str, Any]:
    """A custom-object answer, which the client types as `object`, as the JSON object it is."""
    if not isinstance(found, dict):
        raise TypeError(f"the API server answered with {type(found).__name__}, not a JSON object")
    return found


# Reconciles run in asyncio's default executor and kopf's sync handlers in
# its own (20 workers); with the client's default pool (5 per CPU) they queue
# for connections and throw them away ("Connection pool is full") under load.
CONNECTION_POOL_SIZE = 32
# For the calls of background tasks, which nothing else would ever time out.
REQUEST_TIMEOUT = (10.0, 60.0)
# A named Event's post, tried again after these pauses (seconds): it runs
# in the reconcile thread, after the status write it announces.
EVENT_RETRY_DELAYS = (0.5, 1.0, 2.0)
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
# A pod's deadline, counted from its start, that every running pod is past
# (the API server lets a deadline be lowered, never raised or removed).
STOP_DEADLINE_SECONDS = 1
# How long a pull Secret read from the operator's namespace is believed: every
# environment's reconcile asks, and a rotated registry token arrives this late.
PULL_SECRET_TTL = 30.0


def event_name(subject: str, *announces: object) -> str:
    """An Event's name from what it announces, kubectl's `<object>.<hex>`
    form: posted twice, the same announcement meets AlreadyExists."""
    key = hashlib.sha256("|".join(map(str, announces)).encode()).hexdigest()[:16]
    return f"{subject[:200]}.{key}"


def announce(kube: Kube, involved: dict[str, Any], *, type: str, reason: str, message: str, name: str) -> None:
    """kube.post_event for an Event that only tells of what was done: a
    failure is logged, never raised, so that what it tells of is not undone."""
    try:
        kube.post_event(involved, type=type, reason=reason, message=message, name=name)
    except Exception:
        meta = involved["metadata"]
        where = "/".join(filter(None, (meta.get("namespace"), meta["name"])))
        log.warning("Event %s about %s %s not posted", reason, involved["kind"], where, exc_info=True)


def load_client() -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return client.ApiClient(configuration)


# Events about cluster-scoped objects (an orphan namespace) need a namespace
# to live in: the operator's own in a cluster, as kopf does, else "default".
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _home_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _pointer(key: str) -> str:
    """A key as one JSON Pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


class Kube:
    def __init__(self, api: client.ApiClient, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._dynamic: DynamicClient | None = None
        # What this process last applied, by object: an unchanged object is not
        # sent again. After a restart the cache is empty and everything is
        # re-applied once, which server-side apply makes harmless.
        self._applied: dict[tuple[str, str, str, str], str] = {}
        self._pull_secrets: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api)
        return self._dynamic

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])

    def apply(self, obj: dict[str, Any]) -> bool:
        """Server-side apply; returns whether a request was sent."""
        key, digest = self._key(obj), _digest(obj)
        with self._lock:
            if self._applied.get(key) == digest:
                return False
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        resource.server_side_apply(
            body=apply_body(obj),  # see wire.py: the client's own JSON is refused
            name=obj["metadata"]["name"],
            namespace=obj["metadata"].get("namespace"),
            field_manager=self.field_manager,
            force_conflicts=True,
        )
        with self._lock:
            self._applied[key] = digest
        return True

    def create_once(self, obj: dict[str, Any]) -> bool:
        """Create unless it exists; never overwrite (a generated password stays)."""
        key = self._key(obj)
        with self._lock:
            if key in self._applied:
                return False
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            resource.create(body=obj, namespace=obj["metadata"].get("namespace"))
        except ApiException as exc:
            if exc.status != 409:
                raise
        with self._lock:
            self._applied[key] = "created"
        return True

    def delete(self, ref: ObjectRef) -> None:
        resource = self.dynamic.resources.get(api_version=ref.api_version, kind=ref.kind)
        try:
            resource.delete(name=ref.name, namespace=ref.namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
        with self._lock:
            self._applied.pop((ref.api_version, ref.kind, ref.namespace, ref.name), None)

    def stop_pod(self, *, namespace: str, name: str) -> bool:
        """Bring a running pod's deadline forward so the kubelet stops it as
        at its own deadline: its containers get their grace, the results
        collector hands over, and the pod stays to be read (a deletion would
        take its logs with it). False when the pod is gone."""
        try:
            self.core.patch_namespaced_pod(name, namespace, {"spec": {"activeDeadlineSeconds": STOP_DEADLINE_SECONDS}},
                                           _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    def delete_namespace(self, name: str) -> bool:
        """False when there was no such namespace (any more)."""
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        finally:
            self.forget_namespace(name)
        return True

    def namespace_exists(self, name: str) -> bool:
        # A list by name needs only the list verb the chart grants already, not get.
        found = self.core.list_namespace(field_selector=f"metadata.name={name}", limit=1)
        return bool(found.items)

    def forget_namespace(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._applied if k[2] == name or (k[1] == "Namespace" and k[3] == name)]:
                del self._applied[key]

    def post_event(self, involved: dict[str, Any], *, type: str, reason: str, message: str,
                   name: str | None = None) -> None:
        """An Event about `involved`. Under a name that says what it announces,
        the post is tried again on a lost connection or an overloaded server:
        a try that landed before its answer was lost meets AlreadyExists, and
        no announcement is made twice (a generated name would make it twice)."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or _home_namespace()
        now = datetime.now(UTC)
        reference = client.V1ObjectReference(api_version=involved["apiVersion"], kind=involved["kind"],
                                             name=meta["name"], uid=meta.get("uid", ""), namespace=namespace)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name, generate_name=None if name else f"{meta['name']}.",
                                         namespace=namespace),
            involved_object=reference,
            type=type,
            reason=reason,
            message=message[:1000],
            source=client.V1EventSource(component=self.field_manager),
            reporting_component=self.field_manager,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        for delay in (*(EVENT_RETRY_DELAYS if name else ()), None):
            try:
                self.core.create_namespaced_event(namespace, event, _request_timeout=REQUEST_TIMEOUT)
                return
            except ApiException as exc:
                if exc.status == 409 and name:
                    return
                if delay is None or exc.status not in RETRIED_STATUSES:
                    raise
            except (Urllib3Error, OSError):
                if delay is None:
                    raise
            time.sleep(delay)

    def environments(self) -> list[dict[str, Any]]:
        """Every TestEnvironment in the cluster, as the API has them now."""
        found = self.custom.list_cluster_custom_object(
            models.GROUP, models.VERSION, models.PLURAL, _request_timeout=REQUEST_TIMEOUT
        )
        return list(_json_object(found).get("items") or [])

    def environment_uids(self) -> set[str]:
        return {item["metadata"]["uid"] for item in self.environments()}

    def cluster_peers(self, peering: str) -> dict[str, Any]:
        """The peers kopf has registered in a ClusterKopfPeering, by identity."""
        found = self.custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", peering, _request_timeout=REQUEST_TIMEOUT
        )
        return dict(_json_object(found).get("status") or {})

    def delete_environment(self, *, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(models.GROUP, models.VERSION, namespace, models.PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(
        self, *, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None,
    ) -> StatusWrite:
        """Write the status; with `resource_version`, only onto that version of
        the resource (optimistic concurrency). An environment whose deletion
        has just finished has no status to write, and that is no error (the
        chaos soak logged 10 such reconcile errors from daemons' last passes)."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            written = self.custom.patch_namespaced_custom_object_status(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, body, _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return StatusWrite(WriteOutcome.GONE)
            if exc.status == 409:
                return StatusWrite(WriteOutcome.STALE)
            raise
        return StatusWrite(WriteOutcome.WRITTEN, _json_object(written)["metadata"].get("resourceVersion"))

    def read_environment(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        """The TestEnvironment as the API server has it now, or None when it is gone."""
        try:
            found = self.custom.get_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL, name, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None
        return _json_object(found)

    def read_copy_source(
        self, *, namespace: str, deployment: str, rule: SecretRule | None = None
    ) -> CopySource | None:
        """The Deployment, the Services selecting it, and what its pod template
        references: every ConfigMap, and the Secrets rule lets the operator
        read (by name; others are not asked for, and not readable)."""
        try:
            source = self.api.sanitize_for_serialization(self.apps.read_namespaced_deployment(deployment, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        services = self.api.sanitize_for_serialization(self.core.list_namespaced_service(namespace).items)
        pod_spec = ((source.get("spec") or {}).get("template") or {}).get("spec") or {}
        config_maps = {name: self._read_or_none(self.core.read_namespaced_config_map, namespace=namespace, name=name)
                       for name in config_map_names(pod_spec)}
        secrets = {}
        if rule is not None:
            secrets = {name: self.read_secret(namespace=namespace, name=name)
                       for name in secret_names(pod_spec) if rule.allows_name(name)}
        return CopySource(deployment=source, services=[s for s in services if selects(s, source)],
                          config_maps=config_maps, secrets=secrets)

    def _read_or_none(self, read: Any, *, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.sanitize_for_serialization(
                read(name, namespace, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None
        meta = found.get("metadata") or {}
        # The resourceVersion names the copies (a changed source, a new copy).
        slim = {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                             "labels": meta.get("labels") or {}, "resourceVersion": meta.get("resourceVersion")}}
        for key in ("type", "data", "binaryData"):
            if found.get(key) is not None:
                slim[key] = found[key]
        return slim

    def read_secret(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret of an allowed source namespace (name, labels, type and data
        only), or None when there is none. Its values are never logged."""
        return self._read_or_none(self.core.read_namespaced_secret, namespace=namespace, name=name)

    def read_pull_secret(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        """A pull Secret of the operator's namespace as read_secret reads it, or
        None when there is none; read at most once per PULL_SECRET_TTL."""
        key, now = (namespace, name), time.monotonic()
        with self._lock:
            cached = self._pull_secrets.get(key)
        if cached is not None and now - cached[0] < PULL_SECRET_TTL:
            return cached[1]
        found = self.read_secret(namespace=namespace, name=name)
        with self._lock:
            self._pull_secrets[key] = (now, found)
        return found

    def service_proxy(
        self,
        *,
        namespace: str,
        service: str,
        port: int,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> Any:
        """A JSON request to a Service's port through the API server's proxy;
        the parsed answer. Raises ApiException on an error status."""
        # param_serialize adds the client's credentials, as every typed call does.
        request = self.api.param_serialize(
            method,
            f"/api/v1/namespaces/{namespace}/services/http:{service}:{port}/proxy{path}",
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=timeout)
        answer = response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(answer)

    def job_pods(self, *, namespace: str, job: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        return self.api.sanitize_for_serialization(pods)

    def container_log(self, *, namespace: str, pod: str, container: str, limit_bytes: int) -> bytes | None:
        """The tail of a container's log as bytes (a log need not be UTF-8):
        its previous instance's after a restart, else its current one (the
        one that just exited, when the kubelet has removed the one before)."""
        for previous in (True, False):
            try:
                response = self.core.read_namespaced_pod_log(
                    pod, namespace, container=container, previous=previous, limit_bytes=limit_bytes,
                    tail_lines=200, _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
                )
            except ApiException:
                continue  # no previous instance (400), a fake (KWOK) or vanished pod
            data = cast(_Unread, response).data
            if not log_reclaimed(data):
                return data
        return None

    def read_log(
        self, *, namespace: str, pod: str, container: str, tail_lines: int | None = None, previous: bool = False,
    ) -> bytes:
        """A container's log (its last tail_lines), as bytes; raises ApiException."""
        response = self.core.read_namespaced_pod_log(
            pod, namespace, container=container, tail_lines=tail_lines, previous=previous,
            _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
        )
        return cast(_Unread, response).data

    def upsert_config_map(self, body: dict[str, Any], owner_label: tuple[str, str]) -> None:
        """Create the ConfigMap, or add its keys to the one there, only if
        that one carries owner_label (else 422): keys are only added or
        replaced, so writers of different keys (a run's index entries) never
        undo each other, and a ConfigMap of someone else's is never taken."""
        meta = body["metadata"]
        try:
            self.core.create_namespaced_config_map(meta["namespace"], cast(Any, body),
                                                   _request_timeout=REQUEST_TIMEOUT)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        label, value = owner_label
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": f"/metadata/labels/{_pointer(label)}", "value": value}]
        for field_name in ("data", "binaryData"):
            for key, item in (body.get(field_name) or {}).items():
                ops.append({"op": "add", "path": f"/{field_name}/{_pointer(key)}", "value": item})
        self.core.patch_namespaced_config_map(meta["name"], meta["namespace"], cast(Any, ops),
                                              _request_timeout=REQUEST_TIMEOUT)

    def delete_config_maps(self, *, namespace: str, selector: str) -> None:
        self.core.delete_collection_namespaced_config_map(
            namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT)

    def log_tail(self, *, namespace: str, pod: str, lines: int = 20) -> str:
        try:
            tail = self.core.read_namespaced_pod_log(pod, namespace, tail_lines=lines) or ""
        except ApiException:
            return ""  # a fake (KWOK) or vanished pod has no logs; the Event says so
        return "" if log_reclaimed(tail.encode()) else tail
