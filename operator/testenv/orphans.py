"""Which environment namespaces have lost their TestEnvironment: the sweep's
pure half. sweep.py feeds it kopf's namespace and environment indexes."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .build.common import LABEL_ENV_NAME, LABEL_ENV_NAMESPACE, LABEL_ENV_UID


@dataclass(frozen=True, kw_only=True)
class EnvironmentNamespace:
    """An environment namespace as the index keeps it."""

    name: str
    phase: str  # Active, Terminating
    env_uid: str | None
    env_namespace: str | None
    env_name: str | None
    uid: str = ""

    @property
    def owner(self) -> str:
        return f"{self.env_namespace}/{self.env_name}"


def environment_namespace(body: Mapping[str, Any]) -> EnvironmentNamespace:
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    phase = "Terminating" if meta.get("deletionTimestamp") else (body.get("status") or {}).get("phase", "Active")
    return EnvironmentNamespace(
        name=meta.get("name", ""),
        phase=phase,
        env_uid=labels.get(LABEL_ENV_UID),
        env_namespace=labels.get(LABEL_ENV_NAMESPACE),
        env_name=labels.get(LABEL_ENV_NAME),
        uid=meta.get("uid", ""),
    )


def find_orphans(namespaces: Iterable[EnvironmentNamespace], live_uids: Collection[str]) -> list[EnvironmentNamespace]:
    """Namespaces whose TestEnvironment (by uid) is gone and that are not already going."""
    return sorted(
        (ns for ns in namespaces if ns.phase != "Terminating" and ns.env_uid not in live_uids),
        key=lambda ns: ns.name,
    )


def why(orphan: EnvironmentNamespace) -> str:
    return f"orphaned: its TestEnvironment {orphan.owner} (uid {orphan.env_uid}) no longer exists"
