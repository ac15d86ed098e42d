"""Real JUnit reports read in full (cases.py) and the merged JUnit written from
them (junit.merged_junit_xml): what CI shows of a run, messages and stack
traces included, whatever the runner and whatever the bytes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pytest
from test_report import GO, JEST, PYTEST, SUREFIRE
from testenv.cases import MAX_CASES, MAX_NAME, MAX_TEXT, Case, parse_cases, summarize_cases
from testenv.junit import junit_xml, merged_junit_xml
from testenv.models import JobPhase, Phase, SuiteStatus, TestEnvironmentStatus
from testenv.report import ReportError, parse_junit

PYTEST_TRACE = """def test_partial(client):
        order = client.post("/orders", json={"total": 5})
>       assert refund(order, 4).total == 4
E       assert 5 == 4
E        +  where 5 = Refund(total=5).total

tests/test_orders.py:42: AssertionError"""

# pytest --junitxml with junit_logging=all: the trace as the <failure>'s text
# (escaped, not CDATA), the captured output per case.
PYTEST_FULL = f"""<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests">
  <testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="2.468" hostname="runner">
    <testcase classname="tests.test_orders" name="test_create" time="0.0123"/>
    <testcase classname="tests.test_orders.TestRefund" name="test_partial" time="1.250">
      <failure message="assert 5 == 4">{escape(PYTEST_TRACE)}</failure>
      <system-out>refund requested for order 17
</system-out>
      <system-err>WARNING retrying</system-err>
    </testcase>
    <testcase classname="tests.test_payments" name="test_charge" time="0.001">
      <error message="failed on setup with &quot;ConnectionError&quot;">conftest.py:12: ConnectionError</error>
    </testcase>
    <testcase classname="tests.test_payments" name="test_slow" time="0.000">
      <skipped type="pytest.skip" message="slow">tests/test_payments.py:40: slow</skipped>
    </testcase>
  </testsuite>
</testsuites>
"""

JAVA_TRACE = """org.opentest4j.AssertionFailedError: expected: <4> but was: <5>
\tat org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:55)
\tat com.acme.OrderServiceTest.refunds(OrderServiceTest.java:42)
"""

# Maven surefire with rerunFailingTestsCount, as an aggregated <testsuites>
# whose suite nests another (JUnit 5 @Nested); a flaky test keeps its first
# failure, a test that failed every rerun has <rerunFailure>s.
SUREFIRE_FULL = f"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="com.acme.OrderServiceTest" time="2.1" tests="3" errors="0" skipped="0" failures="1">
    <properties><property name="java.version" value="21"/></properties>
    <testcase name="retriesPayment" classname="com.acme.OrderServiceTest" time="0.4">
      <flakyFailure message="timeout" type="java.net.SocketTimeoutException">
        <stackTrace>java.net.SocketTimeoutException: timeout
\tat com.acme.Payments.charge(Payments.java:10)</stackTrace>
        <system-out>first try</system-out>
      </flakyFailure>
    </testcase>
    <testcase name="refunds" classname="com.acme.OrderServiceTest" time="0.2">
      <failure message="expected: &lt;4&gt; but was: &lt;5&gt;"
               type="org.opentest4j.AssertionFailedError"><![CDATA[{JAVA_TRACE}]]></failure>
      <rerunFailure message="expected: &lt;4&gt; but was: &lt;5&gt;" type="org.opentest4j.AssertionFailedError">
        <stackTrace>same again</stackTrace>
      </rerunFailure>
      <system-out><![CDATA[refund 17 -> 5]]></system-out>
    </testcase>
    <testsuite name="com.acme.OrderServiceTest$Cancelling" time="0.3" tests="1">
      <testcase name="cancelsAnOpenOrder" classname="com.acme.OrderServiceTest$Cancelling" time="0.3"/>
    </testsuite>
  </testsuite>
</testsuites>
"""

ENVIRONMENT = "pr-1"


def finished(*suites: SuiteStatus) -> TestEnvironmentStatus:
    return TestEnvironmentStatus(phase=Phase.FAILED, run=1, tests=list(suites))


def merged(reports: dict[str, list[tuple[str, bytes]]], *suites: SuiteStatus) -> ET.Element:
    xml = merged_junit_xml(ENVIRONMENT, finished(*suites), reports)
    assert xml.startswith("<?xml")
    return ET.fromstring(xml)


def cases_of(suite: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in suite.findall("testcase")}


