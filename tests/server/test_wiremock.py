"""The mapping files we build, served by a real WireMock, and `verify` checked
through its admin API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from testenv.models import JobPhase, Stub, SuiteStatus
from testenv.stubaccess import direct
from testenv.stubverify import verify_stub

if TYPE_CHECKING:  # conftest is pytest's to import, not ours
    from conftest import WireMock

pytestmark = pytest.mark.server

DELAY_MS = 300

STUB = Stub.model_validate(
    {
        "name": "payment-gateway",
        "mappings": [
            {
                # An explicit id: WireMock refuses to load a mapping file twice then.
                "id": "0f9a4e1c-63a4-4f0e-9d43-0c4c8a1c2b01",
                "request": {"method": "POST", "urlPath": "/charge"},
                "response": {"status": 200, "jsonBody": {"status": "success"}, "headers": {"X-Stub": "payment"}},
            },
            {
                "request": {"method": "GET", "urlPathPattern": "/charges/[0-9]+"},
                "response": {"status": 200, "body": "found"},
            },
            {
                "request": {
                    "method": "GET",
                    "url": "/secure?tier=gold",
                    "headers": {"X-Api-Key": {"equalTo": "k1"}},
                },
                "response": {"status": 204},
            },
            {
                "request": {"method": "POST", "urlPath": "/refund", "bodyPatterns": [{"equalToJson": {"id": "c1"}}]},
                "response": {"status": 201, "body": "refunded"},
            },
            {
                "request": {"method": "GET", "urlPath": "/slow"},
                "response": {"status": 200, "fixedDelayMilliseconds": DELAY_MS},
            },
            {"request": {"method": "GET", "urlPath": "/reset"}, "response": {"fault": "CONNECTION_RESET_BY_PEER"}},
            {"request": {"method": "GET", "urlPath": "/empty"}, "response": {"fault": "EMPTY_RESPONSE"}},
            {"request": {"method": "ANY", "urlPath": "/verify/called"}, "response": {"status": 200}},
        ],
    }
)


@pytest.fixture(scope="module")
def wiremock(run_wiremock: Callable[[Stub], AbstractContextManager[WireMock]]) -> Iterator[WireMock]:
    with run_wiremock(STUB) as server:
        yield server


@pytest.fixture
def http(wiremock: WireMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wiremock.base_url, timeout=10.0) as client:
        yield client


def test_every_mapping_is_loaded_once(http: httpx.Client) -> None:
    # The ConfigMap's symlinked layout must not reach WireMock's mappings walk.
    assert http.get("/__admin/mappings").json()["meta"]["total"] == len(STUB.mappings)


def test_json_body_status_and_headers(http: httpx.Client) -> None:
    response = http.post("/charge", json={"amount": 10})
    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert response.headers["X-Stub"] == "payment"


def test_unmatched_request_is_404(http: httpx.Client) -> None:
    assert http.get("/charge").status_code == 404


def test_url_path_pattern_matches_only_the_pattern(http: httpx.Client) -> None:
    found = http.get("/charges/123", params={"expand": "1"})
    assert (found.status_code, found.text) == (200, "found")
    assert http.get("/charges/abc").status_code == 404


def test_request_headers_and_query_must_match(http: httpx.Client) -> None:
    assert http.get("/secure?tier=gold", headers={"X-Api-Key": "k1"}).status_code == 204
    assert http.get("/secure?tier=gold", headers={"X-Api-Key": "nope"}).status_code == 404
    assert http.get("/secure?tier=silver", headers={"X-Api-Key": "k1"}).status_code == 404


def test_body_patterns_match_json(http: httpx.Client) -> None:
    assert http.post("/refund", json={"id": "c1"}).status_code == 201
    assert http.post("/refund", json={"id": "c2"}).status_code == 404


def test_fixed_delay_delays_the_response(http: httpx.Client) -> None:
    started = time.perf_counter()
    assert http.get("/slow").status_code == 200
    assert time.perf_counter() - started >= DELAY_MS / 1000


@pytest.mark.parametrize("path", ["/reset", "/empty"])
def test_fault_breaks_the_connection(http: httpx.Client, path: str) -> None:
    with pytest.raises(httpx.TransportError):
        http.get(path)


def verify(wiremock: WireMock, entries: list[dict[str, Any]]) -> SuiteStatus:
    stub = Stub.model_validate({**STUB.wire(), "verify": entries})

    return verify_stub(direct(wiremock.base_url), stub)


def test_verify_passes_when_requests_came(wiremock: WireMock, http: httpx.Client) -> None:
    http.post("/verify/called")
    http.post("/verify/called")
    status = verify(
        wiremock,
        [
            {"request": {"method": "POST", "urlPath": "/verify/called"}},
            {"request": {"method": "POST", "urlPath": "/verify/called"}, "count": {"exactly": 2}},
            {"request": {"urlPathPattern": "/verify/.*"}, "count": {"atLeast": 2, "atMost": 2}},
        ],
    )
    assert (status.name, status.phase, status.passed, status.failed) == (
        "stubs/payment-gateway",
        JobPhase.SUCCEEDED,
        3,
        0,
    )


def test_verify_fails_with_a_message_when_no_request_came(wiremock: WireMock) -> None:
    status = verify(
        wiremock,
        [
            {"request": {"method": "POST", "urlPath": "/verify/never"}},
            {"request": {"method": "GET", "urlPath": "/verify/never"}, "count": {"atMost": 0}},
        ],
    )
    assert (status.phase, status.passed, status.failed) == (JobPhase.FAILED, 1, 1)
    assert status.failures == ["POST /verify/never: expected at least 1 request, got 0"]


def test_a_failed_verification_shows_what_the_stub_received(wiremock: WireMock, http: httpx.Client) -> None:
    http.post("/verify/other", json={"a": 1})
    http.get("/verify/unknown")
    status = verify(wiremock, [{"request": {"method": "POST", "urlPath": "/verify/expected"}}])
    assert status.phase == JobPhase.FAILED
    # Newest first, each with WireMock's answer; the unmatched one says so.
    assert "GET /verify/unknown -> 404, unmatched; POST /verify/other -> " in status.message, status.message
