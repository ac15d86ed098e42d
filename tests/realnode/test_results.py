"""Results that outlive the environment, for real: a suite on the real node
writes a JUnit report with a failure and its stack trace, a binary artifact
and some hostile files into $TESTENV_RESULTS_DIR with nothing of ours (a
plain shell command); the collector sidecar (the operator's image, built by
the test bed) hands them to the operator, which keeps them. After the
environment's namespace is collected, `testenv results` gives back the
report, the artifact byte for byte and the failed container's log tail."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_support import Environments, OperatorProcess
from realnode_support import host_operator
from testbed_support import ROOT, Cluster, wait_for

pytestmark = pytest.mark.realnode

ARTIFACT = random.Random(7).randbytes(300_000)
FAILURE_MESSAGE = "expected 402, got 201"
STACK_LINE = 'File "checkout/test_pay.py", line 12, in test_declines'
LOG_LINE = "checkout: the card service answered 201 to a card that must be declined"

# A suite with nothing of ours: sh writes a JUnit report, an artifact and
# files that must not be kept (a symlink out of the directory, a 2 GiB sparse
# file, binary junk named .xml), logs a line and fails.
CHECKOUT = textwrap.dedent(f"""\
    set -e
    d="$TESTENV_RESULTS_DIR"
    mkdir -p "$d/reports" "$d/screens"
    cat > "$d/reports/junit.xml" <<'EOF'
    <?xml version="1.0" encoding="utf-8"?>
    <testsuites><testsuite name="checkout" tests="2" failures="1">
    <testcase classname="checkout.test_pay" name="test_declines" time="0.25"><failure message="{FAILURE_MESSAGE}">Traceback (most recent call last):
      {STACK_LINE}
    AssertionError: {FAILURE_MESSAGE}</failure></testcase>
    <testcase classname="checkout.test_pay" name="test_accepts" time="0.5"/>
    </testsuite></testsuites>
    EOF
    python3 -c "import random; open('$d/screens/shot.bin', 'wb').write(random.Random(7).randbytes(300000))"
    ln -s /etc/passwd "$d/passwd-link"
    truncate -s 2G "$d/huge.bin"
    printf '\\000\\377 not xml' > "$d/junk.xml"
    echo "{LOG_LINE}"
    exit 1
""")
# A second suite that passes, with a report of its own: never lost to the first's trouble.
HEALTH = textwrap.dedent("""\
    cat > "$TESTENV_RESULTS_DIR/junit.xml" <<'EOF'
    <testsuite name="health" tests="1"><testcase classname="health" name="test_up" time="0.1"/></testsuite>
    EOF
""")


# A suite that outlives its timeoutSeconds after writing part of its report.
SLOW = textwrap.dedent("""\
    cat > "$TESTENV_RESULTS_DIR/junit.xml" <<'EOF'
    <testsuite name="slow" tests="1"><testcase classname="slow" name="test_first" time="0.2"/></testsuite>
    EOF
    echo "slow: still waiting for the warehouse"
    trap 'exit 143' TERM
    sleep 600 & wait
