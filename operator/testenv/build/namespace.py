"""The environment's namespace and what contains it: quota, limits, network policy."""

from __future__ import annotations

from typing import Any

from ..models import Isolation
from .common import LABEL_ENV_UID, EnvRef, env_labels

POD_SECURITY_LABELS = ("enforce", "audit", "warn")


def namespace(env: EnvRef, pod_security_level: str) -> dict[str, Any]:
    labels = env_labels(env) | {
        f"pod-security.kubernetes.io/{mode}": pod_security_level for mode in POD_SECURITY_LABELS
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.target_namespace, "labels": labels}}


def resource_quota(env: EnvRef, isolation: Isolation, defaults: dict[str, str]) -> dict[str, Any]:
    quota = isolation.resource_quota
    cpu = str(quota.cpu) if quota and quota.cpu is not None else defaults["cpu"]
    memory = str(quota.memory) if quota and quota.memory is not None else defaults["memory"]
    pods = str(quota.pods) if quota and quota.pods is not None else defaults["pods"]
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "testenv", "namespace": env.target_namespace, "labels": env_labels(env)},
        "spec": {
            "hard": {
                "requests.cpu": cpu,
                "limits.cpu": cpu,
                "requests.memory": memory,
                "limits.memory": memory,
                "pods": pods,
            }
        },
    }


def limit_range(env: EnvRef, cpu: str, memory: str) -> dict[str, Any]:
    # With a quota on limits, every container needs limits; this supplies them
    # for images whose spec says nothing (copied Deployments, user test images).
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "testenv", "namespace": env.target_namespace, "labels": env_labels(env)},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": cpu, "memory": memory},
                    "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
                }
            ]
        },
    }


def network_policy(env: EnvRef, operator_namespace: str) -> dict[str, Any]:
    """Ingress only from the environment itself and the operator's namespace."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "testenv-isolation", "namespace": env.target_namespace, "labels": env_labels(env)},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": operator_namespace}
                            }
                        },
                    ]
                }
            ],
        },
    }


def default_service_account(env: EnvRef) -> dict[str, Any]:
    # Pods get no API token unless a component asks for one.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": env.target_namespace, "labels": env_labels(env)},
        "automountServiceAccountToken": False,
    }


def namespace_objects(
    env: EnvRef,
    isolation: Isolation,
    *,
    pod_security_level: str,
    operator_namespace: str,
    quota_defaults: dict[str, str],
    container_defaults: dict[str, str],
) -> list[dict[str, Any]]:
    objects = [
        namespace(env, pod_security_level),
        resource_quota(env, isolation, quota_defaults),
        limit_range(env, container_defaults["cpu"], container_defaults["memory"]),
        default_service_account(env),
    ]
    if isolation.network_policy:
        objects.append(network_policy(env, operator_namespace))
    return objects


def owned_by(namespace_obj: dict[str, Any], uid: str) -> bool:
    return bool(namespace_obj.get("metadata", {}).get("labels", {}).get(LABEL_ENV_UID) == uid)
