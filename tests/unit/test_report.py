"""`testenv report`'s core: JUnit XML of the common runners -> the suite summary
the operator reads from the termination message."""

from __future__ import annotations

import json

import pytest
from testenv.report import (
    MAX_FAILURE_NAME,
    TERMINATION_MESSAGE_LIMIT,
    ReportError,
    Summary,
    parse_junit,
    summarize,
    termination_message,
)

# pytest --junitxml (xunit2): a <testsuites> root with one suite named "pytest";
# a failure, an error (fixture), skips.
PYTEST = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests">
  <testsuite name="pytest" errors="1" failures="1" skipped="2" tests="6" time="1.234"
             timestamp="2024-05-01T10:00:00" hostname="runner">
    <testcase classname="tests.test_orders" name="test_create" time="0.010"/>
    <testcase classname="tests.test_orders" name="test_list" time="0.011"/>
    <testcase classname="tests.test_orders.TestRefund" name="test_partial" time="0.200">
      <failure message="assert 5 == 4">def test_partial(): assert 5 == 4</failure>
    </testcase>
    <testcase classname="tests.test_payments" name="test_charge" time="0.001">
      <error message="failed on setup with &quot;ConnectionError&quot;">fixture failed</error>
    </testcase>
    <testcase classname="tests.test_payments" name="test_slow" time="0.000">
      <skipped type="pytest.skip" message="slow">tests/test_payments.py:40: slow</skipped>
    </testcase>
    <testcase classname="tests.test_payments" name="test_flaky[param-1]" time="0.000">
      <skipped type="pytest.xfail" message="known bug"/>
    </testcase>
  </testsuite>
</testsuites>
"""

# jest-junit: a suite per test file, classname and name both carry the describe text.
JEST = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="5" failures="1" errors="0" time="3.1">
  <testsuite name="OrderForm" errors="0" failures="1" skipped="1" timestamp="2024-05-01T10:00:00" time="1.5" tests="3">
    <testcase classname="OrderForm renders" name="OrderForm renders" time="0.1"/>
    <testcase classname="OrderForm submits" name="OrderForm submits an order" time="0.3">
      <failure>Error: expect(received).toBe(expected)</failure>
    </testcase>
    <testcase classname="OrderForm validates" name="OrderForm validates the total" time="0">
      <skipped/>
    </testcase>
  </testsuite>
  <testsuite name="Cart" errors="0" failures="0" skipped="0" timestamp="2024-05-01T10:00:01" time="1.6" tests="2">
    <testcase classname="Cart adds" name="Cart adds an item" time="0.2"/>
    <testcase classname="Cart removes" name="Cart removes an item" time="0.2"/>
  </testsuite>
</testsuites>
"""

# go-junit-report: a suite per package, with properties; skips carry a message.
GO = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" skipped="1">
  <testsuite name="github.com/acme/orders/api" tests="3" failures="1" errors="0" id="0" hostname="ci"
             skipped="1" time="0.512" timestamp="2024-05-01T10:00:00Z">
    <properties><property name="go.version" value="go1.22.2 linux/amd64"/></properties>
    <testcase name="TestCreateOrder" classname="github.com/acme/orders/api" time="0.010"/>
    <testcase name="TestRefund/partial" classname="github.com/acme/orders/api" time="0.100">
      <failure message="Failed" type="">    refund_test.go:42: got 5, want 4</failure>
    </testcase>
    <testcase name="TestLegacy" classname="github.com/acme/orders/api" time="0.000">
      <skipped message="legacy_test.go:10: not supported"/>
    </testcase>
  </testsuite>
  <testsuite name="github.com/acme/orders/store" tests="1" failures="0" errors="0" id="1" skipped="0" time="0.2">
    <testcase name="TestSave" classname="github.com/acme/orders/store" time="0.200"/>
  </testsuite>
</testsuites>
"""

# Maven surefire: a single <testsuite> root; a rerun that passed is a pass.
SUREFIRE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="com.acme.OrderServiceTest"
           time="2.1" tests="5" errors="1" skipped="1" failures="1">
  <properties><property name="java.version" value="21"/></properties>
  <testcase name="createsOrder" classname="com.acme.OrderServiceTest" time="0.1"/>
  <testcase name="retriesPayment" classname="com.acme.OrderServiceTest" time="0.4">
    <flakyFailure message="timeout" type="java.net.SocketTimeoutException"/>
  </testcase>
  <testcase name="refunds" classname="com.acme.OrderServiceTest" time="0.2">
    <failure message="expected:&lt;4&gt; but was:&lt;5&gt;" type="org.opentest4j.AssertionFailedError"/>
  </testcase>
  <testcase name="cancels" classname="com.acme.OrderServiceTest" time="0.1">
    <error message="NPE" type="java.lang.NullPointerException"/>
  </testcase>
  <testcase name="archives" classname="com.acme.OrderServiceTest" time="0">
    <skipped message="@Disabled"/>
  </testcase>
  <system-out><![CDATA[log output]]></system-out>
</testsuite>
"""


def test_pytest_report_counts_errors_as_failures_and_xfail_as_skipped():
    summary = parse_junit(PYTEST)
    assert (summary.passed, summary.failed, summary.skipped) == (2, 2, 2)
    assert summary.failures == [
        "tests.test_orders.TestRefund::test_partial",
        "tests.test_payments::test_charge",
    ]


