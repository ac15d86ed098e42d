"""Namespaced copies of services: from an image, or from a Deployment (and the
Services that select it) in an allowed source namespace."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models import Service
from .common import (
    EnvRef,
    component_labels,
    container_security_context,
    env_list,
    merge_env,
    pod_security_context,
    selector_labels,
    service_selector,
)
from .copies import ANNOTATION_CONFIG_HASH, bring_along, config_hash
from .placement import NO_PLACEMENT, PodPlacement, place, place_copy


@dataclass(frozen=True)
class CopySource:
    """A Deployment read from a source namespace, with the Services that select
    its pods and the ConfigMaps and Secrets its pod template references (by
    name; None: not found). Secrets the administrator's rule does not allow
    are not read, so they are not here at all."""

    deployment: dict[str, Any]
    services: list[dict[str, Any]] = field(default_factory=list)
    config_maps: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    secrets: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Everything referenced was found (else it is read again)."""
        return all(v is not None for v in [*self.config_maps.values(), *self.secrets.values()])


# Metadata that belongs to the source object's life, not to a copy of it.
_CLUSTER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "selfLink",
    "generateName",
)
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")
# Service spec fields the cluster allocates; a copy gets its own.
_CLUSTER_SET_SERVICE_SPEC = ("clusterIP", "clusterIPs", "healthCheckNodePort", "loadBalancerIP", "externalIPs")
# Fields the API server allows only on NodePort/LoadBalancer Services.
_EXTERNAL_ONLY_SERVICE_SPEC = (
    "externalTrafficPolicy",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "loadBalancerSourceRanges",
)


def _clean_metadata(meta: dict[str, Any], env: EnvRef, name: str, labels: dict[str, str]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k not in _CLUSTER_SET_METADATA}
    annotations = {k: v for k, v in (out.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS}
    out.update(name=name, namespace=env.target_namespace, labels={**(out.get("labels") or {}), **labels})
    if annotations:
        out["annotations"] = annotations
    else:
        out.pop("annotations", None)
    return out


Credentials = Mapping[tuple[str, str, str], str]


def _container(svc: Service, injected_env: list[dict[str, Any]], credentials: Credentials | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": svc.name,
        "image": svc.image,
        "env": merge_env(injected_env, env_list(svc.env, credentials)),
        "securityContext": container_security_context(),
        # Two Service ports may send to one container port; the container
        # lists it once (its ports are keyed by number for server-side apply).
        "ports": [{"containerPort": port} for port in dict.fromkeys(p.target_port or p.port for p in svc.ports)],
    }
    _apply_overrides(container, svc)
    return container


def _apply_overrides(container: dict[str, Any], svc: Service) -> None:
    """What the spec says of the container wins over what it had."""
    if svc.image:
        container["image"] = svc.image
    if svc.command:
        container["command"] = svc.command
    if svc.args:
        container["args"] = svc.args
    if svc.readiness_probe:
        container["readinessProbe"] = svc.readiness_probe.wire()


def _service(name: str, svc: Service, env: EnvRef, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": env.target_namespace, "labels": labels},
        "spec": {
            "selector": service_selector(svc.name, "service"),
            "ports": [
                {"name": p.service_name, "port": p.port, "targetPort": p.target_port or p.port}
                for p in svc.ports
            ],
        },
    }


def image_service_objects(
    svc: Service,
    env: EnvRef,
    injected_env: list[dict[str, Any]],
    placement: PodPlacement = NO_PLACEMENT,
    credentials: Credentials | None = None,
) -> list[dict[str, Any]]:
    labels = component_labels(env, svc.name, "service")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": svc.name, "namespace": env.target_namespace, "labels": labels},
        "spec": {
            "replicas": svc.replicas,
            "selector": {"matchLabels": selector_labels(svc.name)},
            "template": {
                "metadata": {"labels": labels},
                "spec": place({
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                    "containers": [_container(svc, injected_env, credentials)],
                }, placement),
            },
        },
    }
    objects = [deployment]
    if svc.ports:
        objects.append(_service(svc.name, svc, env, labels))
    return objects


