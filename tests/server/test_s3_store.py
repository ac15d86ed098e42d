"""The S3 results store against a real S3-compatible server (SeaweedFS, signed
requests): round trips, listing and deleting past one page, presigned links,
and a clear StoreError for each way the store can fail."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from s3_support import S3Server, start_s3
from testbed_support import wait_for
from testenv.s3store import MAX_PRESIGN_SECONDS, S3Config, S3Store, StoreError

pytestmark = pytest.mark.server

# One past S3's page of 1000: listing must follow the continuation, and
# deleting must take two DeleteObjects batches.
PAST_ONE_PAGE = 1001


def _config(server: S3Server, **changes: str) -> S3Config:
    """The server's store, signed with its key pair; `changes` override fields."""
    config = S3Config(
        endpoint=server.endpoint,
        bucket=server.bucket,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
    )
    return dataclasses.replace(config, **changes)


@pytest.fixture
def store(s3_server: S3Server) -> S3Store:
    return S3Store(_config(s3_server))


@pytest.fixture
def run_prefix() -> str:
    """Keys of this test only: the session's server is shared."""
    return f"ns/env-{uuid.uuid4().hex[:8]}/"


def _put_many(store: S3Store, keys: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: store.put(key, key.encode()), keys))


@pytest.mark.parametrize("size", [5 * 1024 * 1024, 0], ids=["5MiB", "empty"])
def test_put_then_get_returns_the_same_bytes(store: S3Store, run_prefix: str, size: int) -> None:
    blob = os.urandom(size)
    store.put(run_prefix + "r1/results.tar.gz", blob)
    assert store.get(run_prefix + "r1/results.tar.gz") == blob


def test_get_of_an_absent_key_is_none(store: S3Store, run_prefix: str) -> None:
    assert store.get(run_prefix + "never-stored") is None


def test_objects_live_under_the_configured_prefix(s3_server: S3Server, run_prefix: str) -> None:
    ours = S3Store(_config(s3_server, prefix="team-a"))
    theirs = S3Store(_config(s3_server, prefix="team-b"))
    ours.put(run_prefix + "a.xml", b"<a/>")
    assert S3Store(_config(s3_server, prefix="")).get("team-a/" + run_prefix + "a.xml") == b"<a/>"
    assert theirs.keys(run_prefix) == []


def test_keys_lists_every_key_across_pages_relative_to_the_prefix(store: S3Store, run_prefix: str) -> None:
    keys = [f"{run_prefix}r1/{i:05d}.xml" for i in range(PAST_ONE_PAGE)]
    _put_many(store, keys)
    assert sorted(store.keys(run_prefix)) == keys
    assert store.keys(run_prefix + "r1/0100") == [f"{run_prefix}r1/01000.xml"]


def test_delete_prefix_removes_only_its_prefix(store: S3Store, run_prefix: str) -> None:
    doomed = [f"{run_prefix}uid-1/{i:05d}" for i in range(PAST_ONE_PAGE)]
    # Shares the string prefix "uid-1" but is another run's directory.
    kept = [f"{run_prefix}uid-10/a", f"{run_prefix}uid-2/b"]
    _put_many(store, doomed + kept)
    assert store.delete_prefix(run_prefix + "uid-1/") == PAST_ONE_PAGE
    assert sorted(store.keys(run_prefix)) == kept
    assert store.delete_prefix(run_prefix + "uid-1/") == 0


def test_delete_prefix_refuses_an_empty_prefix(store: S3Store) -> None:
    with pytest.raises(ValueError, match="whole store"):
        store.delete_prefix("")


def test_presigned_get_fetches_the_bytes_without_the_secret(
    s3_server: S3Server, store: S3Store, run_prefix: str
) -> None:
    blob = os.urandom(64 * 1024)
    store.put(run_prefix + "report.html", blob)
    url = store.presigned_get(run_prefix + "report.html")
    assert s3_server.secret_key not in url
    assert f"X-Amz-Expires={MAX_PRESIGN_SECONDS}" in url
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.content == blob
    # Signed for that key alone: another key with the same signature is refused.
    assert httpx.get(url.replace("report.html", "other.html"), timeout=10).status_code == 403


def test_links_are_signed_for_the_public_endpoint_and_fetch_there(s3_server: S3Server, run_prefix: str) -> None:
    """The operator uploads to one address (in a cluster, a Service name) and
    CI fetches from another: the link carries, and is signed for, the second."""
    port = s3_server.endpoint.rsplit(":", 1)[1]
    inside, outside = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    store = S3Store(_config(s3_server, endpoint=inside, public_endpoint=outside))
    blob = os.urandom(4096)
    store.put(run_prefix + "shot.png", blob)
    url = store.presigned_get(run_prefix + "shot.png")
    assert url.startswith(outside + "/")
    answer = httpx.get(url, timeout=10)
    assert (answer.status_code, answer.content) == (200, blob)
    # Signed for its host: the same link sent to the other address is refused.
    assert httpx.get(url.replace(outside, inside), timeout=10).status_code == 403


