"""Where a run's results are kept: each attempt's archive and each log tail
(the bodies), and the run's index, a ConfigMap beside the TestEnvironment and
owned by it, so the API server deletes it with the resource.

Bodies go to ConfigMaps too by default (no extra server; chunked under the
1 MiB object limit), or to an S3-compatible bucket (unit tests keep them in
memory). Every write is idempotent:
a key names one attempt of one run, so an operator that restarts mid-way
writes the same objects again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Collection
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from .build.common import LABEL_ENV_NAME, LABEL_ENV_UID, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, label_value
from .models import GROUP, KIND, VERSION
from .results import (
    CHUNKS_ANNOTATION,
    INDEX_LABEL,
    KEY_ANNOTATION,
    SHA_ANNOTATION,
    AttemptResults,
    LogTail,
    Owner,
    body_names,
    chunk,
    index_entry_name,
    index_name,
)
from .s3store import MAX_PRESIGN_SECONDS, S3Config, S3Store, StoreError
from .settings import Settings

__all__ = ["Bodies", "ConfigMapApi", "ConfigMapBodies", "MemoryBodies", "ResultsStore", "S3Bodies", "StoreError",
           "Unusable", "bodies_for"]

log = logging.getLogger(__name__)


class ConfigMapApi(Protocol):
    """What the results store asks of the Kubernetes API (kube.Kube is one):
    ConfigMaps beside the TestEnvironment for the index and, by default, the
    bodies. Unit tests give the store an API of their own."""

    def upsert_config_map(self, body: dict[str, Any], owner_label: tuple[str, str]) -> None: ...

    def delete_config_maps(self, *, namespace: str, selector: str) -> None: ...


class Bodies(Protocol):
    kind: str

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        """Store `data` under `key`; a URL to fetch it by, if the store has one. Raises StoreError."""
        ...

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        """Delete the owner's bodies of every run not in keep_runs (all of them when empty)."""
        ...


def _meta(owner: Owner, run: int, *, role: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_ENV_NAME: label_value(owner.name),
            LABEL_ENV_UID: owner.uid,
            LABEL_RUN: str(run),
            INDEX_LABEL: role,
        },
        "annotations": annotations or {},
        "ownerReferences": [
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": owner.name, "uid": owner.uid}
        ],
    }


def _selector(owner: Owner, keep_runs: Collection[int], role: str) -> str:
    """This environment's (by uid) results ConfigMaps of one role, except the runs kept."""
    parts = [f"{LABEL_ENV_UID}={owner.uid}", f"{INDEX_LABEL}={role}"]
    if keep_runs:
        parts.append(f"{LABEL_RUN} notin ({','.join(str(r) for r in sorted(keep_runs))})")
    return ",".join(parts)


