"""A real S3-compatible server for the tests: SeaweedFS's `weed mini`
(master, volume server, filer and S3 gateway in one process), built from the
Go module proxy by hack/testbed/build.sh, on free loopback ports with its data
under a temporary directory, and one access key pair that every request is
signed with."""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from testbed_support import BIN

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

WEED = BIN / "weed"
START_DEADLINE_SECONDS = 60.0
# It stops in under 2 s on SIGTERM, except when full: then its filer waits
# 15 s to flush a log it has no room for. The data is thrown away anyway.
STOP_GRACE_SECONDS = 3.0
ACCESS_KEY = "testenv-access"
SECRET_KEY = "testenv-secret-2f9c1e7a"  # long-lived only for the test's own throwaway server
BUCKET = "testenv-results"
PROBE_KEY = "s3-support-ready-probe"
# Every listener `weed mini` opens, each given a free loopback port.
_PORT_FLAGS = [
    f"{part}.{port}"
    for part in ("master", "volume", "filer", "s3", "admin")
    for port in ("port", "port.grpc")
]


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    pid: int
    log: Path
    master: str  # host:port.grpcport, as `weed shell` takes them
    filer: str
    _process: subprocess.Popen[bytes] = field(repr=False)
    # weed puts its local gRPC sockets in /tmp whatever it is told, and a
    # killed weed leaves them there.
    _sockets: list[Path] = field(repr=False)

    def create_bucket(self, name: str) -> None:
        _client(self.endpoint, self.access_key, self.secret_key).create_bucket(Bucket=name)

    def shell(self, script: str) -> str:
        """Runs `weed shell` commands (one a line) against this server; its output."""
        done = subprocess.run(
            [str(WEED), "shell", f"-master={self.master}", f"-filer={self.filer}"],
            input=script, capture_output=True, text=True, timeout=60, check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"weed shell failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout + done.stderr  # weed shell prints some answers on stderr

    def stop(self) -> None:
        """Stops the server by its PID: SIGTERM, then SIGKILL if it lingers. Idempotent."""
        if self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=30)
        for path in self._sockets:
            path.unlink(missing_ok=True)


def _client(endpoint: str, access_key: str, secret_key: str) -> S3Client:
    config = Config(
        s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=config,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
    )


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all held open until all are chosen."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    # A backstop for a test run that is killed outright: finalizers never run then.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_until_writable(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    """Polls until the gateway creates BUCKET and stores an object in it: the
    gateway answers before the filer takes writes."""
    client = _client(endpoint, ACCESS_KEY, SECRET_KEY)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"weed exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            try:
                client.create_bucket(Bucket=BUCKET)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
            client.put_object(Bucket=BUCKET, Key=PROBE_KEY, Body=b"ready?")
            client.delete_object(Bucket=BUCKET, Key=PROBE_KEY)
            return
        except (BotoCoreError, ClientError) as error:
            last = str(error)
        time.sleep(0.1)  # the poll interval, bounded by the deadline
    pytest.fail(
        f"SeaweedFS's S3 gateway took no object within {START_DEADLINE_SECONDS:.0f}s ({last}):\n"
        f"{log.read_text()[-3000:]}"
    )


def start_s3(tmp_dir: Path, *, volumes: int = 32, volume_size_mb: int = 64) -> S3Server:
    """A started server with BUCKET created, that holds `volumes` volumes of
    about `volume_size_mb` each (a bucket takes one when it first writes, and
    more as they fill). The caller stops it."""
    if not WEED.is_file():
        # Fail, not skip: CI builds it, and a skip would silently stop testing the S3 store.
        pytest.fail(f"the S3 server tests need SeaweedFS at {WEED}: run `bash hack/testbed/build.sh`")
    data, log, identities = tmp_dir / "data", tmp_dir / "weed.log", tmp_dir / "s3-identities.json"
    data.mkdir(parents=True, exist_ok=True)
    identities.write_text(json.dumps({"identities": [{
        "name": "testenv-operator",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}))
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    command = [
        str(WEED), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        f"-master.volumeSizeLimitMB={volume_size_mb}", f"-volume.max={volumes}",
        f"-filer.localSocket={tmp_dir / 'filer.sock'}", f"-s3.localSocket={tmp_dir / 's3.sock'}",
        f"-s3.config={identities}",
        # A missing bucket must stay missing: the store's error names it.
        "-s3.autoCreateBucket=false",
        # Only what the S3 gateway needs.
        "-admin.ui=false", "-admin.port.legacy=0", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_dir, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
    server = S3Server(
        endpoint=f"http://127.0.0.1:{ports['s3.port']}", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
        bucket=BUCKET, pid=process.pid, log=log,
        master=f"127.0.0.1:{ports['master.port']}.{ports['master.port.grpc']}",
        filer=f"127.0.0.1:{ports['filer.port']}.{ports['filer.port.grpc']}", _process=process,
        _sockets=[
            Path(f"/tmp/seaweedfs-{part}-grpc-{ports[part + '.port.grpc']}.sock")
            for part in ("master", "volume", "filer", "s3", "admin")
        ],
    )  # fmt: skip
    try:
        _wait_until_writable(process, server.endpoint, log)
    except BaseException:
        server.stop()
        raise
    return server