def test_presigned_get_refuses_a_lifetime_sigv4_cannot_sign(store: S3Store) -> None:
    with pytest.raises(ValueError, match="604800"):
        store.presigned_get("k", seconds=MAX_PRESIGN_SECONDS + 1)


def test_a_wrong_secret_key_names_the_credentials(s3_server: S3Server) -> None:
    bad = S3Store(_config(s3_server, secret_access_key="not-the-secret"))
    with pytest.raises(StoreError) as raised:
        bad.put("ns/k", b"x")
    assert str(raised.value) == (
        f"the results store at {s3_server.endpoint} refused the credentials (SignatureDoesNotMatch: "
        "The request signature we calculated does not match the signature you provided. Check your key and "
        "signing method.); check the access key and secret key in the Secret that config.resultsS3CredentialsSecret names"
    )
    assert "not-the-secret" not in str(raised.value)


def test_an_unknown_access_key_names_the_credentials(s3_server: S3Server) -> None:
    with pytest.raises(StoreError, match=r"refused the credentials \(InvalidAccessKeyId"):
        S3Store(_config(s3_server, access_key_id="nobody")).keys("ns/")


def test_a_missing_bucket_is_named(s3_server: S3Server) -> None:
    missing = S3Store(_config(s3_server, bucket="no-such-bucket"))
    expected = (
        f"the results store at {s3_server.endpoint}: bucket 'no-such-bucket' does not exist; "
        "create it or set config.resultsS3Bucket"
    )
    for call in (lambda: missing.put("k", b"x"), lambda: missing.get("k"), lambda: missing.keys("")):
        with pytest.raises(StoreError) as raised:
            call()
        assert str(raised.value) == expected


def test_a_server_that_is_down_fails_within_seconds() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = S3Store(S3Config(endpoint=closed, bucket="b", access_key_id="a", secret_access_key="s"))
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        down.put("ns/k", b"x")
    assert time.monotonic() - started < 5
    assert str(raised.value) == (
        f"the results store at {closed} cannot be reached (connection refused) while storing 'testenv/ns/k': "
        "is the endpoint right and the server up?"
    )


def test_an_endpoint_that_is_not_a_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="set config.resultsS3Endpoint"):
        S3Store(S3Config(endpoint="s3 dot example", bucket="b", access_key_id="a", secret_access_key="s"))


def test_a_bucket_over_its_quota_refuses_the_upload(s3_server: S3Server, run_prefix: str) -> None:
    """SeaweedFS's own quota: the bucket turns read-only and writes get AccessDenied."""
    bucket = f"quota-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    store = S3Store(_config(s3_server, bucket=bucket))
    store.put(run_prefix + "big", os.urandom(2 * 1024 * 1024))
    s3_server.shell(f"s3.bucket.quota -name={bucket} -op=set -sizeMB=1")
    # The master learns the bucket's size from the volume server's next heartbeat.
    wait_for(
        lambda: f"changing bucket {bucket} to read only" in s3_server.shell("s3.bucket.quota.enforce -apply"),
        timeout=60,
        interval=1,
        what=f"SeaweedFS to turn bucket {bucket}, over its quota, read-only",
    )
    with pytest.raises(StoreError) as raised:
        store.put(run_prefix + "more", b"x")
    assert str(raised.value) == (
        f"the results store at {s3_server.endpoint} denied storing 'testenv/{run_prefix}more' (AccessDenied); "
        f"give the credentials write access to bucket '{bucket}', or raise the bucket's quota if it is full"
    )
    assert store.get(run_prefix + "big") is not None  # still readable


def test_a_full_server_refuses_the_upload(tmp_path: Path) -> None:
    """A server with one 1 MiB volume and no room for another: really full."""
    server = start_s3(tmp_path, volumes=1, volume_size_mb=1)
    try:
        store = S3Store(_config(server))
        with pytest.raises(StoreError) as raised:
            for i in range(16):
                store.put(f"ns/blob-{i}", os.urandom(512 * 1024))
        assert str(raised.value).startswith(
            f"the results store at {server.endpoint} failed storing 'testenv/ns/blob-"
        )
        assert str(raised.value).endswith(
            "(InternalError, HTTP 500: We encountered an internal error, please try again.); "
            "the store may be full or unwell: check its free space and its log"
        )
        assert "no free volumes left" in server.log.read_text()  # the server's own reason
    finally:
        server.stop()
