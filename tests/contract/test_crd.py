"""The generated CRD against the real API server: what admission accepts,
what it refuses, and how it says so."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from operator_support import kubectl
from testbed_support import ROOT
from testenv import models

pytestmark = pytest.mark.contract


@pytest.fixture
def ns(cluster, crd) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    kubectl(cluster, "create", "namespace", name)
    yield name
    kubectl(cluster, "delete", "namespace", name, "--wait=false")


def _apply(cluster, ns: str, spec: dict, name: str = "sample", dry_run: bool = True):
    manifest = yaml.safe_dump(
        {"apiVersion": "testenv.dev/v1alpha1", "kind": "TestEnvironment",
         "metadata": {"name": name, "namespace": ns}, "spec": spec}
    )
    args = ["apply", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return kubectl(cluster, *args, input=manifest, check=False)


def test_committed_crd_matches_the_models():
    from testenv.crd import render

    committed = (ROOT / "crds" / "testenvironment.yaml").read_text()
    assert committed == render(), "crds/ drifted from the models: run `make crds` and commit the result"


def test_example_manifests_are_accepted(cluster, ns):
    for path in sorted(Path(ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "TestEnvironment":
                result = _apply(cluster, ns, doc["spec"], name=doc["metadata"]["name"])
                assert result.returncode == 0, f"{path.name}: {result.stderr}"


def test_server_applies_defaults(cluster, ns):
    result = _apply(cluster, ns, {"stubs": [{"name": "pay"}], "tests": [{"name": "t", "image": "i"}]}, dry_run=False)
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load(kubectl(cluster, "get", "tenv", "sample", "-n", ns, "-o", "yaml").stdout)["spec"]
    assert stored["stubs"][0]["port"] == 8080
    assert stored["tests"][0]["failFast"] is True and stored["tests"][0]["shards"] == 1
    assert stored["isolation"]["networkPolicy"] is True


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"datastores": [{"name": "db", "engine": "oracle"}]}, 'spec.datastores[0].engine: Unsupported value: "oracle"'),
        ({"services": [{"name": "svc"}]}, "set image, or copyFrom"),
        ({"services": [{"name": "Order_Service", "image": "x"}]}, "spec.services[0].name"),
        ({"lifecycle": {"ttlSecondsAfterFinished": -5}}, "spec.lifecycle.ttlSecondsAfterFinished"),
        ({"lifecycle": {"activeDeadlineSeconds": 0}}, "spec.lifecycle.activeDeadlineSeconds"),
        ({"tests": [{"name": "t", "image": "i", "shards": 0}]}, "spec.tests[0].shards"),
        (
            {"datastores": [{"name": "x", "engine": "redis"}], "services": [{"name": "x", "image": "i"}]},
            "a name is used in both datastores and services",
        ),
        ({"services": [{"name": "a", "image": "i"}, {"name": "a", "image": "j"}]}, "Duplicate value"),
        ({"seed": [{"name": "s", "sql": "select 1"}]}, "sql needs datastore"),
        ({"seed": [{"name": "s", "datastore": "d", "sql": "x", "image": "busybox"}]}, "exactly one of sql"),
        ({"stubs": [{"name": "s", "mappings": [{"request": {"method": "FETCH"}}]}]}, "method"),
        ({"stubs": [{"name": "s", "mappings": [{"request": {}, "response": {"fault": "EXPLODE"}}]}]}, "fault"),
        ({"tests": [{"name": "t"}]}, "spec.tests[0].image: Required value"),
        ({"tests": [{"name": "t", "image": "i", "env": [{"name": "K", "value": "v", "valueFrom": {"secretKeyRef": {
            "namespace": "shared", "name": "s", "key": "k"}}}]}]}, "set value or valueFrom, not both"),
        ({"tests": [{"name": "t", "image": "i", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {
            "name": "s", "key": "k"}}}]}]}, "spec.tests[0].env[0].valueFrom.secretKeyRef.namespace: Required value"),
        ({"tests": [{"name": "t", "image": "ghcr.io/Acme/e2e:1"}]}, "spec.tests[0].image"),
        ({"seed": [{"name": "s", "image": "-\u00a9\u0099"}]}, "spec.seed[0].image"),
        ({"stubs": [{"name": "s", "image": "wiremock:"}]}, "spec.stubs[0].image"),
        ({"datastores": [{"name": "db", "engine": "redis", "version": "7 alpine"}]}, "spec.datastores[0].version"),
        ({"seed": [{"name": "s", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "A"}]}]},
         'spec.seed[0].env[1]: Duplicate value: {"name":"A"}'),
        ({"services": [{"name": "a", "image": "i", "ports": [{"port": 80}, {"port": 80, "name": "b"}]}]},
         "spec.services[0].ports: Invalid value: a port used more than once"),
        ({"services": [{"name": "a", "image": "i", "ports": [{"port": 80, "name": "w"}, {"port": 81, "name": "w"}]}]},
         "spec.services[0].ports: Invalid value: a port name used more than once"),
        ({"services": [{"name": "a", "image": "i", "ports": [{"port": 80}, {"port": 81, "name": "p80"}]}]},
         "spec.services[0].ports[1].name: Invalid value"),
        ({"tests": [{"name": "t", "image": "i", "podAnnotations": {"not a key": "1"}}]},
         "spec.tests[0].podAnnotations: Invalid value: a key must be [prefix/]name"),
        ({"seed": [{"name": "s", "image": "i", "podAnnotations": {"a" * 254 + "/b": "1"}}]},
         "spec.seed[0].podAnnotations: Invalid value: a key must be [prefix/]name"),
        ({"lifecycle": {"activeDeadlineSeconds": 1418617818948}},
         "spec.lifecycle.activeDeadlineSeconds: Invalid value: 1418617818948: "
         "spec.lifecycle.activeDeadlineSeconds in body should be less than or equal to 2147483647"),
        ({"isolation": {"resourceQuota": {"pods": "53509020927351939"}}},
         'spec.isolation.resourceQuota.pods: Invalid value: "53509020927351939": more than a ResourceQuota can hold'),
        ({"isolation": {"resourceQuota": {"pods": "2P"}}}, "more than a ResourceQuota can hold"),
        ({"isolation": {"resourceQuota": {"pods": 10**15 + 1}}},
         "spec.isolation.resourceQuota.pods in body should be less than or equal to 1000000000000000"),
        ({"services": [{"name": "a", "image": "i", "readinessProbe": {"httpGet": {"port": 80}, "r1": 1071}}]},
         'unknown field "spec.services[0].readinessProbe.r1"'),
        ({"services": [{"name": "a", "image": "i", "readinessProbe": {"periodSeconds": 2}}]},
         "spec.services[0].readinessProbe: Invalid value: set exactly one of exec, httpGet"),
        ({"services": [{"name": "a", "image": "i", "readinessProbe": {"tcpSocket": {"port": "8080"}}}]},
         "spec.services[0].readinessProbe.tcpSocket.port"),
        ({"services": [{"name": "a", "image": "i", "readinessProbe": {"tcpSocket": {"port": 70000}}}]},
         "spec.services[0].readinessProbe.tcpSocket.port"),
    ],
    ids=["engine", "image-or-copy", "name", "negative-ttl", "zero-deadline", "zero-shards", "shared-name",
         "duplicate-name", "sql-without-datastore", "sql-and-image", "stub-method", "stub-fault", "no-image",
         "value-and-value-from", "secret-key-ref-without-namespace", "image-upper-case-path",
         "image-not-ascii", "image-empty-tag", "version-with-space", "env-name-twice",
         "port-twice", "port-name-twice", "port-name-reserved", "annotation-key", "annotation-prefix-too-long",
         "deadline-past-int32", "pods-past-1e15", "pods-2P", "pods-int-past-1e15",
         "probe-unknown-field", "probe-no-handler", "probe-port-digits-name", "probe-port-70000"],
)
def test_invalid_objects_are_refused_with_a_message_naming_the_field(cluster, ns, spec, expected):
    result = _apply(cluster, ns, spec)
    assert result.returncode != 0, "the API server accepted an invalid TestEnvironment"
    assert expected in result.stderr, result.stderr


@pytest.mark.parametrize("image", [
    "redis", "localhost:5000/shop/orders:sha-abc123", "[::1]:5000/a/b:c", "Registry.Example.COM/a__b/c-d.e",
    "ghcr.io/acme/e2e@sha256:" + "a" * 64, "ghcr.io/acme/e2e:1.2@sha256:" + "0" * 64,
])
def test_image_references_the_kubelet_takes_are_admitted(cluster, ns, image):
    """The image pattern is Go's RE2 on the API server and pydantic's regex in
    the models: each takes what the kubelet's reference parser takes."""
    result = _apply(cluster, ns, {"tests": [{"name": "t", "image": image}]})
    assert result.returncode == 0, result.stderr
    assert models.TestSuite.model_validate({"name": "t", "image": image}).image == image


