"""A stand-in for `kube.Kube` in reconcile unit tests: it accepts every
object but the Services of one component, which it refuses as a real API
server does, and keeps the status writes. (Only the reconciler's unit tests
use it; everything against the API itself runs on the real control plane.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from testenv.kube import StatusWrite, WriteOutcome

# What a real kube-apiserver (v1.36) answers when the Service range is full:
# a 500, not a 422 (tests/component/test_service_range.py provokes it).
RANGE_FULL = 'Internal error occurred: failed to allocate a serviceIP for Service "api": range is full'


@dataclass(frozen=True)
class PostedEvent:
    involved: dict[str, Any]
    type: str
    reason: str
    message: str
    name: str | None


class RefusingKube:
    """Accepts everything but the objects of one kind and name (a component's Service by default)."""

    def __init__(self, refused: str | None = "api", status: int = 500, message: str = RANGE_FULL,
                 kind: str = "Service") -> None:
        self.refused, self.status_code, self.message, self.kind = refused, status, message, kind
        self.patches: list[dict[str, Any]] = []
        self.events: list[PostedEvent] = []
        self.stopped: list[str] = []  # pods whose deadline was brought forward
        self.stop_refusal: ApiException | None = None

    def post_event(self, involved: dict[str, Any], *, type: str, reason: str, message: str,
                   name: str | None = None) -> None:
        self.events.append(PostedEvent(involved, type, reason, message, name))

    def apply(self, obj: dict[str, Any]) -> bool:
        if obj["kind"] == self.kind and obj["metadata"]["name"] == self.refused:
            exc = ApiException(status=self.status_code, reason="Internal Server Error")
            exc.body = json.dumps({"kind": "Status", "message": self.message + " password=hunter2hunter2",
                                   "code": self.status_code})
            raise exc
        return True

    def create_once(self, obj: dict[str, Any]) -> bool:
        return True

    def patch_status(self, *, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None = None) -> StatusWrite:
        self.patches.append(status)
        return StatusWrite(WriteOutcome.WRITTEN, str(len(self.patches)))

    def stop_pod(self, *, namespace: str, name: str) -> bool:
        if self.stop_refusal is not None:
            raise self.stop_refusal
        self.stopped.append(name)
        return True

    def delete(self, ref: Any) -> None: ...
    def delete_namespace(self, name: str) -> bool: return True
    def read_pull_secret(self, *, namespace: str, name: str) -> None: return None
    def read_copy_source(self, *, namespace: str, deployment: str, rule: Any = None) -> None: return None
