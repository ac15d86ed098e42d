"""What bench/fuzz_manifests.py found: manifests on which the CLI's local
validation and the models judged otherwise than the API server's admission
(kube-apiserver v1.36, the CRD with fieldValidation=Strict), rejections that
named no field, and a valid manifest the CLI could not apply. Each example is
the small form of one the fuzzer drew; the verdict asserted is the API
server's, as recorded in the comment."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from kubernetes import client
from pydantic import ValidationError
from testenv import models
from testenv.cli.cluster import CliError, Connection, Environments
from testenv.cli.manifest import ManifestError, check, prepare
from testenv.crd import custom_resource_definition

BASE: dict[str, Any] = {
    "apiVersion": "testenv.dev/v1alpha1",
    "kind": "TestEnvironment",
    "metadata": {"name": "pr-1", "namespace": "ci"},
    "spec": {
        "datastores": [{"name": "cache", "engine": "redis"}],
        "services": [{"name": "api", "image": "registry.test/api:1", "dependsOn": ["cache"], "replicas": 1}],
        "seed": [{"name": "fill", "datastore": "cache", "sql": "SET k v"}],
        "tests": [{"name": "e2e", "image": "registry.test/e2e:1", "shards": 2, "failFast": True,
                   "podAnnotations": {"team": "shop"}}],
        "lifecycle": {"ttlSecondsAfterFinished": 60},
        "isolation": {"networkPolicy": True, "resourceQuota": {"cpu": "2", "memory": "4Gi"}},
    },
}


def manifest(**spec_changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body["spec"].update(spec_changes)
    return body


def cli_problems(body: dict[str, Any]) -> list[str]:
    """[] when `testenv up` would send it; else what it says."""
    try:
        check(prepare(body))
    except ManifestError as exc:
        return exc.problems
    return []


def item(field: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**copy.deepcopy(BASE["spec"][field][0]), **changes}]


def test_the_base_manifest_is_valid():
    assert cli_problems(BASE) == []


# --- types: pydantic's lax mode took what the API server refuses ------------------------------------


@pytest.mark.parametrize(("field", "changes", "where"), [
    # API server: spec.tests[0].shards: Invalid value: "string": ... must be of type integer
    ("tests", {"shards": "2"}, "spec.tests[0](e2e).shards"),
    # ... must be of type integer: "boolean"
    ("tests", {"shards": True}, "spec.tests[0](e2e).shards"),
    ("services", {"replicas": False}, "spec.services[0](api).replicas"),
    # ... must be of type boolean: "string" / "integer"
    ("tests", {"failFast": "true"}, "spec.tests[0](e2e).failFast"),
    ("tests", {"failFast": 1}, "spec.tests[0](e2e).failFast"),
])
def test_no_string_or_boolean_passes_for_an_integer_nor_anything_for_a_boolean(field, changes, where):
    problems = cli_problems(manifest(**{field: item(field, **changes)}))
    assert problems and all(p.startswith(where + ":") for p in problems), problems


def test_a_stub_verification_count_of_false_is_no_integer():
    stubs = [{"name": "pay", "verify": [{"request": {"url": "/charge"}, "count": {"atMost": False}}]}]
    assert cli_problems(manifest(stubs=stubs)) == [
        "spec.stubs[0](pay).verify[0].count.atMost: Input should be a valid integer"]


@pytest.mark.parametrize("value", [2**63, 10**30, -(2**63) - 1, 10**400])
def test_an_integer_beyond_64_bits_is_refused(value):
    # API server: the JSON number does not fit int64, so it is a float: "must be of type integer: number".
    assert cli_problems(manifest(lifecycle={"ttlSecondsAfterFinished": value})) == [
        "spec.lifecycle.ttlSecondsAfterFinished: Input should be a valid integer"]


def test_the_largest_64_bit_integer_and_a_whole_float_are_integers():
    # API server: 9223372036854775807 is an integer (judged by the field's
    # maximum, not its type); 2.0 is taken for the integer 2.
    assert cli_problems(manifest(lifecycle={"ttlSecondsAfterFinished": 2**63 - 1})) == [
        "spec.lifecycle.ttlSecondsAfterFinished: Input should be less than or equal to 2147483647"]
    assert cli_problems(manifest(tests=item("tests", shards=2.0))) == []
    spec = models.TestEnvironmentSpec.model_validate({"tests": item("tests", shards=2.0)})
    assert spec.tests[0].shards == 2 and isinstance(spec.tests[0].shards, int)


@pytest.mark.parametrize("cpu", [True, 1.5, "1\n", " 1"])
def test_a_quantity_is_an_integer_or_a_quantity_string_only(cpu):
    # API server: "must be of type integer,string" / "should match '^(\+|-)?...$'" ("1\n" too: RE2's $ is the end).
    problems = cli_problems(manifest(isolation={"resourceQuota": {"cpu": cpu}}))
    assert problems and all(p.startswith("spec.isolation.resourceQuota.cpu") for p in problems), problems


# --- admitted, then refused by the ResourceQuota: the run never got a phase --------------------------
# The operator's apply of the namespace's ResourceQuota failed on every try
# (a 422 for a negative amount, a 500 "quantities must match ..." for a
# fractional exponent), so the environment stayed without a phase.


@pytest.mark.parametrize(("quota", "field"), [
    ({"cpu": "-.9823834n"}, "cpu"),   # ResourceQuota: spec.hard[requests.cpu]: must be greater than or equal to 0
    ({"cpu": -1}, "cpu"),
    ({"memory": "-.81364E.81364"}, "memory"),  # quantities must match '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'
    ({"memory": "1e1.5"}, "memory"),
    ({"pods": "1.5"}, "pods"),  # spec.hard[pods]: must be an integer
    ({"pods": "500m"}, "pods"),
    ({"pods": -3}, "pods"),
])
def test_a_quota_the_resourcequota_would_refuse_is_refused_at_admission(quota, field):
    problems = cli_problems(manifest(isolation={"resourceQuota": quota}))
    assert problems and all(p.startswith(f"spec.isolation.resourceQuota.{field}") for p in problems), problems
    schema = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    node = schema["properties"]["spec"]["properties"]["isolation"]["properties"]["resourceQuota"]["properties"][field]
    assert node["minimum"] == 0 and re.fullmatch(node["pattern"], "-1") is None


@pytest.mark.parametrize("quota", [{"cpu": "1e3", "memory": "+1.5Gi", "pods": 30}, {"cpu": 0, "pods": "1k"},
                                   {"cpu": "500m", "memory": "1e-3", "pods": "2Ki"}])
def test_a_quota_the_resourcequota_takes_is_taken(quota):
    assert cli_problems(manifest(isolation={"resourceQuota": quota})) == []


# --- null: the API server prunes a null field before it validates ------------------------------------


@pytest.mark.parametrize("spec_changes", [
    {"lifecycle": None},
    {"isolation": None},
    {"datastores": None, "services": None, "seed": None},
    {"tests": item("tests", shards=None, failFast=None, podAnnotations={"team": None})},
    {"services": item("services", replicas=None, env=None, ports=None, command=None)},
    {"stubs": [{"name": "pay", "port": None, "mappings": [
        {"request": {"url": "/x", "headers": {"X-Key": None}, "extraKey": None},
         "response": {"status": None, "headers": {"a": None}, "jsonBody": {"a": None, "b": [None]}}}]}]},
])
def test_a_null_field_is_an_unset_one(spec_changes):
    # API server: admitted; the stored object has the field left out (defaults filled in).
    assert cli_problems(manifest(**spec_changes)) == []


def test_a_null_inside_free_form_json_is_pruned_but_a_null_list_item_stays():
    stubs = [{"name": "pay", "mappings": [{"request": {"url": "/x"}, "response": {"jsonBody": {"a": None, "b": [None, 1]}}}]}]
    spec = models.TestEnvironmentSpec.model_validate({"stubs": stubs})
    assert spec.stubs[0].mappings[0].response.json_body == {"b": [None, 1]}


def test_a_null_list_is_unset_so_a_reference_into_it_is_what_is_refused():
    # fuzz_manifests.py (seed 20261201, 36bd594): `datastores: null` drawn
    # beside a dependsOn naming nothing. API server: admitted (the null
    # pruned); the operator: Error naming the dependsOn, as the CLI here.
    body = manifest(datastores=None, seed=None)
    [problem] = cli_problems(body)
    assert problem.startswith("spec.services[0].dependsOn: 'cache' is not a datastore, stub or service"), problem


def test_a_null_unknown_field_is_still_unknown():
    # API server: strict decoding error: unknown field "spec.tests[0].imagePullPolicy" (null or not).
    assert cli_problems(manifest(tests=item("tests", imagePullPolicy=None))) == [
        "spec.tests[0](e2e).imagePullPolicy: unknown field (check its spelling and camelCase)"]


def test_a_null_list_item_is_refused():
    # API server: spec.tests[0].command[0]: ... must be of type string: "null".
    with pytest.raises(ValidationError):
        models.TestEnvironmentSpec.model_validate({"tests": item("tests", command=[None])})


# --- metadata.name: the API server's rule, a DNS-1123 subdomain ---------------------------------------


@pytest.mark.parametrize("name", ["a.b", "pr-1.shop", "a" * 64, "a" * 253, "1abc"])
def test_a_name_the_api_server_takes_is_taken(name):
    # API server: admitted (and the operator makes te-<name with '-' for '.'>-<hash> of it).
    body = copy.deepcopy(BASE)
    body["metadata"]["name"] = name
    assert cli_problems(body) == []


@pytest.mark.parametrize("name", ["pr-1\n", "a..b", "a" * 254, "A", ".a"])
def test_a_name_the_api_server_refuses_is_refused(name):
    body = copy.deepcopy(BASE)
    body["metadata"]["name"] = name
    problems = cli_problems(body)
    assert problems and problems[0].startswith("metadata.name:"), problems


def test_a_namespace_is_a_dns_label_of_at_most_63():
    body = copy.deepcopy(BASE)
    body["metadata"]["namespace"] = "ci\n"
    assert cli_problems(body)[0].startswith("metadata.namespace:")
    body["metadata"]["namespace"] = "a" * 64
    assert cli_problems(body)[0].startswith("metadata.namespace:")


# --- a rejection names its field --------------------------------------------------------------------


def _crd_spec_rules() -> list[dict[str, Any]]:
    spec = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules: list[dict[str, Any]] = spec["x-kubernetes-validations"]
    return rules


def test_a_name_shared_between_lists_is_reported_on_the_later_list():
    # API server, before: "spec: Invalid value: ... a name is used in both stubs and services" (no list named).
    assert {r["message"].split(":")[0]: r.get("fieldPath") for r in _crd_spec_rules()} == {
        "a name is used in both datastores and stubs": ".stubs",
        "a name is used in both datastores and services": ".services",
        "a name is used in both stubs and services": ".services",
        "a name is used in both seed and tests": ".tests",
    }
    body = manifest(stubs=[{"name": "api"}])
    assert cli_problems(body) == ["spec: spec.services: name 'api' is already used in spec.stubs"]


# --- applied: a valid manifest the CLI could not send -------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, data: bytes) -> None:
        self.status, self.data, self.reason, self.headers = status, data, "", {}

    def read(self) -> bytes:
        return self.data


def _environments(monkeypatch, status: int, answer: dict[str, Any]) -> tuple[Environments, list[dict[str, Any]]]:
    api = client.ApiClient(client.Configuration(host="https://x:6443"))
    sent: list[dict[str, Any]] = []

    def call_api(method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        sent.append({"method": method, "url": url, "headers": header_params, "body": body})
        return FakeResponse(status, json.dumps(answer).encode())

    monkeypatch.setattr(api, "call_api", call_api)
    connection = Connection(api, "fake", "https://x:6443", "ci", "`kubectl cluster-info`")
    return Environments(connection), sent


def test_a_character_beyond_the_bmp_goes_to_the_api_server_as_utf8(monkeypatch):
    # API server, before: "error decoding YAML: ... found invalid Unicode character escape code":
    # the client's json.dumps had written the emoji as the escapes \ud83d\ude80.
    body = prepare(manifest(tests=item("tests", env=[{"name": "GREETING", "value": "launch 🚀"}])))
    envs, sent = _environments(monkeypatch, 201, {**body, "metadata": {**body["metadata"], "generation": 1}})
    stored = envs.apply(body)
    assert stored["metadata"]["generation"] == 1
    request = sent[0]
    assert request["method"] == "PATCH"
    assert request["url"].startswith("https://x:6443/apis/testenv.dev/v1alpha1/namespaces/ci/testenvironments/pr-1?")
    assert {"fieldManager=testenv-cli", "force=true", "fieldValidation=Strict"} <= set(request["url"].split("?")[1].split("&"))
    assert request["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert "🚀".encode() in request["body"] and b"\\ud83d" not in request["body"]
    assert json.loads(request["body"]) == body


def test_a_refused_apply_is_an_error_with_the_api_servers_words(monkeypatch):
    envs, _ = _environments(monkeypatch, 422, {"kind": "Status", "message": "spec.tests[0].image: Required value"})
    with pytest.raises(CliError, match=r"cannot apply testenvironment pr-1: spec.tests\[0\].image: Required value"):
        envs.apply(prepare(BASE))


# --- admitted, then never judged: an image no kubelet can parse ----------------------------------------
# The API server takes any string for a pod's image; the kubelet refuses a
# bad one (InvalidImageName), but KWOK's nodes judge nothing and the pod
# waited for ever: 6 of the fuzz run's hangs. The CRD now refuses them.


@pytest.mark.parametrize(("field", "changes"), [
    ("tests", {"image": "-\u00a9\x99\u00b9"}),
    ("tests", {"image": "e2e\x07:1"}),
    ("tests", {"image": "registry.test/E2E:1"}),
    ("tests", {"image": "registry.test/e2e:"}),
    ("tests", {"image": "registry.test//e2e"}),
    ("tests", {"image": "registry.test/e2e@sha256:abc"}),
    ("services", {"image": "api latest"}),
    ("stubs", {"name": "pay", "image": "wiremock:-1"}),
])
def test_an_image_no_kubelet_would_parse_is_refused_naming_the_field(field, changes):
    spec = {field: item(field, **changes)} if field != "stubs" else {"stubs": [changes]}
    problems = cli_problems(manifest(**spec))
    named = spec[field][0]["name"]
    assert problems == [f"spec.{field}[0]({named}).image: {changes['image']!r} is not an image reference "
                        "([registry[:port]/]path[:tag][@digest], the path in lower case, "
                        "like ghcr.io/acme/e2e:sha-abc123)"], problems


@pytest.mark.parametrize("image", [
    "redis", "busybox:1.36", "localhost:5000/shop/orders:sha-abc123", "127.0.0.1:5001/x/y", "[::1]:5000/a:b",
    "Registry.Example.COM/a__b/c-d.e", "ghcr.io/acme/e2e@sha256:" + "a" * 64,
])
def test_an_image_the_kubelet_parses_is_taken(image):
    assert cli_problems(manifest(tests=item("tests", image=image))) == []


def test_a_datastore_version_is_an_image_tag():
    problems = cli_problems(manifest(datastores=[{"name": "cache", "engine": "redis", "version": "7 alpine"}]))
    assert problems and problems[0].startswith("spec.datastores[0](cache).version: '7 alpine' is not an image tag"), problems
    assert cli_problems(manifest(datastores=[{"name": "cache", "engine": "redis", "version": "7.2-alpine"}])) == []


def test_the_operator_says_a_pattern_in_words_too():
    """An older CRD may let a bad image through: the operator's own check
    names the field and says what it should be, not the regex."""
    from testenv.reconcile import _parse_spec

    _, errors = _parse_spec({"tests": [{"name": "e2e", "image": "Bad Image"}]})
    assert [str(e) for e in errors] == [
        "spec.tests.0.image: 'Bad Image' is not an image reference ([registry[:port]/]path[:tag][@digest], "
        "the path in lower case, like ghcr.io/acme/e2e:sha-abc123)"]


# --- admitted, then unmergeable: an environment variable set twice ------------------------------------
# A container's env is a list keyed by name for server-side apply. The CRD
# took `env: [{name: A, value: g7}, {name: A}]`; every apply of the seed's
# Job then failed with a 500 "failed to create typed patch object ...
# duplicate entries for key [name="A"]", and the run never got a phase.


@pytest.mark.parametrize("field", ["seed", "tests", "services"])
def test_a_variable_set_twice_is_refused_naming_the_list(field):
    problems = cli_problems(manifest(**{field: item(field, env=[{"name": "A", "value": "g7"}, {"name": "A"}])}))
    named = BASE["spec"][field][0]["name"]
    assert problems == [f"spec.{field}[0]({named}).env: 'A' set more than once; set each variable once"], problems


def test_the_crd_keys_env_by_name_so_the_api_server_refuses_a_name_twice_too():
    schema = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for field in ("seed", "tests", "services"):
        env = schema["properties"][field]["items"]["properties"]["env"]
        assert env["x-kubernetes-list-type"] == "map" and env["x-kubernetes-list-map-keys"] == ["name"], field


# --- the same for a Service's ports: keyed by number and by name ------------------------------------


@pytest.mark.parametrize(("ports", "said"), [
    ([{"port": 80}, {"port": 80, "name": "other"}], "spec.services[0](api).ports: port 80 used more than once"),
    ([{"port": 80, "name": "web"}, {"port": 81, "name": "web"}],
     "spec.services[0](api).ports: name 'web' used more than once"),
    ([{"port": 80}, {"port": 81, "name": "p80"}],
     "spec.services[0](api).ports[1](p80): p<number> is the name an unnamed port gets"),
])
def test_a_service_port_or_port_name_used_twice_is_refused_naming_the_field(ports, said):
    problems = cli_problems(manifest(services=item("services", ports=ports)))
    assert len(problems) == 1 and problems[0].startswith(said), problems


def test_two_ports_to_one_target_port_are_taken():
    assert cli_problems(manifest(services=item("services", ports=[{"port": 80, "targetPort": 8080},
                                                                  {"port": 8080}]))) == []


# --- admitted, then refused with the Job: a pod annotation key that is no qualified name -----------
# fuzz_manifests.py (seed 20261201): the run ended in Error with the API
# server's words once the Job was applied; now it is refused at admission.


@pytest.mark.parametrize("key", ["not a key", ":", "-x", "a/b/c", "Team.Example/x", "x" * 64, "a" * 254 + "/b", "é"])
def test_a_pod_annotation_key_the_api_server_would_refuse_on_the_pod_is_refused(key):
    problems = cli_problems(manifest(tests=item("tests", podAnnotations={key: "1"})))
    assert len(problems) == 1 and problems[0].startswith(f"spec.tests[0](e2e).podAnnotations: {key!r}: a key must be"), problems


@pytest.mark.parametrize("key", ["team", "testenv.dev/simulate-exit-code", "a.b-c_d", "x" * 63, "a" * 253 + "/b"])
def test_a_qualified_annotation_key_is_taken(key):
    assert cli_problems(manifest(tests=item("tests", podAnnotations={key: "1"}))) == []


def test_at_most_64_pod_annotations():
    problems = cli_problems(manifest(seed=[{"name": "fill", "image": "registry.test/seed:1",
                                            "podAnnotations": {f"k{i}": "" for i in range(65)}}]))
    assert problems == ["spec.seed[0](fill).podAnnotations: 65 annotations; at most 64"], problems


# --- admitted, then every pass raised: a deadline past the year 9999 -----------------------------------
# fuzz_manifests.py (seed 20261201, cc8ae04): activeDeadlineSeconds
# 1418617818948 and 18014398509481984 were admitted (int64), and every pass
# of the operator raised OverflowError adding them to the start: 14
# tracebacks, no phase. Durations are now int32, as Kubernetes' own.


@pytest.mark.parametrize("field, spec_changes", [
    ("spec.lifecycle.activeDeadlineSeconds", {"lifecycle": {"activeDeadlineSeconds": 1418617818948}}),
    ("spec.lifecycle.retainOnFailureSeconds", {"lifecycle": {"retainOnFailureSeconds": 18014398509481984}}),
    ("spec.tests[0](e2e).timeoutSeconds", {"tests": item("tests", timeoutSeconds=2**31)}),
])
def test_a_duration_past_int32_is_refused_naming_its_field(field, spec_changes):
    # API server: spec.lifecycle.activeDeadlineSeconds: Invalid value: ...: must be less than or equal to 2147483647.
    [problem] = cli_problems(manifest(**spec_changes))
    assert problem.startswith(f"{field}: ") and "2147483647" in problem, problem


# --- admitted, then refused by the ResourceQuota: a count of pods past int64 thousandths ---------------
# fuzz_manifests.py (seed 20261130, e179b89): pods "+0053509020927351939" was
# admitted, then every apply of the ResourceQuota got 422 "spec.hard[pods]:
# must be an integer" (Kubernetes counts it in thousandths, in an int64): 14
# tracebacks, no phase.


@pytest.mark.parametrize("pods", ["+0053509020927351939", "2P", "1Ei", 10**15 + 1])
def test_a_pod_count_past_what_a_resourcequota_holds_is_refused(pods):
    # API server: spec.isolation.resourceQuota.pods: ... more than a ResourceQuota can hold (at most 1000000000000000)
    [problem] = cli_problems(manifest(isolation={"resourceQuota": {"pods": pods}}))
    assert problem.startswith("spec.isolation.resourceQuota.pods: ") and "1000000000000000" in problem, problem


@pytest.mark.parametrize("pods", ["1P", "+001000", "888Ti", 10**15])
def test_a_pod_count_up_to_1e15_is_taken(pods):
    assert cli_problems(manifest(isolation={"resourceQuota": {"pods": pods}})) == []



# --- admitted, then refused with the Deployment: a readiness probe with a field no Probe has ----------
# fuzz_manifests.py (seed 20261201, 4e4e848): readinessProbe {"r1": 1071,
# ...} was free-form, admitted, and the run ended Error when the
# Deployment's apply was refused, the others provisioned. The probe is typed now.


@pytest.mark.parametrize(("probe", "says"), [
    ({"httpGet": {"path": "/", "port": 80}, "r1": 1071}, "spec.services[0](api).readinessProbe.r1: unknown field"),
    ({"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5},
     "spec.services[0](api).readinessProbe.terminationGracePeriodSeconds: unknown field"),
    ({"periodSeconds": 2}, "spec.services[0](api).readinessProbe: set exactly one of exec, httpGet"),
    ({"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
     "spec.services[0](api).readinessProbe: set exactly one of exec, httpGet"),
    ({"httpGet": {"path": "/"}}, "spec.services[0](api).readinessProbe.httpGet.port: required field is missing"),
    ({"tcpSocket": {"port": "8080"}}, "spec.services[0](api).readinessProbe.tcpSocket.port: '8080' is no container port's name"),
    ({"tcpSocket": {"port": 70000}}, "spec.services[0](api).readinessProbe.tcpSocket.port: 70000 is no port"),
    ({"httpGet": {"port": 80, "scheme": "FTP"}}, "spec.services[0](api).readinessProbe.httpGet.scheme"),
])
def test_a_readiness_probe_is_checked_as_a_probe(probe, says):
    # API server: the same fields (strict decoding, the CEL rule, the int-or-string port's bounds).
    problems = cli_problems(manifest(services=item("services", readinessProbe=probe)))
    assert problems and problems[0].startswith(says), problems


@pytest.mark.parametrize("probe", [
    {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 2},
    {"httpGet": {"port": "http", "scheme": "HTTPS", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
    {"tcpSocket": {"port": 6379}, "initialDelaySeconds": 3, "failureThreshold": 5},
    {"exec": {"command": ["pg_isready"]}, "timeoutSeconds": 2, "successThreshold": 1},
    {"grpc": {"port": 9090, "service": "health"}},
])
def test_a_readiness_probe_kubernetes_takes_is_taken_and_passed_on_as_written(probe):
    assert cli_problems(manifest(services=item("services", readinessProbe=probe))) == []
    service = models.Service.model_validate({"name": "api", "image": "registry.test/api:1", "readinessProbe": probe})
    assert service.readiness_probe is not None and service.readiness_probe.wire() == probe
