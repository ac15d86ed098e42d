"""The operator as a platform team installs it: the Helm chart, the image
built from the project's Dockerfile and pulled from the test bed's registry,
running in a pod on the real node and reaching the API server through the
`kubernetes` Service. It takes a TestEnvironment with real datastores, a real
WireMock stub, a real seed and real test runners to Succeeded."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client
from realnode_support import REAL_NODE
from testbed_support import BIN, ROOT, Cluster, wait_for

pytestmark = pytest.mark.realnode

CHART = ROOT / "charts" / "testenv-operator"
RELEASE_NAMESPACE = "testenv-system"
PLACE = {"nodeSelector": {"testenv.dev/node": "real"},
         "tolerations": [{"key": "testenv.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]}

# Each runner waits (10 s at most) for its first connection, as test runners
# must on clusters whose NetworkPolicy engine programs a new pod's address
# just after the pod starts: kube-router on the test bed (about a second),
# Calico without policy_setup_timeout_seconds.
def _within_10s(check: str) -> str:
    return f"for i in $(seq 50); do if {check}; then exit 0; fi; sleep 0.2; done; exit 1"


DB_CHECK = _within_10s('test "$(psql "$ORDERS_DB_URL" -tAc "select id from orders")" = o-1 && echo "orders seeded"')
CACHE_CHECK = _within_10s('test "$(redis-cli -u "$CACHE_URL" --no-auth-warning ping)" = PONG && echo "cache answers"')
STUB_CHECK = (
    "import os, time, urllib.request\n"
    "deadline = time.monotonic() + 10\n"
    "while True:\n"
    "    try:\n"
    "        body = urllib.request.urlopen(os.environ['PAYMENTS_URL'] + '/ping', timeout=5).read().decode()\n"
    "        break\n"
    "    except OSError:\n"
    "        if time.monotonic() > deadline:\n"
    "            raise\n"
    "        time.sleep(0.2)\n"
    "assert body == 'pong', body\n"
    "print('stub answers')\n"
)


def _helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "helm"), "--kubeconfig", cluster.kubeconfig, *args],
                          capture_output=True, text=True)


@pytest.fixture
def chart_operator(cluster: Cluster, apps: client.AppsV1Api, images: dict[str, str], tmp_path) -> Iterator[str]:
    # The image of the code under test: rebuilt when the working tree changed
    # since the test bed started (cached by content, so usually a no-op).
    built = subprocess.run(["bash", str(ROOT / "hack" / "testbed" / "images.sh"), "operator"],
                           env=cluster._env(), capture_output=True, text=True)
    assert built.returncode == 0, f"operator image build failed:\n{built.stdout}\n{built.stderr}"
    repository, tag = images["operator"].rsplit(":", 1)
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Always"},
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


def test_the_charts_operator_in_a_pod_takes_a_real_environment_to_succeeded(
    cluster, core, apps, images, chart_operator, api_client
):
    operator_pods = core.list_namespaced_pod(
        RELEASE_NAMESPACE, label_selector="app.kubernetes.io/name=testenv-operator,app.kubernetes.io/instance=testenv")
    assert [p.spec.node_name for p in operator_pods.items] == [REAL_NODE]

    namespace = f"rn-ci-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    custom = client.CustomObjectsApi(api_client)
    env = {
        "apiVersion": "testenv.dev/v1alpha1",
        "kind": "TestEnvironment",
        "metadata": {"name": "real-run", "namespace": namespace},
        "spec": {
            "lifecycle": {"ttlSecondsAfterFinished": 3600, "activeDeadlineSeconds": 600},
            "datastores": [{"name": "orders-db", "engine": "postgres"}, {"name": "cache", "engine": "redis"}],
            "stubs": [{"name": "payments", "mappings": [
                {"request": {"method": "GET", "url": "/ping"}, "response": {"status": 200, "body": "pong"}}]}],
            "seed": [{"name": "schema", "datastore": "orders-db",
                      "sql": "CREATE TABLE orders (id text primary key);\nINSERT INTO orders VALUES ('o-1');\n"}],
            "tests": [
                {"name": "db", "image": images["postgres"], "command": ["sh", "-c", DB_CHECK]},
                # Named like the datastore on purpose: the `cache` Service must
                # not send the datastore's traffic to this suite's pod.
                {"name": "cache", "image": images["redis"], "command": ["sh", "-c", CACHE_CHECK]},
                {"name": "stub", "image": images["runner"], "command": ["python3", "-c", STUB_CHECK],
                 "needs": ["db"]},
            ],
        },
    }
    custom.create_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", env)
    try:
        def finished() -> dict | None:
            status = custom.get_namespaced_custom_object(
                "testenv.dev", "v1alpha1", namespace, "testenvironments", "real-run").get("status") or {}
            return status if status.get("phase") in ("Succeeded", "Failed", "Error", "TimedOut") else None

        try:
            status = wait_for(finished, timeout=420, what="the environment to finish", interval=1)
        except AssertionError:
            raise AssertionError(_diagnose(cluster, namespace)) from None
        assert status["phase"] == "Succeeded", (
            json.dumps(status, indent=1) + _pod_logs(core, status.get("namespace")) + _diagnose(cluster, namespace))
        suites = {s["name"]: s for s in status.get("tests", [])}
        assert {n: s.get("phase") for n, s in suites.items()} == {
            "db": "Succeeded", "cache": "Succeeded", "stub": "Succeeded"}, suites
        # The pods really ran on the real node, and said so in their logs.
        target = status["namespace"]
        logs = {}
        for pod in core.list_namespaced_pod(target, label_selector="testenv.dev/kind=test").items:
            assert pod.spec.node_name == REAL_NODE
            log = core.read_namespaced_pod_log(pod.metadata.name, target).strip()
            logs[pod.metadata.labels.get("testenv.dev/component")] = log.splitlines()[-1]
        assert logs == {"db": "orders seeded", "cache": "cache answers", "stub": "stub answers"}
    finally:
        custom.delete_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", "real-run")
        wait_for(lambda: not _exists(custom, namespace), timeout=120, what="the environment's deletion", interval=0.5)
        core.delete_namespace(namespace)


def _exists(custom: client.CustomObjectsApi, namespace: str) -> bool:
    try:
        custom.get_namespaced_custom_object("testenv.dev", "v1alpha1", namespace, "testenvironments", "real-run")
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
