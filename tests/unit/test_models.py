"""The API models: what they accept and refuse (mirroring the CRD), and the
wire form they write."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from testenv.models import (
    Counts,
    Datastore,
    Lifecycle,
    ResourceQuota,
    Seed,
    Service,
    StubMapping,
    StubVerification,
    TestEnvironment,
    TestEnvironmentSpec,
    TestEnvironmentStatus,
    TestSuite,
)


def spec(**fields: Any) -> TestEnvironmentSpec:
    return TestEnvironmentSpec.model_validate(fields)


def refused(model: type, data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return str(info.value)


# --- names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "orders-db", "svc2", "a" * 50, "a-b-c"])
def test_component_names_that_are_dns_1035_labels_are_accepted(name: str) -> None:
    assert Service(name=name, image="i").name == name


@pytest.mark.parametrize(
    "name",
    ["", "Orders", "order_service", "1abc", "-a", "a-", "a.b", "a" * 51],
    ids=["empty", "upper", "underscore", "leading-digit", "leading-dash", "trailing-dash", "dot", "too-long"],
)
def test_component_names_that_are_not_dns_1035_labels_are_refused(name: str) -> None:
    assert "name" in refused(Service, {"name": name, "image": "i"})


def test_job_names_are_at_most_40_characters() -> None:
    assert TestSuite(name="t" * 40, image="i").name == "t" * 40
    assert "name" in refused(TestSuite, {"name": "t" * 41, "image": "i"})
    assert "name" in refused(Seed, {"name": "s" * 41, "image": "i"})


def test_depends_on_entries_must_be_component_names() -> None:
    assert "dependsOn" in refused(Service, {"name": "a", "image": "i", "dependsOn": ["Not_A_Name"]})


def test_env_var_names_follow_the_kubernetes_pattern() -> None:
    assert Service(name="a", image="i", env=[{"name": "LOG.LEVEL", "value": "x"}]).env[0].name == "LOG.LEVEL"
    assert "env" in refused(Service, {"name": "a", "image": "i", "env": [{"name": "1BAD"}]})


def test_database_names_must_be_identifiers() -> None:
    assert Datastore(name="db", engine="postgres", database="orders_test").database == "orders_test"
    assert "database" in refused(Datastore, {"name": "db", "engine": "postgres", "database": "orders-test"})


# --- per-object rules -------------------------------------------------------------------


def test_unknown_engine_is_refused() -> None:
    assert "engine" in refused(Datastore, {"name": "db", "engine": "oracle"})


def test_unknown_fields_are_refused() -> None:
    assert "imagee" in refused(Service, {"name": "a", "image": "i", "imagee": "typo"})


def test_service_needs_an_image_or_copy_from() -> None:
    assert "set image, or copyFrom" in refused(Service, {"name": "a"})


def test_service_with_copy_from_alone_is_accepted() -> None:
    svc = Service.model_validate({"name": "a", "copyFrom": {"namespace": "staging", "deployment": "a"}})
    assert svc.image is None and svc.copy_from.deployment == "a"


def test_service_with_empty_image_is_refused() -> None:
    assert "image" in refused(Service, {"name": "a", "image": ""})


def test_seed_needs_exactly_one_of_sql_or_image() -> None:
    assert "exactly one of sql" in refused(Seed, {"name": "s", "datastore": "db"})
    assert "exactly one of sql" in refused(Seed, {"name": "s", "datastore": "db", "sql": "x", "image": "i"})


def test_sql_seed_needs_a_datastore() -> None:
    assert "sql needs datastore" in refused(Seed, {"name": "s", "sql": "select 1"})


def test_image_seed_may_name_a_datastore_or_not() -> None:
    assert Seed(name="s", image="i").datastore is None
    assert Seed(name="s", image="i", datastore="db").datastore == "db"


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (Lifecycle, {"ttlSecondsAfterFinished": -1}, "ttlSecondsAfterFinished"),
        (Lifecycle, {"retainOnFailureSeconds": -1}, "retainOnFailureSeconds"),
        (Lifecycle, {"activeDeadlineSeconds": 0}, "activeDeadlineSeconds"),
        (TestSuite, {"name": "t", "image": "i", "shards": 0}, "shards"),
        (TestSuite, {"name": "t", "image": "i", "retries": -1}, "retries"),
        (TestSuite, {"name": "t", "image": "i", "timeoutSeconds": 0}, "timeoutSeconds"),
        (Service, {"name": "a", "image": "i", "replicas": 11}, "replicas"),
        (Service, {"name": "a", "image": "i", "ports": [{"port": 0}]}, "port"),
    ],
    ids=["ttl", "retain", "deadline", "shards", "retries", "timeout", "replicas", "port"],
)
def test_out_of_range_numbers_are_refused_naming_the_field(model: type, data: dict, field: str) -> None:
    assert field in refused(model, data)


def test_suite_defaults() -> None:
    t = TestSuite(name="t", image="i")
    assert (t.shards, t.retries, t.fail_fast, t.timeout_seconds) == (1, 0, True, None)


def test_isolation_defaults_to_a_network_policy() -> None:
    assert spec().isolation.network_policy is True


def test_stub_mapping_accepts_unknown_wiremock_fields() -> None:
    mapping = StubMapping.model_validate(
        {
            "request": {"method": "GET", "urlPath": "/x", "cookies": {"session": {"equalTo": "abc"}}},
            "response": {"status": 200, "transformers": ["response-template"]},
            "scenarioName": "checkout",
        }
    )
    wire = mapping.wire()
    assert wire["scenarioName"] == "checkout"
    assert wire["request"]["cookies"] == {"session": {"equalTo": "abc"}}
    assert wire["response"]["transformers"] == ["response-template"]


def test_stub_request_method_is_checked() -> None:
    assert "method" in refused(StubMapping, {"request": {"method": "FETCH"}})


def test_stub_verification_defaults_to_at_least_one_request() -> None:
    assert StubVerification.model_validate({"request": {"urlPath": "/x"}}).count.at_least == 1


def test_resource_quota_refuses_values_that_are_not_quantities() -> None:
    assert "cpu" in refused(ResourceQuota, {"cpu": "lots"})


def test_resource_quota_accepts_numbers_and_quantity_strings() -> None:
    quota = ResourceQuota.model_validate({"cpu": 4, "memory": "8Gi", "pods": "30"})
    assert (quota.cpu, quota.memory, quota.pods) == (4, "8Gi", "30")


# --- unique names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [("datastores", "stubs"), ("datastores", "services"), ("stubs", "services")],
)
def test_a_name_may_be_used_once_across_datastores_stubs_and_services(first: str, second: str) -> None:
    item = {
        "datastores": {"name": "x", "engine": "redis"},
        "stubs": {"name": "x"},
        "services": {"name": "x", "image": "i"},
    }
    message = refused(TestEnvironmentSpec, {first: [item[first]], second: [item[second]]})
    assert f"spec.{second}: name 'x' is already used in spec.{first}" in message


def test_a_name_may_be_used_once_within_a_list() -> None:
    message = refused(TestEnvironmentSpec, {"services": [{"name": "a", "image": "i"}, {"name": "a", "image": "j"}]})
    assert "name 'a' is already used in spec.services" in message


def test_a_name_may_be_used_once_across_seed_and_tests() -> None:
    message = refused(
        TestEnvironmentSpec, {"seed": [{"name": "x", "image": "i"}], "tests": [{"name": "x", "image": "i"}]}
    )
    assert "spec.tests: name 'x' is already used in spec.seed" in message


def test_seeds_and_components_may_share_a_name() -> None:
    # Jobs and Deployments are different kinds: no clash.
    assert spec(datastores=[{"name": "x", "engine": "redis"}], seed=[{"name": "x", "datastore": "x", "sql": "s"}])


def test_components_are_datastores_then_stubs_then_services() -> None:
    s = spec(
        services=[{"name": "c", "image": "i"}], stubs=[{"name": "b"}], datastores=[{"name": "a", "engine": "redis"}]
    )
    assert [c.name for c in s.components()] == ["a", "b", "c"]


# --- the wire form ------------------------------------------------------------------------


def test_wire_uses_camel_case() -> None:
    wire = Service(name="a", image="i", depends_on=["b"], readiness_probe={"httpGet": {"path": "/", "port": 80}}).wire()
    assert wire["dependsOn"] == ["b"] and wire["readinessProbe"] == {"httpGet": {"path": "/", "port": 80}}
    assert "depends_on" not in wire


def test_wire_leaves_out_unset_optional_fields() -> None:
    wire = Service(name="a", image="i").wire()
    for absent in ("copyFrom", "command", "args", "readinessProbe"):
        assert absent not in wire


def test_wire_writes_enums_as_their_values() -> None:
    assert Datastore(name="db", engine="postgres").wire()["engine"] == "postgres"
    assert TestEnvironmentStatus().wire()["phase"] == "Pending"


def test_status_wire_uses_camel_case_and_omits_none() -> None:
    status = TestEnvironmentStatus(observed_generation=2, ready_components="1/2", summary=Counts(passed=3))
    wire = status.wire()
    assert wire["observedGeneration"] == 2 and wire["readyComponents"] == "1/2"
    assert wire["summary"] == {"passed": 3, "failed": 0, "skipped": 0}
    for absent in ("startedAt", "finishedAt", "expiresAt", "namespace", "testCounts"):
        assert absent not in wire


def test_models_accept_snake_case_and_camel_case_alike() -> None:
    assert Lifecycle(ttl_seconds_after_finished=5) == Lifecycle.model_validate({"ttlSecondsAfterFinished": 5})


def test_wire_round_trips() -> None:
    original = spec(
        lifecycle={"ttlSecondsAfterFinished": 300},
        datastores=[{"name": "db", "engine": "postgres", "version": "16"}],
        services=[{"name": "a", "image": "i", "dependsOn": ["db"], "env": [{"name": "X", "value": "1"}]}],
        seed=[{"name": "s", "datastore": "db", "sql": "select 1"}],
        tests=[{"name": "t", "image": "i", "shards": 2}],
    )
    assert TestEnvironmentSpec.model_validate(original.wire()) == original


def test_counts_add_up() -> None:
    assert Counts(passed=1, failed=2, skipped=3) + Counts(passed=10) == Counts(passed=11, failed=2, skipped=3)


def test_a_whole_resource_parses_with_api_version_and_kind() -> None:
    resource = TestEnvironment.model_validate(
        {
            "apiVersion": "testenv.dev/v1alpha1",
            "kind": "TestEnvironment",
            "metadata": {"name": "pr-1", "namespace": "ci"},
            "spec": {"datastores": [{"name": "db", "engine": "redis"}]},
        }
    )
    assert resource.spec.datastores[0].name == "db"
    assert "apiVersion" in refused(TestEnvironment, {"apiVersion": "testenv.dev/v2", "kind": "TestEnvironment"})


def test_api_version_is_group_and_version() -> None:
    # Spelt out in models.py so that its type is the apiVersion field's literal.
    from testenv import models

    assert models.API_VERSION == f"{models.GROUP}/{models.VERSION}"
    assert TestEnvironment().api_version == models.API_VERSION