def counts(element: ET.Element) -> tuple[str | None, ...]:
    return tuple(element.get(a) for a in ("tests", "failures", "errors", "skipped"))


# --- reading cases -------------------------------------------------------------------


def test_pytest_cases_keep_times_messages_traces_and_output():
    cases = parse_cases(PYTEST_FULL, "junit.xml")
    assert [(c.classname, c.name, c.outcome) for c in cases] == [
        ("tests.test_orders", "test_create", "passed"),
        ("tests.test_orders.TestRefund", "test_partial", "failed"),
        ("tests.test_payments", "test_charge", "error"),
        ("tests.test_payments", "test_slow", "skipped"),
    ]
    create, partial, charge, slow = cases
    assert create.time == pytest.approx(0.0123)
    assert partial.suite == "pytest"
    assert (partial.message, partial.text) == ("assert 5 == 4", PYTEST_TRACE)
    assert (partial.system_out, partial.system_err) == ("refund requested for order 17\n", "WARNING retrying")
    assert charge.message == 'failed on setup with "ConnectionError"'
    assert (slow.message, slow.type, slow.text) == ("slow", "pytest.skip", "tests/test_payments.py:40: slow")


def test_surefire_nested_suites_and_reruns():
    cases = parse_cases(SUREFIRE_FULL, "TEST-com.acme.OrderServiceTest.xml")
    assert [(c.suite, c.name, c.outcome) for c in cases] == [
        ("com.acme.OrderServiceTest", "retriesPayment", "passed"),
        ("com.acme.OrderServiceTest", "refunds", "failed"),
        ("com.acme.OrderServiceTest$Cancelling", "cancelsAnOpenOrder", "passed"),
    ]
    flaky, refunds, _ = cases
    (rerun,) = flaky.reruns
    assert (rerun.kind, rerun.message, rerun.type) == ("flakyFailure", "timeout", "java.net.SocketTimeoutException")
    assert rerun.text.startswith("java.net.SocketTimeoutException: timeout\n\tat ")
    assert (refunds.type, refunds.text) == ("org.opentest4j.AssertionFailedError", JAVA_TRACE)
    assert [r.kind for r in refunds.reruns] == ["rerunFailure"]
    assert refunds.system_out == "refund 17 -> 5"


def test_go_junit_report_cases_are_named_by_package():
    cases = parse_cases(GO, "report.xml")
    assert [(c.classname, c.name, c.outcome) for c in cases][:3] == [
        ("github.com/acme/orders/api", "TestCreateOrder", "passed"),
        ("github.com/acme/orders/api", "TestRefund/partial", "failed"),
        ("github.com/acme/orders/api", "TestLegacy", "skipped"),
    ]
    assert cases[1].text == "    refund_test.go:42: got 5, want 4"
    assert cases[2].message == "legacy_test.go:10: not supported"


def test_jest_junit_cases_without_a_message_keep_the_text():
    cases = parse_cases(JEST, "junit.xml")
    failed = [c for c in cases if c.outcome == "failed"]
    assert [(c.suite, c.classname, c.name) for c in failed] == [
        ("OrderForm", "OrderForm submits", "OrderForm submits an order")]
    assert (failed[0].message, failed[0].text) == ("", "Error: expect(received).toBe(expected)")


@pytest.mark.parametrize("xml", [PYTEST, JEST, GO, SUREFIRE, PYTEST_FULL, SUREFIRE_FULL,
                                 '<testsuite name="smoke"><testcase name="homepage"><failure/></testcase></testsuite>',
                                 '<testsuites><testsuite name="legacy" tests="10" failures="2" errors="1" '
                                 'skipped="3"/></testsuites>',
                                 "<testsuites/>"])
def test_summarized_cases_count_exactly_what_the_termination_summary_counts(xml):
    assert summarize_cases(parse_cases(xml, "x.xml")) == parse_junit(xml, "x.xml")


def test_cases_past_the_cap_are_counted_not_kept():
    body = "".join(f'<testcase classname="m" name="t{i}">{"<failure/>" if i % 2 else ""}</testcase>'
                   for i in range(30))
    xml = f'<testsuite name="s">{body}</testsuite>'
    cases = parse_cases(xml, "big.xml", limit=10)
    assert len(cases) == 10 and cases.dropped == 20
    assert (cases.omitted.passed, cases.omitted.failed) == (10, 10)
    assert summarize_cases(cases) == parse_junit(xml)


