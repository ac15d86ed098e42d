"""What every built object shares: the environment it belongs to, its labels,
and the hardened defaults of its pods."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import EnvVar

MANAGED_BY = "testenv-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_ENV_NAME = "testenv.dev/environment"
LABEL_ENV_NAMESPACE = "testenv.dev/environment-namespace"
LABEL_ENV_UID = "testenv.dev/environment-uid"
LABEL_COMPONENT = "testenv.dev/component"
LABEL_KIND = "testenv.dev/kind"
LABEL_RUN = "testenv.dev/run"


@dataclass(frozen=True, kw_only=True)
class EnvRef:
    """The TestEnvironment that objects are built for."""

    namespace: str  # where the TestEnvironment lives
    name: str
    uid: str
    target_namespace: str  # the environment's own namespace


def environment_namespace_name(*, namespace: str, name: str, uid: str, prefix: str = "te") -> str:
    """te-<name>-<hash>, at most 63 characters; the hash keeps two namespaces'
    environments of one name apart."""
    digest = hashlib.sha256(f"{namespace}/{name}/{uid}".encode()).hexdigest()[:5]
    # Resource names may hold dots; namespace names (DNS labels) may not.
    stem = f"{prefix}-{name.replace('.', '-')}"[: 63 - len(digest) - 1].rstrip("-")
    return f"{stem}-{digest}"


def label_value(value: str) -> str:
    """A name as a label value: at most 63 characters, alphanumeric at both ends.
    The uid label, not this one, is what links objects to their owner."""
    return value[:63].rstrip("-_.")


def env_labels(env: EnvRef) -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_ENV_NAME: label_value(env.name),
        LABEL_ENV_NAMESPACE: env.namespace,
        LABEL_ENV_UID: env.uid,
    }


def component_labels(env: EnvRef, component: str, kind: str) -> dict[str, str]:
    return {**env_labels(env), LABEL_COMPONENT: component, LABEL_KIND: kind}


def selector_labels(component: str) -> dict[str, str]:
    """A Deployment's selector: stable for the component's lifetime (it is immutable)."""
    return {LABEL_COMPONENT: component}


def service_selector(component: str, kind: str) -> dict[str, str]:
    """A Service's selector: the component's own pods. A seed or suite may share
    the component's name (and so its component label); its pods must never
    receive the Service's traffic."""
    return {LABEL_COMPONENT: component, LABEL_KIND: kind}


def env_var_name(component: str, suffix: str = "URL") -> str:
    return f"{component.upper().replace('-', '_')}_{suffix}"


def env_list(
    values: list[EnvVar], credentials: Mapping[tuple[str, str, str], str] | None = None
) -> list[dict[str, Any]]:
    """The spec's variables; one borrowing a Secret's key (valueFrom) refers to
    the environment's copy of that key, named in credentials by (namespace,
    name, key). The planner holds whatever uses a credential not copied yet."""
    out: list[dict[str, Any]] = []
    for v in values:
        if v.value_from is None:
            out.append({"name": v.name, "value": v.value})
            continue
        ref = v.value_from.secret_key_ref
        local = (credentials or {}).get((ref.namespace, ref.name, ref.key), "")
        out.append({"name": v.name, "valueFrom": {"secretKeyRef": {"name": local, "key": ref.key}}})
    return out


def merge_env(injected: list[dict[str, Any]], own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The component's own env wins over injected variables of the same name."""
    names = {e["name"] for e in own}
    return [e for e in injected if e["name"] not in names] + own


RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_security_context(run_as_user: int | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_user is not None:
        ctx.update(runAsUser=run_as_user, runAsGroup=run_as_user, fsGroup=run_as_user)
    return ctx


def container_security_context(run_as_user: int | None = None) -> dict[str, Any]:
    ctx = dict(RESTRICTED_CONTAINER_SECURITY)
    if run_as_user is not None:
        ctx["runAsUser"] = run_as_user
    return ctx


def object_meta(name: str, env: EnvRef, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": env.target_namespace, "labels": labels, **extra}
