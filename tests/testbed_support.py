"""The test bed for tests: a started cluster and deadline-bounded waits."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SH = ROOT / "hack" / "testbed" / "cluster.sh"
BIN = ROOT / ".cache" / "testbed" / "bin"

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Call probe until it returns something truthy; fail after timeout naming what was awaited."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def stop_process(process: subprocess.Popen) -> None:
    """Ask a server to stop; kill it if it will not."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def reachable(kubeconfig: str) -> bool:
    kubectl = str(BIN / "kubectl") if (BIN / "kubectl").exists() else "kubectl"
    try:
        return (
            subprocess.run(
                [kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
                capture_output=True,
                timeout=10,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Cluster:
    kubeconfig: str
    owned: bool  # started by this test session, so stopped by it too
    state_dir: str | None = None

    def stop(self) -> None:
        if self.owned:
            subprocess.run(
                ["bash", str(CLUSTER_SH), "down"],
                env=self._env(),
                check=False,
                capture_output=True,
            )

    def restart(self) -> None:
        """Stop and start etcd, the API server and the controllers (data kept)."""
        assert self.owned, "only a test bed this session started can be restarted"
        subprocess.run(["bash", str(CLUSTER_SH), "restart"], env=self._env(), check=True, capture_output=True)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.state_dir:
            env.update(TESTBED_STATE=self.state_dir, TESTBED_NAME=Path(self.state_dir).name)
        return env


def start_or_reuse() -> Cluster:
    """KUBECONFIG (a kind or real cluster, or `make cluster`) wins; else start our own.

    Its state lives in a short path of its own, not under pytest's tmp_path:
    the kubelet's socket paths must fit in 108 bytes (node.sh allows a state
    path of 59 characters), and /tmp/pytest-of-<user>/pytest-<n>/... grows
    with every session on the machine."""
    if os.environ.get("KUBECONFIG"):
        return Cluster(os.environ["KUBECONFIG"], owned=False)
    local = ROOT / ".cluster" / "kubeconfig"
    if local.exists() and reachable(str(local)):
        return Cluster(str(local), owned=False)
    state = Path(tempfile.gettempdir()) / f"testenv-pytest-{os.getpid()}"
    cluster = Cluster(str(state / "kubeconfig"), owned=True, state_dir=str(state))
    started = time.monotonic()
    result = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=cluster._env(), capture_output=True, text=True)
    if result.returncode != 0:
        # Read the step logs before `down` removes the state directory with them.
        logs = "".join(f"\n--- {log}:\n{log.read_text(errors='replace')[-3000:]}"
                       for log in sorted((state / "logs").glob("**/*.log")))
        cluster.stop()
        raise RuntimeError(f"test bed failed to start:\n{result.stdout}\n{result.stderr}{logs}")
    print(f"\ntestbed: started in {time.monotonic() - started:.1f}s")
    return cluster
