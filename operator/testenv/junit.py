"""A TestEnvironment's result as JUnit XML, for CI systems that show test reports.

One <testsuite> per suite in the status (stub verifications included, named
`stubs/<stub>`), with the suite's counts in its attributes and a <testcase>
for each listed failure. Its properties say what was tested: the suite's own
image and resolved digest, and those of every component and seed of the run.
Pure: status in, XML text out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .models import JobPhase, Phase, SuiteStatus, TestEnvironmentStatus

# The marker `testenv report` ends a truncated failures list with.
TRUNCATION_PREFIX = "... and "


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


def _suite_element(suite: SuiteStatus, environment: str, provenance: Sequence[tuple[str, str]] = ()) -> ET.Element:
    failures = [f for f in suite.failures if not f.startswith(TRUNCATION_PREFIX)]
    omitted = [f for f in suite.failures if f.startswith(TRUNCATION_PREFIX)]
    tests, failed, skipped, errors = suite.passed + suite.failed + suite.skipped, suite.failed, suite.skipped, 0
    element = ET.Element("testsuite", name=suite.name)
    properties = ET.SubElement(element, "properties")
    ET.SubElement(properties, "property", name="testenv.environment", value=environment)
    ET.SubElement(properties, "property", name="testenv.phase", value=str(suite.phase))
    if suite.reason:
        ET.SubElement(properties, "property", name="testenv.reason", value=suite.reason)
    if suite.image:
        ET.SubElement(properties, "property", name="testenv.image", value=suite.image)
    if suite.image_digest:
        ET.SubElement(properties, "property", name="testenv.imageDigest", value=suite.image_digest)
    for name, value in provenance:
        ET.SubElement(properties, "property", name=name, value=value)

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


def junit_xml(environment: str, status: TestEnvironmentStatus, problem: str | None = None) -> str:
    """The XML document for `status`; `problem` adds an error case (e.g. the CLI's wait timed out)."""
    root = ET.Element("testsuites", name=environment)
    provenance = _provenance(status)
    suites = [_suite_element(suite, environment, provenance) for suite in status.tests]
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
