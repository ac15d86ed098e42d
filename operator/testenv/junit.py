"""A TestEnvironment's result as JUnit XML, for CI systems that show test reports.

One <testsuite> per suite in the status (stub verifications included, named
`stubs/<stub>`), with the suite's counts in its attributes and a <testcase>
for each listed failure. Its properties say what was tested: the suite's own
image and resolved digest, and those of every component and seed of the run.
merged_junit_xml writes, for suites whose real reports were kept, their real
cases instead (times, messages, stack traces, output), one <testsuite> per
report. Pure: status and report bytes in, XML text out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence

from .cases import MAX_CASES, Case, Cases, parse_cases
from .models import JobPhase, Phase, SuiteStatus, TestEnvironmentStatus
from .report import ReportError

# The marker `testenv report` ends a truncated failures list with.
TRUNCATION_PREFIX = "... and "
# Stub verifications are suites named after their stub; they have no reports.
STUB_PREFIX = "stubs/"


def _seconds(value: float | None) -> str:
    return f"{value or 0:.3f}"


def _split_failure(failure: str, suite: str) -> tuple[str, str]:
    """'module.Class::test_x' -> (classname, name); a bare name belongs to the suite."""
    owner, sep, name = failure.rpartition("::")
    return (owner, name) if sep and owner else (suite, failure)


def _provenance(status: TestEnvironmentStatus) -> list[tuple[str, str]]:
    """(name, value) properties for the components' and seeds' images."""
    found = []
    for kind, entries in ([(str(c.kind), c) for c in status.components] + [("seed", s) for s in status.seeds]):
        if entries.image:
            found.append((f"testenv.{kind}.{entries.name}.image", entries.image))
        if entries.image_digest:
            found.append((f"testenv.{kind}.{entries.name}.imageDigest", entries.image_digest))
    return found


def _add_properties(element: ET.Element, suite: SuiteStatus, environment: str,
                    provenance: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]] = ()) -> None:
    properties = ET.SubElement(element, "properties")
    ET.SubElement(properties, "property", name="testenv.environment", value=environment)
    ET.SubElement(properties, "property", name="testenv.phase", value=str(suite.phase))
    if suite.reason:
        ET.SubElement(properties, "property", name="testenv.reason", value=suite.reason)
    if suite.image:
        ET.SubElement(properties, "property", name="testenv.image", value=suite.image)
    if suite.image_digest:
        ET.SubElement(properties, "property", name="testenv.imageDigest", value=suite.image_digest)
    for name, value in [*extra, *provenance]:
        ET.SubElement(properties, "property", name=name, value=value)


def _suite_element(suite: SuiteStatus, environment: str, provenance: Sequence[tuple[str, str]] = ()) -> ET.Element:
    failures = [f for f in suite.failures if not f.startswith(TRUNCATION_PREFIX)]
    omitted = [f for f in suite.failures if f.startswith(TRUNCATION_PREFIX)]
    tests, failed, skipped, errors = suite.passed + suite.failed + suite.skipped, suite.failed, suite.skipped, 0
    element = ET.Element("testsuite", name=suite.name)
    _add_properties(element, suite, environment, provenance)

    for failure in failures:
        classname, name = _split_failure(failure, suite.name)
        case = ET.SubElement(element, "testcase", classname=classname, name=name, time="0")
        ET.SubElement(case, "failure", message="failed", type="failure")
    if suite.phase == JobPhase.FAILED and not failures:
        # The suite failed without naming a test (a crash, a timeout, a stub
        # that was not called): one case that says why, so CI shows it.
        case = ET.SubElement(element, "testcase", classname=suite.name, name=suite.name,
                             time=_seconds(suite.duration_seconds))
        ET.SubElement(case, "failure", message=suite.message or "the suite failed", type="failure")
        if failed == 0:
            tests, errors = tests + 1, 1
    elif suite.phase in (JobPhase.SKIPPED, JobPhase.PENDING, JobPhase.RUNNING) and tests == 0:
        # Never ran (failFast, a failed need) or unfinished when the wait ended.
        case = ET.SubElement(element, "testcase", classname=suite.name, name=suite.name, time="0")
        reason = suite.message or ("not run" if suite.phase == JobPhase.SKIPPED else f"still {suite.phase}")
        ET.SubElement(case, "skipped", message=reason)
        tests, skipped = 1, 1
    if omitted:
        ET.SubElement(element, "system-out").text = "failures not listed: " + "; ".join(omitted)

    element.set("tests", str(tests))
    element.set("failures", str(failed))
    element.set("errors", str(errors))
    element.set("skipped", str(skipped))
    element.set("time", _seconds(suite.duration_seconds))
    return element


def _environment_error(environment: str, message: str) -> ET.Element:
    """The environment itself did not get to a result (Error, TimedOut, a wait that gave up)."""
    element = ET.Element("testsuite", name=f"testenv/{environment}", tests="1", failures="0", errors="1",
                         skipped="0", time="0")
    case = ET.SubElement(element, "testcase", classname="testenv", name=environment, time="0")
    ET.SubElement(case, "error", message=message, type="environment")
    return element


def _document(environment: str, status: TestEnvironmentStatus, suites: list[ET.Element], problem: str | None) -> str:
    root = ET.Element("testsuites", name=environment)
    if status.phase in (Phase.ERROR, Phase.TIMED_OUT) and not problem:
        problem = f"{status.phase}: {status.message}" if status.message else str(status.phase)
    if problem:
        suites.append(_environment_error(environment, problem))
    for attribute in ("tests", "failures", "errors", "skipped"):
        root.set(attribute, str(sum(int(s.get(attribute, "0")) for s in suites)))
    root.set("time", _seconds(sum(float(s.get("time", "0")) for s in suites)))
    root.extend(suites)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def junit_xml(environment: str, status: TestEnvironmentStatus, problem: str | None = None) -> str:
    """The XML document for `status`; `problem` adds an error case (e.g. the CLI's wait timed out)."""
    provenance = _provenance(status)
    suites = [_suite_element(suite, environment, provenance) for suite in status.tests]
    return _document(environment, status, suites, problem)


# --- from the real reports ---------------------------------------------------------

_SHARD = re.compile(r"shard (\d+)\b")
_CHILD = {"failed": "failure", "error": "error", "skipped": "skipped"}


def _case_seconds(value: float) -> str:
    """At least millisecond digits like the runners write, more when they were given."""
    text = f"{value:.6f}"
    while text.endswith("0") and len(text) - text.index(".") > 4:
        text = text[:-1]
    return text


def _case_element(case: Case) -> ET.Element:
    element = ET.Element("testcase", classname=case.owner, name=case.name, time=_case_seconds(case.time))
    tag = _CHILD.get(case.outcome)
    if tag:
        child = ET.SubElement(element, tag)
        if case.message:
            child.set("message", case.message)
        if case.type:
            child.set("type", case.type)
        if case.text:
            child.text = case.text
    for rerun in case.reruns:
        child = ET.SubElement(element, rerun.kind)
        if rerun.message:
            child.set("message", rerun.message)
        if rerun.type:
            child.set("type", rerun.type)
        if rerun.text:
            ET.SubElement(child, "stackTrace").text = rerun.text
    if case.system_out:
        ET.SubElement(element, "system-out").text = case.system_out
    if case.system_err:
        ET.SubElement(element, "system-err").text = case.system_err
    return element


def _report_element(suite: SuiteStatus, name: str, label: str, cases: Cases, environment: str,
                    provenance: Sequence[tuple[str, str]]) -> ET.Element:
    element = ET.Element("testsuite", name=name)
    _add_properties(element, suite, environment, provenance, extra=[("testenv.report", label)])
    outcomes = Counter(case.outcome for case in cases)
    element.extend(_case_element(case) for case in cases)
    if cases.omitted.total:
        ET.SubElement(element, "system-out").text = (
            f"{cases.omitted.total} tests counted but not listed: {cases.dropped} past the {MAX_CASES} cases "
            f"kept per report, the rest reported only as totals by their <testsuite>")
    element.set("tests", str(len(cases) + cases.omitted.total))
    element.set("failures", str(outcomes["failed"] + cases.omitted.failed))
    element.set("errors", str(outcomes["error"]))
    element.set("skipped", str(outcomes["skipped"] + cases.omitted.skipped))
    element.set("time", _seconds(sum(case.time for case in cases)))
    return element


def _shard_of(label: str) -> int | None:
    found = _SHARD.match(label)
    return int(found.group(1)) if found else None


def _unnamed_failure(suite: SuiteStatus, element: ET.Element) -> None:
    """The suite failed but its reports name no failed test (a crash after the
    tests, a timeout, a shard that left no report): one case that says why."""
    case = ET.SubElement(element, "testcase", classname=suite.name, name=suite.name,
                         time=_seconds(suite.duration_seconds))
    ET.SubElement(case, "error", message=suite.message or "the suite failed", type="suite")
    element.set("tests", str(int(element.get("tests", "0")) + 1))
    element.set("errors", str(int(element.get("errors", "0")) + 1))


def _reported_suite(suite: SuiteStatus, reports: Sequence[tuple[str, bytes]], environment: str,
                    provenance: Sequence[tuple[str, str]]) -> list[ET.Element]:
    parsed: list[tuple[str, Cases]] = []
    problems: list[tuple[str, str]] = []  # (label, why)
    for label, text in reports:
        try:
            parsed.append((label, parse_cases(text, label)))
        except ReportError as exc:
            problems.append((label, str(exc)))
    readable_shards = {_shard_of(label) for label, _ in parsed}
    if any(_shard_of(label) not in readable_shards for label, _ in problems):
        # A shard without one readable report is counted from its summary:
        # the other shards' cases alone would read as a suite with fewer
        # tests. Show the whole suite from its summary, and say which file.
        element = _suite_element(suite, environment, provenance)
        ET.SubElement(element, "system-err").text = "\n".join(
            f"a report could not be read, so this suite is shown from its summary: {why}" for _, why in problems)
        return [element]
    shards = {_shard_of(label) for label, _ in reports} - {None}
    sharded = len(shards) > 1 or any(shard for shard in shards)
    elements = []
    for label, cases in parsed:
        shard = _shard_of(label)
        name = f"{suite.name} [shard {shard}]" if sharded and shard is not None else suite.name
        elements.append(_report_element(suite, name, label, cases, environment, provenance))
    if problems:
        # As the status counts it: a shard's readable reports, and a note
        # naming its other `.xml` files, which are not JUnit.
        ET.SubElement(elements[0], "system-err").text = "\n".join(
            f"not counted, not a JUnit report: {why}" for _, why in problems)
    failed = sum(int(e.get("failures", "0")) + int(e.get("errors", "0")) for e in elements)
    if suite.phase == JobPhase.FAILED and not failed:
        _unnamed_failure(suite, elements[0])
    return elements


def merged_junit_xml(environment: str, status: TestEnvironmentStatus,
                     reports: Mapping[str, Sequence[tuple[str, bytes]]], problem: str | None = None) -> str:
    """Like junit_xml, with each suite's real test cases where its reports were kept.

    `reports` maps a suite's name to (label, JUnit XML) of its shards' last
    attempts, e.g. ("shard 1, attempt 0: reports/junit.xml", b"<testsuites>...").
    A label that starts with "shard N" names the shard: when a suite's reports
    come from more than one shard (or from one other than 0), each testsuite
    is named "<suite> [shard N]". A report that cannot be read is left out
    with a note, as the status's counts leave it out; a suite without a
    readable report, and every stub verification, are written from the
    status as junit_xml writes them.
    """
    provenance = _provenance(status)
    suites: list[ET.Element] = []
    for suite in status.tests:
        found = reports.get(suite.name) or ()
        if found and not suite.name.startswith(STUB_PREFIX):
            suites.extend(_reported_suite(suite, found, environment, provenance))
        else:
            suites.append(_suite_element(suite, environment, provenance))
    return _document(environment, status, suites, problem)
