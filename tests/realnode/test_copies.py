"""Copies that really start: the operator (a process on the host, pods placed
on the real node) copies a staging Deployment that reads an envFrom
ConfigMap, a ConfigMap volume and an allowed Secret volume, writes to a claim
and runs as its own ServiceAccount. Its pod starts, serves what it read, and
a suite (which also reads a key of an allowed shared Secret) checks it over
the copy's Service. A Secret the administrator did not allow, and a key of a
namespace not allowed, end as Errors naming the field, nothing provisioned."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_support import Environments, OperatorProcess
from realnode_support import RUNNER_UID, host_operator
from testbed_support import Cluster, wait_for

pytestmark = pytest.mark.realnode

SUFFIX = uuid.uuid4().hex[:6]
STAGING, SHARED = f"rn-staging-{SUFFIX}", f"rn-shared-{SUFFIX}"
STAGING_TOKEN = f"staging-token-{SUFFIX}"  # in an allowed Secret the copy mounts
SHARED_KEY = f"sandbox-api-key-{SUFFIX}"  # the key a suite borrows
FORBIDDEN = f"forbidden-{SUFFIX}"  # a Secret of STAGING the operator may not copy


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# The copied service: reads its config from env (envFrom), a ConfigMap volume
# and a Secret volume, writes it into its claim's mount and serves it.
APP = """
import hashlib, http.server, os, pathlib
conf = pathlib.Path('/etc/app/app.conf').read_text().strip()
token = hashlib.sha256(pathlib.Path('/etc/creds/token').read_bytes()).hexdigest()
body = f"greeting={os.environ['GREETING']}\\nmode={os.environ['MODE']}\\nconf={conf}\\ntoken-sha256={token}\\n"
pathlib.Path('/data/config.txt').write_text(body)
os.chdir('/data')
http.server.ThreadingHTTPServer(('', 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
"""
# The suite: the copy's answer over its Service, and the borrowed key.
SUITE = """
import hashlib, os, sys, urllib.request
body = urllib.request.urlopen('http://shop-app:8080/config.txt', timeout=10).read().decode()
want = ['greeting=hello from staging', 'mode=ours', 'conf=from the volume',
        'token-sha256=' + os.environ['WANT_COPIED_SHA']]
missing = [w for w in want if w not in body]
borrowed = hashlib.sha256(os.environ['SANDBOX_KEY'].encode()).hexdigest() == os.environ['WANT_BORROWED_SHA']
print('missing from the copy:', missing, '| borrowed key matches:', borrowed)
sys.exit(0 if not missing and borrowed else 1)
"""


def _create(create: Callable[..., Any], *args: Any) -> None:
    try:
        create(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


@pytest.fixture(scope="module")
def staging(core: client.CoreV1Api, apps: client.AppsV1Api, real_node: str, images: dict[str, str]) -> Iterator[None]:
    """What a team has in staging: config, credentials, a claim, its own account."""
    for ns in (STAGING, SHARED):
        _create(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    _create(core.create_namespaced_service_account, STAGING, {"metadata": {"name": "shop-deployer"}})
    _create(core.create_namespaced_config_map, STAGING, {"metadata": {"name": "shop-env"},
                                                         "data": {"GREETING": "hello from staging",
                                                                  "MODE": "staging"}})
    _create(core.create_namespaced_config_map, STAGING, {"metadata": {"name": "shop-files"},
                                                         "data": {"app.conf": "from the volume"}})
    _create(core.create_namespaced_secret, STAGING, {"metadata": {"name": "shop-creds"},
                                                     "stringData": {"token": STAGING_TOKEN}})
    _create(core.create_namespaced_secret, STAGING, {"metadata": {"name": FORBIDDEN},
                                                     "stringData": {"token": "never-copied"}})
    _create(core.create_namespaced_secret, SHARED, {"metadata": {"name": "sandbox"},
                                                    "stringData": {"api-key": SHARED_KEY, "other": "not-borrowed"}})
    _create(core.create_namespaced_persistent_volume_claim, STAGING, {
        "metadata": {"name": "shop-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    labels = {"app": "shop-app"}
    volumes = [
        {"name": "files", "configMap": {"name": "shop-files"}},
        {"name": "creds", "secret": {"secretName": "shop-creds"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "shop-data"}},
    ]
    mounts = [{"name": "files", "mountPath": "/etc/app"}, {"name": "creds", "mountPath": "/etc/creds"},
              {"name": "data", "mountPath": "/data"}]
    for name, extra_volumes, extra_mounts in (
        ("shop-app", [], []),
        ("forbidden-app", [{"name": "forbidden", "secret": {"secretName": FORBIDDEN}}],
         [{"name": "forbidden", "mountPath": "/etc/forbidden"}]),
    ):
        _create(apps.create_namespaced_deployment, STAGING, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            # Nothing runs in staging here (replicas 0: the claim is never bound); only the copy starts.
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "serviceAccountName": "shop-deployer",
                    "securityContext": {"runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID},
                    "containers": [{
                        "name": "app", "image": images["runner"], "command": ["python3", "-c", APP],
                        "envFrom": [{"configMapRef": {"name": "shop-env"}}],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/config.txt", "port": 8080}, "periodSeconds": 1},
                        "volumeMounts": mounts + extra_mounts,
                    }],
                    "volumes": volumes + extra_volumes,
                }}},
        })
    _create(core.create_namespaced_service, STAGING, {
        "metadata": {"name": "shop-app"},
        "spec": {"selector": {"app": "shop-app"}, "ports": [{"port": 8080, "targetPort": 8080}]}})
    yield
    for ns in (STAGING, SHARED):
        core.delete_namespace(ns)


@pytest.fixture
def operator(cluster: Cluster, crd: None, images: dict[str, str], tmp_path, staging: None) -> Iterator[OperatorProcess]:
    """The operator on the host, placing pods on the real node, allowed to
    copy from STAGING (its Secret shop-creds only) and borrow from SHARED."""
    process = host_operator(
        cluster, images, tmp_path / "operator.log",
        TESTENV_COPY_ALLOWLIST=json.dumps([STAGING]),
        TESTENV_COPY_SECRETS=json.dumps({STAGING: {"names": ["shop-creds"]}, SHARED: {}}),
    )
    process.start()
    yield process
    process.stop()


class CollectedEnvironments(Environments):
    """Environments that are deleted (with their namespaces) after the test,
    while the operator still runs."""

    created: list[str]

    def apply(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        self.created.append(name)
        return super().apply(name, spec)


@pytest.fixture
def environments(api_client, namespace: str, operator: OperatorProcess) -> Iterator[CollectedEnvironments]:
    envs = CollectedEnvironments(client.CustomObjectsApi(api_client), namespace)
    envs.created = []
    yield envs
    for name in envs.created:
        try:
            envs.delete(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for name in envs.created:
        wait_for(lambda n=name: not envs.exists(n), timeout=120, what=f"{name} collected")


def said(core: client.CoreV1Api, environments: CollectedEnvironments, name: str) -> str:
    events = core.list_namespaced_event(environments.namespace, field_selector=f"involvedObject.name={name}").items
    return json.dumps(environments.status(name)) + "\n".join(e.message or "" for e in events)


def test_the_copy_starts_reads_its_config_and_a_suite_reads_a_borrowed_key(
    environments: CollectedEnvironments, core: client.CoreV1Api, apps: client.AppsV1Api, images: dict[str, str]
) -> None:
    environments.apply("copies", {
        "lifecycle": {"activeDeadlineSeconds": 600, "failureGraceSeconds": 90, "retainOnFailureSeconds": 600},
        "services": [{"name": "shop-app", "copyFrom": {"namespace": STAGING, "deployment": "shop-app"},
                      "env": [{"name": "MODE", "value": "ours"}]}],
        "tests": [{"name": "reads-config", "image": images["runner"], "command": ["python3", "-c", SUITE], "env": [
            {"name": "SANDBOX_KEY", "valueFrom": {"secretKeyRef": {"namespace": SHARED, "name": "sandbox",
                                                                   "key": "api-key"}}},
            {"name": "WANT_BORROWED_SHA", "value": sha(SHARED_KEY)},
            {"name": "WANT_COPIED_SHA", "value": sha(STAGING_TOKEN)},
        ]}],
    })
    status = environments.wait_phase("copies", "Succeeded", "Failed", "Error", "TimedOut", timeout=300)
    assert status["phase"] == "Succeeded", status
    ns = status["namespace"]
    # It ran on the real node, as the copied config says, under no ServiceAccount of staging's.
    [pod] = core.list_namespaced_pod(ns, label_selector="testenv.dev/component=shop-app").items
    assert pod.spec.node_name == "testbed-node"
    assert pod.spec.service_account_name == "default"
    assert not [v for v in pod.spec.volumes if v.projected is not None]  # no token mounted
    assert next(v for v in pod.spec.volumes if v.name == "data").empty_dir is not None
    [component] = status["components"]
    notes = "\n".join(component["notes"])
    assert "PersistentVolumeClaim shop-data replaced by an emptyDir" in notes
    assert "ServiceAccount shop-deployer of the source not used" in notes
    # Only the borrowed key came along from the shared Secret.
    [borrowed] = [s for s in core.list_namespaced_secret(ns).items if s.metadata.name.startswith("credential-")]
    assert set(borrowed.data) == {"api-key"}
    assert status["tests"][0]["phase"] == "Succeeded"
    # Staging is as it was: nothing of it was changed by the copy.
    assert apps.read_namespaced_deployment("shop-app", STAGING).spec.replicas == 0
    everything = said(core, environments, "copies")
    for value in (STAGING_TOKEN, SHARED_KEY):
        assert value not in everything


def test_a_secret_that_is_not_allowed_is_an_error_and_nothing_starts(
    environments: CollectedEnvironments, core: client.CoreV1Api
) -> None:
    environments.apply("forbidden", {
        "services": [{"name": "shop-app", "copyFrom": {"namespace": STAGING, "deployment": "forbidden-app"}}],
    })
    status = environments.wait_phase("forbidden", "Error", "Ready", timeout=60)
    assert status["phase"] == "Error"
    assert status["message"] == (
        f"spec.services[0].copyFrom: service shop-app: Secret {STAGING}/{FORBIDDEN} (volume forbidden) is referenced, but only "
        f"names ['shop-creds'] may be copied from it; an administrator can allow it in the operator's "
        f"config.copySecrets.{STAGING}, or the source can stop referencing it")
    assert not core.list_namespace(label_selector="testenv.dev/environment=forbidden").items
    assert "never-copied" not in said(core, environments, "forbidden")


def test_a_key_of_a_namespace_not_allowed_is_an_error_naming_the_field(
    environments: CollectedEnvironments, images: dict[str, str]
) -> None:
    environments.apply("outside", {
        "tests": [{"name": "e2e", "image": images["runner"], "env": [
            {"name": "K", "valueFrom": {"secretKeyRef": {"namespace": "kube-system", "name": "x", "key": "k"}}}]}],
    })
    status = environments.wait_phase("outside", "Error", timeout=60)
    assert status["message"].startswith(
        "spec.tests[0].env[0].valueFrom.secretKeyRef: Secrets of namespace 'kube-system' may not be used")
