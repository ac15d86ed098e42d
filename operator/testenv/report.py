"""JUnit XML in, a suite's summary out: the JSON a test container leaves in its
termination message for the operator to count (see `testenv report`).

Pure: parses text, returns values. Reading files and writing the termination
message are the CLI's business.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# The kubelet keeps at most this many bytes of a container's termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# One absurdly long test name must not crowd out all the others.
MAX_FAILURE_NAME = 300


class ReportError(ValueError):
    """The XML cannot be read as JUnit; the message says which file and why."""


@dataclass
class Summary:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)  # "suite::case"

    def __add__(self, other: Summary) -> Summary:
        return Summary(
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            skipped=self.skipped + other.skipped,
            failures=self.failures + other.failures,
        )

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


def _int(value: str | None) -> int:
    try:
        return max(0, int(float(value or 0)))
    except ValueError:
        return 0


def _suites(root: ET.Element) -> Iterator[ET.Element]:
    """Every <testsuite>, however deeply nested (surefire and some jest setups nest them)."""
    if root.tag == "testsuite":
        yield root
    for suite in root.iter("testsuite"):
        if suite is not root:
            yield suite


def _case_name(case: ET.Element, suite: ET.Element) -> str:
    # pytest and surefire put the module/class in classname; go-junit-report
    # the package; jest-junit the describe block. Fall back to the suite.
    owner = case.get("classname") or suite.get("name") or ""
    name = case.get("name") or "(unnamed)"
    full = f"{owner}::{name}" if owner else name
    if len(full) > MAX_FAILURE_NAME:
        full = full[: MAX_FAILURE_NAME - 1] + "…"
    return full


def _suite_summary(suite: ET.Element) -> Summary:
    cases = suite.findall("testcase")
    if not cases:
        # A suite reported by attributes only (some runners write empty
        # suites, others only totals): trust the attributes.
        if suite.find("testsuite") is not None:
            return Summary()  # only a wrapper: its nested suites are counted on their own
        failed = _int(suite.get("failures")) + _int(suite.get("errors"))
        skipped = _int(suite.get("skipped") or suite.get("disabled"))
        passed = max(0, _int(suite.get("tests")) - failed - skipped)
        return Summary(passed=passed, failed=failed, skipped=skipped)
    summary = Summary()
    for case in cases:
        # A case that failed and was then skipped (rare, but pytest can emit
        # <error> for a teardown of a skipped test) counts as failed.
        if case.find("failure") is not None or case.find("error") is not None:
            summary.failed += 1
            summary.failures.append(_case_name(case, suite))
        elif case.find("skipped") is not None:
            summary.skipped += 1
        else:
            # Includes surefire's <flakyFailure>/<rerunFailure>: passed on a rerun.
            summary.passed += 1
    return summary


def parse_junit(text: str | bytes, source: str = "<junit>") -> Summary:
    """Count one JUnit XML document: a <testsuites> root or a single <testsuite>."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportError(f"{source}: not well-formed XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"{source}: the root element is <{root.tag}>, expected <testsuites> or <testsuite>")
    total = Summary()
    for suite in _suites(root):
        total = total + _suite_summary(suite)
    return total


def summarize(documents: Iterable[tuple[str, str | bytes]]) -> Summary:
    """Sum several (source, text) documents, e.g. one report per test runner."""
    total = Summary()
    for source, text in documents:
        total = total + parse_junit(text, source)
    return total


def _encode(summary: Summary, failures: list[str]) -> str:
    return json.dumps(
        {"passed": summary.passed, "failed": summary.failed, "skipped": summary.skipped, "failures": failures},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def termination_message(summary: Summary, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """The summary as compact JSON of at most `limit` UTF-8 bytes.

    When the failures do not all fit, keep as many as fit (in order) and end
    the list with "... and N more"; the counts are always complete.
    """
    text = _encode(summary, summary.failures)
    if len(text.encode()) <= limit:
        return text
    failures = summary.failures

    def fits(keep: int) -> bool:
        kept = failures[:keep] + [f"... and {len(failures) - keep} more"]
        return len(_encode(summary, kept).encode()) <= limit

    low, high = 0, len(failures) - 1  # the largest `keep` that fits, by bisection
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return _encode(summary, failures[:low] + [f"... and {len(failures) - low} more"])
