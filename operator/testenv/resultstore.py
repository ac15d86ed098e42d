"""Where a run's results are kept: each attempt's archive and each log tail
(the bodies), and the run's index, a ConfigMap beside the TestEnvironment and
owned by it, so the API server deletes it with the resource.

Bodies go to ConfigMaps too by default (no extra server; chunked under the
1 MiB object limit), or to an S3-compatible bucket. Every write is idempotent:
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
from .kube import Kube
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
from .s3store import S3Config, S3Store, StoreError
from .settings import Settings

log = logging.getLogger(__name__)

# SigV4's longest presigned URL.
MAX_PRESIGN_SECONDS = 7 * 86400


class Bodies(Protocol):
    kind: str

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        """Store `data` under `key`; a URL to fetch it by, if the store has one. Raises StoreError."""
        ...

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        """Delete the owner's bodies of every run not in keep_runs (all of them when empty)."""
        ...


def _meta(owner: Owner, run: int, role: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
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


def _selector(owner: Owner, keep_runs: Collection[int], role: str | None = None) -> str:
    parts = [f"{LABEL_ENV_UID}={owner.uid}", f"{INDEX_LABEL}={role}" if role else INDEX_LABEL]
    if keep_runs:
        parts.append(f"{LABEL_RUN} notin ({','.join(str(r) for r in sorted(keep_runs))})")
    return ",".join(parts)


class ConfigMapBodies:
    kind = "configmap"

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        parts = chunk(data)
        annotations = {KEY_ANNOTATION: key, CHUNKS_ANNOTATION: str(len(parts)),
                       SHA_ANNOTATION: hashlib.sha256(data).hexdigest()}
        try:
            for name, part in zip(body_names(key, len(parts)), parts, strict=True):
                self.kube.upsert_config_map({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": _meta(owner, run, "body", name, annotations),
                    "binaryData": {"data": base64.b64encode(part).decode()},
                })
        except ApiException as exc:
            raise StoreError(f"the API server refused a results ConfigMap in {owner.namespace}: "
                             f"{exc.status} {exc.reason}") from None
        return None

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        self.kube.delete_config_maps(owner.namespace, _selector(owner, keep_runs, "body"))


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


class Unusable:
    """A configured store that cannot work: every write says why, on the
    suites' status, and the operator goes on counting."""

    kind = "s3"

    def __init__(self, why: str) -> None:
        self.why = why

    def put(self, owner: Owner, run: int, key: str, data: bytes) -> str | None:
        raise StoreError(self.why)

    def forget(self, owner: Owner, keep_runs: Collection[int]) -> None:
        return None


def bodies_for(settings: Settings, kube: Kube) -> Bodies:
    if settings.results_store == "s3":
        if not (settings.results_s3_access_key_id and settings.results_s3_secret_access_key):
            # Never boto3's own credential chain: it may ask a cloud's metadata
            # address; a missing Secret should say so instead.
            return Unusable("the results store has no credentials: set config.resultsS3CredentialsSecret to a "
                            "Secret with accessKeyId and secretAccessKey")
        config = S3Config(
            endpoint=settings.results_s3_endpoint,
            bucket=settings.results_s3_bucket,
            region=settings.results_s3_region,
            prefix=settings.results_s3_prefix,
            access_key_id=settings.results_s3_access_key_id,
            secret_access_key=settings.results_s3_secret_access_key,
        )
        try:
            return S3Bodies(S3Store(config), settings.results_retention_seconds)
        except StoreError as exc:
            return Unusable(str(exc))
    return ConfigMapBodies(kube)


class ResultsStore:
    """Keeps attempts and log tails, and the run's index that lists them."""

    def __init__(self, kube: Kube, bodies: Bodies, keep_runs: int) -> None:
        self.kube = kube
        self.bodies = bodies
        self.keep_runs = keep_runs

    def _index(self, owner: Owner, run: int, entry: str, value: AttemptResults | LogTail) -> None:
        self.kube.upsert_config_map({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(owner, run, "index", index_name(owner, run)),
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
            except StoreError as exc:
                kept.notes.append(f"not kept: {exc}")
        self._index(owner, run, index_entry_name(kept), kept)
        return kept

    def keep_log(self, owner: Owner, run: int, tail: LogTail, key: str, data: bytes) -> LogTail:
        kept = tail.model_copy()
        try:
            kept.url = self.bodies.put(owner, run, key, data)
            kept.key, kept.bytes = key, len(data)
        except StoreError as exc:
            log.warning("log tail of %s/%s not kept: %s", tail.pod, tail.container, exc)
        self._index(owner, run, index_entry_name(kept), kept)
        return kept

    def prune(self, owner: Owner, run: int) -> None:
        """Keep the last keep_runs runs (this one included)."""
        keep = set(range(max(1, run - self.keep_runs + 1), run + 1))
        self.forget(owner, keep)

    def forget(self, owner: Owner, keep_runs: Collection[int] = ()) -> None:
        """Delete results of every run not in keep_runs (all when empty): the
        retention passed, or the TestEnvironment is being deleted."""
        try:
            self.bodies.forget(owner, keep_runs)
        except StoreError as exc:
            log.warning("results of %s/%s not deleted: %s", owner.namespace, owner.name, exc)
        try:
            self.kube.delete_config_maps(owner.namespace, _selector(owner, keep_runs, "index"))
        except ApiException as exc:
            if exc.status != 404:
                raise