def test_the_default_cap_holds_on_a_huge_report():
    xml = "<testsuite name='s'>" + "<testcase classname='m' name='t'/>" * (MAX_CASES + 5) + "</testsuite>"
    cases = parse_cases(xml, "huge.xml")
    assert (len(cases), cases.dropped, summarize_cases(cases).passed) == (MAX_CASES, 5, MAX_CASES + 5)


def test_huge_attributes_and_texts_are_cut_with_a_marker():
    trace = "head\n" + "x" * (3 * MAX_TEXT) + "\ntail: AssertionError"
    xml = (f'<testsuite name="s"><testcase classname="m" name="{"n" * 5_000_000}">'
           f'<failure message="{"m" * 1_000_000}">{trace}</failure></testcase></testsuite>')
    (case,) = parse_cases(xml, "big.xml")
    assert len(case.name) == MAX_NAME and case.name.endswith("…")
    assert len(case.message) < 10_000
    assert len(case.text) < MAX_TEXT + 100
    assert case.text.startswith("head\n") and case.text.endswith("tail: AssertionError")
    assert "… (cut " in case.text


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                  + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
                  + ']><testsuites><testsuite name="&j;"/></testsuites>')
QUADRATIC = ('<!DOCTYPE l [<!ENTITY a "' + "x" * 100_000 + '">]><testsuite name="s">'
             + "<testcase name='&a;'/>" * 2_000 + "</testsuite>")


@pytest.mark.parametrize(("xml", "why"), [
    (b"", "no element found"),
    (bytes(range(256)) * 40, "not well-formed"),
    (b"<testsuites><testsuite name='s'><testcase name='t'>", "no element found"),
    (BILLION_LAUGHS, "amplification"),
    (QUADRATIC, "amplification"),
    ('<!DOCTYPE l [<!ENTITY a SYSTEM "file:///etc/passwd">]><testsuite name="s">&a;</testsuite>', "undefined entity"),
    ('<!DOCTYPE l [<!ENTITY a SYSTEM "file:///etc/passwd">]><testsuite name="&a;"/>', "external entity"),
    (b'<?xml version="1.0" encoding="no-such-codec"?><testsuites/>', "unknown encoding"),
    ("<testsuite name='\ud800'/>", "surrogates"),
    ("<testsuite><testcase name='&#1;'/></testsuite>", "invalid character"),
])
def test_hostile_or_broken_documents_are_report_errors(xml, why):
    with pytest.raises(ReportError, match=rf"^shard 0, attempt 0: reports/x\.xml: not well-formed XML .*{why}"):
        parse_cases(xml, "shard 0, attempt 0: reports/x.xml")


def test_deeply_nested_suites_are_read():
    depth = 100_000
    xml = ("<testsuites>" + "<testsuite name='s'>" * depth + "<testcase name='t'/>"
           + "</testsuite>" * depth + "</testsuites>")
    assert [c.name for c in parse_cases(xml, "deep.xml")] == ["t"]


def test_declared_encodings_are_honoured():
    xml = '<?xml version="1.0" encoding="windows-1252"?><testsuite name="s"><testcase name="café €"/></testsuite>'
    (case,) = parse_cases(xml.encode("cp1252"), "x.xml")
    assert case.name == "café €"


# --- the merged report -----------------------------------------------------------------


def test_a_failures_message_and_multi_line_trace_survive_byte_exactly():
    suite = SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=2, failed=2, skipped=1, image="reg/e2e:1",
                        image_digest="sha256:abc")
    root = merged({"e2e": [("shard 0, attempt 0: junit.xml", PYTEST_FULL.encode())]}, suite)
    (element,) = root.findall("testsuite")
    assert element.get("name") == "e2e"
    cases = cases_of(element)
    failure = cases["test_partial"].find("failure")
    assert failure.get("message") == "assert 5 == 4"
    assert failure.text == PYTEST_TRACE
    assert cases["test_partial"].get("classname") == "tests.test_orders.TestRefund"
    assert cases["test_partial"].find("system-out").text == "refund requested for order 17\n"
    assert cases["test_partial"].find("system-err").text == "WARNING retrying"
    assert cases["test_charge"].find("error").get("message") == 'failed on setup with "ConnectionError"'
    assert cases["test_slow"].find("skipped").get("message") == "slow"
    assert counts(element) == ("4", "1", "1", "1")
    assert counts(root) == ("4", "1", "1", "1")


