"""JUnit XML in, every test case out: names, times, outcomes, the failure's
message and stack trace, the case's own output. What CI shows of a run.

The counting rules are report.py's (one walker for both): summarize_cases of
parse_cases counts exactly what report.parse_junit counts. Pure: text in,
values out; the document is never trusted, so every length is capped.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

from .report import (
    Outcome,
    Summary,
    attribute_totals,
    case_name,
    case_outcome,
    case_owner,
    failure_name,
    read_root,
    walk,
)

# Cases kept per document; the rest are counted (Cases.omitted), not listed.
MAX_CASES = 20_000
# Names longer than this are shortened (still longer than report.MAX_FAILURE_NAME,
# so the failure names a summary lists do not change).
MAX_NAME = 1024
MAX_MESSAGE = 8 * 1024
# A stack trace, or a case's system-out / system-err.
MAX_TEXT = 64 * 1024
# surefire's <flakyFailure>/<rerunFailure> kept per case.
MAX_RERUNS = 10

RERUN_TAGS = ("flakyFailure", "flakyError", "rerunFailure", "rerunError")


@dataclass(frozen=True)
class Rerun:
    """One of surefire's reruns of a case: flaky* when a later run passed,
    rerun* when every run failed."""

    kind: str  # the element's tag, one of RERUN_TAGS
    message: str = ""
    type: str = ""
    text: str = ""


@dataclass(frozen=True)
class Case:
    suite: str  # the name of the <testsuite> the case is in
    classname: str  # as written; "" when the runner wrote none
    name: str
    time: float  # seconds
    outcome: Outcome
    message: str = ""  # of the <failure>, <error> or <skipped>
    type: str = ""
    text: str = ""  # that element's text: the stack trace
    system_out: str = ""
    system_err: str = ""
    reruns: tuple[Rerun, ...] = ()

    @property
    def owner(self) -> str:
        """The classname, or the suite for a runner that writes none (as report.py names failures)."""
        return self.classname or self.suite


class Cases(list[Case]):
    """The cases of one document, in document order, and the counts of the
    tests that are not listed: those past MAX_CASES (`dropped` of them) and
    those of suites that report only totals in their attributes."""

    def __init__(self, cases: Iterable[Case] = (), omitted: Summary | None = None, dropped: int = 0) -> None:
        super().__init__(cases)
        self.omitted = omitted if omitted is not None else Summary()
        self.dropped = dropped


def cap(text: str, limit: int) -> str:
    """`text` of at most about `limit` characters: its head and its tail (a
    Python traceback ends with the error, a Java one starts with it)."""
    if len(text) <= limit:
        return text
    head, tail = limit // 2, limit // 4
    return f"{text[:head]}\n… (cut {len(text) - head - tail} characters) …\n{text[len(text) - tail:]}"


def _name(value: str) -> str:
    return value if len(value) <= MAX_NAME else value[: MAX_NAME - 1] + "…"


def _seconds(value: str | None) -> float:
    try:
        seconds = float((value or "0").replace(",", ""))  # "1,234.5": some runners group digits
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _text(elements: list[ET.Element]) -> str:
    return "\n".join(e.text for e in elements if e.text)


def _rerun(element: ET.Element) -> Rerun:
    # surefire puts the trace in a <stackTrace> child, older versions in the text.
    trace = element.findtext("stackTrace") or element.text or ""
    return Rerun(
        kind=element.tag,
        message=cap(element.get("message") or "", MAX_MESSAGE),
        type=cap(element.get("type") or "", MAX_NAME),
        text=cap(trace, MAX_TEXT),
    )


def _case(element: ET.Element, suite: ET.Element) -> Case:
    outcome = case_outcome(element)
    tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(outcome)
    found = element.findall(tag) if tag else []
    first = found[0] if found else None
    reruns = [e for e in element if e.tag in RERUN_TAGS][:MAX_RERUNS]
    return Case(
        suite=_name(suite.get("name") or ""),
        classname=_name(element.get("classname") or ""),
        name=_name(case_name(element)),
        time=_seconds(element.get("time")),
        outcome=outcome,
        message=cap(first.get("message") or "", MAX_MESSAGE) if first is not None else "",
        type=cap(first.get("type") or "", MAX_NAME) if first is not None else "",
        text=cap(_text(found), MAX_TEXT),
        system_out=cap(_text(element.findall("system-out")), MAX_TEXT),
        system_err=cap(_text(element.findall("system-err")), MAX_TEXT),
        reruns=tuple(_rerun(e) for e in reruns),
    )


def parse_cases(text: str | bytes, source: str = "<junit>", limit: int = MAX_CASES) -> Cases:
    """Every case of one JUnit XML document (any runner's), in document order.

    Raises report.ReportError, naming `source`, for anything that is not
    JUnit XML. At most `limit` cases are kept; the rest are counted in
    `omitted` (with their failure names) and `dropped` says how many.
    """
    cases: list[Case] = []
    omitted, dropped = Summary(), 0
    for suite, elements in walk(read_root(text, source)):
        if not elements:
            omitted.add(attribute_totals(suite))
        for element in elements:
            if len(cases) < limit:
                cases.append(_case(element, suite))
            else:
                dropped += 1
                omitted.count(case_outcome(element), failure_name(case_owner(element, suite), case_name(element)))
    return Cases(cases, omitted, dropped)


def summarize_cases(cases: Iterable[Case]) -> Summary:
    """The counts and failure names report.parse_junit gives for the same document."""
    total = Summary()
    for case in cases:
        total.count(case.outcome, failure_name(case.owner, case.name))
    if isinstance(cases, Cases):
        total.add(cases.omitted)
    return total
