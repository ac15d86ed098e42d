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
from typing import Literal

# The kubelet keeps at most this many bytes of a container's termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# One absurdly long test name must not crowd out all the others.
MAX_FAILURE_NAME = 300

# What became of one test case. An <error> (it could not run: a fixture, a
# crash) is kept apart from a <failure> here, but both count as failed.
Outcome = Literal["passed", "failed", "error", "skipped"]


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

    def add(self, other: Summary) -> None:
        """`self += other`, in place (a report can hold many thousand suites)."""
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.failures.extend(other.failures)

    def count(self, outcome: Outcome, name: str) -> None:
        """Count one case named `name` (listed when it failed or errored)."""
        if outcome in ("failed", "error"):
            self.failed += 1
            self.failures.append(name)
        elif outcome == "skipped":
            self.skipped += 1
        else:
            self.passed += 1


def _int(value: str | None) -> int:
    try:
        return max(0, int(float(value or 0)))
    except (ValueError, OverflowError):
        return 0


def read_root(text: str | bytes, source: str = "<junit>") -> ET.Element:
    """The root of one JUnit XML document: <testsuites> or a single <testsuite>.

    Whatever the bytes are, the only error is a ReportError: expat refuses
    entity bombs ("amplification factor"), an unknown declared encoding is a
    LookupError and a lone surrogate in a str a ValueError.
    """
    try:
        root = ET.fromstring(text)
    except (ET.ParseError, LookupError, ValueError) as exc:
        raise ReportError(f"{source}: not well-formed XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"{source}: the root element is <{root.tag}>, expected <testsuites> or <testsuite>")
    return root


def walk(root: ET.Element) -> Iterator[tuple[ET.Element, list[ET.Element]]]:
    """Every <testsuite>, however deeply nested (surefire and some jest setups
    nest them), in document order, with its own <testcase> children."""
    if root.tag == "testsuite":
        yield root, root.findall("testcase")
    for suite in root.iter("testsuite"):
        if suite is not root:
            yield suite, suite.findall("testcase")


def case_outcome(case: ET.Element) -> Outcome:
    # A case that failed and was then skipped (rare, but pytest can emit
    # <error> for a teardown of a skipped test) counts as failed.
    if case.find("failure") is not None:
        return "failed"
    if case.find("error") is not None:
        return "error"
    if case.find("skipped") is not None:
        return "skipped"
    # Includes surefire's <flakyFailure>/<rerunFailure>: passed on a rerun.
    return "passed"


def failure_name(owner: str, name: str) -> str:
    """'owner::name', shortened to MAX_FAILURE_NAME characters."""
    full = f"{owner}::{name}" if owner else name
    if len(full) > MAX_FAILURE_NAME:
        full = full[: MAX_FAILURE_NAME - 1] + "…"
    return full


def case_owner(case: ET.Element, suite: ET.Element) -> str:
    # pytest and surefire put the module/class in classname; go-junit-report
    # the package; jest-junit the describe block. Fall back to the suite.
    return case.get("classname") or suite.get("name") or ""


def case_name(case: ET.Element) -> str:
    return case.get("name") or "(unnamed)"


def attribute_totals(suite: ET.Element) -> Summary:
    """The counts of a suite without <testcase> children, from its attributes."""
    if suite.find("testsuite") is not None:
        return Summary()  # only a wrapper: its nested suites are counted on their own
    # A suite reported by attributes only (some runners write empty suites,
    # others only totals): trust the attributes.
    failed = _int(suite.get("failures")) + _int(suite.get("errors"))
    skipped = _int(suite.get("skipped") or suite.get("disabled"))
    passed = max(0, _int(suite.get("tests")) - failed - skipped)
    return Summary(passed=passed, failed=failed, skipped=skipped)


def parse_junit(text: str | bytes, source: str = "<junit>") -> Summary:
    """Count one JUnit XML document: a <testsuites> root or a single <testsuite>."""
    total = Summary()
    for suite, cases in walk(read_root(text, source)):
        if not cases:
            total.add(attribute_totals(suite))
        for case in cases:
            total.count(case_outcome(case), failure_name(case_owner(case, suite), case_name(case)))
    return total


def summarize(documents: Iterable[tuple[str, str | bytes]]) -> Summary:
    """Sum several (source, text) documents, e.g. one report per test runner."""
    total = Summary()
    for source, text in documents:
        total.add(parse_junit(text, source))
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
