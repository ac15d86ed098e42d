"""The real operator as a process, and TestEnvironments driven the way a user does."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import urllib3
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from testbed_support import BIN, ROOT, Cluster, wait_for

GROUP, VERSION, PLURAL = "testenv.dev", "v1alpha1", "testenvironments"
COPY_SOURCE_NAMESPACE = "testenv-copy-source"
COPYABLE_SECRET = "copyable"  # the one Secret of COPY_SOURCE_NAMESPACE the component tests' operator may copy


def _die_with_parent() -> None:
    """An interrupted test run must not leave an operator acting on the cluster."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free now, all different: each socket is held until all are
    chosen, else the kernel may hand the same port out twice (it did: the
    operator's metrics server took its health port, and kopf stopped)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def kubectl(cluster: Cluster, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", cluster.kubeconfig, *args],
        input=input,
        capture_output=True,
        text=True,
        check=check,
    )


@dataclass
class OperatorProcess:
    """The operator as deployed: `python -m testenv`, configured by TESTENV_* variables."""

    cluster: Cluster
    env: dict[str, str]
    log_path: Path
    metrics_port: int
    health_port: int
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testenv", "--verbose"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=_die_with_parent,
        )
        url = f"http://127.0.0.1:{self.health_port}/healthz"

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.logs()[-3000:]
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60, what="operator liveness endpoint")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


@dataclass
class Environments:
    """TestEnvironments in one test namespace, driven through the API like kubectl would."""

    custom: client.CustomObjectsApi
    namespace: str

    def apply(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestEnvironment",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body,
            field_manager="pytest", force=True,
            _content_type="application/apply-patch+yaml",
        )
        return self.get(name)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait_phase(self, name: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
        """Watch the resource until its phase is one of phases. A watch sees
        every status write, so even a phase held for a moment is not missed."""
        deadline = time.monotonic() + timeout
        current = self.get(name)
        while (current.get("status") or {}).get("phase") not in phases:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {name} phase in {phases}\n"
                    f"status: {yaml.safe_dump(current.get('status') or {})}"
                )
            stream = watch.Watch().stream(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=current["metadata"]["resourceVersion"],
                timeout_seconds=max(1, int(remaining)),
            )
            try:
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        current = event["object"]
                        if (current.get("status") or {}).get("phase") in phases:
                            break
            except (ApiException, urllib3.exceptions.HTTPError):
                # The watch expired (410) or the API server went away (a
                # restart test): read the object afresh and watch again.
                current = wait_for(self._get_quietly(name), timeout=max(1.0, deadline - time.monotonic()),
                                   what=f"{name} readable again")
        return current["status"]

    def _get_quietly(self, name: str):
        def probe() -> dict[str, Any] | None:
            try:
                return self.get(name)
            except (ApiException, urllib3.exceptions.HTTPError):
                return None

        return probe

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


