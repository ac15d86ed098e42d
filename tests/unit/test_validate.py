"""Whole-spec checks: unknown references, self-dependencies, cycles in each
graph and the copy allowlist, each reported with the field and a fix."""

from __future__ import annotations

import re

import pytest
from plan_fixtures import make_spec, service, suite
from testenv.validate import SpecError, validate

ALLOW = frozenset({"staging"})
DB = {"name": "orders-db", "engine": "postgres"}


def errors_of(**spec) -> list[SpecError]:
    return validate(make_spec(**spec), ALLOW)


def only_error(**spec) -> SpecError:
    [error] = errors_of(**spec)
    return error


def test_a_valid_spec_has_no_errors() -> None:
    spec = {
        "datastores": [DB],
        "stubs": [{"name": "payments", "dependsOn": ["orders-db"]}],
        "services": [
            service("api", dependsOn=["orders-db", "payments"]),
            {"name": "inv", "copyFrom": {"namespace": "staging", "deployment": "inv"}},
        ],
        "seed": [
            {"name": "schema", "datastore": "orders-db", "sql": "select 1"},
            {"name": "fixtures", "image": "f", "needs": ["schema"]},
        ],
        "tests": [suite("a"), suite("b", needs=["a"])],
    }
    assert errors_of(**spec) == []


def test_an_empty_spec_has_no_errors() -> None:
    assert errors_of() == []


def test_error_renders_as_field_then_message() -> None:
    assert str(SpecError("spec.tests[0].needs", "bad")) == "spec.tests[0].needs: bad"


# --- unknown references -----------------------------------------------------------


@pytest.mark.parametrize("field", ["datastores", "stubs", "services"])
def test_unknown_depends_on_names_the_field_and_the_choices(field: str) -> None:
    item = {"datastores": {"name": "x", "engine": "redis"}, "stubs": {"name": "x"}, "services": service("x")}[field]
    other = {"services": [service("payments")]} if field == "stubs" else {"stubs": [{"name": "payments"}]}
    spec = {**other, field: [{**item, "dependsOn": ["nope"]}]}
    error = only_error(**spec)
    assert error.field == f"spec.{field}[0].dependsOn"
    assert "'nope' is not a datastore, stub or service" in error.message
    assert "use one of ['payments'] or remove it" in error.message


def test_unknown_depends_on_without_other_components_says_remove_it() -> None:
    error = only_error(services=[service("a", dependsOn=["nope"])])
    assert error.message.endswith("; remove it")


def test_unknown_depends_on_points_at_the_right_index() -> None:
    error = only_error(services=[service("a"), service("b", dependsOn=["a", "ghost"])])
    assert error.field == "spec.services[1].dependsOn"
    assert "'ghost'" in error.message and "['a']" in error.message


def test_each_unknown_reference_is_its_own_error() -> None:
    errors = errors_of(services=[service("a", dependsOn=["x", "y"])])
    assert [e.field for e in errors] == ["spec.services[0].dependsOn"] * 2


def test_depending_on_itself_is_an_error() -> None:
    error = only_error(services=[service("a", dependsOn=["a"])])
    assert error.field == "spec.services[0].dependsOn"
    assert "'a' depends on itself" in error.message


def test_unknown_seed_datastore_names_the_datastores_to_use() -> None:
    error = only_error(datastores=[DB], seed=[{"name": "s", "datastore": "missing-db", "sql": "select 1"}])
    assert error.field == "spec.seed[0].datastore"
    assert "'missing-db'" in error.message and "use one of ['orders-db']" in error.message


def test_seed_datastore_must_be_a_datastore_not_a_service() -> None:
    error = only_error(services=[service("api")], seed=[{"name": "s", "datastore": "api", "sql": "x"}])
    assert error.field == "spec.seed[0].datastore"
    assert "declare it under spec.datastores" in error.message


def test_unknown_seed_need_is_an_error() -> None:
    error = only_error(seed=[{"name": "s", "image": "i", "needs": ["ghost"]}])
    assert error.field == "spec.seed[0].needs"
    assert "'ghost' is not a seed" in error.message


def test_unknown_suite_need_is_an_error() -> None:
    error = only_error(tests=[suite("a"), suite("b", needs=["ghost"])])
    assert error.field == "spec.tests[1].needs"
    assert "'ghost' is not a test suite" in error.message


def test_a_suite_cannot_need_a_seed() -> None:
    error = only_error(seed=[{"name": "s", "image": "i"}], tests=[suite("a", needs=["s"])])
    assert error.field == "spec.tests[0].needs"


def test_every_error_is_reported_not_only_the_first() -> None:
    errors = errors_of(
        services=[service("a", dependsOn=["x"])],
        seed=[{"name": "s", "datastore": "nope", "sql": "x"}],
        tests=[suite("t", needs=["u"])],
    )
    assert {e.field for e in errors} == {"spec.services[0].dependsOn", "spec.seed[0].datastore", "spec.tests[0].needs"}


# --- fixes in messages ----------------------------------------------------------------


FIXABLE = {
    "unknown-dependency": {"services": [service("a", dependsOn=["nope"])]},
    "unknown-datastore": {"seed": [{"name": "s", "datastore": "missing-db", "sql": "x"}]},
    "copy-not-allowed": {"services": [{"name": "a", "copyFrom": {"namespace": "prod", "deployment": "d"}}]},
    "cycle": {"services": [service("a", dependsOn=["b"]), service("b", dependsOn=["a"])]},
}
UNFIXED = {
    "self-dependency": {"services": [service("a", dependsOn=["a"])]},
    "unknown-seed-need": {"seed": [{"name": "s", "image": "i", "needs": ["ghost"]}]},
    "unknown-suite-need": {"tests": [suite("a", needs=["ghost"])]},
}
FIX_WORDS = re.compile(r"use one of|remove|ask|add|instead|fix|declare")


