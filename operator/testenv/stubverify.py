"""A stub's `verify` entries, checked against WireMock's request journal and
reported like a test suite."""

from __future__ import annotations

from typing import Any

import httpx

from .build.stubs import request_target
from .models import JobPhase, RequestCount, Stub, StubVerification, SuiteStatus

COUNT_PATH = "/__admin/requests/count"


def count_request_body(verification: StubVerification) -> dict[str, Any]:
    """The request pattern to count, in the same format as a mapping's request."""
    return {"method": "ANY", **verification.request.wire()}


_CHECKS = {"exactly": int.__eq__, "at least": int.__ge__, "at most": int.__le__}


def _expectations(count: RequestCount) -> list[tuple[str, int]]:
    """(phrase, number) pairs in reading order, each a key of _CHECKS."""
    parts = [
        (phrase, n)
        for phrase, n in (("exactly", count.exactly), ("at least", count.at_least), ("at most", count.at_most))
        if n is not None
    ]
    # `count: {}` means the same as leaving count out: at least one request.
    return parts or [("at least", 1)]


def judge(verification: StubVerification, count: int) -> str | None:
    """None when `count` matching requests satisfy the verification, else what went wrong."""
    expected = _expectations(verification.count)
    if all(_CHECKS[phrase](count, n) for phrase, n in expected):
        return None
    wanted = " and ".join(f"{phrase} {n}" for phrase, n in expected)
    noun = "request" if expected[-1][1] == 1 else "requests"
    request = verification.request
    return f"{request.method or 'ANY'} {request_target(request)}: expected {wanted} {noun}, got {count}"


def verification_status(stub_name: str, results: list[tuple[StubVerification, int]]) -> SuiteStatus:
    failures = [m for v, n in results if (m := judge(v, n)) is not None]
    failed = len(failures)
    return SuiteStatus(
        name=f"stubs/{stub_name}",
        phase=JobPhase.FAILED if failed else JobPhase.SUCCEEDED,
        passed=len(results) - failed,
        failed=failed,
        failures=failures,
        message=f"{failed} of {len(results)} verifications failed" if failed else "",
    )


async def verify_stub(client: httpx.AsyncClient, base_url: str, stub: Stub) -> SuiteStatus:
    """Ask the stub's WireMock how often each verified request came in.

    Raises httpx.HTTPError when WireMock cannot answer (not ready yet, or gone);
    the caller decides whether to retry.
    """
    results: list[tuple[StubVerification, int]] = []
    for verification in stub.verify:
        response = await client.post(f"{base_url.rstrip('/')}{COUNT_PATH}", json=count_request_body(verification))
        response.raise_for_status()
        results.append((verification, int(response.json()["count"])))
    return verification_status(stub.name, results)