""")
SEED = 'echo "42 products" > "$TESTENV_RESULTS_DIR/seeded.txt"'


def spec(images: dict[str, str], *, retain: int = 600, slow: bool = False) -> dict[str, Any]:
    runner = images["runner"]
    tests = [
        {"name": "checkout", "image": runner, "command": ["sh", "-c", CHECKOUT]},
        {"name": "health", "image": runner, "command": ["sh", "-c", HEALTH]},
    ]
    if slow:
        tests.append({"name": "slow", "image": runner, "command": ["sh", "-c", SLOW], "timeoutSeconds": 8})
    return {
        "seed": [{"name": "catalog", "image": runner, "command": ["sh", "-c", SEED]}],
        "tests": tests,
        "lifecycle": {"retainOnFailureSeconds": retain, "activeDeadlineSeconds": 600},
    }


@pytest.fixture
def start_operator(cluster: Cluster, crd: None, images: dict[str, str], tmp_path) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(**overrides: str) -> OperatorProcess:
        process = host_operator(cluster, images, tmp_path / f"operator-{len(started)}.log", **overrides)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def environments(api_client, namespace: str, start_operator) -> Iterator[Environments]:
    """Deleted (through the finalizer) while the operator still runs."""
    envs = Environments(client.CustomObjectsApi(api_client), namespace)
    names: list[str] = []
    envs.created = names  # type: ignore[attr-defined]
    yield envs
    for name in names:
        try:
            envs.delete(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for name in names:
        wait_for(lambda n=name: not envs.exists(n), timeout=120, what=f"{name} deleted")


def cli(cluster: Cluster, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig, "PYTHONPATH": str(ROOT / "operator"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "testenv.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def cases(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def namespace_gone(core: client.CoreV1Api, name: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            return exc.status == 404
        return False
    return probe


def test_a_failing_suites_report_artifacts_and_log_outlive_its_namespace(
    cluster, core, images, namespace, environments, start_operator, tmp_path,
) -> None:
    start_operator()
    manifest = tmp_path / "env.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
                                        "metadata": {"name": "checkout"},
                                        "spec": spec(images, retain=1, slow=True)}))
    environments.created.append("checkout")
    # What CI runs: up, wait, JUnit; exit 1 because a test failed.
    up = cli(cluster, "up", "-f", str(manifest), "-n", namespace, "--wait", "--timeout", "5m",
             "--junit", str(tmp_path / "up.xml"))
    assert up.returncode == 1, up.stdout + up.stderr
    status = environments.status("checkout")
    suites = {s["name"]: s for s in status["tests"]}
    # The counts and failure names come from the real report, not a summary.
    assert (suites["checkout"]["passed"], suites["checkout"]["failed"]) == (1, 1)
    assert suites["checkout"]["failures"] == ["checkout.test_pay::test_declines"]
    assert (suites["health"]["passed"], suites["health"]["failed"]) == (1, 0)
    # Stopped at its deadline: what it wrote before is kept and counted.
    assert suites["slow"]["message"] == "timed out (timeoutSeconds)"
    assert (suites["slow"]["passed"], suites["slow"]["failed"]) == (1, 0)
    kept = suites["checkout"]["results"]
    notes = "\n".join(kept["notes"])
    assert "passwd-link: a symbolic link" in notes, notes
    assert "huge.bin: 2.0 GiB is over" in notes, notes
    assert "junk.xml is not a JUnit report" in notes, notes
    assert kept["reports"] == 2 and kept["files"] == 3  # junit.xml, junk.xml, shot.bin
    failing = cases(tmp_path / "up.xml")["checkout.test_pay::test_declines"]
    assert failing.find("failure").get("message") == FAILURE_MESSAGE, up.stdout + up.stderr
    assert STACK_LINE in failing.find("failure").text

    # The namespace goes (retainOnFailureSeconds: 1); what was kept stays.
    wait_for(namespace_gone(core, status["namespace"]), timeout=180, what="the environment's namespace collected")
    fetched = cli(cluster, "results", "checkout", "-n", namespace, "--junit", str(tmp_path / "after.xml"),
                  "--artifacts", str(tmp_path / "artifacts"), "--logs")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    after = cases(tmp_path / "after.xml")
    assert after["checkout.test_pay::test_declines"].find("failure").get("message") == FAILURE_MESSAGE
    assert STACK_LINE in after["checkout.test_pay::test_declines"].find("failure").text
    assert float(after["checkout.test_pay::test_accepts"].get("time")) == 0.5
    assert "health::test_up" in after
    [shot] = (tmp_path / "artifacts").glob("test-checkout/shard-0/attempt-0/screens/shot.bin")
    assert shot.read_bytes() == ARTIFACT
    assert not list((tmp_path / "artifacts").rglob("passwd-link")) and not list((tmp_path / "artifacts").rglob("huge.bin"))
    assert LOG_LINE in fetched.stdout  # the failed container's log tail
    assert "slow: still waiting for the warehouse" in fetched.stdout  # the timed-out one's
    [seeded] = (tmp_path / "artifacts").glob("seed-catalog/shard-0/attempt-0/seeded.txt")
    assert seeded.read_text() == "42 products\n"


def test_an_operator_killed_while_collecting_loses_nothing(
    cluster, images, namespace, environments, start_operator, tmp_path,
) -> None:
    """SIGKILL the operator in the middle of collecting: the moment it logs
    that it stored a suite attempt's archive (what follows, listing it and
    keeping the rest, not yet done). Another operator starts: every result
    is there once, the counts are right, and the failure's message and log
    tail reach the user."""
    operator = start_operator()
    environments.apply("killed", spec(images))
    environments.created.append("killed")
    wait_for(lambda: environments.status("killed").get("namespace"), timeout=60, what="a namespace")

    def storing_a_suite() -> bool:
        return any("] kept " in line and "/test-" in line for line in operator.logs().splitlines())

    wait_for(storing_a_suite, timeout=300, what="the operator storing a suite's results", interval=0.01)
    operator.kill()
    start_operator()
    final = environments.wait_phase("killed", "Failed", timeout=180)
    suites = {s["name"]: s for s in final["tests"]}
    assert (suites["checkout"]["passed"], suites["checkout"]["failed"]) == (1, 1)
    assert (suites["health"]["passed"], suites["health"]["failed"]) == (1, 0)
    fetched = cli(cluster, "results", "killed", "-n", namespace, "--artifacts", str(tmp_path / "a"))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    [shot] = (tmp_path / "a").glob("test-checkout/shard-0/attempt-0/screens/shot.bin")
    assert shot.read_bytes() == ARTIFACT
    # One attempt each, kept once however often it was read.
    attempts = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").glob("test-*/shard-*/attempt-*"))
    assert attempts == ["test-checkout/shard-0/attempt-0", "test-health/shard-0/attempt-0"]
    report = cli(cluster, "results", "killed", "-n", namespace, "--junit", str(tmp_path / "killed.xml"), "--logs")
    assert report.returncode == 0, report.stdout + report.stderr
    failure = cases(tmp_path / "killed.xml")["checkout.test_pay::test_declines"].find("failure")
    assert failure is not None and failure.get("message") == FAILURE_MESSAGE and STACK_LINE in (failure.text or "")
    assert LOG_LINE in report.stdout


def test_results_go_to_an_s3_bucket_and_come_back_after_the_namespace(
    cluster, core, images, namespace, environments, start_operator, tmp_path,
) -> None:
    """The chart's S3 option against a real S3 server (SeaweedFS, started
    here): the operator uploads, the index hands out presigned links, and
    nothing in the environment's namespace holds the credentials."""
    from s3_support import start_s3
    from testenv.s3store import S3Config, S3Store

    server = start_s3(tmp_path / "s3")
    try:
        start_operator(TESTENV_RESULTS_STORE="s3", TESTENV_RESULTS_S3_ENDPOINT=server.endpoint,
                       TESTENV_RESULTS_S3_BUCKET=server.bucket, TESTENV_RESULTS_S3_PREFIX="ci-results",
                       TESTENV_RESULTS_S3_ACCESS_KEY_ID=server.access_key,
                       TESTENV_RESULTS_S3_SECRET_ACCESS_KEY=server.secret_key)
        environments.apply("bucket", spec(images, retain=1))
        environments.created.append("bucket")
        status = environments.wait_phase("bucket", "Failed", timeout=300)
        assert status["results"]["store"] == "s3"
        uid = environments.get("bucket")["metadata"]["uid"]
        store = S3Store(S3Config(endpoint=server.endpoint, bucket=server.bucket, prefix="ci-results",
                                 access_key_id=server.access_key, secret_access_key=server.secret_key))
        keys = store.keys(f"{namespace}/bucket/{uid}/")
        assert f"{namespace}/bucket/{uid}/r1/test-checkout-s0-a0.tar.gz" in keys, keys
        assert any("/r1/logs/" in k for k in keys), keys
        wait_for(namespace_gone(core, status["namespace"]), timeout=180, what="the environment's namespace collected")
        fetched = cli(cluster, "results", "bucket", "-n", namespace, "--junit", str(tmp_path / "s3.xml"),
                      "--artifacts", str(tmp_path / "s3-artifacts"), "--logs")
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        [shot] = (tmp_path / "s3-artifacts").glob("test-checkout/shard-0/attempt-0/screens/shot.bin")
        assert shot.read_bytes() == ARTIFACT
        failing = cases(tmp_path / "s3.xml")["checkout.test_pay::test_declines"]
        assert STACK_LINE in failing.find("failure").text
        assert LOG_LINE in fetched.stdout
        # Deleting the TestEnvironment deletes its objects in the bucket.
        environments.delete("bucket")
        wait_for(lambda: not environments.exists("bucket"), timeout=120, what="bucket deleted")
        assert store.keys(f"{namespace}/bucket/{uid}/") == []
    finally:
        server.stop()


