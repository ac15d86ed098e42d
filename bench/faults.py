"""Faults for the chaos soak: a real fault-injecting TCP proxy (Shopify's toxiproxy,
built by hack/testbed/build.sh, pinned in versions.env) put between the operator and
the API server, and the API server's own priority-and-fairness objects that make it
answer 429 to the operator alone.

Why a real proxy: the faults the operator must survive are on the wire (slow, cut,
reset, refused connections), and only a real TCP hop shows what its HTTP client does
with them. Why APF for 429s: the API server's own throttling is the real one.

Not a test module: bench/ is outside pytest's `testpaths`. The toxic types and their
attributes below are those of toxiproxy v2.5.0 (toxics/*.go in that module).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / ".cache" / "testbed" / "bin" / "toxiproxy-server"

PR_SET_PDEATHSIG = 1
THROTTLE_NAME = "testenv-chaos-throttle"
# Below every default FlowSchema that can match a workload's identity
# (kube-system-service-accounts 900, service-accounts 9000, global-default 9900)
# and no tie with any of them (system-nodes is 500); only exempt (1: system:masters)
# and probes (2) come first.
THROTTLE_PRECEDENCE = 450


def _die_with_parent() -> None:
    """An interrupted soak must not leave a proxy (and its faults) behind: SIGKILL when the parent dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ToxiproxyError(RuntimeError):
    pass


def _check(response: httpx.Response) -> httpx.Response:
    """toxiproxy answers errors as JSON {"error": ..., "status": ...}: show them, not just the code."""
    if response.is_error:
        raise ToxiproxyError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text.strip()}"
        )
    return response


