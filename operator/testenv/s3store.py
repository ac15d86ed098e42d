"""The S3 results store: archives kept in an S3-compatible bucket under one
prefix, uploaded by the operator (environments never hold the credentials);
every failure is a StoreError that says what went wrong and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from .settings import S3_LINK_MAX_SECONDS

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

MAX_PRESIGN_SECONDS = S3_LINK_MAX_SECONDS
# DeleteObjects takes at most this many keys a request.
DELETE_BATCH = 1000
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
# What stores that say so answer when they are full (SeaweedFS says neither:
# a full server is an InternalError, a bucket over its quota AccessDenied).
_FULL_CODES = {"QuotaExceeded", "InsufficientStorage", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded"}


def _cause(error: BotoCoreError) -> str:
    """The socket's own words for a failed connection, short."""
    text = str(error.kwargs.get("error", error))
    for known in ("Connection refused", "Name or service not known", "timed out", "No route to host", "reset"):
        if known.lower() in text.lower():
            return known.lower()
    return text


class StoreError(Exception):
    """The results store failed; the message names what failed and the fix."""


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    bucket: str
    region: str = "us-east-1"
    prefix: str = "testenv"
    # The operator refuses empty ones (resultstore.bodies_for): boto3's own
    # chain would ask a cloud's metadata address.
    access_key_id: str = ""
    secret_access_key: str = ""
    presign_seconds: int = MAX_PRESIGN_SECONDS
    # Where download links point, when clients reach the server elsewhere.
    public_endpoint: str = ""


class S3Store:
    """Keys are relative ('ns/name/uid/...'); the store puts `prefix/` before them."""

    def __init__(self, config: S3Config) -> None:
        # Imported here: boto3 costs the operator about 20 MiB of RSS, which
        # only an operator with an S3 store configured should pay.
        import boto3
        from botocore.config import Config

        self._config = config
        self._base = f"{config.prefix.strip('/')}/" if config.prefix.strip("/") else ""
        self._where = f"the results store at {config.endpoint}"
        client_config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # Short waits and one retry: a server that is down fails a reconcile
            # in seconds instead of stalling the operator.
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"max_attempts": 2, "mode": "standard"},
            # Checksums only where S3 requires them: S3-compatible servers lag
            # behind AWS's newer default of a checksum on every request.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A session of its own: boto3's default session is not thread-safe.
        session = boto3.session.Session()

        def client_for(endpoint: str, value: str) -> S3Client:
            try:
                return session.client(
                    "s3",
                    endpoint_url=endpoint,
                    region_name=config.region,
                    config=client_config,
                    # None, not "": boto3's own chain then finds the credentials.
                    aws_access_key_id=config.access_key_id or None,
                    aws_secret_access_key=config.secret_access_key or None,
                )
            except ValueError as error:
                raise StoreError(
                    f"the results store endpoint {endpoint!r} is not usable ({error}); "
                    f"set config.{value} to a URL such as https://s3.example.com"
                ) from error

        self._client: S3Client = client_for(config.endpoint, "resultsS3Endpoint")
        # Signing is done here, offline: the link carries the host it was signed for.
        self._signer = client_for(config.public_endpoint, "resultsS3PublicEndpoint") if config.public_endpoint \
            else self._client

    def put(self, key: str, data: bytes) -> None:
        name = self._base + key
        try:
            self._client.put_object(Bucket=self._config.bucket, Key=name, Body=data)
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, f"storing '{name}'", writing=True) from error

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        name = self._base + key
        try:
            return self._client.get_object(Bucket=self._config.bucket, Key=name)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchKey":
                return None
            raise self._error(error, f"reading '{name}'") from error
        except BotoCoreError as error:
            raise self._error(error, f"reading '{name}'") from error

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, relative like the ones given to put."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._config.bucket, Prefix=self._base + prefix
        )
        try:
            return [item["Key"][len(self._base) :] for page in pages for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, f"listing '{self._base + prefix}'") from error

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every key that starts with `prefix`; returns how many."""
        if not prefix:
            raise ValueError("delete_prefix needs a prefix: it would delete the whole store")
        names = [self._base + key for key in self.keys(prefix)]
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            try:
                answer = self._client.delete_objects(
                    Bucket=self._config.bucket, Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True}
                )
            except (BotoCoreError, ClientError) as error:
                raise self._error(error, f"deleting under '{self._base + prefix}'", writing=True) from error
            if failed := answer.get("Errors", []):
                first = failed[0]
                raise StoreError(
                    f"{self._where} did not delete {len(failed)} of the keys under '{self._base + prefix}', "
                    f"first '{first.get('Key')}' ({first.get('Code')}: {first.get('Message')})"
                )
        return len(names)

    def presigned_get(self, key: str, seconds: int | None = None) -> str:
        """A URL that fetches the object without credentials until it expires."""
        seconds = self._config.presign_seconds if seconds is None else seconds
        if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"a presigned URL lives 1 to {MAX_PRESIGN_SECONDS} seconds (SigV4), not {seconds}")
        name = self._base + key
        try:
            return self._signer.generate_presigned_url(
                "get_object", Params={"Bucket": self._config.bucket, "Key": name}, ExpiresIn=seconds
            )
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, f"signing a link to '{name}'") from error

    def _error(self, error: BotoCoreError | ClientError, action: str, *, writing: bool = False) -> StoreError:
        where, bucket = self._where, self._config.bucket
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code == "NoSuchBucket":
                return StoreError(f"{where}: bucket '{bucket}' does not exist; create it or set config.resultsS3Bucket")
            if code in _CREDENTIAL_CODES:
                return StoreError(
                    f"{where} refused the credentials ({code}: {message}); check the access key "
                    "and secret key in the Secret that config.resultsS3CredentialsSecret names"
                )
            if code in _FULL_CODES or status == 507:
                return StoreError(f"{where} refused {action}: the store is full ({code or status})")
            if code == "AccessDenied":
                fix = f"give the credentials {'write' if writing else 'read'} access to bucket '{bucket}'"
                over_quota = ", or raise the bucket's quota if it is full" if writing else ""
                return StoreError(f"{where} denied {action} (AccessDenied); {fix}{over_quota}")
            if status >= 500:
                return StoreError(
                    f"{where} failed {action} ({code}, HTTP {status}: {message}); "
                    "the store may be full or unwell: check its free space and its log"
                )
            return StoreError(f"{where} refused {action} ({code}, HTTP {status}: {message})")
        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return StoreError(
                f"{where}: no credentials to sign requests with ({error}); set the access key "
                "and secret key in the Secret that config.resultsS3CredentialsSecret names"
            )
        if isinstance(error, ReadTimeoutError):
            return StoreError(
                f"{where} did not answer within {READ_TIMEOUT_SECONDS} s while {action}: "
                "is the server overloaded or stuck?"
            )
        if isinstance(error, (ConnectionError, HTTPClientError)):
            return StoreError(
                f"{where} cannot be reached ({_cause(error)}) while {action}: is the endpoint right and the server up?"
            )
        return StoreError(f"{where}: {action} failed: {error}")