def test_an_s3_store_that_is_down_leaves_a_note_and_the_counts_still_arrive(
    cluster, core, images, namespace, environments, start_operator,
) -> None:
    from operator_support import free_port

    start_operator(TESTENV_RESULTS_STORE="s3", TESTENV_RESULTS_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                   TESTENV_RESULTS_S3_BUCKET="results", TESTENV_RESULTS_S3_ACCESS_KEY_ID="ci",
                   TESTENV_RESULTS_S3_SECRET_ACCESS_KEY="not-a-real-secret")
    environments.apply("down", spec(images))
    environments.created.append("down")
    status = environments.wait_phase("down", "Failed", timeout=300)
    suites = {s["name"]: s for s in status["tests"]}
    assert (suites["checkout"]["passed"], suites["checkout"]["failed"]) == (1, 1)
    assert suites["checkout"]["failures"] == ["checkout.test_pay::test_declines"]
    notes = "\n".join(suites["health"]["results"]["notes"])
    assert "not kept: the results store at http://127.0.0.1:" in notes and "cannot be reached" in notes, notes
    # A store that is down never holds the deletion: the environment goes,
    # and one Warning says what may be left in the bucket.
    environments.delete("down")
    wait_for(lambda: not environments.exists("down"), timeout=120, what="the environment deleted, its store down")
    left = [e for e in core.list_namespaced_event(namespace).items
            if e.reason == "ResultsNotDeleted" and e.involved_object.name == "down"]
    assert len(left) == 1, [e.message for e in left]
    assert left[0].type == "Warning" and "results left in the bucket" in left[0].message, left[0].message
    assert "cannot be reached" in left[0].message, left[0].message


