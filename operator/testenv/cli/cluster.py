"""The CLI's only door to the cluster: which kubeconfig and context, the
TestEnvironment calls (server-side apply, get, list, delete, watch), the pods
and logs of a suite, and API failures turned into errors that say what to do.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from .. import models
from ..build.common import LABEL_ENV_UID, LABEL_RUN
from ..results import CHUNKS_ANNOTATION, INDEX_LABEL, SHA_ANNOTATION, body_names
from ..wire import apply_body

FIELD_MANAGER = "testenv-cli"
DEFAULT_KUBECONFIG = "~/.kube/config"
RESOURCE = f"{models.PLURAL}.{models.GROUP}"
# Short calls; a watch sets its own (long) read timeout.
REQUEST_TIMEOUT = (10.0, 60.0)
WATCH_WINDOW = 300  # seconds per watch request; the server ends it, we reconnect
# Kept results: an archive is at most 7 MiB (it travelled through a log),
# in chunks of 900 KiB.
MAX_FETCH = 8 * 1024 * 1024
MAX_CHUNKS = 10

T = TypeVar("T")
_RAISE: Any = object()  # Environments._call without `missing`: a 404 is an error


class CliError(Exception):
    """A failure to show a person: what went wrong and what to do. Exit code 2 unless said otherwise."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Connection:
    api: client.ApiClient
    source: str  # where the configuration came from, for messages
    server: str
    namespace: str  # the context's namespace: the default for -n
    fix: str  # how to check or change the connection

    def describe(self) -> str:
        return f"{self.server} ({self.source})"


def _kubeconfig_paths(explicit: str | None) -> tuple[list[str], str]:
    if explicit:
        return [explicit], f"--kubeconfig {explicit}"
    if os.environ.get("KUBECONFIG"):
        value = os.environ["KUBECONFIG"]
        return [p for p in value.split(os.pathsep) if p], f"KUBECONFIG={value}"
    return [DEFAULT_KUBECONFIG], f"the default kubeconfig {DEFAULT_KUBECONFIG}"