def test_java_trace_with_tabs_and_reruns_survive():
    suite = SuiteStatus(name="api", phase=JobPhase.FAILED, passed=2, failed=1)
    root = merged({"api": [("shard 0, attempt 1: TEST-x.xml", SUREFIRE_FULL.encode())]}, suite)
    cases = cases_of(root.find("testsuite"))
    assert cases["refunds"].find("failure").text == JAVA_TRACE
    assert cases["refunds"].find("failure").get("type") == "org.opentest4j.AssertionFailedError"
    flaky = cases["retriesPayment"].find("flakyFailure")
    assert flaky.get("message") == "timeout"
    assert flaky.find("stackTrace").text.startswith("java.net.SocketTimeoutException")
    assert cases["retriesPayment"].find("failure") is None
    assert cases["cancelsAnOpenOrder"].get("classname") == "com.acme.OrderServiceTest$Cancelling"


def test_per_case_times_are_kept():
    suite = SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=2, failed=2, skipped=1)
    root = merged({"e2e": [("shard 0, attempt 0: junit.xml", PYTEST_FULL.encode())]}, suite)
    times = {name: c.get("time") for name, c in cases_of(root.find("testsuite")).items()}
    assert times == {"test_create": "0.0123", "test_partial": "1.250", "test_charge": "0.001", "test_slow": "0.000"}
    assert root.find("testsuite").get("time") == "1.263"


def test_each_shard_gets_a_testsuite_of_its_own():
    one = '<testsuite name="pytest"><testcase classname="m" name="a" time="1"/></testsuite>'
    two = ('<testsuite name="pytest"><testcase classname="m" name="b" time="2">'
           '<failure message="no">x</failure></testcase></testsuite>')
    suite = SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=1, failed=1)
    root = merged({"e2e": [("shard 0, attempt 0: junit.xml", one.encode()),
                           ("shard 1, attempt 2: junit.xml", two.encode())]}, suite)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["e2e [shard 0]", "e2e [shard 1]"]
    assert [list(cases_of(s)) for s in suites] == [["a"], ["b"]]
    assert [counts(s) for s in suites] == [("1", "0", "0", "0"), ("1", "1", "0", "0")]
    assert counts(root) == ("2", "1", "0", "0")
    reports = [s.find("properties/property[@name='testenv.report']").get("value") for s in suites]
    assert reports == ["shard 0, attempt 0: junit.xml", "shard 1, attempt 2: junit.xml"]


def test_an_unsharded_suite_keeps_its_name():
    xml = b'<testsuite name="pytest"><testcase classname="m" name="a"/></testsuite>'
    root = merged({"unit": [("shard 0, attempt 0: junit.xml", xml)]}, SuiteStatus(name="unit", phase="Succeeded"))
    assert [s.get("name") for s in root.findall("testsuite")] == ["unit"]


def test_reported_suites_carry_the_same_properties_as_summaries():
    suite = SuiteStatus(name="e2e", phase=JobPhase.SUCCEEDED, passed=1, image="reg/e2e:1", image_digest="sha256:abc")
    xml = b'<testsuite name="pytest"><testcase classname="m" name="a"/></testsuite>'
    real = merged({"e2e": [("shard 0, attempt 0: junit.xml", xml)]}, suite).find("testsuite")
    summary = ET.fromstring(junit_xml(ENVIRONMENT, finished(suite))).find("testsuite")

    def properties(element: ET.Element) -> dict[str, str | None]:
        return {p.get("name"): p.get("value") for p in element.iter("property")}

    assert properties(real) == {**properties(summary), "testenv.report": "shard 0, attempt 0: junit.xml"}


@pytest.mark.parametrize("bad", [
    b"<testsuites><testsuite name='pytest'><testcase name='t'>",  # cut off mid-write
    bytes(range(256)) * 4,  # binary junk
    b"<html><body>502 Bad Gateway</body></html>",
    BILLION_LAUGHS.encode(),
])
def test_an_unreadable_report_falls_back_to_the_summary_with_a_note(bad):
    good = b'<testsuite name="pytest"><testcase classname="m" name="a"/></testsuite>'
    suite = SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=1, failed=1,
                        failures=["tests.test_x::test_broken"])
    root = merged({"e2e": [("shard 0, attempt 0: a.xml", good), ("shard 1, attempt 0: reports/b.xml", bad)]}, suite)
    (element,) = root.findall("testsuite")
    assert element.get("name") == "e2e"
    assert counts(element) == ("2", "1", "0", "0")
    assert [c.get("name") for c in element.findall("testcase")] == ["test_broken"]
    note = element.find("system-err").text
    assert "shard 1, attempt 0: reports/b.xml" in note and "summary" in note


