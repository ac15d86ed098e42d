"""Real servers for the server tests: WireMock standalone, fetched from Maven
Central by hack/wiremock.sh and run as a local JVM on a loopback port, and
SeaweedFS's S3 gateway (tests/s3_support.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from s3_support import S3Server, start_s3
from testbed_support import stop_process
from testenv.build.common import EnvRef
from testenv.build.stubs import HEALTH_PATH, stub_objects, wiremock_args
from testenv.models import Stub

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_SECONDS = 120.0  # a cold JVM on a busy 2-core machine


@dataclass(frozen=True)
class WireMock:
    base_url: str
    root_dir: Path
    log: Path


@pytest.fixture(scope="session")
def java() -> str:
    path = shutil.which("java")
    if path is None:
        # Fail, not skip: a machine without Java would silently stop testing stubs.
        pytest.fail("the WireMock server tests need Java 17+ on PATH (Debian: apt-get install openjdk-17-jre-headless)")
    return path


@pytest.fixture(scope="session")
def wiremock_jar() -> Path:
    """The pinned jar; the script downloads it only when it is not cached yet."""
    done = subprocess.run(
        ["bash", str(ROOT / "hack" / "wiremock.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"hack/wiremock.sh could not fetch WireMock:\n{done.stderr[-3000:]}")
    jar = Path(done.stdout.strip().splitlines()[-1])
    assert jar.is_file(), f"hack/wiremock.sh printed {jar}, which is not a file"
    return jar


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lay_out_like_kubelet(files: dict[str, str], volume: Path) -> None:
    """A ConfigMap volume as kubelet writes it: the files in a hidden timestamped
    directory, `..data` pointing at it, and one symlink per key."""
    stamped = volume / "..2025_01_01_00_00_00.000000001"
    stamped.mkdir(parents=True)
    for name, content in files.items():
        (stamped / name).write_text(content)
        (volume / name).symlink_to(Path("..data") / name)
    (volume / "..data").symlink_to(stamped.name)


def _stub_pod(stub: Stub) -> tuple[dict[str, str], list[str]]:
    """The ConfigMap data and the init container command the stub's pod gets."""
    env = EnvRef(namespace="ns", name="e", uid="uid", target_namespace="te-e")
    built = {o["kind"]: o for o in stub_objects(stub, env, "wiremock")}
    (init,) = built["Deployment"]["spec"]["template"]["spec"]["initContainers"]
    return built["ConfigMap"]["data"], init["command"]


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(base_url + HEALTH_PATH).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            try:
                # Doubles as the poll interval and notices a JVM that died.
                process.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"WireMock exited with {process.returncode}:\n{log.read_text()[-3000:]}")
    pytest.fail(f"WireMock was not healthy within {START_DEADLINE_SECONDS:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def run_wiremock(
    java: str, wiremock_jar: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Stub], AbstractContextManager[WireMock]]:
    """A context manager factory: WireMock serving `stub`'s mappings, laid out
    and copied exactly as the stub's pod gets them."""

    @contextmanager
    def run(stub: Stub) -> Iterator[WireMock]:
        work = tmp_path_factory.mktemp(f"wiremock-{stub.name}")
        root_dir, volume, log = work / "root", work / "configmap", work / "wiremock.log"
        files, copy_command = _stub_pod(stub)
        _lay_out_like_kubelet(files, volume)
        # The init container's own command, with local paths for its two arguments.
        subprocess.run([*copy_command[:-2], str(volume), str(root_dir / "mappings")], check=True, timeout=60)
        port = _free_port()
        # The pod's own flags, with a local port and root; a quick-starting JIT
        # is plenty for a test server.
        args = [a for a in wiremock_args() if not a.startswith(("--port=", "--root-dir="))]
        command = [
            java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", str(wiremock_jar),
            f"--port={port}", f"--root-dir={root_dir}", "--bind-address=127.0.0.1", *args,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(process, base_url, log)
            yield WireMock(base_url=base_url, root_dir=root_dir, log=log)
        finally:
            stop_process(process)

    return run

from datastore_servers import postgres_database, postgres_server, redis_db, redis_server  # noqa: E402,F401


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS's S3 gateway for the session, stopped by its PID after it."""
    server = start_s3(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()
