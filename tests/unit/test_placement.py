"""Pod placement on a shared cluster: the operator's node selector, tolerations
and image pull Secrets on every pod an environment makes, the pull Secrets'
copies, and nothing at all when they are not configured."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from plan_fixtures import (
    ENV,
    NS,
    POSTGRES,
    SETTINGS,
    applied,
    component_status,
    job_seen,
    make_spec,
    ready_workloads,
    run_plan,
    seed_status,
    service,
    suite,
    suite_status,
)
from pydantic import ValidationError
from testenv.build.common import LABEL_ENV_UID, LABEL_KIND
from testenv.build.datastores import datastore_objects
from testenv.build.jobs import suite_job
from testenv.build.placement import (
    NO_PLACEMENT,
    PodPlacement,
    Toleration,
    place,
    place_copy,
    pull_secret_copy,
)
from testenv.build.seeds import seed_objects
from testenv.build.services import CopySource, copied_service_objects, image_service_objects
from testenv.build.stubs import stub_objects
from testenv.models import Datastore, Engine, JobPhase, Seed, Service, Stub, TestSuite
from testenv.observe import Observed
from testenv.settings import Settings

POOL = {"testenv.dev/pool": "ci"}
TAINT = Toleration(key="dedicated", operator="Equal", value="ci", effect="NoSchedule")
UNREACHABLE = Toleration(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute",
                         toleration_seconds=300)
PLACEMENT = PodPlacement.of(POOL, [TAINT, UNREACHABLE], ["regcred", "mirror-cred"])
WIRE_TOLERATIONS = [
    {"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]
PULL_SECRET_REFS = [{"name": "regcred"}, {"name": "mirror-cred"}]
PLACEMENT_KEYS = ("nodeSelector", "tolerations", "imagePullSecrets")

DB = Datastore(name="orders-db", engine=Engine.POSTGRES)
SOURCE_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "inventory-service", "namespace": "staging", "uid": "src-uid"},
    "spec": {
        "selector": {"matchLabels": {"app": "inventory"}},
        "template": {
            "metadata": {"labels": {"app": "inventory"}},
            "spec": {
                "nodeSelector": {"pool": "staging"},
                "tolerations": [{"key": "staging-only", "operator": "Exists", "effect": "NoSchedule"}],
                "imagePullSecrets": [{"name": "staging-cred"}, {"name": "regcred"}],
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["staging-a"]}]}]}},
                    "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []},
                },
                "containers": [{"name": "inventory", "image": "ghcr.io/acme/inventory:1"}],
            },
        },
    },
}
COPIED = Service.model_validate({"name": "inventory",
                                 "copyFrom": {"namespace": "staging", "deployment": "inventory-service"}})


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pod template of every workload among the objects."""
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "Job")]


# Every kind of pod an environment makes, built with a given placement.
POD_BUILDERS: dict[str, Callable[[PodPlacement], list[dict[str, Any]]]] = {
    **{
        f"datastore-{engine.value}": (
            lambda placement, engine=engine: datastore_objects(
                Datastore(name="db", engine=engine), ENV, "img:1", placement
            )
        )
        for engine in Engine
    },
    "stub": lambda placement: stub_objects(Stub(name="payments"), ENV, "wiremock/wiremock:3", placement),
    "image-service": lambda placement: image_service_objects(
        Service(name="api", image="ghcr.io/acme/api:1"), ENV, [], placement
    ),
    "copied-service": lambda placement: copied_service_objects(
        COPIED, CopySource(deployment=copy.deepcopy(SOURCE_DEPLOYMENT)), ENV, [], placement
    ),
    "sql-seed": lambda placement: seed_objects(
        Seed(name="schema", datastore="orders-db", sql="SELECT 1;"), DB, ENV, "postgres:16", 1, [], placement
    ),
    "image-seed": lambda placement: seed_objects(
        Seed(name="fixtures", image="ghcr.io/acme/fixtures:1"), None, ENV, "", 1, [], placement
    ),
    "test-job": lambda placement: [suite_job(TestSuite(name="e2e", image="t:1"), ENV, 1, [], placement)],
    "sharded-test-job": lambda placement: [
        suite_job(TestSuite(name="e2e", image="t:1", shards=3), ENV, 1, [], placement)
    ],
}


# --- the toleration setting -----------------------------------------------------------------------


def test_toleration_is_sent_in_the_kubernetes_shape() -> None:
    assert [t.wire() for t in (TAINT, UNREACHABLE)] == WIRE_TOLERATIONS


def test_toleration_reads_the_kubernetes_shape() -> None:
    assert Toleration.model_validate(WIRE_TOLERATIONS[1]) == UNREACHABLE


