"""The operator as a platform team installs it: the Helm chart, the image
built from the project's Dockerfile and pulled from the test bed's registry,
running in a pod on the real node with only the chart's RBAC, Pod Security
and read-only root filesystem, reaching the API server through the
`kubernetes` Service. It takes the shop example (examples/shop: real
datastores, stubs, services, seeds and pytest suites) to Succeeded, then a
re-run with one real failing test to Failed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client
from realnode_support import REAL_NODE, read_images
from testbed_support import BIN, ROOT, Cluster, wait_for

pytestmark = pytest.mark.realnode

CHART = ROOT / "charts" / "testenv-operator"
RELEASE_NAMESPACE = "testenv-system"
SHOP = ROOT / "examples" / "shop" / "environment.yaml"
PLACE = {"nodeSelector": {"testenv.dev/node": "real"},
         "tolerations": [{"key": "testenv.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]}
# pytest's own counts of examples/shop/tests, per suite (the component suite's
# two shards summed); the stubs' rows are the environment's `verify` entries.
SHOP_COUNTS = {"smoke": (3, 0), "contract": (6, 0), "component": (7, 0), "e2e": (3, 0),
               "stubs/payment-gateway": (2, 0), "stubs/email-provider": (1, 0)}


def _helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "helm"), "--kubeconfig", cluster.kubeconfig, *args],
                          capture_output=True, text=True)


@pytest.fixture
def chart_operator(cluster: Cluster, apps: client.AppsV1Api, images: dict[str, str], tmp_path) -> Iterator[str]:
    # The images of the code under test (the operator, the shop): rebuilt when the working tree changed
    # since the test bed started (cached by content, so usually a no-op).
    built = subprocess.run(["bash", str(ROOT / "hack" / "testbed" / "images.sh"), "operator", "shop", "shop-tests"],
                           env=cluster._env(), capture_output=True, text=True)
    assert built.returncode == 0, f"operator image build failed:\n{built.stdout}\n{built.stderr}"
    repository, tag = images["operator"].rsplit(":", 1)
    # Pinned by digest: the operator and the results collector sidecar (its
    # image too) run this build, never a node's stale copy of the tag.
    fresh = read_images(cluster)
    digest = fresh["collector"].rsplit("@", 1)[1]
    values = {
        "image": {"repository": repository, "tag": tag, "digest": digest, "pullPolicy": "IfNotPresent"},
        **PLACE,
        "config": {
            "engineImages": {"postgres": images["postgres"], "mysql": images["mysql"], "redis": images["redis"]},
            "wiremockImage": images["wiremock"],
            "podNodeSelector": PLACE["nodeSelector"],
            "podTolerations": PLACE["tolerations"],
            "orphanSweepDryRun": True,
        },
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    installed = _helm(cluster, "install", "testenv", str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
                      "-f", str(values_file), "--wait", "--timeout", "180s")
    try:
        assert installed.returncode == 0, f"helm install failed:\n{installed.stdout}\n{installed.stderr}"
        yield "testenv"
    finally:
        _helm(cluster, "uninstall", "testenv", "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s")


def test_the_charts_operator_in_a_pod_tests_the_shop_for_real(cluster, core, apps, images, chart_operator, api_client,
                                                              tmp_path):
    operator_pods = core.list_namespaced_pod(
        RELEASE_NAMESPACE, label_selector="app.kubernetes.io/name=testenv-operator,app.kubernetes.io/instance=testenv")
    assert [p.spec.node_name for p in operator_pods.items] == [REAL_NODE]
    assert images.get("shop") and images.get("shop_tests"), "the test bed built no shop images"
    # The image's allocator (Dockerfile, testenv.idle_memory.IMAGE_ALLOCATOR) is
    # really loaded: a missing library would only be a line on stderr.
    mapped = subprocess.run([str(BIN / "kubectl"), "--kubeconfig", cluster.kubeconfig, "exec", "-n", RELEASE_NAMESPACE,
                             operator_pods.items[0].metadata.name, "-c", "operator", "--", "cat", "/proc/1/maps"],
                            capture_output=True, text=True, timeout=60)
    assert mapped.returncode == 0, mapped.stderr
    assert "/libjemalloc.so.2" in mapped.stdout, "the operator's process has no jemalloc mapped"

    namespace = f"rn-ci-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    custom = client.CustomObjectsApi(api_client)
    env = yaml.safe_load(SHOP.read_text())
    env["metadata"] = {"name": "shop", "namespace": namespace}
    custom.create_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", env)
    try:
        status = _wait_finished(cluster, core, custom, namespace, run=1)
        assert status["phase"] == "Succeeded", (
            json.dumps(status, indent=1) + _pod_logs(core, status.get("namespace")) + _diagnose(cluster, namespace))
        assert {s["name"]: (s.get("passed"), s.get("failed")) for s in status["tests"]} == SHOP_COUNTS
        target = status["namespace"]
        pods = core.list_namespaced_pod(target).items
        assert pods and {p.spec.node_name for p in pods} == {REAL_NODE}
        # The shards' own logs: pytest ran a share of the component tests each.
        shard_logs = [core.read_namespaced_pod_log(p.metadata.name, target) for p in pods
                      if p.metadata.labels.get("testenv.dev/component") == "component"]
        assert len(shard_logs) == 2 and all(" passed" in log for log in shard_logs), shard_logs

        # A re-run (a new generation) where shipping sends no mail: one
        # end-to-end test really fails, and the email stub, fresh for this run,
        # says it received nothing.
        shipping = next(s for s in env["spec"]["services"] if s["name"] == "shipping")
        shipping["env"] = [{"name": "EMAIL_ENABLED", "value": "false"}]
        # Collected a moment after it fails: CI gets the real report afterwards.
        custom.patch_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", "shop",
                                              {"spec": {"services": env["spec"]["services"],
                                                        "lifecycle": {"retainOnFailureSeconds": 5}}})
        status = _wait_finished(cluster, core, custom, namespace, run=2)
        assert status["phase"] == "Failed", json.dumps(status, indent=1)
        suites = {s["name"]: s for s in status["tests"]}
        assert suites["smoke"]["failures"] == [
            "e2e.test_order_saga::test_an_order_reserves_stock_charges_the_card_and_is_shipped_with_a_mail"]
        assert (suites["smoke"]["passed"], suites["smoke"]["failed"]) == (2, 1)
        assert suites["stubs/email-provider"]["message"] == (
            "1 of 1 verifications failed; the stub received no requests at all")

        # The namespace is gone; the failing test's real assertion and stack
        # trace reach the JUnit file CI gets, from the chart's default store.
        wait_for(lambda: _namespace_gone(core, status["namespace"]), timeout=180, what="run 2's namespace collected")
        junit = tmp_path / "shop.xml"
        artifacts = tmp_path / "artifacts"
        fetched = subprocess.run(
            [sys.executable, "-m", "testenv.cli", "results", "shop", "-n", namespace, "--junit", str(junit),
             "--artifacts", str(artifacts), "--logs"],
            env={**os.environ, "KUBECONFIG": cluster.kubeconfig, "PYTHONPATH": str(ROOT / "operator")},
            capture_output=True, text=True, timeout=300)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        failing = next(c for c in ET.parse(junit).getroot().iter("testcase")
                       if c.get("name") == "test_an_order_reserves_stock_charges_the_card_and_is_shipped_with_a_mail")
        failure = failing.find("failure")
        # pytest's own message and traceback: the wait for the mail that never came.
        assert failure is not None and "to be mailed: not within" in failure.get("message", ""), ET.tostring(failing)
        assert "test_order_saga.py:" in (failure.text or "") and "AssertionError" in failure.text, failure.text
        assert float(failing.get("time")) > 0
        # The suite's own artifact (the shop's conftest writes a failed test's
        # whole report to a file) comes back byte for byte: its digest, which
        # the suite printed in the pod, is in the kept log tail.
        digests = dict(re.findall(r"artifact (\S+) sha256 ([0-9a-f]{64})", fetched.stdout))
        assert len(digests) == 1, fetched.stdout
        [(path, digest)] = digests.items()
        [kept] = artifacts.glob(f"test-smoke/shard-*/attempt-*/{path}")
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == digest
        assert "to be mailed: not within" in kept.read_text()
    finally:
        custom.delete_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", "shop")
        wait_for(lambda: not _exists(custom, namespace), timeout=120, what="the environment's deletion", interval=0.5)
        core.delete_namespace(namespace)


def _wait_finished(cluster: Cluster, core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str,
                   run: int) -> dict:
    def finished() -> dict | None:
        status = custom.get_namespaced_custom_object(
            "testenv.dev", "v1alpha1", namespace, "testenvironments", "shop").get("status") or {}
        done = status.get("phase") in ("Succeeded", "Failed", "Error", "TimedOut")
        return status if done and status.get("run") == run else None

    try:
        return wait_for(finished, timeout=420, what=f"run {run} of the shop to finish", interval=1)
    except AssertionError:
        raise AssertionError(_diagnose(cluster, namespace)) from None


def _namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except client.exceptions.ApiException as exc:
        return exc.status == 404
    return False


def _exists(custom: client.CustomObjectsApi, namespace: str) -> bool:
    try:
        custom.get_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", "shop")
        return True
    except client.exceptions.ApiException as e:
        if e.status == 404:
            return False
        raise


def _pod_logs(core: client.CoreV1Api, namespace: str | None) -> str:
    if not namespace:
        return ""
    out = []
    for pod in core.list_namespaced_pod(namespace).items:
        try:
            log = core.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=20)
        except client.exceptions.ApiException as e:
            log = f"(no log: {e.reason})"
        out.append(f"--- {pod.metadata.name} ({pod.status.phase}):\n{log}")
    return "\n" + "\n".join(out)


def _diagnose(cluster: Cluster, namespace: str) -> str:
    """What a user would look at: the resource, its Events, the pods, the operator's log."""
    def kubectl(*args: str) -> str:
        return subprocess.run([str(BIN / "kubectl"), "--kubeconfig", cluster.kubeconfig, *args],
                              capture_output=True, text=True).stdout
    return "\n".join([
        kubectl("get", "tenv", "-n", namespace, "-o", "yaml"),
        kubectl("get", "events", "-A", "--sort-by=.lastTimestamp")[-4000:],
        kubectl("get", "pods", "-A", "-o", "wide"),
        kubectl("logs", "-n", RELEASE_NAMESPACE, "deploy/testenv-testenv-operator", "--tail=60"),
    ])
