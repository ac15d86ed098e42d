"""The `testenv` command as CI runs it: a subprocess with KUBECONFIG pointing
at the test bed, against the real operator. KWOK plays the test pods; their
annotations decide how each suite ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from testbed_support import ROOT, wait_for

pytestmark = pytest.mark.component

EXIT = "testenv.dev/simulate-exit-code"
MESSAGE = "testenv.dev/simulate-termination-message"


def run_cli(cluster, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig, PYTHONPATH=str(ROOT / "operator"), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "testenv.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def manifest(tmp_path: Path, name: str, tests: list[dict[str, Any]] | None = None) -> str:
    """A small environment: a redis datastore and the given suites."""
    body = {
        "apiVersion": "testenv.dev/v1alpha1",
        "kind": "TestEnvironment",
        "metadata": {"name": name},
        "spec": {"datastores": [{"name": "cache", "engine": "redis"}], "tests": tests or []},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def suite(annotations: dict[str, str]) -> dict[str, Any]:
    return {"name": "e2e", "image": "ghcr.io/acme/e2e:1", "podAnnotations": annotations}


PASSING = suite({MESSAGE: json.dumps({"passed": 5, "failed": 0, "skipped": 1})})
FAILING = suite({EXIT: "1", MESSAGE: json.dumps({"passed": 3, "failed": 2, "skipped": 0,
                                                 "failures": ["tests.test_orders::test_refund",
                                                              "tests.test_orders::test_cancel"]})})


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def junit_suite(path: Path, name: str) -> ET.Element:
    found = ET.parse(path).getroot().find(f"testsuite[@name='{name}']")
    assert found is not None, path.read_text()
    return found


def test_up_wait_on_a_passing_environment_exits_0_with_the_table_and_junit(cluster, environments, namespace, tmp_path):
    junit = tmp_path / "junit.xml"
    result = run_cli(cluster, "up", "-f", manifest(tmp_path, "cli-pass", [PASSING]), "-n", namespace,
                     "--wait", "--timeout", "3m", "--junit", str(junit))
    assert result.returncode == 0, explain(result)
    out = result.stdout
    assert f"testenvironment {namespace}/cli-pass created (generation 1)" in out
    assert "datastore cache: ready" in out  # plain progress, one line per change
    assert "suite e2e: Succeeded" in out
    table = [line.split() for line in out.splitlines()]
    assert ["SUITE", "PHASE", "PASSED", "FAILED", "SKIPPED", "DURATION"] in table
    assert any(row[:5] == ["e2e", "Succeeded", "5", "0", "1"] for row in table), out
    assert "cli-pass: Succeeded - 1 suite, 5 passed, 0 failed, 1 skipped - run 1" in out
    e2e = junit_suite(junit, "e2e")
    assert (e2e.get("tests"), e2e.get("failures"), e2e.get("errors"), e2e.get("skipped")) == ("6", "0", "0", "1")
    assert environments.status("cli-pass")["phase"] == "Succeeded"


def test_up_wait_on_a_failing_suite_exits_1_and_lists_the_failures(cluster, environments, namespace, tmp_path):
    junit = tmp_path / "junit.xml"
    result = run_cli(cluster, "up", "-f", manifest(tmp_path, "cli-fail", [FAILING]), "-n", namespace,
                     "--wait", "--timeout", "3m", "--junit", str(junit))
    assert result.returncode == 1, explain(result)
    assert "e2e: tests.test_orders::test_refund" in result.stdout
    e2e = junit_suite(junit, "e2e")
    assert (e2e.get("tests"), e2e.get("failures")) == ("5", "2")
    assert [c.get("name") for c in e2e.findall("testcase")] == ["test_refund", "test_cancel"]


def test_an_invalid_manifest_exits_2_naming_the_field_and_creates_nothing(cluster, environments, namespace, tmp_path):
    bad = manifest(tmp_path, "cli-bad", [{"name": "e2e", "podAnnotations": {}}])
    result = run_cli(cluster, "up", "-f", bad, "-n", namespace, "--wait", "--timeout", "1m")
    assert result.returncode == 2, explain(result)
    assert "spec.tests[0](e2e).image: required field is missing" in result.stderr
    assert "nothing was sent to the cluster" in result.stderr
    items = environments.custom.list_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments")
    assert items["items"] == []


def test_set_changes_the_result_of_the_next_run(cluster, environments, namespace, tmp_path):
    path = manifest(tmp_path, "cli-rerun", [PASSING])
    first = run_cli(cluster, "up", "-f", path, "-n", namespace, "--wait", "--timeout", "3m")
    assert first.returncode == 0, explain(first)
    # Run 2 is told to fail: the wait must report run 2, never run 1's success.
    second = run_cli(cluster, "up", "-f", path, "-n", namespace, "--wait", "--timeout", "3m",
                     "--set", f"tests.e2e.podAnnotations.{EXIT.replace('.', chr(92) + '.')}=1",
                     "--set", "tests.e2e.image=ghcr.io/acme/e2e:2")
    assert second.returncode == 1, explain(second)
    assert "updated: a new run starts (generation 2)" in second.stdout
    assert "cli-rerun: Failed" in second.stdout and "run 2" in second.stdout
    status = environments.status("cli-rerun")
    assert (status["run"], status["phase"], status["observedGeneration"]) == (2, "Failed", 2)
    spec = environments.get("cli-rerun")["spec"]
    assert spec["tests"][0]["image"] == "ghcr.io/acme/e2e:2"


def test_a_preview_environment_is_done_when_ready(cluster, environments, namespace, tmp_path):
    result = run_cli(cluster, "up", "-f", manifest(tmp_path, "cli-preview"), "-n", namespace,
                     "--wait", "--timeout", "3m")
    assert result.returncode == 0, explain(result)
    assert "cli-preview: Ready" in result.stdout


def test_status_list_logs_and_down(cluster, environments, core, namespace, tmp_path):
    up = run_cli(cluster, "up", "-f", manifest(tmp_path, "cli-life", [PASSING]), "-n", namespace,
                 "--wait", "--timeout", "3m")
    assert up.returncode == 0, explain(up)

    status = run_cli(cluster, "status", "cli-life", "-n", namespace, "-o", "json")
    assert status.returncode == 0, explain(status)
    shown = json.loads(status.stdout)
    assert shown["metadata"]["name"] == "cli-life" and "managedFields" not in shown["metadata"]
    assert shown["status"]["phase"] == "Succeeded"
    target = shown["status"]["namespace"]

    table = run_cli(cluster, "status", "cli-life", "-n", namespace)
    assert table.returncode == 0 and "TestsPassed" in table.stdout and "5 passed" in table.stdout

    listed = run_cli(cluster, "list", "-n", namespace)
    assert listed.returncode == 0, explain(listed)
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "PHASE", "READY", "TESTS", "AGE", "EXPIRES"]
    assert rows[1][:4] == ["cli-life", "Succeeded", "1/1", "5/0"] and rows[1][-2] == "in"
    everywhere = run_cli(cluster, "list", "-A")
    assert any(r[:2] == [namespace, "cli-life"] for r in (line.split() for line in everywhere.stdout.splitlines()))

    logs = run_cli(cluster, "logs", "cli-life", "e2e", "-n", namespace)
    # KWOK's pods have no container runtime behind them, so the kubelet API may
    # have no logs to give; the command must still find the pod and say so.
    assert logs.returncode in (0, 2), explain(logs)
    assert "e2e-r1-" in logs.stdout + logs.stderr
    unknown = run_cli(cluster, "logs", "cli-life", "nope", "-n", namespace)
    assert unknown.returncode == 2 and "no test suite 'nope' (suites: e2e)" in unknown.stderr

    down = run_cli(cluster, "down", "cli-life", "-n", namespace, "--wait", "--timeout", "2m")
    assert down.returncode == 0, explain(down)
    assert "gone" in down.stdout
    assert not environments.exists("cli-life")

    def namespace_gone() -> bool:
        try:
            core.read_namespace(target)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(namespace_gone, timeout=60, what=f"namespace {target} deleted")
    again = run_cli(cluster, "down", "cli-life", "-n", namespace)
    assert again.returncode == 0 and "nothing to delete" in again.stdout
    missing = run_cli(cluster, "status", "cli-life", "-n", namespace)
    assert missing.returncode == 2 and "not found" in missing.stderr
