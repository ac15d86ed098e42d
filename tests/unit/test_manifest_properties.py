"""Properties of manifest validation over manifests drawn from the CRD's own
schema (tests/manifest_strategies.py), valid and not: the CLI's local check
and the models agree, every refusal names its field, and the models read
JSON as the API server does (a null field is an unset one, 2.0 is 2). No I/O;
the API server's side is bench/fuzz_manifests.py's.

Derandomized and without an example database, so that a run is the same
everywhere and writes nothing; the benchmark explores with seeds of its own.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_strategies import MUTATIONS, Case, cases, format_path, repair, sites
from pydantic import ValidationError
from testenv import models
from testenv.cli.manifest import ManifestError, check, prepare
from testenv.validate import validate

PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
METAMORPHIC = settings(PROPERTIES, max_examples=100)
# metadata.name is the API server's (ObjectMeta); the models take metadata as free-form.
SPEC_FAMILIES = ("schema", "repaired", *(f"mutated:{k}" for k in MUTATIONS if k != "bad_metadata_name"))


def cli_problems(body: dict[str, Any]) -> list[str] | None:
    """None when `testenv up` would send it; else what it says."""
    try:
        check(prepare(body))
    except ManifestError as exc:
        return exc.problems
    return None


def models_accept(body: dict[str, Any]) -> bool:
    try:
        environment = models.TestEnvironment.model_validate(body)
    except ValidationError:
        return False
    allow_any = frozenset(s.copy_from.namespace for s in environment.spec.services if s.copy_from)
    return not validate(environment.spec, allow_any)


def named(problem: str) -> str:
    return re.sub(r"\]\([^)]*\)", "]", problem)  # the CLI writes items as [0](name)


@PROPERTIES
@given(st.sampled_from(SPEC_FAMILIES).flatmap(cases))
def test_the_cli_and_the_models_give_the_same_verdict(case: Case):
    assert (cli_problems(case.body) is None) == models_accept(case.body), case.note


@PROPERTIES
@given(st.sampled_from(("schema", *(f"mutated:{k}" for k in MUTATIONS))).flatmap(cases))
def test_every_refusal_names_a_field(case: Case):
    problems = cli_problems(case.body)
    if problems is None:
        return
    assert all(re.match(r"(spec|metadata)\b", p) for p in problems), problems
    if case.path in ("dependsOn", "needs"):  # a cycle: named by the graph it is in
        assert any(case.path in p for p in problems), problems
    elif case.path is not None:
        parent = re.match(r"(spec\.\w+|metadata\.name)", case.path)
        assert parent and any(parent.group(1) in named(p) for p in problems), (case.path, problems)


@METAMORPHIC
@given(st.sampled_from(("repaired", "schema")).flatmap(cases), st.data())
def test_a_null_field_is_judged_as_an_unset_one(case: Case, data: st.DataObject):
    candidates = [s for s in sites(case.body["spec"]) if isinstance(s.parent, dict)]
    if not candidates:
        return
    site = data.draw(st.sampled_from(candidates))
    nulled, removed = copy.deepcopy(case.body), copy.deepcopy(case.body)
    for body, change in ((nulled, "null"), (removed, "remove")):
        holder = body
        for part in site.loc[:-1]:
            holder = holder[part]
        if change == "null":
            holder[site.loc[-1]] = None
        else:
            del holder[site.loc[-1]]
    assert models_accept(nulled) == models_accept(removed), format_path(site.loc)


@METAMORPHIC
@given(st.sampled_from(("repaired", "schema")).flatmap(cases), st.data())
def test_a_whole_float_is_judged_as_its_integer(case: Case, data: st.DataObject):
    candidates = [s for s in sites(case.body["spec"]) if s.schema.get("type") == "integer"
                  and isinstance(s.parent[s.key], int) and not isinstance(s.parent[s.key], bool)
                  and abs(s.parent[s.key]) <= 2**53]  # beyond, a float is no exact integer (to the API server neither)
    if not candidates:
        return
    site = data.draw(st.sampled_from(candidates))
    before = models_accept(case.body)
    site.parent[site.key] = float(site.parent[site.key])
    assert models_accept(case.body) == before, format_path(site.loc)


def test_repair_brings_a_pod_count_within_what_a_resourcequota_holds():
    # fuzz_manifests.py (seed 20261130, 4e4e848): the schema's pattern drew
    # pods "90885660106Gi", which the CEL rule refuses; the one-fault cycle
    # mutation built on it was refused for the pods instead, naming no cycle.
    spec = repair({"isolation": {"resourceQuota": {"pods": "90885660106Gi", "cpu": "2"}}})
    assert spec["isolation"]["resourceQuota"] == {"pods": "30", "cpu": "2"}
    models.TestEnvironmentSpec.model_validate(spec)
