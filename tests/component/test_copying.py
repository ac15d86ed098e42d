"""A copy brings its ConfigMaps and (allowed) Secrets, is refused with a
named Error when a Secret is not allowed, borrows one key for a suite, and is
re-copied on a new run when the source changed. KWOK plays the pods, so this
proves the orchestration; tests/realnode/test_copies.py proves they start."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_support import COPY_SOURCE_NAMESPACE, COPYABLE_SECRET
from testbed_support import wait_for

SUFFIX = uuid.uuid4().hex[:6]
CONFIG = f"copy-config-{SUFFIX}"
DENIED = f"not-copyable-{SUFFIX}"
APP, DENIED_APP = f"config-app-{SUFFIX}", f"denied-app-{SUFFIX}"
SECRET_VALUE = f"never-shown-{SUFFIX}"


def deployment(name: str, *, env_from: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"serviceAccountName": "default", "containers": [{
                "name": "app", "image": "ghcr.io/acme/app:1", "envFrom": env_from,
                "volumeMounts": [{"name": v["name"], "mountPath": f"/mnt/{v['name']}"} for v in volumes]}],
                "volumes": volumes}}},
    }


@pytest.fixture(scope="module")
def sources(core: client.CoreV1Api, apps: client.AppsV1Api, operator) -> dict[str, str]:
    ns = COPY_SOURCE_NAMESPACE
    core.create_namespaced_config_map(ns, {"metadata": {"name": CONFIG}, "data": {"GREETING": "from staging"}})
    for name in (COPYABLE_SECRET, DENIED):
        try:
            core.create_namespaced_secret(ns, {"metadata": {"name": name}, "stringData": {"token": SECRET_VALUE}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        core.patch_namespaced_secret(name, ns, {"stringData": {"token": SECRET_VALUE}})
    apps.create_namespaced_deployment(ns, deployment(APP, env_from=[{"configMapRef": {"name": CONFIG}}], volumes=[
        {"name": "creds", "secret": {"secretName": COPYABLE_SECRET}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "staging-data"}},
    ]))
    apps.create_namespaced_deployment(ns, deployment(DENIED_APP, env_from=[{"secretRef": {"name": DENIED}}],
                                                     volumes=[]))
    yield {"namespace": ns}
    for delete, name in ((apps.delete_namespaced_deployment, APP), (apps.delete_namespaced_deployment, DENIED_APP),
                         (core.delete_namespaced_config_map, CONFIG), (core.delete_namespaced_secret, DENIED)):
        delete(name, ns)


def copy_of(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "copyFrom": {"namespace": COPY_SOURCE_NAMESPACE, "deployment": name}, **extra}


def test_a_copy_brings_its_config_map_and_allowed_secret(sources, environments, core, apps) -> None:
    environments.apply("copy-ok", {"services": [copy_of(APP)]})
    status = environments.wait_phase("copy-ok", "Ready")
    ns = status["namespace"]
    copied = core.read_namespaced_config_map(CONFIG, ns)
    assert copied.data == {"GREETING": "from staging"}
    assert copied.metadata.labels["testenv.dev/environment"] == "copy-ok"
    secrets = [s for s in core.list_namespaced_secret(ns).items if s.metadata.name.startswith(f"{COPYABLE_SECRET}-")]
    assert len(secrets) == 1 and secrets[0].immutable is True
    pod = apps.read_namespaced_deployment("app", ns).spec.template.spec
    volumes = {v.name: v for v in pod.volumes}
    assert volumes["creds"].secret.secret_name == secrets[0].metadata.name
    assert volumes["data"].empty_dir is not None and volumes["data"].persistent_volume_claim is None
    [component] = status["components"]
    assert any("PersistentVolumeClaim staging-data replaced by an emptyDir" in n for n in component["notes"])
    assert SECRET_VALUE not in json.dumps(status)
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in json.dumps(status)


def test_a_secret_not_allowed_is_an_error_naming_the_field_and_nothing_is_provisioned(
    sources, environments, core
) -> None:
    environments.apply("copy-denied", {"services": [copy_of(DENIED_APP)]})
    status = environments.wait_phase("copy-denied", "Error")
    assert status["message"].startswith(
        f"spec.services[0].copyFrom: service app: Secret {COPY_SOURCE_NAMESPACE}/{DENIED} (container app envFrom) is referenced, "
        "but only names")
    assert f"config.copySecrets.{COPY_SOURCE_NAMESPACE}" in status["message"]
    assert not [n for n in core.list_namespace(label_selector="testenv.dev/environment=copy-denied").items]


def test_a_suite_borrows_one_key_by_reference(sources, environments, core, batch) -> None:
    ref = {"namespace": COPY_SOURCE_NAMESPACE, "name": COPYABLE_SECRET, "key": "token"}
    environments.apply("borrow", {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1",
                                             "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": ref}}]}]})
    status = environments.wait_phase("borrow", "Succeeded")
    ns = status["namespace"]
    [copy] = [s for s in core.list_namespaced_secret(ns).items if s.metadata.name.startswith("credential-")]
    assert set(copy.data) == {"token"}
    [job] = batch.list_namespaced_job(ns).items
    [var] = [e for e in job.spec.template.spec.containers[0].env if e.name == "TOKEN"]
    assert var.value is None and var.value_from.secret_key_ref.name == copy.metadata.name
    events = core.list_namespaced_event(environments.namespace, field_selector="involvedObject.name=borrow").items
    assert SECRET_VALUE not in json.dumps(status) + " ".join(e.message or "" for e in events)


def test_a_borrowed_key_from_a_namespace_not_allowed_is_an_error(environments) -> None:
    ref = {"namespace": "kube-system", "name": "anything", "key": "k"}
    environments.apply("borrow-denied", {"tests": [{"name": "e2e", "image": "ghcr.io/acme/e2e:1",
                                                    "env": [{"name": "T", "valueFrom": {"secretKeyRef": ref}}]}]})
    status = environments.wait_phase("borrow-denied", "Error")
    assert status["message"].startswith(
        "spec.tests[0].env[0].valueFrom.secretKeyRef: Secrets of namespace 'kube-system' may not be used")


def test_a_changed_source_is_copied_again_on_a_new_run_only(sources, environments, core) -> None:
    environments.apply("recopy", {"services": [copy_of(APP)]})
    ns = environments.wait_phase("recopy", "Ready")["namespace"]
    core.patch_namespaced_config_map(CONFIG, COPY_SOURCE_NAMESPACE, {"data": {"GREETING": "changed"}})
    try:
        environments.apply("recopy", {"services": [copy_of(APP, env=[{"name": "RUN", "value": "2"}])]})
        wait_for(lambda: core.read_namespaced_config_map(CONFIG, ns).data == {"GREETING": "changed"},
                 timeout=30, what="the changed ConfigMap copied by run 2")
        assert environments.wait_phase("recopy", "Ready")["run"] == 2
    finally:
        core.patch_namespaced_config_map(CONFIG, COPY_SOURCE_NAMESPACE, {"data": {"GREETING": "from staging"}})
