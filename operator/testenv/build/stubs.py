"""A stub's objects: its WireMock mappings in a ConfigMap, the WireMock
Deployment that serves them, and the Service named after the stub."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..models import ComponentKind, Stub, StubMapping, StubRequest
from .common import (
    LABEL_RUN,
    EnvRef,
    component_labels,
    container_security_context,
    object_meta,
    pod_security_context,
    selector_labels,
    service_selector,
)
from .placement import NO_PLACEMENT, PodPlacement, place

WIREMOCK_PORT = 8080
# The image runs as root unless told otherwise; restricted pods need a numeric
# non-root user because the image defines no named one.
WIREMOCK_UID = 1000
WIREMOCK_HOME = "/home/wiremock"  # the image's working and default root dir
MAPPINGS_SOURCE = "/etc/wiremock/mappings"
HEALTH_PATH = "/__admin/health"
ANNOTATION_MAPPINGS_HASH = "testenv.dev/mappings-hash"

# Kubelet lays a ConfigMap volume out as symlinks into hidden `..<timestamp>`
# directories, and WireMock walks those too, loading every mapping three times
# (and failing on mappings with an `id`). So an init container copies just the
# files into a plain directory. $1 is the ConfigMap mount, $2 the target.
COPY_MAPPINGS_SCRIPT = (
    'set -e; mkdir -p "$2"; '
    'for f in "$1"/*.json; do if [ -e "$f" ]; then cp -L "$f" "$2/"; fi; done'
)


def stub_url(stub: Stub) -> str:
    return f"http://{stub.name}:{stub.port}"


def mappings_configmap_name(stub: Stub) -> str:
    return f"{stub.name}-mappings"


def request_target(request: StubRequest) -> str:
    """The URL (or pattern) a request matches, for file names and messages."""
    return request.url or request.url_path or request.url_pattern or request.url_path_pattern or "/"


def _file_name(index: int, mapping: StubMapping) -> str:
    method = (mapping.request.method or "any").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", request_target(mapping.request).lower()).strip("-")
    return f"{index:03d}-{method}-{slug[:40].rstrip('-') or 'root'}.json"


def mapping_files(stub: Stub) -> dict[str, str]:
    """One WireMock mapping file per mapping; the index prefix keeps the spec's order
    and keeps two mappings of one URL apart."""
    return {
        _file_name(i, m): json.dumps(m.wire(), indent=2) + "\n" for i, m in enumerate(stub.mappings, start=1)
    }


def mappings_hash(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def wiremock_args(port: int = WIREMOCK_PORT, root_dir: str = WIREMOCK_HOME) -> list[str]:
    return [f"--port={port}", f"--root-dir={root_dir}", "--disable-banner"]


def stub_configmap(stub: Stub, env: EnvRef, files: dict[str, str]) -> dict[str, Any]:
    labels = component_labels(env, stub.name, ComponentKind.STUB.value)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(mappings_configmap_name(stub), env, labels),
        "data": files,
    }


def stub_deployment(
    stub: Stub,
    env: EnvRef,
    image: str,
    files: dict[str, str],
    placement: PodPlacement = NO_PLACEMENT,
    run: int = 1,
) -> dict[str, Any]:
    labels = component_labels(env, stub.name, ComponentKind.STUB.value)
    security = container_security_context(WIREMOCK_UID)
    root_mount = {"name": "wiremock-root", "mountPath": WIREMOCK_HOME}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(stub.name, env, labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(stub.name)},
            # Never two pods at once: they would answer from different mappings
            # and split the request journal that `verify` counts.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": labels,
                    # A changed mapping changes the template, so the pod rolls;
                    # so does each new run, whose `verify` must count only its
                    # own requests (the journal lives in the pod).
                    "annotations": {ANNOTATION_MAPPINGS_HASH: mappings_hash(files), LABEL_RUN: str(run)},
                },
                "spec": place({
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(WIREMOCK_UID),
                    "initContainers": [
                        {
                            "name": "copy-mappings",
                            "image": image,
                            "command": [
                                "sh", "-c", COPY_MAPPINGS_SCRIPT, "copy-mappings",
                                MAPPINGS_SOURCE, f"{WIREMOCK_HOME}/mappings",
                            ],
                            "securityContext": security,
                            "volumeMounts": [
                                {"name": "mappings", "mountPath": MAPPINGS_SOURCE, "readOnly": True},
                                root_mount,
                            ],
                        }
                    ],
                    "containers": [
                        {
                            "name": "wiremock",
                            "image": image,
                            "args": wiremock_args(),
                            "ports": [{"name": "http", "containerPort": WIREMOCK_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": HEALTH_PATH, "port": WIREMOCK_PORT},
                                "periodSeconds": 2,
                                "failureThreshold": 3,
                            },
                            "securityContext": security,
                            "volumeMounts": [root_mount],
                        }
                    ],
                    "volumes": [
                        {"name": "mappings", "configMap": {"name": mappings_configmap_name(stub)}},
                        # Writable root: WireMock creates __files there at start.
                        {"name": "wiremock-root", "emptyDir": {}},
                    ],
                }, placement),
            },
        },
    }


def stub_service(stub: Stub, env: EnvRef) -> dict[str, Any]:
    labels = component_labels(env, stub.name, ComponentKind.STUB.value)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(stub.name, env, labels),
        "spec": {
            "selector": service_selector(stub.name, ComponentKind.STUB.value),
            "ports": [{"name": "http", "port": stub.port, "targetPort": WIREMOCK_PORT, "protocol": "TCP"}],
        },
    }


def stub_objects(
    stub: Stub, env: EnvRef, image: str, placement: PodPlacement = NO_PLACEMENT, run: int = 1
) -> list[dict[str, Any]]:
    """ConfigMap, Deployment and Service of a stub; `image` is the operator's
    default, which the stub's own `image` overrides."""
    files = mapping_files(stub)
    return [
        stub_configmap(stub, env, files),
        stub_deployment(stub, env, stub.image or image, files, placement, run),
        stub_service(stub, env),
    ]
