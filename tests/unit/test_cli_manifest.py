"""`testenv up`'s manifest handling: --set overrides, name/namespace, and
local validation that names the field before anything reaches a cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from testenv.cli.manifest import (
    ManifestError,
    Override,
    apply_override,
    check,
    parse_manifest,
    parse_override,
    parse_value,
    prepare,
)

MANIFEST: dict[str, Any] = {
    "apiVersion": "testenv.dev/v1alpha1",
    "kind": "TestEnvironment",
    "metadata": {"name": "pr-1", "namespace": "ci"},
    "spec": {
        "datastores": [{"name": "cache", "engine": "redis", "version": "7"}],
        "services": [
            {"name": "order-service", "image": "ghcr.io/acme/orders:1", "dependsOn": ["cache"],
             "env": [{"name": "MODE", "value": "test"}]},
        ],
        "tests": [
            {"name": "unit", "image": "ghcr.io/acme/tests:1"},
            {"name": "e2e", "image": "ghcr.io/acme/e2e:1", "needs": ["unit"]},
        ],
    },
}


def overridden(*sets: str) -> dict[str, Any]:
    return prepare(MANIFEST, overrides=list(sets))["spec"]


def problems_of(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        check(body)
    return caught.value.problems


def with_spec(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(MANIFEST)
    body["spec"].update(changes)
    return body


# --- parsing --set ---------------------------------------------------------------


def test_an_override_is_a_dotted_path_and_a_raw_value():
    assert parse_override("services.order-service.image=repo/x:2") == Override(
        ["services", "order-service", "image"], "repo/x:2")


def test_a_leading_spec_is_optional_and_the_value_may_contain_equals():
    assert parse_override("spec.tests.e2e.env.X.value=a=b") == Override(["tests", "e2e", "env", "X", "value"], "a=b")


def test_escaped_dots_stay_in_a_key():
    override = parse_override("tests.e2e.podAnnotations.testenv\\.dev/simulate-exit-code=1")
    assert override.path == ["tests", "e2e", "podAnnotations", "testenv.dev/simulate-exit-code"]


@pytest.mark.parametrize("text", ["no-equals", "=value", "tests..image=x"])
def test_a_malformed_override_is_rejected(text):
    with pytest.raises(ManifestError, match="--set"):
        parse_override(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tests.e2e.shards=2", 2),
        ("tests.e2e.failFast=false", False),
        ("lifecycle.ttlSecondsAfterFinished=300", 300),
        ("tests.e2e.command=[pytest, -x]", ["pytest", "-x"]),
        # Where the models want text, YAML's numbers and booleans stay text.
        ("datastores.cache.version=16", "16"),
        ("services.order-service.image=true", "true"),
        ("tests.e2e.podAnnotations.testenv\\.dev/simulate-exit-code=1", "1"),
        ("services.order-service.env.MODE.value=3", "3"),
        ('datastores.cache.version="7.2"', "7.2"),
        ("services.order-service.image=", ""),
        ("tests.e2e.timeoutSeconds=null", None),
    ],
)
def test_values_are_yaml_scalars_typed_by_the_models(text, expected):
    assert parse_value(parse_override(text)) == expected


# --- applying --set ---------------------------------------------------------------


def test_list_items_are_addressed_by_name():
    spec = overridden("services.order-service.image=ghcr.io/acme/orders:2", "tests.e2e.shards=2")
    assert spec["services"][0]["image"] == "ghcr.io/acme/orders:2"
    assert spec["tests"][1]["shards"] == 2
    assert spec["tests"][0] == MANIFEST["spec"]["tests"][0]


def test_missing_maps_are_created_on_the_way():
    spec = overridden("lifecycle.ttlSecondsAfterFinished=60",
                      "tests.e2e.podAnnotations.testenv\\.dev/simulate-exit-code=1")
    assert spec["lifecycle"] == {"ttlSecondsAfterFinished": 60}
    assert spec["tests"][1]["podAnnotations"] == {"testenv.dev/simulate-exit-code": "1"}


def test_an_env_variable_is_changed_or_added_by_name():
    spec = overridden("services.order-service.env.MODE.value=ci", "services.order-service.env.NEW.value=1")
    assert spec["services"][0]["env"] == [{"name": "MODE", "value": "ci"}, {"name": "NEW", "value": "1"}]


def test_null_removes_a_field():
    spec = overridden("services.order-service.dependsOn=null")
    assert "dependsOn" not in spec["services"][0]


def test_an_item_may_be_addressed_by_index():
    assert overridden("tests.0.image=x:2")["tests"][0]["image"] == "x:2"


def test_an_unknown_item_is_an_error_listing_the_names():
    with pytest.raises(ManifestError, match=r"spec\.tests has no item named 'nope' \(items: unit, e2e\)"):
        overridden("tests.nope.image=x")


def test_an_item_in_an_absent_list_is_an_error():
    with pytest.raises(ManifestError, match=r"spec\.stubs is empty"):
        overridden("stubs.payment.port=9090")


def test_a_whole_item_cannot_be_replaced():
    with pytest.raises(ManifestError, match="is a list item"):
        overridden("tests.e2e=x")


def test_every_bad_override_is_reported_at_once():
    with pytest.raises(ManifestError) as caught:
        overridden("tests.nope.image=x", "services.nope.image=y")
    assert len(caught.value.problems) == 2


def test_setting_below_a_scalar_is_an_error():
    with pytest.raises(ManifestError, match="not an object"):
        overridden("tests.e2e.image.tag=x")


def test_the_manifest_itself_is_not_changed():
    before = copy.deepcopy(MANIFEST)
    overridden("tests.e2e.shards=3", "lifecycle.ttlSecondsAfterFinished=1")
    assert MANIFEST == before


def test_apply_override_works_on_a_plain_spec_dict():
    spec: dict[str, Any] = {"tests": [{"name": "a", "image": "x"}]}
    apply_override(spec, parse_override("tests.a.retries=2"))
    assert spec == {"tests": [{"name": "a", "image": "x", "retries": 2}]}


# --- name, namespace, metadata ---------------------------------------------------------


def test_name_and_namespace_flags_win_over_the_manifest():
    body = prepare(MANIFEST, namespace="team-a", name="pr-123")
    assert body["metadata"] == {"name": "pr-123", "namespace": "team-a"}


def test_without_any_namespace_it_is_left_to_the_kubeconfig():
    manifest = copy.deepcopy(MANIFEST)
    del manifest["metadata"]["namespace"]
    assert "namespace" not in prepare(manifest)["metadata"]
    assert prepare(manifest, default_namespace="dev")["metadata"]["namespace"] == "dev"


def test_what_the_server_wrote_is_not_applied_back():
    manifest = copy.deepcopy(MANIFEST)
    manifest["metadata"].update(uid="u", resourceVersion="5", generation=3, managedFields=[{}], labels={"team": "a"})
    manifest["status"] = {"phase": "Succeeded"}
    body = prepare(manifest)
    assert body["metadata"] == {"name": "pr-1", "namespace": "ci", "labels": {"team": "a"}}
    assert "status" not in body


# --- reading ----------------------------------------------------------------------------


def test_the_testenvironment_is_found_among_other_documents():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" \
           "apiVersion: testenv.dev/v1alpha1\nkind: TestEnvironment\nmetadata: {name: a}\nspec: {}\n"
    assert parse_manifest(text)["metadata"] == {"name": "a"}


def test_a_file_without_a_testenvironment_says_what_it_found():
    with pytest.raises(ManifestError, match=r"no TestEnvironment in the file \(found: ConfigMap\)"):
        parse_manifest("apiVersion: v1\nkind: ConfigMap\n", "cm.yaml")


def test_invalid_yaml_names_the_file():
    with pytest.raises(ManifestError, match="env.yaml: not valid YAML"):
        parse_manifest("spec: [unclosed", "env.yaml")


def test_two_environments_in_one_file_are_refused():
    doc = "apiVersion: testenv.dev/v1alpha1\nkind: TestEnvironment\nmetadata: {name: a}\n"
    with pytest.raises(ManifestError, match="2 TestEnvironments"):
        parse_manifest(doc + "---\n" + doc)


# --- checking -----------------------------------------------------------------------------


def test_a_valid_manifest_passes():
    assert check(prepare(MANIFEST)).spec.tests[1].needs == ["unit"]


def test_a_missing_field_is_named_with_its_path_and_item():
    body = with_spec(tests=[{"name": "e2e"}])
    assert problems_of(body) == ["spec.tests[0](e2e).image: required field is missing"]


def test_an_unknown_field_is_named():
    body = with_spec(tests=[{"name": "e2e", "image": "x", "shard": 2}])
    assert problems_of(body) == ["spec.tests[0](e2e).shard: unknown field (check its spelling and camelCase)"]


def test_a_bad_value_says_why():
    body = with_spec(datastores=[{"name": "cache", "engine": "cassandra"}])
    (problem,) = problems_of(body)
    assert problem.startswith("spec.datastores[0](cache).engine: Input should be 'postgres'")


def test_a_model_rule_is_reported_on_its_item():
    body = with_spec(services=[{"name": "api"}])
    assert problems_of(body) == [
        "spec.services[0](api): set image, or copyFrom to copy a Deployment (image then overrides its image)"]


def test_whole_spec_rules_are_checked_too():
    body = with_spec(tests=[{"name": "e2e", "image": "x", "needs": ["nope"]}])
    assert problems_of(body) == ["spec.tests[0].needs: 'nope' is not a test suite of this environment; remove it"]


def test_the_copy_policy_is_left_to_the_operator():
    body = with_spec(services=[{"name": "api", "copyFrom": {"namespace": "staging", "deployment": "api"}}])
    check(body)


@pytest.mark.parametrize("name", ["", "PR_1", "a" * 254, "-x", "a..b", "pr-1\n"])
def test_the_name_must_be_a_dns_subdomain_as_the_api_server_wants(name):
    body = copy.deepcopy(MANIFEST)
    body["metadata"]["name"] = name
    assert problems_of(body)[0].startswith("metadata.name:")


def test_a_bad_override_value_is_caught_by_validation():
    body = prepare(MANIFEST, overrides=["tests.e2e.shards=many"])
    assert problems_of(body) == [
        "spec.tests[1](e2e).shards: Input should be a valid integer"]
