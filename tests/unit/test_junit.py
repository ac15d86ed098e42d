"""The JUnit writer: an environment's status as the XML CI systems show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from testenv.junit import junit_xml
from testenv.models import JobPhase, Phase, SuiteStatus, TestEnvironmentStatus


def suites_of(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    return {s.get("name"): s for s in root.findall("testsuite")}


def attrs(element: ET.Element) -> tuple[str, str, str, str]:
    return element.get("tests"), element.get("failures"), element.get("errors"), element.get("skipped")


def finished(**kw) -> TestEnvironmentStatus:
    return TestEnvironmentStatus(phase=Phase.FAILED, run=2, **kw)


def test_one_testsuite_per_suite_with_counts_in_attributes():
    status = finished(tests=[
        SuiteStatus(name="contract", phase=JobPhase.SUCCEEDED, passed=12, skipped=1, duration_seconds=14.2),
        SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=3, failed=2, duration_seconds=61.0,
                    failures=["tests.test_orders::test_refund", "tests.test_orders::test_cancel"]),
        SuiteStatus(name="stubs/payment-gateway", phase=JobPhase.SUCCEEDED, passed=1),
    ])
    xml = junit_xml("pr-1", status)
    suites = suites_of(xml)
    assert list(suites) == ["contract", "e2e", "stubs/payment-gateway"]
    assert attrs(suites["contract"]) == ("13", "0", "0", "1")
    assert suites["contract"].get("time") == "14.200"
    assert attrs(suites["e2e"]) == ("5", "2", "0", "0")
    assert attrs(suites["stubs/payment-gateway"]) == ("1", "0", "0", "0")
    root = ET.fromstring(xml)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("19", "2", "1")


def test_listed_failures_become_failed_testcases_split_into_class_and_name():
    status = finished(tests=[SuiteStatus(name="e2e", phase=JobPhase.FAILED, failed=2,
                                         failures=["tests.test_orders.TestRefund::test_partial", "bare_name"])])
    cases = suites_of(junit_xml("pr-1", status))["e2e"].findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("tests.test_orders.TestRefund", "test_partial"),
        ("e2e", "bare_name"),
    ]
    assert all(c.find("failure") is not None for c in cases)


def test_a_failed_suite_without_names_gets_one_case_with_the_reason():
    status = finished(tests=[SuiteStatus(name="smoke", phase=JobPhase.FAILED, failed=1,
                                         message="timed out (timeoutSeconds)")])
    suite = suites_of(junit_xml("pr-1", status))["smoke"]
    (case,) = suite.findall("testcase")
    assert case.find("failure").get("message") == "timed out (timeoutSeconds)"
    assert attrs(suite) == ("1", "1", "0", "0")


def test_a_failed_suite_with_no_counts_is_an_error():
    status = finished(tests=[SuiteStatus(name="smoke", phase=JobPhase.FAILED, message="BackoffLimitExceeded")])
    assert attrs(suites_of(junit_xml("pr-1", status))["smoke"]) == ("1", "0", "1", "0")


def test_a_suite_that_never_ran_is_reported_skipped_with_why():
    status = finished(tests=[SuiteStatus(name="e2e", phase=JobPhase.SKIPPED,
                                         message="cancelled: an earlier suite failed (failFast)")])
    suite = suites_of(junit_xml("pr-1", status))["e2e"]
    assert attrs(suite) == ("1", "0", "0", "1")
    assert suite.find("testcase/skipped").get("message") == "cancelled: an earlier suite failed (failFast)"


def test_the_truncation_marker_is_not_a_testcase():
    status = finished(tests=[SuiteStatus(name="unit", phase=JobPhase.FAILED, failed=300,
                                         failures=["m::a", "m::b", "... and 298 more"])])
    suite = suites_of(junit_xml("pr-1", status))["unit"]
    assert [c.get("name") for c in suite.findall("testcase")] == ["a", "b"]
    assert "... and 298 more" in suite.find("system-out").text
    assert suite.get("failures") == "300"


def test_an_environment_error_is_an_error_testsuite():
    status = TestEnvironmentStatus(phase=Phase.ERROR, message="spec.tests[0].needs: 'x' is not a test suite")
    suites = suites_of(junit_xml("pr-1", status))
    error = suites["testenv/pr-1"].find("testcase/error")
    assert "spec.tests[0].needs" in error.get("message")
    assert attrs(suites["testenv/pr-1"]) == ("1", "0", "1", "0")


def test_a_wait_that_gave_up_is_reported_with_the_partial_results():
    status = TestEnvironmentStatus(phase=Phase.TESTING, tests=[
        SuiteStatus(name="unit", phase=JobPhase.SUCCEEDED, passed=4),
        SuiteStatus(name="e2e", phase=JobPhase.RUNNING, message="running"),
    ])
    suites = suites_of(junit_xml("pr-1", status, problem="timed out after 10m: stuck in phase Testing"))
    assert attrs(suites["unit"]) == ("4", "0", "0", "0")
    assert suites["e2e"].find("testcase/skipped").get("message") == "running"
    assert suites["testenv/pr-1"].find("testcase/error").get("message").startswith("timed out")


def test_the_document_is_well_formed_with_a_declaration_and_escapes():
    status = finished(tests=[SuiteStatus(name="x", phase=JobPhase.FAILED, failed=1,
                                         failures=['a::test <b> & "c"'])])
    xml = junit_xml("pr-1", status)
    assert xml.startswith("<?xml")
    assert suites_of(xml)["x"].find("testcase").get("name") == 'test <b> & "c"'
