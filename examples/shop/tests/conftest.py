"""Fixtures of the shop's tests: where the services are, test-data builders
that clean up after each test, and sharding by TESTENV_SHARD_INDEX/TOTAL.

Everything comes from the environment variables the TestEnvironment injects
(datastore URLs from its Secrets, stub URLs) or that the suite sets."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from builders import OrderBuilder, ProductBuilder

SERVICES = {name: os.environ.get(f"{name.upper()}_URL", f"http://{name}") for name in ("orders", "inventory", "shipping")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep this shard's share: every TOTAL-th test in a stable order."""
    total = int(os.environ.get("TESTENV_SHARD_TOTAL", "1"))
    index = int(os.environ.get("TESTENV_SHARD_INDEX", "0"))
    if total <= 1:
        return
    ordered = sorted(items, key=lambda item: item.nodeid)
    mine = {item.nodeid for i, item in enumerate(ordered) if i % total == index}
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in mine])
    items[:] = [item for item in items if item.nodeid in mine]


# A failed test's whole report (traceback, captured output and logs) as a
# file of its own in $TESTENV_RESULTS_DIR, which the operator keeps with the
# JUnit report: an artifact, as a screenshot or a HAR file would be.
ARTIFACTS: list[Path] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    out = os.environ.get("TESTENV_RESULTS_DIR")
    if out and report.when == "call" and report.failed:
        path = Path(out) / "failures" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid) + ".txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        sections = "".join(f"\n---- {name} ----\n{text}" for name, text in report.sections)
        path.write_text(f"{item.nodeid}\n\n{report.longreprtext}\n{sections}")
        ARTIFACTS.append(path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each artifact's digest in the log, so a kept copy can be checked against what was written."""
    for path in ARTIFACTS:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        terminalreporter.write_line(f"artifact {path.relative_to(os.environ['TESTENV_RESULTS_DIR'])} sha256 {digest}")


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # Generous: the slowest call (a charge that times out) takes the orders
    # service's own payment timeout plus the compensation.
    with httpx.Client(timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def urls() -> dict[str, str]:
    return SERVICES


@pytest.fixture
def orders_db() -> Iterator[psycopg.Connection]:
    with psycopg.connect(os.environ["ORDERS_DB_URL"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def products(http: httpx.Client) -> Iterator[ProductBuilder]:
    builder = ProductBuilder(http, SERVICES["inventory"], prefix=f"t{uuid.uuid4().hex[:6]}")
    yield builder
    builder.cleanup()


@pytest.fixture
def orders(http: httpx.Client, orders_db: psycopg.Connection) -> Iterator[OrderBuilder]:
    builder = OrderBuilder(http, SERVICES["orders"])
    yield builder
    if builder.placed:
        orders_db.execute("DELETE FROM orders WHERE id = ANY(%s)", (builder.placed,))