def _override_container(
    container: dict[str, Any], svc: Service, injected_env: list[dict[str, Any]], credentials: Credentials | None
) -> None:
    _apply_overrides(container, svc)
    # The spec's env wins; then what points at this environment's datastores
    # and stubs; the copied config (which may point at staging's) comes last.
    container["env"] = merge_env(
        merge_env(container.get("env", []), injected_env), env_list(svc.env, credentials)
    )


def _harden(pod_spec: dict[str, Any]) -> None:
    """Fill in the restricted Pod Security settings a source left unset, so a
    copy from a laxer namespace is admitted; settings it made stay as made."""
    pod_context = pod_spec.setdefault("securityContext", {})
    for key, value in pod_security_context().items():
        pod_context.setdefault(key, value)
    for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        context = container.setdefault("securityContext", {})
        for key, value in container_security_context().items():
            context.setdefault(key, value)


def copied_service_objects(
    svc: Service,
    source: CopySource,
    env: EnvRef,
    injected_env: list[dict[str, Any]],
    placement: PodPlacement = NO_PLACEMENT,
    credentials: Credentials | None = None,
    notes: list[str] | None = None,
    own_secrets: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The source Deployment re-homed in the environment: cluster-set fields,
    status and owner references stripped; image, command and env overridden;
    our labels added so the copy's pods are found like any other component.
    The ConfigMaps and (allowed, already checked) Secrets it references come
    first; what was changed on purpose is appended to notes."""
    labels = component_labels(env, svc.name, "service")
    src = copy.deepcopy(source.deployment)
    spec = src.get("spec", {})
    template = spec.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    template_meta.pop("creationTimestamp", None)
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
    pod_spec = template.setdefault("spec", {})
    # The source's ServiceAccount lives in the source namespace (and would
    # carry its rights): dropped, with its token, by bring_along.
    brought, brought_notes = bring_along(
        pod_spec, env, source.config_maps, source.secrets, frozenset(placement.image_pull_secrets), own_secrets
    )
    if notes is not None:
        notes.extend(brought_notes)
    if brought:
        template_meta["annotations"] = {**(template_meta.get("annotations") or {}),
                                        ANNOTATION_CONFIG_HASH: config_hash(brought)}
    containers = pod_spec.get("containers") or []
    if containers:
        # The first container is the service; sidecars keep their own config.
        _override_container(containers[0], svc, injected_env, credentials)
    _harden(pod_spec)
    pod_spec.setdefault("automountServiceAccountToken", False)
    pod_spec.pop("nodeName", None)
    place_copy(pod_spec, placement)
    selector = spec.setdefault("selector", {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), **selector_labels(svc.name)}
    spec["replicas"] = svc.replicas
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _clean_metadata(src.get("metadata", {}), env, svc.name, labels),
        "spec": spec,
    }
    objects = [*brought, deployment]
    for source_service in source.services:
        source_spec = copy.deepcopy(source_service.get("spec", {}))
        service_spec = {k: v for k, v in source_spec.items() if k not in _CLUSTER_SET_SERVICE_SPEC}
        if source_spec.get("clusterIP") == "None":
            service_spec["clusterIP"] = "None"  # headless is a choice, not an allocation
        for port in service_spec.get("ports", []):
            port.pop("nodePort", None)
        if service_spec.get("type") in ("NodePort", "LoadBalancer"):
            # A test copy must not open the node or a cloud balancer.
            service_spec["type"] = "ClusterIP"
            for key in _EXTERNAL_ONLY_SERVICE_SPEC:
                service_spec.pop(key, None)
        service_spec["selector"] = service_selector(svc.name, "service")
        name = source_service["metadata"]["name"]
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _clean_metadata(source_service.get("metadata", {}), env, name, labels),
                "spec": service_spec,
            }
        )
    if svc.ports and svc.name not in {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}:
        objects.append(_service(svc.name, svc, env, labels))
    return objects


def selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    """Whether a source Service routes to the source Deployment's pods."""
    selector = (service.get("spec") or {}).get("selector") or {}
    pod_labels = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())