def test_jest_junit_report_sums_every_file_suite():
    summary = parse_junit(JEST)
    assert (summary.passed, summary.failed, summary.skipped) == (3, 1, 1)
    assert summary.failures == ["OrderForm submits::OrderForm submits an order"]


def test_go_junit_report_names_failures_by_package_and_subtest():
    summary = parse_junit(GO)
    assert (summary.passed, summary.failed, summary.skipped) == (2, 1, 1)
    assert summary.failures == ["github.com/acme/orders/api::TestRefund/partial"]


def test_surefire_single_testsuite_root_and_flaky_rerun_counts_as_passed():
    summary = parse_junit(SUREFIRE)
    assert (summary.passed, summary.failed, summary.skipped) == (2, 2, 1)
    assert summary.failures == ["com.acme.OrderServiceTest::refunds", "com.acme.OrderServiceTest::cancels"]


def test_a_case_without_classname_is_named_after_its_suite():
    xml = '<testsuite name="smoke"><testcase name="homepage"><failure/></testcase></testsuite>'
    assert parse_junit(xml).failures == ["smoke::homepage"]


def test_a_suite_with_only_totals_is_counted_from_its_attributes():
    xml = '<testsuites><testsuite name="legacy" tests="10" failures="2" errors="1" skipped="3"/></testsuites>'
    summary = parse_junit(xml)
    assert (summary.passed, summary.failed, summary.skipped) == (4, 3, 3)
    assert summary.failures == []


def test_nested_suites_are_counted_once():
    xml = """<testsuites><testsuite name="outer" tests="3" failures="1">
               <testsuite name="inner-a">
                 <testcase classname="a" name="x"/><testcase classname="a" name="y"><failure/></testcase>
               </testsuite>
               <testsuite name="inner-b"><testcase classname="b" name="z"/></testsuite>
             </testsuite></testsuites>"""
    summary = parse_junit(xml)
    assert (summary.passed, summary.failed, summary.skipped) == (2, 1, 0)


def test_an_empty_report_is_zero_tests():
    assert parse_junit("<testsuites/>") == Summary()


def test_several_reports_are_summed_in_order():
    summary = summarize([("pytest.xml", PYTEST), ("go.xml", GO)])
    assert (summary.passed, summary.failed, summary.skipped) == (4, 3, 3)
    assert summary.failures[-1] == "github.com/acme/orders/api::TestRefund/partial"


def test_malformed_xml_is_an_error_naming_the_file():
    with pytest.raises(ReportError, match=r"results/unit\.xml: not well-formed XML"):
        parse_junit("<testsuites><testsuite>", "results/unit.xml")


def test_a_document_that_is_not_junit_is_an_error():
    with pytest.raises(ReportError, match=r"root element is <html>"):
        parse_junit("<html><body/></html>", "index.html")


def test_very_long_test_names_are_shortened():
    name = "test_" + "x" * 1000
    xml = f'<testsuite name="s"><testcase classname="c" name="{name}"><failure/></testcase></testsuite>'
    summary = parse_junit(xml)
    assert len(summary.failures[0]) == MAX_FAILURE_NAME
    assert summary.failures[0].endswith("…")


# --- the termination message -------------------------------------------------------


def test_termination_message_is_compact_json_with_every_field():
    message = termination_message(Summary(passed=12, failed=1, skipped=2, failures=["a::b"]))
    assert message == '{"passed":12,"failed":1,"skipped":2,"failures":["a::b"]}'


def test_a_message_that_fits_is_not_truncated():
    failures = [f"tests.test_mod::test_{i}" for i in range(50)]
    message = json.loads(termination_message(Summary(failed=50, failures=failures)))
    assert message["failures"] == failures


def test_too_many_failures_are_truncated_under_the_kubelet_limit_with_a_count_of_the_rest():
    failures = [f"tests.test_module_{i:04d}::test_something_rather_long_{i}" for i in range(1000)]
    text = termination_message(Summary(passed=5, failed=1000, skipped=1, failures=failures))
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    data = json.loads(text)
    assert (data["passed"], data["failed"], data["skipped"]) == (5, 1000, 1)  # counts stay complete
    kept, marker = data["failures"][:-1], data["failures"][-1]
    assert kept == failures[: len(kept)] and len(kept) > 10
    assert marker == f"... and {1000 - len(kept)} more"


def test_truncation_keeps_as_many_failures_as_fit():
    failures = [f"suite::case_{i:03d}" for i in range(500)]
    summary = Summary(failed=500, failures=failures)
    text = termination_message(summary, limit=1000)
    kept = len(json.loads(text)["failures"]) - 1
    # One more would not have fitted.
    longer = json.dumps({"passed": 0, "failed": 500, "skipped": 0,
                         "failures": failures[: kept + 1] + [f"... and {500 - kept - 1} more"]},
                        separators=(",", ":"))
    assert len(text.encode()) <= 1000 < len(longer.encode())


def test_the_limit_is_counted_in_utf8_bytes():
    failures = [f"suite::テスト_{i}" for i in range(400)]  # 3 bytes per character
    text = termination_message(Summary(failed=400, failures=failures))
    assert len(text.encode("utf-8")) <= TERMINATION_MESSAGE_LIMIT
    assert json.loads(text)["failures"][-1].startswith("... and ")
