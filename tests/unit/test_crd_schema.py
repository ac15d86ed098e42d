"""The generated CRD: a structural schema the API server accepts, with the
list-map keys, CEL rules, printer columns and names kubectl users rely on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from testenv import models
from testenv.crd import custom_resource_definition, openapi_schema, render

CRD = custom_resource_definition()
[VERSION] = CRD["spec"]["versions"]
ROOT = VERSION["schema"]["openAPIV3Schema"]
SPEC = ROOT["properties"]["spec"]
STATUS = ROOT["properties"]["status"]


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, as the API server walks them."""
    yield path or ".", schema
    for name, child in (schema.get("properties") or {}).items():
        yield from nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def item(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    for step in path:
        schema = schema["items"] if step == "[]" else schema["properties"][step]
    return schema


ALL_NODES = list(nodes(ROOT))


# --- structural ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "node"), ALL_NODES, ids=[p for p, _ in ALL_NODES])
def test_every_node_has_a_type_or_an_explicit_marker(path: str, node: dict[str, Any]) -> None:
    assert (
        "type" in node or node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    ), path


@pytest.mark.parametrize("keyword", ["$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"])
def test_no_json_schema_keywords_the_api_server_rejects(keyword: str) -> None:
    offenders = [path for path, node in ALL_NODES if keyword in node]
    assert offenders == []


def test_no_additional_properties_false() -> None:
    assert [p for p, n in ALL_NODES if n.get("additionalProperties") is False] == []


def test_no_null_defaults_or_null_types() -> None:
    assert [p for p, n in ALL_NODES if "default" in n and n["default"] is None] == []
    assert [p for p, n in ALL_NODES if n.get("type") == "null"] == []


def test_int_or_string_nodes_have_no_type() -> None:
    for path, node in ALL_NODES:
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path


def test_preserve_unknown_fields_is_never_beside_properties_of_a_closed_object() -> None:
    # Only WireMock's open mapping format and free-form maps keep unknown fields.
    open_paths = {p for p, n in ALL_NODES if n.get("x-kubernetes-preserve-unknown-fields")}
    for path in open_paths:
        assert path.startswith(".spec.stubs") or path.endswith(("readinessProbe", ".metadata")), path


def test_quantities_are_int_or_string() -> None:
    quota = item(SPEC, "isolation", "resourceQuota")
    for key in ("cpu", "memory", "pods"):
        assert quota["properties"][key].get("x-kubernetes-int-or-string") is True


def test_enums_are_typed_strings() -> None:
    engine = item(SPEC, "datastores", "[]", "engine")
    assert engine == engine | {"type": "string", "enum": ["postgres", "mysql", "redis", "mongodb"]}
    assert item(STATUS, "phase")["enum"] == [p.value for p in models.Phase]


def test_spec_is_required_and_status_is_not() -> None:
    assert ROOT["required"] == ["spec"]


def test_nested_defaults_let_the_api_server_fill_in_isolation() -> None:
    assert item(SPEC, "isolation")["default"] == {}
    assert item(SPEC, "lifecycle")["default"] == {}
    assert item(SPEC, "isolation", "networkPolicy")["default"] is True


def test_field_names_are_camel_case() -> None:
    assert "ttlSecondsAfterFinished" in item(SPEC, "lifecycle")["properties"]
    assert "dependsOn" in item(SPEC, "services", "[]")["properties"]
    for path, _ in ALL_NODES:
        assert "_" not in path.replace("[]", ""), path


def test_validation_bounds_come_from_the_models() -> None:
    shards = item(SPEC, "tests", "[]", "shards")
    assert (shards["minimum"], shards["maximum"], shards["default"]) == (1, 100, 1)
    assert item(SPEC, "lifecycle", "activeDeadlineSeconds")["minimum"] == 1
    assert item(SPEC, "services", "[]", "name")["pattern"] == models.COMPONENT_NAME_PATTERN
    assert item(SPEC, "tests", "[]", "name")["maxLength"] == 40


# --- list-map keys ---------------------------------------------------------------------------


NAMED = [("spec", n) for n in ("datastores", "stubs", "services", "seed", "tests")] + [
    ("status", n) for n in ("components", "seeds", "tests")
]


@pytest.mark.parametrize(("where", "name"), NAMED, ids=[f"{w}.{n}" for w, n in NAMED])
def test_named_lists_are_list_maps_keyed_by_a_required_name(where: str, name: str) -> None:
    schema = (SPEC if where == "spec" else STATUS)["properties"][name]
    assert schema["x-kubernetes-list-type"] == "map"
    assert schema["x-kubernetes-list-map-keys"] == ["name"]
    assert "name" in schema["items"]["required"]
    assert schema["items"]["type"] == "object"


@pytest.mark.parametrize("owner", ["seed", "tests", "services"])
def test_env_is_a_list_map_keyed_by_a_required_name_as_a_containers_is(owner: str) -> None:
    env = item(SPEC, owner, "[]", "env")
    assert env["x-kubernetes-list-type"] == "map" and env["x-kubernetes-list-map-keys"] == ["name"]
    assert "name" in env["items"]["required"]


def test_lists_without_names_are_not_list_maps() -> None:
    for path in (("services", "[]", "ports"), ("stubs", "[]", "mappings")):
        assert "x-kubernetes-list-type" not in item(SPEC, *path), path


# --- CEL rules ------------------------------------------------------------------------------------


def rules(schema: dict[str, Any]) -> dict[str, str]:
    return {r["rule"]: r["message"] for r in schema.get("x-kubernetes-validations", [])}


def test_spec_rules_keep_names_disjoint_across_components_and_jobs() -> None:
    messages = list(rules(SPEC).values())
    assert len(messages) == 4
    for pair in ("datastores and stubs", "datastores and services", "stubs and services", "seed and tests"):
        assert any(pair in m for m in messages), pair


def test_service_rule_requires_image_or_copy_from() -> None:
    message = "set image, or copyFrom to copy a Deployment (image then overrides its image)"
    assert rules(item(SPEC, "services", "[]")) == {"has(self.image) || has(self.copyFrom)": message}


def test_seed_rules_require_sql_xor_image_and_a_datastore_for_sql() -> None:
    seed_rules = rules(item(SPEC, "seed", "[]"))
    assert seed_rules["has(self.sql) != has(self.image)"] == "set exactly one of sql (with datastore) or image"
    assert seed_rules["!has(self.sql) || has(self.datastore)"] == "sql needs datastore"


def test_rules_refer_only_to_fields_that_exist() -> None:
    spec_fields = set(SPEC["properties"])
    for rule in rules(SPEC):
        for word in ("datastores", "stubs", "services", "seed", "tests"):
            if f"self.{word}" in rule:
                assert word in spec_fields


# --- the resource's names, subresources and columns ---------------------------------------------------


def test_names_group_and_scope() -> None:
    names = CRD["spec"]["names"]
    assert CRD["metadata"]["name"] == "testenvironments.testenv.dev"
    assert (names["kind"], names["plural"], names["singular"]) == (
        "TestEnvironment",
        "testenvironments",
        "testenvironment",
    )
    assert names["shortNames"] == ["tenv", "te"]
    assert CRD["spec"]["group"] == "testenv.dev" and CRD["spec"]["scope"] == "Namespaced"


def test_one_served_storage_version_with_a_status_subresource() -> None:
    assert (VERSION["name"], VERSION["served"], VERSION["storage"]) == ("v1alpha1", True, True)
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns_show_phase_ready_tests_age_expires() -> None:
    columns = {c["name"]: c for c in VERSION["additionalPrinterColumns"]}
    default_columns = [c["name"] for c in VERSION["additionalPrinterColumns"] if not c.get("priority")]
    assert default_columns == ["Phase", "Ready", "Tests", "Age", "Expires"]
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Ready"]["jsonPath"] == ".status.readyComponents"
    assert columns["Tests"]["jsonPath"] == ".status.testCounts"
    assert columns["Age"] == columns["Age"] | {"type": "date", "jsonPath": ".metadata.creationTimestamp"}
    assert columns["Expires"]["jsonPath"] == ".status.expiresAt"
    assert columns["Namespace"]["priority"] == 1


def test_printer_columns_point_at_status_fields_that_exist() -> None:
    for column in VERSION["additionalPrinterColumns"]:
        path = column["jsonPath"].lstrip(".").split(".")
        if path[0] == "status":
            assert path[1] in STATUS["properties"], column


def test_render_is_yaml_of_the_crd_with_a_generated_header() -> None:
    text = render()
    assert text.startswith("# Generated from operator/testenv/models.py")
    assert yaml.safe_load(text) == CRD


def test_openapi_schema_of_a_single_model_is_structural() -> None:
    schema = openapi_schema(models.Service)
    assert schema["type"] == "object"
    assert all("$ref" not in n and "anyOf" not in n for _, n in nodes(schema))