@dataclass
class Proxy:
    """One proxy of a running toxiproxy: clients connect to `listen`, it connects to `upstream`.

    Toxics act per direction: "downstream" is upstream -> client (responses), "upstream"
    is client -> upstream (requests). A toxic applies to every connection, open or new
    (reset_peer's RST, though, only to connections opened after it was added: see reset_peer).
    """

    api: httpx.Client
    name: str
    upstream: str
    listen: str

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def add(
        self,
        toxic_type: str,
        name: str,
        attributes: dict[str, Any],
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> dict[str, Any]:
        """Add a toxic; toxicity is the probability that it applies to a given connection."""
        body = {"name": name, "type": toxic_type, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        result: dict[str, Any] = _check(self.api.post(f"/proxies/{self.name}/toxics", json=body)).json()
        return result

    def remove(self, name: str) -> None:
        _check(self.api.delete(f"/proxies/{self.name}/toxics/{name}"))

    def toxics(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = _check(self.api.get(f"/proxies/{self.name}/toxics")).json()
        return result

    def clear(self) -> None:
        """Remove every toxic: the wire is clean again (open connections stay open)."""
        for toxic in self.toxics():
            self.remove(toxic["name"])

    def enable(self) -> None:
        """Listen again (on the same address): the partition is over."""
        self._set_enabled(True)

    def disable(self) -> None:
        """A partition: every open connection is closed and new ones are refused (nothing listens)."""
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        _check(self.api.post(f"/proxies/{self.name}", json={"enabled": enabled}))

    def delete(self) -> None:
        _check(self.api.delete(f"/proxies/{self.name}"))

    # Named faults for the soak. Each returns the toxic's name, for remove().

    def latency(self, ms: int, jitter: int = 0, stream: str = "downstream", toxicity: float = 1.0) -> str:
        """Delay every chunk of data by ms (+/- jitter, uniform) milliseconds."""
        return self._named("latency", stream, toxicity, latency=ms, jitter=jitter)

    def bandwidth(self, kb_per_s: int, stream: str = "downstream", toxicity: float = 1.0) -> str:
        """Cap the rate at kb_per_s KB/s (toxiproxy's `rate`: 1 KB = 1000 bytes)."""
        return self._named("bandwidth", stream, toxicity, rate=kb_per_s)

    def reset_peer(self, timeout_ms: int = 0, stream: str = "downstream", toxicity: float = 1.0) -> str:
        """Connections reset by peer (TCP RST): timeout_ms after the first data in `stream`
        arrives, the connection is closed with SO_LINGER 0. That first data is dropped, not
        forwarded: downstream, the client gets the RST instead of any byte of the response
        (to cut a response midway, use limit_data). The RST only applies to connections
        opened after the toxic was added; older ones get a plain close (FIN). While it is
        there, every new connection gets SO_LINGER 0, also those that toxicity < 1 spares:
        they complete, but their normal close is an RST too.
        """
        return self._named("reset_peer", stream, toxicity, timeout=timeout_ms)

    def limit_data(self, n_bytes: int, stream: str = "downstream", toxicity: float = 1.0) -> str:
        """Forward n_bytes of each connection, then close it (FIN): a response cut midway."""
        return self._named("limit_data", stream, toxicity, bytes=n_bytes)

    def slow_close(self, delay_ms: int, stream: str = "downstream", toxicity: float = 1.0) -> str:
        """Hold each connection's close for delay_ms milliseconds."""
        return self._named("slow_close", stream, toxicity, delay=delay_ms)

    def timeout(self, timeout_ms: int = 0, stream: str = "downstream", toxicity: float = 1.0) -> str:
        """A black hole: data in `stream` is dropped; the connection is closed after timeout_ms
        (0: held open until removed). A close from the far end still goes through at once:
        downstream, a server that closes after its response ends the connection at once
        (empty); upstream, the request never arrives and the client waits (or times out).
        """
        return self._named("timeout", stream, toxicity, timeout=timeout_ms)

    def _named(self, toxic_type: str, stream: str, toxicity: float, **attributes: int) -> str:
        name = f"{toxic_type}_{stream}"  # toxiproxy's own default name
        self.add(toxic_type, name, dict(attributes), stream=stream, toxicity=toxicity)
        return name


class Toxiproxy:
    """toxiproxy-server as a child process on a free loopback port; its HTTP API through httpx.

    Its log (stdout) goes to a file, not a pipe nobody reads: `log_path`, removed by stop()
    unless keep_log. LOG_LEVEL is "warn" by default, as "info" logs every accepted connection.
    """

    def __init__(
        self, binary: Path = SERVER, log_level: str = "warn", startup_timeout: float = 10.0, keep_log: bool = False
    ) -> None:
        self.binary = binary
        self.log_level = log_level
        self.keep_log = keep_log
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._api: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> httpx.Client:
        assert self._api is not None, "Toxiproxy is not started"
        return self._api

    def start(self) -> Toxiproxy:
        if not self.binary.exists():
            raise ToxiproxyError(f"{self.binary} is missing: run hack/testbed/build.sh")
        self.port = free_port()
        fd, log = tempfile.mkstemp(prefix="toxiproxy-", suffix=".log")
        self.log_path = Path(log)
        with os.fdopen(fd, "wb") as out:
            self.process = subprocess.Popen(
                [str(self.binary), "-host", "127.0.0.1", "-port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LOG_LEVEL": self.log_level},
                preexec_fn=_die_with_parent,
            )
        self._api = httpx.Client(base_url=self.url, timeout=10)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Poll GET /version until it answers, the process exits, or the deadline passes."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ToxiproxyError(f"toxiproxy-server exited ({self.process.returncode}): {self.log()[-2000:]}")
            try:
                if self.api.get("/version", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ToxiproxyError(f"toxiproxy-server not answering on {self.url} after {self.startup_timeout}s")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (it exits at once on it), then wait; SIGKILL if it does not within 10 s."""
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log_path is not None and not self.keep_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Toxiproxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def proxy(self, name: str, upstream: str = "127.0.0.1:6443", listen: str = "127.0.0.1:0") -> Proxy:
        """Create a proxy. Port 0 lets the kernel pick a free one (no race); toxiproxy reports
        the address it got, and keeps it across disable/enable."""
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": True}
        created = _check(self.api.post("/proxies", json=body)).json()
        return Proxy(self.api, name, created["upstream"], created["listen"])

    def reset(self) -> None:
        """Every proxy enabled and every toxic removed (POST /reset)."""
        _check(self.api.post("/reset"))


def throttle_objects(user: str) -> list[dict[str, Any]]:
    """The API server's own priority and fairness objects that make it answer 429 to `user` under load.

    `user` is a user name, or a ServiceAccount as `system:serviceaccount:NS:NAME` (then a
    ServiceAccount subject). Returned in apply order: the PriorityLevelConfiguration, then
    the FlowSchema that sends all of the user's requests to it (a FlowSchema whose level is
    missing is "dangling"). The caller applies them with server-side apply and deletes them
    (FlowSchema first) to lift the fault; the API server picks changes up within about a second.

    How small the level is: NominalCL = ceil(ServerCL * 1 / sum of all levels' shares),
    ServerCL being --max-requests-inflight + --max-mutating-requests-inflight (defaults
    400 + 200). The defaults' shares sum to 245 (exempt 0, catch-all 5, system 30,
    node-high 40, leader-election 10, workload-high 40, workload-low 100, global-default
    20), so with share 1: ceil(600 / 246) = 3 seats. lendablePercent 0: none lent to
    others; borrowingLimitPercent 0: none borrowed either (nil would mean no limit, and
    the level would grow under load by borrowing idle seats from workload-low and the
    others). limitResponse Reject: no queue, a request over the limit gets 429 at once
    (a LIST may take several seats). Requests of system:masters are exempt (precedence 1)
    whatever this says: the user must not be in that group.
    """
    subject: dict[str, Any]
    if user.startswith("system:serviceaccount:"):
        parts = user.split(":")
        if len(parts) != 4 or not parts[2] or not parts[3]:
            raise ValueError(f"not system:serviceaccount:NAMESPACE:NAME: {user!r}")
        subject = {"kind": "ServiceAccount", "serviceAccount": {"namespace": parts[2], "name": parts[3]}}
    else:
        subject = {"kind": "User", "user": {"name": user}}
    api_version = "flowcontrol.apiserver.k8s.io/v1"
    level = {
        "apiVersion": api_version,
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": THROTTLE_NAME},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 1,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"},
            },
        },
    }
    schema = {
        "apiVersion": api_version,
        "kind": "FlowSchema",
        "metadata": {"name": THROTTLE_NAME},
        "spec": {
            "priorityLevelConfiguration": {"name": THROTTLE_NAME},
            "matchingPrecedence": THROTTLE_PRECEDENCE,
            "rules": [
                {
                    "subjects": [subject],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "clusterScope": True,
                            "namespaces": ["*"],
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    return [level, schema]