def connect(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """Load --kubeconfig, else KUBECONFIG, else ~/.kube/config; in a pod, the service account."""
    paths, origin = _kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if Path(p).expanduser().is_file()]
    configuration = client.Configuration()
    if not existing:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException as exc:
                raise CliError(f"cannot use the in-cluster service account: {exc}") from None
            configuration.retries = 1
            namespace_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            namespace = namespace_file.read_text().strip() if namespace_file.is_file() else "default"
            return Connection(client.ApiClient(configuration), "in-cluster service account", configuration.host,
                              namespace, "check the pod's service account and its RBAC")
        raise CliError(
            f"no cluster configured: {origin} does not exist and this is not running inside a cluster.\n"
            "Point KUBECONFIG or --kubeconfig at your cluster's kubeconfig (for a kind cluster: "
            "`kind export kubeconfig`; for the local test bed: `make cluster` writes .cluster/kubeconfig)."
        )
    config_file = os.pathsep.join(str(Path(p).expanduser()) for p in existing)
    try:
        contexts, active = config.list_kube_config_contexts(config_file=config_file)
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if context and chosen is None:
            names = ", ".join(c["name"] for c in contexts) or "none"
            raise CliError(f"context {context!r} is not in {origin} (contexts: {names}); pick one with --context")
        config.load_kube_config(config_file=config_file, context=context, client_configuration=configuration)
    except ConfigException as exc:
        raise CliError(f"cannot use {origin}: {exc}\n"
                       "Fix the file, or choose another with --kubeconfig/--context.") from None
    # Fail fast when the server is down instead of retrying quietly.
    configuration.retries = 1
    context_name = (chosen or {}).get("name", "?")
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    source = f"context {context_name} from {origin}"
    fix = f"`kubectl --kubeconfig {config_file} --context {context_name} cluster-info`"
    return Connection(client.ApiClient(configuration), source, configuration.host, namespace, fix)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("timed out", "timed out"),
        ("CERTIFICATE_VERIFY_FAILED", "the server's TLS certificate is not trusted"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return short
    return text


@dataclass(frozen=True)
class JobPod:
    """A pod of a suite's Job: what `testenv logs` needs to find and label its log."""

    name: str
    annotations: dict[str, str]


class Environments:
    """TestEnvironments and their pods, through the API, with errors for people."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.custom = client.CustomObjectsApi(connection.api)
        self.core = client.CoreV1Api(connection.api)

    # -- error translation ---------------------------------------------------

    def _call(
        self, what: str, namespace: str | None, fn: Callable[..., T], *args: Any, missing: Any = _RAISE, **kwargs: Any
    ) -> T:
        """fn(*args, **kwargs) with its failures as CliErrors. Given `missing`,
        a 404 while the TestEnvironment API is installed (so: the object is
        absent) returns `missing` instead."""
        try:
            return fn(*args, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise self.unreachable(exc) from None
        except ApiException as exc:
            if missing is not _RAISE and exc.status == 404 and self.api_installed():
                return missing
            raise self.api_error(exc, what, namespace) from None

    def unreachable(self, exc: BaseException) -> CliError:
        c = self.connection
        return CliError(
            f"cannot reach the Kubernetes API at {c.server}: {_reason(exc)}.\n"
            f"Tried {c.source}. Is the cluster running? Check with {c.fix}, "
            "or choose another cluster with --kubeconfig / --context."
        )

    def api_installed(self) -> bool:
        try:
            resources = self.custom.get_api_resources(models.GROUP, models.VERSION, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        except urllib3.exceptions.HTTPError as exc:
            raise self.unreachable(exc) from None
        return any(r.name == models.PLURAL for r in resources.resources or [])

    def api_error(self, exc: ApiException, what: str, namespace: str | None) -> CliError:
        message = _api_message(exc)
        if exc.status == 404 and not self.api_installed():
            return CliError(
                f"the TestEnvironment API ({RESOURCE}/{models.VERSION}) is not installed in the cluster at "
                f"{self.connection.server}.\nInstall the operator's Helm chart (`helm install testenv-operator "
                "charts/testenv-operator`, which brings the CRDs), or just the CRDs: "
                "`kubectl apply --server-side -f crds/`."
            )
        if exc.status == 401:
            return CliError(f"the cluster at {self.connection.server} did not accept the credentials of "
                            f"{self.connection.source} (401 Unauthorized): log in again or refresh the kubeconfig.")
        if exc.status == 403:
            where = f" in namespace {namespace}" if namespace else " in all namespaces"
            return CliError(f"not allowed to {what}{where}: {message}\n"
                            f"Ask for RBAC on {RESOURCE}{where}, or use a namespace you may write to (-n).")
        if exc.status == 404 and namespace:
            return CliError(f"cannot {what}: {message} (does namespace {namespace} exist?)")
        return CliError(f"cannot {what}: {message}")

    # -- TestEnvironments ----------------------------------------------------------

    def get(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._call(f"read testenvironment {name}", namespace, self.custom.get_namespaced_custom_object,
                           models.GROUP, models.VERSION, namespace, models.PLURAL, name,
                           _request_timeout=REQUEST_TIMEOUT, missing=None)
        return None if found is None else _json_object(found)

    def require(self, *, namespace: str, name: str) -> dict[str, Any]:
        found = self.get(namespace=namespace, name=name)
        if found is None:
            raise CliError(f"testenvironment {namespace}/{name} not found; "
                           f"`testenv list -n {namespace}` shows the ones there are.")
        return found

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply; the object as stored (its generation and resourceVersion)."""
        meta = body["metadata"]
        # The body is serialised here, as UTF-8 JSON: the generated client's
        # json.dumps writes a character beyond the BMP (an emoji in an env
        # value) as a surrogate-pair escape, which the API server's YAML
        # reader of an apply patch refuses. The client's methods take no
        # serialised body, so the request is made with its lower layer.
        method, url, headers, payload, _ = self.custom.api_client.param_serialize(
            method="PATCH",
            resource_path="/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
            path_params={"group": models.GROUP, "version": models.VERSION, "namespace": meta["namespace"],
                         "plural": models.PLURAL, "name": meta["name"]},
            query_params=[("fieldManager", FIELD_MANAGER), ("force", True), ("fieldValidation", "Strict")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=apply_body(body),
            auth_settings=["BearerToken"],
        )
        stored = self._call(f"apply testenvironment {meta['name']}", meta["namespace"], self._send,
                            method, url, headers, payload)
        return stored

    def _send(self, method: str, url: str, headers: dict[str, str], payload: bytes) -> dict[str, Any]:
        response = self.custom.api_client.call_api(method, url, header_params=headers, body=payload,
                                                   _request_timeout=REQUEST_TIMEOUT)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=data.decode(errors="replace"), data=None)
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def delete(self, *, namespace: str, name: str) -> bool:
        """False when it was already gone."""
        gone = object()
        deleted = self._call(f"delete testenvironment {name}", namespace, self.custom.delete_namespaced_custom_object,
                             models.GROUP, models.VERSION, namespace, models.PLURAL, name,
                             _request_timeout=REQUEST_TIMEOUT, missing=gone)
        return deleted is not gone

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            found = self._call("list testenvironments", None, self.custom.list_cluster_custom_object,
                               models.GROUP, models.VERSION, models.PLURAL, _request_timeout=REQUEST_TIMEOUT)
        else:
            found = self._call("list testenvironments", namespace, self.custom.list_namespaced_custom_object,
                               models.GROUP, models.VERSION, namespace, models.PLURAL,
                               _request_timeout=REQUEST_TIMEOUT)
        return list(_json_object(found).get("items") or [])

    def watch(
        self, *, namespace: str, name: str, resource_version: str, deadline: float
    ) -> Iterator[tuple[str, dict]]:
        """(event type, object) for each change of one TestEnvironment after
        `resource_version`, until `deadline` (time.monotonic()). Reconnects
        when the server ends a watch; re-reads when the version is too old."""
        version = resource_version
        while (remaining := deadline - time.monotonic()) > 0:
            window = max(1, min(int(remaining) + 1, WATCH_WINDOW))
            watcher = watch.Watch()
            try:
                for event in watcher.stream(
                    self.custom.list_namespaced_custom_object,
                    models.GROUP, models.VERSION, namespace, models.PLURAL,
                    field_selector=f"metadata.name={name}",
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=window,
                    _request_timeout=(REQUEST_TIMEOUT[0], window + 30.0),
                ):
                    obj = event["raw_object"]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event["type"] != "BOOKMARK":
                        yield event["type"], obj
                    if time.monotonic() >= deadline:
                        watcher.stop()
                        return
            except ApiException as exc:
                if exc.status != 410:
                    raise self.api_error(exc, f"watch testenvironment {name}", namespace) from None
                # Our version is too old for the server: read the object and go on from there.
                current = self.get(namespace=namespace, name=name)
                if current is None:
                    yield "DELETED", {"metadata": {"name": name, "namespace": namespace}}
                    return
                version = current["metadata"]["resourceVersion"]
                yield "MODIFIED", current
            except urllib3.exceptions.ReadTimeoutError:
                continue  # a quiet connection that outlived its read timeout: watch again
            except urllib3.exceptions.HTTPError as exc:
                raise self.unreachable(exc) from None
            finally:
                watcher.stop()

    # -- a suite's pods --------------------------------------------------------------

    # `builtins.list`: inside this class, `list` is the method above.
    def job_pods(self, *, namespace: str, job: str) -> builtins.list[JobPod]:
        """The Job's pods, oldest first (by creation time, then name)."""
        pods = self._call(f"list the pods of Job {job}", namespace, self.core.list_namespaced_pod, namespace,
                          label_selector=f"job-name={job}", _request_timeout=REQUEST_TIMEOUT).items
        metas = sorted((p.metadata or client.V1ObjectMeta() for p in pods),
                       key=lambda m: (str(m.creation_timestamp or ""), m.name or ""))
        return [JobPod(name=m.name or "", annotations=dict(m.annotations or {})) for m in metas]

    def pod_log(self, *, namespace: str, pod: str, container: str | None = None) -> str:
        return self._call(f"read the logs of pod {pod}", namespace, self.core.read_namespaced_pod_log, pod,
                          namespace, container=container, _request_timeout=REQUEST_TIMEOUT)


    # -- kept results ------------------------------------------------------------------

    def results_index(self, *, namespace: str, name: str) -> dict[str, str] | None:
        """A run's results index (a ConfigMap's data), or None when there is none."""
        found = self._call(f"read the results index {name} (a ConfigMap)", namespace,
                           self.core.read_namespaced_config_map, name, namespace,
                           _request_timeout=REQUEST_TIMEOUT, missing=None)
        return None if found is None else dict(found.data or {})

    def results_runs(self, *, namespace: str, uid: str) -> builtins.list[int]:
        """The runs of the TestEnvironment with this uid whose results are kept."""
        found = self._call("list the results indexes (ConfigMaps)", namespace, self.core.list_namespaced_config_map,
                           namespace, label_selector=f"{LABEL_ENV_UID}={uid},{INDEX_LABEL}=index",
                           _request_timeout=REQUEST_TIMEOUT)
        runs = [(m.metadata.labels or {}).get(LABEL_RUN, "") for m in found.items if m.metadata]
        return sorted(int(r) for r in runs if r.isdigit())

    def results_body(self, namespace: str, key: str) -> bytes | None:
        """A body kept in ConfigMaps, joined from its chunks and checked
        against its checksum; None when gone."""
        def read(name: str) -> Any:
            return self._call("read kept results (ConfigMaps)", namespace, self.core.read_namespaced_config_map,
                              name, namespace, _request_timeout=REQUEST_TIMEOUT, missing=None)

        first = read(body_names(key, 1)[0])
        if first is None:
            return None
        annotations = (first.metadata and first.metadata.annotations) or {}
        count = annotations.get(CHUNKS_ANNOTATION, "1")
        if not count.isdigit() or not 1 <= int(count) <= MAX_CHUNKS:
            raise CliError(f"kept results {key}: their ConfigMaps say {count!r} chunks; they are not the operator's")
        parts = [first] + [read(name) for name in body_names(key, int(count))[1:]]
        if any(p is None for p in parts):
            return None
        data = b"".join(base64.b64decode((p.binary_data or {}).get("data", "")) for p in parts)
        if hashlib.sha256(data).hexdigest() != annotations.get(SHA_ANNOTATION):
            raise CliError(f"kept results {key} do not match their checksum: changed or cut since they were kept")
        return data


def fetch_url(url: str, endpoint: str | None) -> bytes:
    """A body kept in an S3 bucket, by the presigned URL its index gives,
    from the endpoint the operator wrote on the status (an index is a
    ConfigMap that others may write), and at most MAX_FETCH bytes."""
    if not endpoint or not url.startswith(endpoint.rstrip("/") + "/") or not url.startswith(("https://", "http://")):
        raise CliError(f"refusing to fetch kept results from {url.split('?')[0]}: it is not the results store "
                       f"the operator names ({endpoint or 'none'})")
    try:
        with httpx.stream("GET", url, timeout=60.0) as response:
            if response.status_code == 403:
                raise CliError("the object store refused the link to these results; links last at most 7 days "
                               "(fetch them from the bucket directly)")
            if response.status_code != 200:
                raise CliError(f"the object store answered {response.status_code} for kept results")
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > MAX_FETCH:
                    raise CliError(f"kept results at {url.split('?')[0]} are over {MAX_FETCH} bytes: not ours")
            return bytes(data)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot fetch kept results from the object store: {exc}") from None


def _json_object(found: object) -> dict[str, Any]:
    """A custom-object answer, which the client types as `object`, as the JSON object it is."""
    if not isinstance(found, dict):
        raise CliError(f"the API server answered with {type(found).__name__}, not a JSON object")
    return found


def _api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status} {exc.reason}".strip()