def test_qualified_pod_annotation_keys_are_admitted(cluster, ns):
    keys = {"team": "", "testenv.dev/simulate-exit-code": "1", "x" * 63: "", "a" * 253 + "/b": ""}
    result = _apply(cluster, ns, {"tests": [{"name": "t", "image": "i", "podAnnotations": keys}]})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("probe", [
    {"httpGet": {"port": "http", "path": "/health", "scheme": "HTTPS", "httpHeaders": [{"name": "X-A", "value": "1"}]}},
    {"tcpSocket": {"port": 6379}, "periodSeconds": 2}, {"grpc": {"port": 9090}}, {"exec": {"command": ["true"]}},
])
def test_readiness_probes_kubernetes_takes_are_admitted(cluster, ns, probe):
    result = _apply(cluster, ns, {"services": [{"name": "a", "image": "i", "readinessProbe": probe}]})
    assert result.returncode == 0, result.stderr


def test_two_ports_to_one_target_port_are_admitted(cluster, ns):
    ports = [{"port": 80, "targetPort": 8080}, {"port": 8080}, {"port": 9090, "name": "metrics"}]
    result = _apply(cluster, ns, {"services": [{"name": "a", "image": "i", "ports": ports}]})
    assert result.returncode == 0, result.stderr


def test_a_borrowed_secret_key_is_accepted_and_stored_as_written(cluster, ns):
    ref = {"namespace": "shared-ci", "name": "stripe-sandbox", "key": "api-key"}
    spec = {"services": [{"name": "api", "image": "i", "env": [{"name": "STRIPE_KEY", "valueFrom": {"secretKeyRef": ref}}]}]}
    result = _apply(cluster, ns, spec, dry_run=False)
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load(kubectl(cluster, "get", "tenv", "sample", "-n", ns, "-o", "yaml").stdout)["spec"]
    assert stored["services"][0]["env"][0]["valueFrom"] == {"secretKeyRef": ref}


def test_unknown_wiremock_fields_pass_through(cluster, ns):
    spec = {"stubs": [{"name": "s", "mappings": [{
        "request": {"method": "GET", "urlPath": "/x", "cookies": {"session": {"equalTo": "abc"}}},
        "response": {"status": 200, "transformers": ["response-template"]},
        "scenarioName": "checkout",
    }]}]}
    assert _apply(cluster, ns, spec, dry_run=False).returncode == 0
    stored = yaml.safe_load(kubectl(cluster, "get", "tenv", "sample", "-n", ns, "-o", "yaml").stdout)["spec"]
    mapping = stored["stubs"][0]["mappings"][0]
    assert mapping["scenarioName"] == "checkout"
    assert mapping["request"]["cookies"] == {"session": {"equalTo": "abc"}}
    assert mapping["response"]["transformers"] == ["response-template"]
