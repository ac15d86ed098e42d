"""How the operator reaches a stub's WireMock admin API.

In the cluster (the chart's pod) it asks the stub's Service by DNS name.
Outside it (an operator on a developer's machine, as `make demo` runs it)
those names do not resolve, so it goes through the API server's Service
proxy, which reaches the stub's pod from the control plane."""

from __future__ import annotations

import os
from typing import Any

import httpx
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from .kube import Kube
from .stubverify import AdminRequest, StubUnreachable

# WireMock answers its admin API at once; a stub that does not (a pod that
# is gone, or one KWOK plays) must not hold up the environment's reconcile.
TIMEOUT = 10.0


def in_cluster() -> bool:
    # Set by the kubelet in every container of a pod.
    return "KUBERNETES_SERVICE_HOST" in os.environ


def direct(base_url: str) -> AdminRequest:
    def request(method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
                response = client.request(method, path, json=body)
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise StubUnreachable(exc.__class__.__name__) from exc

    return request


def through_api_server(kube: Kube, *, namespace: str, service: str, port: int) -> AdminRequest:
    def request(method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            return kube.service_proxy(namespace=namespace, service=service, port=port, method=method, path=path,
                                      body=body, timeout=(5.0, TIMEOUT))
        except ApiException as exc:
            raise StubUnreachable(f"{exc.status} {exc.reason}") from exc
        except (Urllib3Error, ValueError) as exc:
            raise StubUnreachable(exc.__class__.__name__) from exc

    return request


def admin_request(kube: Kube, *, namespace: str, service: str, port: int) -> tuple[AdminRequest, str]:
    """The way to the stub's admin API from where this process runs, and its name for messages."""
    if in_cluster():
        base_url = f"http://{service}.{namespace}.svc:{port}"
        return direct(base_url), base_url
    via = f"service {namespace}/{service}:{port} (via the API server)"
    return through_api_server(kube, namespace=namespace, service=service, port=port), via