def test_a_suite_running_at_the_environments_deadline_keeps_what_it_wrote(
    cluster, images, namespace, environments, start_operator, tmp_path,
) -> None:
    """The run outlives its activeDeadlineSeconds while a suite still runs:
    the suite is stopped as its own timeout would stop it, and the part of
    the report it wrote reaches CI's JUnit, counted, with its log."""
    start_operator()
    status = up_with_slow_stopped(cluster, namespace, environments, tmp_path, "late", {
        "tests": [{"name": "slow", "image": images["runner"], "command": ["sh", "-c", SLOW]}],
        "lifecycle": {"activeDeadlineSeconds": 30, "retainOnFailureSeconds": 600}},
        stopped="stopped at the environment's activeDeadlineSeconds")
    assert status["phase"] == "TimedOut", status


def up_with_slow_stopped(cluster, namespace: str, environments: Environments, tmp_path: Path, name: str,
                         spec: dict[str, Any], *, stopped: str) -> dict[str, Any]:
    """`testenv up` of a run that stops suite slow (SLOW) as it ends: the
    part of the report slow wrote is counted and in CI's JUnit, and comes
    back through `testenv results` with its log. Returns the final status."""
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
                                        "metadata": {"name": name}, "spec": spec}))
    environments.created.append(name)  # type: ignore[attr-defined]
    up = cli(cluster, "up", "-f", str(manifest), "-n", namespace, "--wait", "--timeout", "5m",
             "--junit", str(tmp_path / f"{name}.xml"))
    assert up.returncode != 0, up.stdout + up.stderr
    status = environments.status(name)
    slow = next(s for s in status["tests"] if s["name"] == "slow")
    assert slow["message"].startswith(stopped), slow
    assert (slow["phase"], slow["passed"], slow["failed"]) == ("Failed", 1, 0), slow
    assert slow["results"]["reports"] == 1, slow
    assert "slow::test_first" in cases(tmp_path / f"{name}.xml"), up.stdout
    fetched = cli(cluster, "results", name, "-n", namespace, "--junit", str(tmp_path / "after.xml"), "--logs")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert "slow::test_first" in cases(tmp_path / "after.xml")
    assert "slow: still waiting for the warehouse" in fetched.stdout
    return status