@pytest.mark.parametrize("spec", FIXABLE.values(), ids=FIXABLE.keys())
def test_messages_say_how_to_fix_the_spec(spec: dict) -> None:
    for error in errors_of(**spec):
        assert FIX_WORDS.search(error.message), error.message


@pytest.mark.parametrize("spec", UNFIXED.values(), ids=UNFIXED.keys())
def test_every_message_says_how_to_fix_the_spec(spec: dict) -> None:
    for error in errors_of(**spec):
        assert FIX_WORDS.search(error.message), error.message


# --- cycles -------------------------------------------------------------------------


def test_a_dependency_cycle_is_an_error_listing_the_cycle() -> None:
    error = only_error(
        services=[service("a", dependsOn=["b"]), service("b", dependsOn=["c"]), service("c", dependsOn=["a"])]
    )
    assert "dependsOn" in error.field
    assert "dependency cycle" in error.message
    cycle = error.message.split("dependency cycle ")[1].split(";")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    assert "remove one of these edges" in error.message


def test_the_cycle_is_listed_in_depends_on_direction() -> None:
    error = only_error(services=[service("a", dependsOn=["b"]), service("b", dependsOn=["a"])])
    cycle = error.message.split("dependency cycle ")[1].split(";")[0]
    assert cycle in ("a -> b -> a", "b -> a -> b")


def test_a_cycle_across_component_kinds_is_found() -> None:
    error = only_error(
        datastores=[{"name": "db", "engine": "redis", "dependsOn": ["api"]}],
        services=[service("api", dependsOn=["db"])],
    )
    assert "dependency cycle" in error.message
    assert "db" in error.message and "api" in error.message


def test_a_seed_needs_cycle_is_an_error() -> None:
    error = only_error(seed=[{"name": "a", "image": "i", "needs": ["b"]}, {"name": "b", "image": "i", "needs": ["a"]}])
    assert error.field == "spec.seed[].needs"
    assert "dependency cycle" in error.message and "a" in error.message and "b" in error.message


def test_a_seed_needing_itself_is_a_cycle() -> None:
    error = only_error(seed=[{"name": "a", "image": "i", "needs": ["a"]}])
    assert error.field == "spec.seed[].needs"
    assert "a -> a" in error.message


def test_a_suite_needs_cycle_is_an_error() -> None:
    error = only_error(tests=[suite("x", needs=["y"]), suite("y", needs=["x"])])
    assert error.field == "spec.tests[].needs"
    assert "dependency cycle" in error.message


def test_cycles_in_several_graphs_are_each_reported() -> None:
    errors = errors_of(
        services=[service("a", dependsOn=["b"]), service("b", dependsOn=["a"])],
        tests=[suite("x", needs=["y"]), suite("y", needs=["x"])],
    )
    assert len(errors) == 2


def test_diamond_dependencies_are_not_a_cycle() -> None:
    assert (
        errors_of(
            services=[
                service("a"),
                service("b", dependsOn=["a"]),
                service("c", dependsOn=["a"]),
                service("d", dependsOn=["b", "c"]),
            ],
        )
        == []
    )


def test_cycles_are_not_checked_while_references_dangle() -> None:
    errors = errors_of(services=[service("a", dependsOn=["b", "ghost"]), service("b", dependsOn=["a"])])
    assert [e.field for e in errors] == ["spec.services[0].dependsOn"]


def test_a_deadlock_between_seeds_and_depends_on_is_an_error() -> None:
    errors = errors_of(
        datastores=[{"name": "db", "engine": "postgres"}, {"name": "search", "engine": "redis", "dependsOn": ["api"]}],
        services=[service("api", dependsOn=["db"])],
        seed=[{"name": "fixtures", "image": "ghcr.io/acme/fixtures:1"}],
    )
    assert errors and "cycle" in errors[0].message


# --- the copy allowlist ----------------------------------------------------------------


def test_copy_from_an_allowed_namespace_is_fine() -> None:
    assert errors_of(services=[{"name": "a", "copyFrom": {"namespace": "staging", "deployment": "d"}}]) == []


def test_copy_from_a_namespace_not_allowed_names_the_allowed_ones() -> None:
    error = only_error(services=[{"name": "a", "copyFrom": {"namespace": "kube-system", "deployment": "coredns"}}])
    assert error.field == "spec.services[0].copyFrom.namespace"
    assert "'kube-system' is not allowed (allowed: staging)" in error.message
    assert "copyAllowlist" in error.message


def test_copy_with_an_empty_allowlist_says_none_are_configured() -> None:
    spec = make_spec(services=[{"name": "a", "copyFrom": {"namespace": "staging", "deployment": "d"}}])
    [error] = validate(spec, frozenset())
    assert "none are configured" in error.message


def test_allowed_namespaces_are_listed_sorted() -> None:
    spec = make_spec(services=[{"name": "a", "copyFrom": {"namespace": "prod", "deployment": "d"}}])
    [error] = validate(spec, frozenset({"staging", "qa", "dev"}))
    assert "(allowed: dev, qa, staging)" in error.message