def _upsert(kube: ConfigMapApi, owner: Owner, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    try:
        kube.upsert_config_map(body, owner_label=(LABEL_ENV_UID, owner.uid))
    except ApiException as exc:
        if exc.status == 422:
            raise StoreError(f"ConfigMap {owner.namespace}/{name} exists and is not this environment's: "
                             "rename or delete it") from None
        raise StoreError(f"the API server refused ConfigMap {owner.namespace}/{name}: {exc.status} {exc.reason}"
                         " (a quota on ConfigMaps, or the operator's RBAC)") from None


def _delete(kube: ConfigMapApi, owner: Owner, keep_runs: Collection[int], role: str) -> None:
    try:
        kube.delete_config_maps(namespace=owner.namespace, selector=_selector(owner, keep_runs, role))
    except ApiException as exc:
        if exc.status != 404:
            raise StoreError(f"results ConfigMaps in {owner.namespace} could not be deleted: "
                             f"{exc.status} {exc.reason}") from None


class ConfigMapBodies:
    kind = "configmap"

    def __init__(self, kube: ConfigMapApi) -> None:
        self.kube = kube

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        parts = chunk(data)
        annotations = {KEY_ANNOTATION: key, CHUNKS_ANNOTATION: str(len(parts)),
                       SHA_ANNOTATION: hashlib.sha256(data).hexdigest()}
        for name, part in zip(body_names(key, len(parts)), parts, strict=True):
            _upsert(self.kube, owner, {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(owner, run, role="body", name=name, annotations=annotations),
                "binaryData": {"data": base64.b64encode(part).decode()},
            })
        return None

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        _delete(self.kube, owner, keep_runs, "body")


class S3Bodies:
    kind = "s3"

    def __init__(self, store: S3Store, presign_seconds: int) -> None:
        self.store = store
        self.presign_seconds = min(presign_seconds, MAX_PRESIGN_SECONDS)

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        self.store.put(key, data)
        return self.store.presigned_get(key, self.presign_seconds)

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        if not keep_runs:
            self.store.delete_prefix(owner.prefix() + "/")
            return
        runs = {key.removeprefix(owner.prefix() + "/").split("/", 1)[0] for key in self.store.keys(owner.prefix() + "/")}
        for found in runs - {f"r{r}" for r in keep_runs}:
            self.store.delete_prefix(f"{owner.prefix()}/{found}/")


class MemoryBodies:
    """Bodies kept in this process's memory, by key: the store that lets the
    reconciler's logic be tested without a cluster or a bucket, as httpx's
    MockTransport does for HTTP. Nothing outlives the process."""

    kind = "memory"

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self._whose: dict[str, tuple[str, int]] = {}  # key -> (owner's uid, run)

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        self.bodies[key] = data
        self._whose[key] = (owner.uid, run)
        return None

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        # By uid, as the ConfigMaps' selector: a namesake created later is another owner.
        gone = [key for key, (uid, run) in self._whose.items() if uid == owner.uid and run not in keep_runs]
        for key in gone:
            del self.bodies[key], self._whose[key]


class Unusable:
    """A configured store that cannot work: every write says why, on the
    suites' status, and the operator goes on counting."""

    def __init__(self, kind: str, why: str) -> None:
        self.kind, self.why = kind, why

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        raise StoreError(self.why)

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        return None


def bodies_for(settings: Settings, kube: ConfigMapApi) -> Bodies:
    if settings.results_store == "s3":
        if not (settings.results_s3_access_key_id and settings.results_s3_secret_access_key):
            # Never boto3's own credential chain: it may ask a cloud's metadata
            # address; a missing Secret should say so instead.
            return Unusable("s3", "the results store has no credentials: set config.resultsS3CredentialsSecret to a "
                            "Secret with accessKeyId and secretAccessKey")
        config = S3Config(
            endpoint=settings.results_s3_endpoint,
            public_endpoint=settings.results_s3_public_endpoint,
            bucket=settings.results_s3_bucket,
            region=settings.results_s3_region,
            prefix=settings.results_s3_prefix,
            access_key_id=settings.results_s3_access_key_id,
            secret_access_key=settings.results_s3_secret_access_key,
        )
        try:
            return S3Bodies(S3Store(config), settings.results_retention())
        except StoreError as exc:
            return Unusable("s3", str(exc))
    return ConfigMapBodies(kube)


class ResultsStore:
    """Keeps attempts and log tails, and the run's index that lists them."""

    def __init__(self, kube: ConfigMapApi, bodies: Bodies, keep_runs: int) -> None:
        self.kube = kube
        self.bodies = bodies
        self.keep_runs = keep_runs

    def _index(self, owner: Owner, run: int, entry: str, value: AttemptResults | LogTail) -> None:
        _upsert(self.kube, owner, {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(owner, run, role="index", name=index_name(owner, run)),
            "data": {
                "environment.json": json.dumps({"environment": owner.name, "namespace": owner.namespace,
                                                "uid": owner.uid, "run": run, "store": self.bodies.kind}),
                entry: json.dumps(value.model_dump(by_alias=True, mode="json", exclude_none=True)),
            },
        })

    def keep_attempt(self, owner: Owner, run: int, attempt: AttemptResults, key: str, archive: bytes | None) -> AttemptResults:
        """Store the archive (if any) and list the attempt in the index. A
        store that fails leaves a note, and the counts still come through."""
        kept = attempt.model_copy(deep=True)
        if archive is not None:
            try:
                kept.url = self.bodies.put(owner, run, key, archive)
                kept.key, kept.bytes = key, len(archive)
                log.info("kept %s of %s/%s run %d (%d bytes); listing it", key, owner.namespace, owner.name, run,
                         len(archive))
            except StoreError as exc:
                kept.notes.append(f"not kept: {exc}")
        try:
            self._index(owner, run, index_entry_name(kept), kept)
        except StoreError as exc:
            kept.notes.append(f"not listed, so `testenv results` cannot find it: {exc}")
        return kept

    def keep_log(self, owner: Owner, run: int, tail: LogTail, key: str, data: bytes) -> LogTail:
        kept = tail.model_copy()
        try:
            kept.url = self.bodies.put(owner, run, key, data)
            kept.key, kept.bytes = key, len(data)
            self._index(owner, run, index_entry_name(kept), kept)
        except StoreError as exc:
            log.warning("log tail of %s/%s not kept: %s", tail.pod, tail.container, exc)
            kept.key, kept.url, kept.bytes = None, None, 0
            kept.notes.append(f"not kept: {exc}")
        return kept

    def prune(self, owner: Owner, run: int) -> None:
        """Keep the last keep_runs runs (this one included)."""
        keep = set(range(max(1, run - self.keep_runs + 1), run + 1))
        self.forget(owner, keep)

    def forget(self, owner: Owner, keep_runs: Collection[int] = ()) -> None:
        """Delete results of every run not in keep_runs (all when empty): an
        older run, or the retention passed. Raises StoreError."""
        self.bodies.forget(owner, keep_runs)
        _delete(self.kube, owner, keep_runs, "index")

    def forget_bucket(self, owner: Owner) -> None:
        """On delete: the ConfigMaps go with their owner; a bucket's objects are ours."""
        if self.bodies.kind != "configmap":
            self.bodies.forget(owner, ())