def test_a_seed_running_at_the_environments_deadline_keeps_what_it_wrote(
    cluster, images, namespace, environments, start_operator, tmp_path,
) -> None:
    """A seed that outlives the environment's deadline is stopped as a suite
    is: the file it wrote so far comes back through `testenv results`."""
    start_operator()
    slow_seed = 'echo "17 of 42 products" > "$TESTENV_RESULTS_DIR/seeded.txt"; trap "exit 143" TERM; sleep 600 & wait'
    environments.apply("late-seed", {
        "seed": [{"name": "catalog", "image": images["runner"], "command": ["sh", "-c", slow_seed]}],
        "tests": [{"name": "never", "image": images["runner"], "command": ["true"]}],
        "lifecycle": {"activeDeadlineSeconds": 30, "retainOnFailureSeconds": 600}})
    environments.created.append("late-seed")
    status = environments.wait_phase("late-seed", "TimedOut", timeout=240)
    [catalog] = status["seeds"]
    assert (catalog["phase"], catalog["message"]) == ("Failed", "stopped at the environment's activeDeadlineSeconds")
    fetched = cli(cluster, "results", "late-seed", "-n", namespace, "--artifacts", str(tmp_path / "a"))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    [seeded] = (tmp_path / "a").glob("seed-catalog/shard-0/attempt-0/seeded.txt")
    assert seeded.read_text() == "17 of 42 products\n"


def test_a_suite_running_when_the_run_ends_in_error_keeps_what_it_wrote(
    cluster, images, namespace, environments, start_operator, tmp_path,
) -> None:
    """A suite beside it cannot start (its tag is not in the registry), a
    cause that will not fix itself: the run ends Error, but the suite still
    running is first stopped as a deadline stops it, and the part of the
    report it wrote reaches CI's JUnit, counted, with its log."""
    start_operator()
    missing = images["redis"].rsplit(":", 1)[0] + ":no-such-tag"
    status = up_with_slow_stopped(cluster, namespace, environments, tmp_path, "broken", {
        "tests": [{"name": "slow", "image": images["runner"], "command": ["sh", "-c", SLOW]},
                  {"name": "pay", "image": missing}],
        "lifecycle": {"failureGraceSeconds": 10, "activeDeadlineSeconds": 600, "retainOnFailureSeconds": 600}},
        stopped="stopped as the run ended in Error")
    assert status["phase"] == "Error", status
    assert status["message"].startswith(f'suite pay: container "tests" cannot pull image "{missing}"'), status
    assert status["endingCause"]["reason"] == "ImagePullBackOff", status
