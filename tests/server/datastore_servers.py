"""Real PostgreSQL and Redis servers from Debian's packages (hack/servers.sh),
each on a free loopback port for the session and thrown away after it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testbed_support import stop_process

START_DEADLINE_SECONDS = 60.0
# Every character a URL or a shell could trip over: proves the quoting.
PASSWORD = "s3cr:t/@?#&%+ 'x\"$HOME"
INSTALL_HINT = "run hack/servers.sh (apt-get install postgresql redis-server)"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    password: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(
    ready: Callable[[], bool], what: str, log: Path, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Polls `ready` until it is true, the deadline passes or the server died."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if ready():
            return
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)  # the poll interval, bounded by the deadline
    pytest.fail(f"{what} was not ready within {START_DEADLINE_SECONDS:.0f}s:\n{log.read_text()[-3000:]}")


# --- PostgreSQL -------------------------------------------------------------


def _postgres_bin() -> Path:
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail(f"the PostgreSQL server tests need initdb and pg_ctl: {INSTALL_HINT}")
    return Path(found[-1]).parent


def _as_postgres() -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        pytest.fail("running as root, the PostgreSQL tests need runuser and a 'postgres' user")
    return ["runuser", "-u", "postgres", "--"]


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A PostgreSQL whose superuser `testenv` logs in over TCP with PASSWORD
    only (as in the engine's image); each test creates its own database."""
    bin_dir, sudo = _postgres_bin(), _as_postgres()
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    work = Path(tempfile.mkdtemp(prefix="testenv-postgres-"))
    data, log, pwfile = work / "data", work / "postgres.log", work / "pwfile"
    pg_ctl = [*sudo, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        pwfile.write_text(PASSWORD + "\n")
        if sudo:
            shutil.chown(work, "postgres")
            shutil.chown(pwfile, "postgres")
        _run(
            [*sudo, str(bin_dir / "initdb"), "-D", str(data), "-U", "testenv", f"--pwfile={pwfile}",
             "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync"],
            "initdb",
        )
        port = _free_port()
        options = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run([*pg_ctl, "start", "-l", str(log), "-o", options, "-w", "-t", "60"], "pg_ctl start")
        ready = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]
        _wait_until(lambda: subprocess.run(ready, check=False).returncode == 0, "PostgreSQL", log)
        yield Server(host="127.0.0.1", port=port, password=PASSWORD)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*pg_ctl, "stop", "-m", "immediate", "-w"], check=False, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: Server) -> str:
    """A fresh, empty database on the session's server."""
    name = f"seed_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", postgres_server.host, "-p", str(postgres_server.port),
         "-U", "testenv", "-d", "postgres", "-c", f"CREATE DATABASE {name}"],
        env={**os.environ, "PGPASSWORD": postgres_server.password}, check=True, capture_output=True, timeout=60,
    )
    return name


# --- Redis ------------------------------------------------------------------


def redis_cli(server: Server, *args: str) -> str:
    """A command's raw reply; the password goes by env, as the seed passes it."""
    done = subprocess.run(
        ["redis-cli", "--raw", "-h", server.host, "-p", str(server.port), *args],
        env={**os.environ, "REDISCLI_AUTH": server.password}, capture_output=True, text=True, timeout=30,
        check=False,
    )
    return done.stdout.strip()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A memory-only Redis that requires PASSWORD, as the datastore's does."""
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("redis-cli") is None:
        pytest.fail(f"the Redis server tests need redis-server and redis-cli: {INSTALL_HINT}")
    work = tmp_path_factory.mktemp("redis")
    log, port = work / "redis.log", _free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", PASSWORD,
               "--save", "", "--appendonly", "no", "--dir", str(work)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = Server(host="127.0.0.1", port=port, password=PASSWORD)
    try:
        _wait_until(lambda: redis_cli(server, "ping") == "PONG", "redis-server", log, process)
        yield server
    finally:
        stop_process(process)


@pytest.fixture
def redis_db(redis_server: Server) -> Server:
    """The session's server, emptied for this test."""
    assert redis_cli(redis_server, "flushall") == "OK"
    return redis_server
