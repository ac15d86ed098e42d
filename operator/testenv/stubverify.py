"""A stub's `verify` entries, checked against WireMock's request journal and
reported like a test suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .build.stubs import request_target
from .models import JobPhase, RequestCount, Stub, StubVerification, SuiteStatus

COUNT_PATH = "/__admin/requests/count"
JOURNAL_LIMIT = 20
JOURNAL_PATH = f"/__admin/requests?limit={JOURNAL_LIMIT}"
MAX_JOURNAL_MESSAGE = 1500


class StubUnreachable(Exception):
    """The stub's admin API did not answer (not ready yet, gone, or no route to
    it); the message is the cause, the caller names the place."""


# (method, path, JSON body or None) -> the admin API's JSON answer; raises
# StubUnreachable. The edge decides how the stub is reached.
AdminRequest = Callable[[str, str, dict[str, Any] | None], Any]


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


def describe_journal(journal: Any) -> str:
    """WireMock's request journal (newest first) in one line: what the stub
    really received, so a failed verification shows what came instead."""
    entries = journal.get("requests") if isinstance(journal, dict) else None
    if not isinstance(entries, list):
        return "the stub's request journal could not be read"
    total = (journal.get("meta") or {}).get("total", len(entries))
    if not entries:
        return "the stub received no requests at all"
    seen = []
    for entry in entries:
        request = entry.get("request") or {}
        status = (entry.get("responseDefinition") or {}).get("status")
        matched = "" if entry.get("wasMatched", True) else ", unmatched"
        seen.append(f"{request.get('method', '?')} {request.get('url', '?')} -> {status}{matched}")
    shown = f"last {len(entries)} of {total}" if total > len(entries) else f"{total}"
    line = f"the stub received {shown} request(s), newest first: " + "; ".join(seen)
    return line if len(line) <= MAX_JOURNAL_MESSAGE else line[: MAX_JOURNAL_MESSAGE - 3] + "..."


def verify_stub(admin: AdminRequest, stub: Stub) -> SuiteStatus:
    """Ask the stub's WireMock how often each verified request came in; when
    a verification fails, add what the stub did receive.

    Raises StubUnreachable when WireMock cannot answer; the caller decides
    whether to retry."""
    results: list[tuple[StubVerification, int]] = []
    for verification in stub.verify:
        answer = admin("POST", COUNT_PATH, count_request_body(verification))
        results.append((verification, int(answer["count"])))
    status = verification_status(stub.name, results)
    if status.failed:
        status.message = f"{status.message}; {describe_journal(admin('GET', JOURNAL_PATH, None))}"
    return status