def test_a_junk_xml_beside_a_readable_report_is_noted_and_the_real_cases_stay():
    good = b'<testsuite name="pytest"><testcase classname="m" name="a" time="0.5"/></testsuite>'
    suite = SuiteStatus(name="e2e", phase=JobPhase.SUCCEEDED, passed=1)
    root = merged({"e2e": [("shard 0, attempt 0: junit.xml", good),
                           ("shard 0, attempt 0: junk.xml", b"\x00\xff not xml")]}, suite)
    (element,) = root.findall("testsuite")
    assert [(c.get("name"), c.get("time")) for c in element.findall("testcase")] == [("a", "0.500")]
    note = element.find("system-err").text
    assert "not counted, not a JUnit report" in note and "junk.xml" in note


def test_suites_without_reports_and_stub_verifications_are_written_as_today():
    suites = [SuiteStatus(name="unit", phase=JobPhase.SUCCEEDED, passed=3, duration_seconds=4.0),
              SuiteStatus(name="stubs/payments", phase=JobPhase.SUCCEEDED, passed=1)]
    report = b"<testsuite name='s'><testcase name='c'/></testsuite>"
    reports = {"stubs/payments": [("shard 0, attempt 0: x.xml", report)]}
    status = finished(*suites)
    assert merged_junit_xml(ENVIRONMENT, status, reports) == junit_xml(ENVIRONMENT, status)
    assert merged_junit_xml(ENVIRONMENT, status, {}) == junit_xml(ENVIRONMENT, status)


def test_a_failed_suite_whose_reports_name_no_failure_says_why():
    xml = b'<testsuite name="pytest"><testcase classname="m" name="a"/></testsuite>'
    suite = SuiteStatus(name="e2e", phase=JobPhase.FAILED, passed=1, message="OOMKilled after the tests")
    (element,) = merged({"e2e": [("shard 0, attempt 0: junit.xml", xml)]}, suite).findall("testsuite")
    assert cases_of(element)["e2e"].find("error").get("message") == "OOMKilled after the tests"
    assert counts(element) == ("2", "0", "1", "0")


def test_the_merged_report_is_deterministic_and_sums_every_suite():
    reports = {"e2e": [("shard 0, attempt 0: junit.xml", PYTEST_FULL.encode())],
               "api": [("shard 0, attempt 0: go.xml", GO.encode()), ("shard 0, attempt 0: jest.xml", JEST.encode())]}
    status = TestEnvironmentStatus(phase=Phase.ERROR, message="boom", tests=[
        SuiteStatus(name="e2e", phase=JobPhase.FAILED), SuiteStatus(name="api", phase=JobPhase.FAILED),
        SuiteStatus(name="smoke", phase=JobPhase.SKIPPED)])
    xml = merged_junit_xml(ENVIRONMENT, status, reports)
    assert xml == merged_junit_xml(ENVIRONMENT, status, reports)
    root = ET.fromstring(xml)
    assert [s.get("name") for s in root.findall("testsuite")] == ["e2e", "api", "api", "smoke", "testenv/pr-1"]
    for attribute in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(attribute)) == sum(int(s.get(attribute)) for s in root.findall("testsuite"))
    assert counts(root) == ("15", "3", "2", "4")


def test_cases_beyond_the_cap_are_counted_in_the_testsuite_and_noted():
    case = "<testcase classname='m' name='t'><failure/></testcase>"
    xml = "<testsuite name='s'>" + case * (MAX_CASES + 3) + "</testsuite>"
    suite = SuiteStatus(name="e2e", phase=JobPhase.FAILED, failed=MAX_CASES + 3)
    (element,) = merged({"e2e": [("shard 0, attempt 0: junit.xml", xml.encode())]}, suite).findall("testsuite")
    assert len(element.findall("testcase")) == MAX_CASES
    assert counts(element) == (str(MAX_CASES + 3), str(MAX_CASES + 3), "0", "0")
    assert "3 past the" in element.find("system-out").text


def test_a_case_is_a_frozen_value():
    case = Case(suite="s", classname="", name="t", time=0.0, outcome="passed")
    assert case.owner == "s"
    with pytest.raises(AttributeError):
        case.name = "u"  # type: ignore[misc]
