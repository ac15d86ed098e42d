"""The `testenv` commands in-process, with the cluster replaced by a fake:
wiring, exit codes, files written, and errors that never reach a cluster."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from testenv.cli import main as cli
from testenv.cli.cluster import CliError, Connection
from testenv.cli.follow import follow
from typer.testing import CliRunner

runner = CliRunner()

MANIFEST = {
    "apiVersion": "testenv.dev/v1alpha1",
    "kind": "TestEnvironment",
    "metadata": {"name": "pr-1", "namespace": "ci"},
    "spec": {
        "datastores": [{"name": "cache", "engine": "redis"}],
        "tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1"}],
    },
}


def write_manifest(tmp_path: Path, manifest: dict[str, Any] = MANIFEST) -> str:
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return str(path)


def env_object(generation: int, observed: int | None, phase: str, rv: str, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
        "metadata": {"name": "pr-1", "namespace": "ci", "generation": generation, "resourceVersion": rv},
        "spec": MANIFEST["spec"],
    }
    if observed is not None:
        body["status"] = {"phase": phase, "observedGeneration": observed, "run": observed, **status}
    return body


class FakeEnvironments:
    """The cluster as the CLI sees it: an apply result and a scripted watch."""

    def __init__(self, applied: dict[str, Any], events: list[tuple[str, dict[str, Any]]],
                 before: dict[str, Any] | None = None) -> None:
        self.connection = Connection(api=None, source="fake", server="https://fake", namespace="default", fix="")
        self.applied, self.events, self.before = applied, events, before
        self.sent: list[dict[str, Any]] = []
        self.watched = False

    def get(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        return self.before

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        return self.applied

    def watch(
        self, *, namespace: str, name: str, resource_version: str, deadline: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self.watched = True
        assert resource_version == self.applied["metadata"]["resourceVersion"]
        yield from self.events


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.phases: list[str] = []

    def waiting(self, note: str) -> None:
        self.notes.append(note)

    def update(self, status) -> None:
        self.phases.append(str(status.phase))


@pytest.fixture
def no_cluster(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("the cluster must not be contacted")

    monkeypatch.setattr(cli, "connect", refuse)


@pytest.fixture
def fake_cluster(monkeypatch):
    def install(fake: FakeEnvironments) -> FakeEnvironments:
        monkeypatch.setattr(cli, "connect", lambda *a, **k: fake.connection)
        monkeypatch.setattr(cli, "Environments", lambda connection: fake)
        return fake

    return install


# --- follow ------------------------------------------------------------------------------


def test_follow_ignores_an_older_runs_result_until_the_operator_catches_up():
    applied = env_object(2, 1, "Succeeded", "10")  # the last run passed; our new spec has not run yet
    fake = FakeEnvironments(applied, [
        ("MODIFIED", env_object(2, 1, "Succeeded", "11")),
        ("MODIFIED", env_object(2, 2, "Testing", "12")),
        ("MODIFIED", env_object(2, 2, "Failed", "13")),
        ("MODIFIED", env_object(2, 2, "Succeeded", "14")),  # never reached: the wait ended
    ])
    notes = Notes()
    outcome = follow(fake, applied, time.monotonic() + 60, notes)
    assert not outcome.timed_out
    assert outcome.status.phase == "Failed"
    assert notes.phases == ["Testing", "Failed"]
    assert notes.notes[0].startswith("waiting for the operator to pick up generation 2")


def test_follow_returns_at_once_when_the_applied_generation_already_finished():
    applied = env_object(3, 3, "Succeeded", "10")
    fake = FakeEnvironments(applied, [])
    outcome = follow(fake, applied, time.monotonic() + 60, Notes())
    assert outcome.status.phase == "Succeeded" and not fake.watched


def test_follow_reports_a_timeout_with_the_last_state():
    applied = env_object(1, None, "", "10")
    fake = FakeEnvironments(applied, [("MODIFIED", env_object(1, 1, "Testing", "11", message="testing: e2e"))])
    outcome = follow(fake, applied, time.monotonic() + 60, Notes())
    assert outcome.timed_out and outcome.status.phase == "Testing"


def test_follow_fails_when_the_environment_is_deleted_meanwhile():
    applied = env_object(1, None, "", "10")
    fake = FakeEnvironments(applied, [("DELETED", applied)])
    with pytest.raises(CliError, match="was deleted while waiting"):
        follow(fake, applied, time.monotonic() + 60, Notes())


def test_a_status_field_this_cli_does_not_know_is_tolerated():
    applied = env_object(1, 1, "Succeeded", "10", somethingNew={"a": 1})
    outcome = follow(FakeEnvironments(applied, []), applied, time.monotonic() + 60, Notes())
    assert outcome.status.phase == "Succeeded"


# --- up ------------------------------------------------------------------------------------


def test_up_wait_prints_the_table_writes_junit_and_exits_by_the_result(tmp_path, fake_cluster):
    final = env_object(1, 1, "Failed", "12", namespace="te-pr-1-abcde", message="1 suite(s) failed: e2e",
                       tests=[{"name": "e2e", "phase": "Failed", "passed": 3, "failed": 1, "skipped": 2,
                               "durationSeconds": 4.5, "failures": ["t::test_refund"]}],
                       summary={"passed": 3, "failed": 1, "skipped": 2})
    fake = fake_cluster(FakeEnvironments(env_object(1, None, "", "10"), [
        ("MODIFIED", env_object(1, 1, "Provisioning", "11")), ("MODIFIED", final)]))
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--wait", "--junit", str(junit),
                                     "--set", "tests.e2e.image=ghcr.io/acme/e2e:2"])
    assert result.exit_code == 1, result.output
    assert fake.sent[0]["spec"]["tests"][0]["image"] == "ghcr.io/acme/e2e:2"
    assert "testenvironment ci/pr-1 created (generation 1)" in result.stdout
    assert "phase Provisioning" in result.stdout  # plain progress: stdout is not a terminal
    assert "pr-1: Failed - 1 suite, 3 passed, 1 failed, 2 skipped" in result.stdout
    assert "e2e: t::test_refund" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert [suite.get(a) for a in ("name", "tests", "failures", "skipped")] == ["e2e", "6", "1", "2"]


def test_up_wait_exits_0_on_success(tmp_path, fake_cluster):
    fake_cluster(FakeEnvironments(env_object(1, None, "", "10"), [("MODIFIED", env_object(1, 1, "Succeeded", "11"))]))
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--wait"])
    assert result.exit_code == 0, result.output


def test_up_wait_exits_2_on_error_and_shows_why(tmp_path, fake_cluster):
    fake_cluster(FakeEnvironments(env_object(1, None, "", "10"), [
        ("MODIFIED", env_object(1, 1, "Error", "11", message="spec.services[0].copyFrom.namespace: not allowed"))]))
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--wait"])
    assert result.exit_code == 2
    assert "copyFrom.namespace: not allowed" in result.stdout


def test_up_wait_timeout_exits_2_naming_the_stuck_phase(tmp_path, fake_cluster):
    fake_cluster(FakeEnvironments(env_object(1, None, "", "10"), [
        ("MODIFIED", env_object(1, 1, "Testing", "11", message="testing: e2e"))]))
    junit = tmp_path / "junit.xml"
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--wait", "--timeout", "1s",
                                     "--junit", str(junit)])
    assert result.exit_code == 2
    assert "timed out after 1s waiting for ci/pr-1: stuck in phase Testing: testing: e2e" in result.stderr
    assert ET.parse(junit).getroot().find("testsuite[@name='testenv/pr-1']/testcase/error") is not None


def test_up_without_wait_applies_and_returns(tmp_path, fake_cluster):
    before = env_object(1, 1, "Succeeded", "9")
    fake = fake_cluster(FakeEnvironments(env_object(2, 1, "Succeeded", "10"), [], before=before))
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--name", "pr-2", "-n", "team"])
    assert result.exit_code == 0
    assert fake.sent[0]["metadata"] == {"name": "pr-2", "namespace": "team"}
    assert "updated: a new run starts (generation 2)" in result.stdout
    assert not fake.watched


def test_up_uses_the_contexts_namespace_when_none_is_given(tmp_path, fake_cluster):
    manifest = {**MANIFEST, "metadata": {"name": "pr-1"}}
    fake = fake_cluster(FakeEnvironments(env_object(1, None, "", "10"), []))
    runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path, manifest)])
    assert fake.sent[0]["metadata"]["namespace"] == "default"


def test_an_invalid_manifest_exits_2_naming_the_field_and_contacts_no_cluster(tmp_path, no_cluster):
    manifest = {**MANIFEST, "spec": {"tests": [{"name": "e2e", "imag": "x"}]}}
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path, manifest), "--wait"])
    assert result.exit_code == 2
    assert "nothing was sent to the cluster" in result.stderr
    assert "spec.tests[0](e2e).image: required field is missing" in result.stderr
    assert "spec.tests[0](e2e).imag: unknown field" in result.stderr


def test_a_bad_set_exits_2_and_contacts_no_cluster(tmp_path, no_cluster):
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--set", "tests.unit.image=x"])
    assert result.exit_code == 2
    assert "spec.tests has no item named 'unit' (items: e2e)" in result.stderr


def test_junit_without_wait_is_refused(tmp_path, no_cluster):
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--junit", "x.xml"])
    assert result.exit_code == 2 and "--junit needs --wait" in result.stderr


def test_a_bad_timeout_is_refused(tmp_path, no_cluster):
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--wait", "--timeout", "soon"])
    assert result.exit_code == 2 and "--timeout" in result.stderr


def test_dry_run_prints_the_resource_with_overrides(tmp_path, no_cluster):
    result = runner.invoke(cli.app, ["up", "-f", write_manifest(tmp_path), "--dry-run", "--set",
                                     "tests.e2e.podAnnotations.testenv\\.dev/simulate-exit-code=1"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["spec"]["tests"][0]["podAnnotations"] == {"testenv.dev/simulate-exit-code": "1"}


# --- cluster errors --------------------------------------------------------------------------


def test_no_kubeconfig_says_which_was_tried_and_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = runner.invoke(cli.app, ["list"])
    assert result.exit_code == 2
    assert f"KUBECONFIG={tmp_path / 'missing'} does not exist" in result.stderr
    assert "--kubeconfig" in result.stderr


def test_an_unreachable_server_names_the_context_and_how_to_check(tmp_path):
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))
    result = runner.invoke(cli.app, ["status", "pr-1", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 2
    assert "cannot reach the Kubernetes API at https://127.0.0.1:1: connection refused" in result.stderr
    assert f"context dev from --kubeconfig {kubeconfig}" in result.stderr
    assert "cluster-info" in result.stderr


# --- report ------------------------------------------------------------------------------------

PYTEST_XML = """<testsuites><testsuite name="pytest">
<testcase classname="t" name="a"/><testcase classname="t" name="b"><failure/></testcase>
<testcase classname="t" name="c"><skipped/></testcase></testsuite></testsuites>"""


def test_report_writes_the_summary_and_exits_0_even_with_failures(tmp_path):
    (tmp_path / "junit.xml").write_text(PYTEST_XML)
    out = tmp_path / "termination-log"
    result = runner.invoke(cli.app, ["report", str(tmp_path / "junit.xml"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"passed": 1, "failed": 1, "skipped": 1, "failures": ["t::b"]}
    assert "1 passed, 1 failed, 1 skipped from 1 file" in result.stderr


def test_report_sums_globs_and_directories(tmp_path):
    (tmp_path / "reports").mkdir()
    for name in ("a.xml", "b.xml"):
        (tmp_path / "reports" / name).write_text(PYTEST_XML)
    by_dir = runner.invoke(cli.app, ["report", str(tmp_path / "reports"), "-o", "-"])
    by_glob = runner.invoke(cli.app, ["report", str(tmp_path / "reports" / "*.xml"), "-o", "-"])
    assert json.loads(by_dir.stdout)["passed"] == json.loads(by_glob.stdout)["passed"] == 2


def test_report_exits_2_when_the_xml_is_unreadable(tmp_path):
    (tmp_path / "junit.xml").write_text("<testsuites><oops>")
    out = tmp_path / "termination-log"
    result = runner.invoke(cli.app, ["report", str(tmp_path / "junit.xml"), "--output", str(out)])
    assert result.exit_code == 2
    assert "junit.xml: not well-formed XML" in result.stderr
    assert not out.exists()


def test_report_exits_2_when_a_file_is_missing(tmp_path):
    result = runner.invoke(cli.app, ["report", str(tmp_path / "nope.xml"), "-o", "-"])
    assert result.exit_code == 2 and "nope.xml: cannot read it" in result.stderr


def test_report_exits_2_when_a_pattern_matches_nothing(tmp_path):
    result = runner.invoke(cli.app, ["report", str(tmp_path / "*.xml"), "-o", "-"])
    assert result.exit_code == 2 and "no file matches" in result.stderr


def test_report_says_how_to_fix_an_unwritable_output(tmp_path):
    (tmp_path / "junit.xml").write_text(PYTEST_XML)
    result = runner.invoke(cli.app, ["report", str(tmp_path / "junit.xml"), "-o", str(tmp_path / "no" / "dir")])
    assert result.exit_code == 2 and "pass --output" in result.stderr