@pytest.mark.parametrize(
    "bad",
    [
        {"key": "dedicated", "operator": "Matches", "value": "ci"},
        {"key": "dedicated", "effect": "NoWay"},
        {"key": "dedicated", "operator": "Exists", "value": "ci"},
        {"operator": "Equal", "value": "ci"},
        {"key": "dedicated", "effect": "NoSchedule", "tolerationSeconds": 30},
        {"key": "dedicated", "tolerance": "high"},
    ],
    ids=["unknown-operator", "unknown-effect", "exists-with-value", "equal-without-key",
         "seconds-without-noexecute", "unknown-field"],
)
def test_toleration_refuses_what_kubernetes_would(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Toleration.model_validate(bad)


def test_settings_read_placement_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTENV_POD_NODE_SELECTOR", '{"testenv.dev/pool": "ci"}')
    monkeypatch.setenv("TESTENV_POD_TOLERATIONS", str(WIRE_TOLERATIONS).replace("'", '"'))
    monkeypatch.setenv("TESTENV_IMAGE_PULL_SECRETS", '["regcred", "mirror-cred"]')
    assert Settings().pod_placement() == PLACEMENT


def test_settings_refuse_a_bad_toleration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTENV_POD_TOLERATIONS", '[{"key": "dedicated", "operator": "Sometimes"}]')
    with pytest.raises(ValidationError, match="pod_tolerations"):
        Settings()


def test_settings_refuse_a_pull_secret_that_is_no_secret_name() -> None:
    with pytest.raises(ValidationError, match="image_pull_secrets"):
        Settings(image_pull_secrets=["Not A Secret"])


def test_default_settings_place_nothing() -> None:
    assert Settings.model_construct().pod_placement() == NO_PLACEMENT
    assert SETTINGS.pod_placement() == NO_PLACEMENT


# --- every pod kind ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(POD_BUILDERS))
def test_every_pod_kind_runs_on_the_configured_nodes_with_the_pull_secrets(kind: str) -> None:
    specs = pod_specs(POD_BUILDERS[kind](PLACEMENT))
    assert specs, f"{kind} built no pod"
    for pod in specs:
        assert pod["nodeSelector"] == POOL
        assert pod["tolerations"] == WIRE_TOLERATIONS
        # A copy also keeps the names its source gave (see below).
        assert [ref for ref in pod["imagePullSecrets"] if ref in PULL_SECRET_REFS] == PULL_SECRET_REFS


@pytest.mark.parametrize("kind", [k for k in POD_BUILDERS if k != "copied-service"])
def test_built_pods_name_exactly_the_configured_pull_secrets(kind: str) -> None:
    for pod in pod_specs(POD_BUILDERS[kind](PLACEMENT)):
        assert pod["imagePullSecrets"] == PULL_SECRET_REFS


@pytest.mark.parametrize("kind", [k for k in POD_BUILDERS if k != "copied-service"])
def test_without_placement_built_pods_say_nothing_of_nodes_or_pull_secrets(kind: str) -> None:
    default = POD_BUILDERS[kind](NO_PLACEMENT)
    for pod in pod_specs(default):
        assert not set(PLACEMENT_KEYS) & set(pod), kind


@pytest.mark.parametrize("kind", list(POD_BUILDERS))
def test_each_setting_alone_adds_only_its_own_field(kind: str) -> None:
    default = pod_specs(POD_BUILDERS[kind](NO_PLACEMENT))
    for placement, key in (
        (PodPlacement.of(node_selector=POOL), "nodeSelector"),
        (PodPlacement.of(tolerations=[TAINT]), "tolerations"),
        (PodPlacement.of(image_pull_secrets=["regcred"]), "imagePullSecrets"),
    ):
        placed = pod_specs(POD_BUILDERS[kind](placement))
        for before, after in zip(default, placed, strict=True):
            changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
            if kind == "copied-service" and key == "nodeSelector":
                assert changed == {"nodeSelector", "affinity"}  # the source's node affinity goes too
            else:
                assert changed == {key}, (kind, key)


def test_place_without_settings_leaves_a_pod_spec_as_it_was() -> None:
    pod = copy.deepcopy(SOURCE_DEPLOYMENT["spec"]["template"]["spec"])
    assert place(copy.deepcopy(pod), NO_PLACEMENT) == pod
    assert place_copy(copy.deepcopy(pod), NO_PLACEMENT) == pod


# --- copies of services ------------------------------------------------------------------------------


def copied_pod(placement: PodPlacement) -> dict[str, Any]:
    [deployment] = [o for o in POD_BUILDERS["copied-service"](placement) if o["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]


def test_copy_runs_on_the_operators_nodes_not_the_sources() -> None:
    pod = copied_pod(PLACEMENT)
    assert pod["nodeSelector"] == POOL
    assert "nodeAffinity" not in pod["affinity"], "the source's node affinity could pin it off the pool"
    assert pod["affinity"]["podAntiAffinity"] == {"preferredDuringSchedulingIgnoredDuringExecution": []}
    assert pod["tolerations"] == WIRE_TOLERATIONS


def test_copy_leaves_out_source_pull_secrets_it_may_not_copy_and_adds_ours_once() -> None:
    # No config.copySecrets: staging-cred is not copied, so not named (it
    # would not exist); regcred is the operator's own copy under that name.
    assert copied_pod(PLACEMENT)["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-cred"}]


def test_copy_keeps_the_sources_placement_when_none_is_configured() -> None:
    pod = copied_pod(NO_PLACEMENT)
    source = SOURCE_DEPLOYMENT["spec"]["template"]["spec"]
    for key in ("nodeSelector", "tolerations", "affinity"):
        assert pod[key] == source[key]
    assert "imagePullSecrets" not in pod  # the source's are not copied without config.copySecrets


def test_copy_without_a_node_selector_setting_keeps_the_sources_node_affinity() -> None:
    pod = copied_pod(PodPlacement.of(tolerations=[TAINT]))
    assert pod["nodeSelector"] == {"pool": "staging"}
    assert "nodeAffinity" in pod["affinity"]


def test_copy_loses_an_affinity_that_was_only_about_nodes() -> None:
    source = copy.deepcopy(SOURCE_DEPLOYMENT)
    del source["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    [deployment, *_] = copied_service_objects(COPIED, CopySource(deployment=source), ENV, [], PLACEMENT)
    assert "affinity" not in deployment["spec"]["template"]["spec"]


# --- the pull Secrets' copies --------------------------------------------------------------------------


SOURCE_SECRET = {
    "metadata": {"name": "regcred", "namespace": "testenv-system"},
    "type": "kubernetes.io/dockerconfigjson",
    "data": {".dockerconfigjson": "eyJhdXRocyI6e319"},
}


def test_pull_secret_copy_is_the_environments_own() -> None:
    copied = pull_secret_copy(SOURCE_SECRET, ENV)
    assert copied["apiVersion"] == "v1" and copied["kind"] == "Secret"
    assert copied["metadata"]["name"] == "regcred"
    assert copied["metadata"]["namespace"] == NS
    assert copied["metadata"]["labels"][LABEL_ENV_UID] == ENV.uid
    assert copied["metadata"]["annotations"] == {"testenv.dev/copied-from": "testenv-system/regcred"}
    assert copied["type"] == "kubernetes.io/dockerconfigjson"
    assert copied["data"] == SOURCE_SECRET["data"]


# --- through the planner --------------------------------------------------------------------------------


PLACED_SETTINGS = SETTINGS.model_copy(update={
    "pod_node_selector": POOL,
    "pod_tolerations": [TAINT, UNREACHABLE],
    "image_pull_secrets": ["regcred", "mirror-cred"],
})
MIRROR_SECRET = {**SOURCE_SECRET, "metadata": {"name": "mirror-cred", "namespace": "testenv-system"}}
FOUND = Observed(pull_secrets={"regcred": SOURCE_SECRET, "mirror-cred": MIRROR_SECRET})
FULL_SPEC = make_spec(
    datastores=[POSTGRES],
    stubs=[{"name": "payments"}],
    services=[service("api", dependsOn=["orders-db", "payments"]),
              {"name": "inventory", "copyFrom": {"namespace": "staging", "deployment": "inventory-service"}}],
    seed=[{"name": "schema", "datastore": "orders-db", "sql": "CREATE TABLE t (id int);"},
          {"name": "fixtures", "image": "ghcr.io/acme/fixtures:1", "needs": ["schema"]}],
    tests=[suite("smoke"), suite("e2e", shards=2, needs=["smoke"])],
)


def everything_applied(settings: Settings, observed: Observed) -> list[dict[str, Any]]:
    """Play the cluster until every suite has started; every object applied on the way."""
    observed = replace(observed, copy_sources={"inventory": CopySource(deployment=copy.deepcopy(SOURCE_DEPLOYMENT))})
    seen: list[dict[str, Any]] = []
    previous = None
    for _ in range(20):
        p = run_plan(FULL_SPEC, previous=previous, observed=observed, settings=settings)
        seen += p.apply
        jobs = dict(observed.jobs)
        for job in applied(p, "Job"):
            labels, name = job["metadata"]["labels"], job["metadata"]["name"]
            jobs.setdefault(name, job_seen(name.rsplit("-r", 1)[0], JobPhase.SUCCEEDED, kind=labels[LABEL_KIND]))
        observed = replace(observed, workloads={**observed.workloads, **ready_workloads(p)}, jobs=jobs)
        previous = p.status
        if all(suite_status(p, t).phase == JobPhase.SUCCEEDED for t in ("smoke", "e2e")):
            return seen
    raise AssertionError("the environment did not run its suites")


def test_planner_places_every_pod_of_a_whole_environment() -> None:
    objects = everything_applied(PLACED_SETTINGS, FOUND)
    kinds = {(o["kind"], o["metadata"]["labels"].get(LABEL_KIND)) for o in objects if o["kind"] in ("Deployment", "Job")}
    assert kinds == {("Deployment", "datastore"), ("Deployment", "stub"), ("Deployment", "service"),
                     ("Job", "seed"), ("Job", "test")}
    for pod in pod_specs(objects):
        assert pod["nodeSelector"] == POOL
        assert pod["tolerations"] == WIRE_TOLERATIONS
        assert {"name": "regcred"} in pod["imagePullSecrets"] and {"name": "mirror-cred"} in pod["imagePullSecrets"]


def test_planner_without_placement_settings_places_nothing_and_copies_no_secret() -> None:
    objects = everything_applied(SETTINGS, Observed())
    assert [o for o in objects if o["kind"] == "Secret"] == []
    source = SOURCE_DEPLOYMENT["spec"]["template"]["spec"]
    for obj in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        pod = obj["spec"]["template"]["spec"]
        if obj["metadata"]["name"] == "inventory":  # the copy keeps where its source ran
            assert {k: pod[k] for k in ("nodeSelector", "tolerations")} == {
                k: source[k] for k in ("nodeSelector", "tolerations")}
            assert "imagePullSecrets" not in pod
        else:
            assert not set(PLACEMENT_KEYS) & set(pod), obj["metadata"]["name"]


def test_pull_secrets_are_copied_into_the_namespace_before_any_workload() -> None:
    p = run_plan(FULL_SPEC, observed=FOUND, settings=PLACED_SETTINGS)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in p.apply]
    secrets = [i for i, (kind, _) in enumerate(kinds) if kind == "Secret"]
    workloads = [i for i, (kind, _) in enumerate(kinds) if kind in ("Deployment", "Job")]
    assert [kinds[i][1] for i in secrets] == ["regcred", "mirror-cred"]
    assert kinds.index(("Namespace", NS)) < min(secrets) and max(secrets) < min(workloads)
    for secret in applied(p, "Secret"):
        assert secret["metadata"]["namespace"] == NS
    assert all(o["metadata"]["name"] not in ("regcred", "mirror-cred") for o in p.create)


def test_a_missing_pull_secret_holds_every_pod_and_says_what_to_do() -> None:
    observed = Observed(pull_secrets={"regcred": SOURCE_SECRET, "mirror-cred": None})
    p = run_plan(FULL_SPEC, observed=observed, settings=PLACED_SETTINGS)
    assert [o["kind"] for o in p.apply if o["kind"] in ("Deployment", "Job")] == []
    assert [s["metadata"]["name"] for s in applied(p, "Secret")] == ["regcred"], "what exists is copied already"
    message = component_status(p, "orders-db").message
    assert message == ("image pull Secret testenv-system/mirror-cred not found; create it in the operator's "
                       "namespace or remove it from config.imagePullSecrets")
    assert p.wake_after == 30.0, "nothing watches Secrets: the planner looks again"


def test_a_missing_pull_secret_holds_jobs_that_wait_for_no_component() -> None:
    spec = make_spec(seed=[{"name": "fixtures", "image": "ghcr.io/acme/fixtures:1"}], tests=[suite("smoke")])
    p = run_plan(spec, observed=Observed(pull_secrets={"regcred": None}),
                 settings=SETTINGS.model_copy(update={"image_pull_secrets": ["regcred"]}))
    assert applied(p, "Job") == []
    assert seed_status(p, "fixtures").message.startswith("image pull Secret testenv-system/regcred not found")


def test_a_pull_secret_that_appears_lets_the_environment_start() -> None:
    settings = SETTINGS.model_copy(update={"image_pull_secrets": ["regcred"]})
    spec = make_spec(datastores=[POSTGRES])
    held = run_plan(spec, observed=Observed(pull_secrets={"regcred": None}), settings=settings)
    started = run_plan(spec, previous=held.status, observed=Observed(pull_secrets={"regcred": SOURCE_SECRET}),
                       settings=settings)
    assert [o["metadata"]["name"] for o in applied(started, "Deployment")] == ["orders-db"]
    assert component_status(started, "orders-db").message == "starting"


def test_placement_changes_the_desired_spec_hash_so_workloads_roll() -> None:
    spec = make_spec(datastores=[POSTGRES])
    before = run_plan(spec, settings=SETTINGS)
    after = run_plan(spec, settings=SETTINGS.model_copy(update={"pod_node_selector": POOL}))
    [a], [b] = applied(before, "Deployment"), applied(after, "Deployment")
    assert a["metadata"]["annotations"] != b["metadata"]["annotations"]
