"""The planner: from spec, previous status and observations to what is applied,
created and deleted next, and what the status says. Pure, so every behaviour
is shown with plain values and a fixed clock."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from guide import guide_spec
from plan_fixtures import (
    NOW,
    NS,
    PASSWORD,
    POSTGRES,
    REDIS,
    SCHEMA_SEED,
    SETTINGS,
    applied,
    applied_kinds,
    applied_names,
    component_status,
    desired_hash,
    event_reasons,
    job_seen,
    jobs,
    later,
    make_spec,
    ready_workloads,
    result,
    run_plan,
    seed_status,
    service,
    settle,
    suite,
    suite_pod,
    suite_status,
    ts,
    with_jobs,
)
from testenv.build.services import CopySource
from testenv.diagnose import Diagnosis, PodOwner, Reason
from testenv.models import (
    INT32_MAX,
    ConditionStatus,
    JobPhase,
    Phase,
    SuiteStatus,
    TestEnvironmentStatus,
)
from testenv.observe import Observed, WorkloadObservation
from testenv.plan import (
    NOT_HANDED_OVER,
    SEED_STOPPED,
    STOP_GRACE_SECONDS,
    STOPPED,
    STOPPING,
    ObjectRef,
    was_collected,
)
from testenv.validate import SpecError

SUCCEEDED, FAILED, RUNNING, SKIPPED, PENDING = (
    JobPhase.SUCCEEDED,
    JobPhase.FAILED,
    JobPhase.RUNNING,
    JobPhase.SKIPPED,
    JobPhase.PENDING,
)


def conditions(p) -> dict[str, object]:
    return {c.type: c for c in p.status.conditions}


# --- a fresh environment ---------------------------------------------------------


def test_fresh_environment_applies_the_namespace_bundle_first() -> None:
    p = run_plan(make_spec(datastores=[REDIS]))
    assert applied_kinds(p)[:5] == [
        ("Namespace", NS),
        ("ResourceQuota", "testenv"),
        ("LimitRange", "testenv"),
        ("ServiceAccount", "default"),
        ("NetworkPolicy", "testenv-isolation"),
    ]


def test_default_service_account_mounts_no_token() -> None:
    [account] = applied(run_plan(make_spec()), "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_network_policy_is_left_out_when_isolation_disables_it() -> None:
    p = run_plan(make_spec(isolation={"networkPolicy": False}))
    assert applied(p, "NetworkPolicy") == []
    assert [k for k, _ in applied_kinds(p)] == ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount"]


def test_namespace_gets_the_configured_pod_security_level() -> None:
    p = run_plan(make_spec(), settings=SETTINGS.model_copy(update={"pod_security_level": "baseline"}))
    [namespace] = applied(p, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_quota_uses_the_environments_values_over_operator_defaults() -> None:
    p = run_plan(make_spec(isolation={"resourceQuota": {"pods": "30"}}))
    [quota] = applied(p, "ResourceQuota")
    assert quota["spec"]["hard"]["pods"] == "30"
    assert quota["spec"]["hard"]["limits.cpu"] == SETTINGS.default_quota_cpu


def test_first_plan_starts_run_one_in_the_environments_namespace() -> None:
    status = run_plan(make_spec(datastores=[REDIS])).status
    assert (status.namespace, status.run, status.observed_generation) == (NS, 1, 1)
    assert status.started_at == ts(NOW)
    assert status.phase == Phase.PROVISIONING
    assert status.finished_at is None and status.expires_at is None


def test_every_object_is_created_in_the_environments_namespace() -> None:
    spec = make_spec(datastores=[REDIS], stubs=[{"name": "payments"}], services=[service("api")])
    for obj in run_plan(spec).apply[1:]:
        assert obj["metadata"]["namespace"] == NS, obj["kind"]


# --- components ------------------------------------------------------------------


def test_components_without_dependencies_are_applied_at_once() -> None:
    spec = make_spec(datastores=[REDIS], stubs=[{"name": "payments"}], services=[service("api")])
    assert applied_names(run_plan(spec), "Deployment") == ["cache", "payments", "api"]


def test_component_waiting_for_a_dependency_is_not_applied() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    p = run_plan(spec)
    assert applied_names(p, "Deployment") == ["cache"]
    assert component_status(p, "api").message == "waiting for cache"
    assert component_status(p, "api").ready is False


def test_waiting_message_names_every_unready_dependency() -> None:
    spec = make_spec(datastores=[POSTGRES, REDIS], services=[service("api", dependsOn=["orders-db", "cache"])])
    assert component_status(run_plan(spec), "api").message == "waiting for orders-db, cache"


def test_component_starts_once_its_dependencies_are_ready() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    first = run_plan(spec)
    second = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert applied_names(second, "Deployment") == ["cache", "api"]
    assert component_status(second, "cache").ready is True
    assert component_status(second, "api").message == "starting"


def test_a_chain_of_dependencies_starts_one_link_per_readiness() -> None:
    spec = make_spec(services=[service("a"), service("b", dependsOn=["a"]), service("c", dependsOn=["b"])])
    first = run_plan(spec)
    assert applied_names(first, "Deployment") == ["a"]
    second = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert applied_names(second, "Deployment") == ["a", "b"]
    assert component_status(second, "c").message == "waiting for b"


def test_newly_applied_component_is_starting_until_observed() -> None:
    p = run_plan(make_spec(datastores=[REDIS]))
    assert component_status(p, "cache").message == "starting"
    assert component_status(p, "cache").ready is False


def test_component_is_ready_when_observed_ready_with_the_desired_spec_hash() -> None:
    spec = make_spec(datastores=[REDIS])
    first = run_plan(spec)
    second = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert component_status(second, "cache").ready is True
    assert component_status(second, "cache").message == ""


def test_ready_deployment_with_another_spec_hash_is_not_believed() -> None:
    seen = WorkloadObservation("cache", ready=True, spec_hash="0123456789abcdef")
    p = run_plan(make_spec(datastores=[REDIS]), observed=Observed(workloads={"cache": seen}))
    assert component_status(p, "cache").ready is False
    assert component_status(p, "cache").message == "starting"


def test_ready_deployment_without_spec_hash_is_not_believed() -> None:
    seen = WorkloadObservation("cache", ready=True, spec_hash=None)
    p = run_plan(make_spec(datastores=[REDIS]), observed=Observed(workloads={"cache": seen}))
    assert component_status(p, "cache").ready is False


def test_stale_ready_deployment_from_an_older_spec_is_not_ready() -> None:
    old = make_spec(services=[service("api")])
    ready_old, observed = settle(old)
    assert component_status(ready_old, "api").ready is True
    new = make_spec(services=[service("api", image="ghcr.io/acme/api:2")])
    p = run_plan(new, previous=ready_old.status, observed=observed, generation=2)
    assert component_status(p, "api").ready is False
    assert component_status(p, "api").message == "starting"
    assert desired_hash(p, "api") != observed.workloads["api"].spec_hash
    assert p.status.phase == Phase.PROVISIONING


def test_unready_workload_message_is_shown_after_starting() -> None:
    spec = make_spec(datastores=[REDIS])
    first = run_plan(spec)
    seen = WorkloadObservation("cache", False, desired_hash(first, "cache"), "0/1 replicas ready; exceeded quota")
    p = run_plan(spec, previous=first.status, observed=Observed(workloads={"cache": seen}))
    assert component_status(p, "cache").message == "starting: 0/1 replicas ready; exceeded quota"


def test_components_are_listed_datastores_then_stubs_then_services() -> None:
    spec = make_spec(
        services=[service("api", dependsOn=["payments"])], stubs=[{"name": "payments"}], datastores=[REDIS]
    )
    p = run_plan(spec)
    assert [(c.name, c.kind) for c in p.status.components] == [
        ("cache", "datastore"),
        ("payments", "stub"),
        ("api", "service"),
    ]


def test_ready_components_counts_ready_over_total() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    first = run_plan(spec)
    assert first.status.ready_components == "0/2"
    second = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert second.status.ready_components == "1/2"


def test_ready_condition_false_names_what_is_waiting() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    ready = conditions(run_plan(spec))["Ready"]
    assert ready.status == ConditionStatus.FALSE and ready.reason == "ComponentsNotReady"
    assert "api (waiting for cache)" in ready.message


def test_ready_condition_true_and_ready_at_set_when_all_components_are_ready() -> None:
    p, _ = settle(make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])]))
    ready = conditions(p)["Ready"]
    assert (ready.status, ready.reason) == (ConditionStatus.TRUE, "AllComponentsReady")
    assert p.status.ready_at == ts(NOW)
    assert p.status.ready_components == "2/2"


def test_services_get_datastore_and_stub_urls_injected() -> None:
    spec = make_spec(
        datastores=[POSTGRES], stubs=[{"name": "payment-gateway", "port": 9090}], services=[service("api")]
    )
    [api] = [d for d in applied(run_plan(spec), "Deployment") if d["metadata"]["name"] == "api"]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ORDERS_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "orders-db-connection", "key": "url"}
    assert env["PAYMENT_GATEWAY_URL"]["value"] == "http://payment-gateway:9090"


def test_every_applied_deployment_carries_a_spec_hash() -> None:
    spec = make_spec(datastores=[REDIS], stubs=[{"name": "payments"}], services=[service("api")])
    for deployment in applied(run_plan(spec), "Deployment"):
        assert deployment["metadata"]["annotations"]["testenv.dev/spec-hash"]


def test_spec_hash_is_stable_for_the_same_spec() -> None:
    spec = make_spec(services=[service("api")])
    assert desired_hash(run_plan(spec), "api") == desired_hash(run_plan(spec, now=later(100)), "api")


def test_service_with_zero_ports_gets_no_kubernetes_service() -> None:
    assert applied_names(run_plan(make_spec(services=[service("worker")])), "Service") == []


# --- copyFrom ---------------------------------------------------------------------


COPIED = {"name": "inventory", "copyFrom": {"namespace": "staging", "deployment": "inventory-service"}}
SOURCE = CopySource(
    deployment={
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "inventory-service", "namespace": "staging", "uid": "src-uid"},
        "spec": {
            "selector": {"matchLabels": {"app": "inventory"}},
            "template": {
                "metadata": {"labels": {"app": "inventory"}},
                "spec": {"containers": [{"name": "inventory", "image": "ghcr.io/acme/inventory:1"}]},
            },
        },
        "status": {"readyReplicas": 3},
    }
)


def test_copy_with_missing_source_says_which_deployment_was_not_found() -> None:
    p = run_plan(make_spec(services=[COPIED]), observed=Observed(copy_sources={"inventory": None}))
    status = component_status(p, "inventory")
    assert status.ready is False
    assert status.message.startswith("source Deployment staging/inventory-service not found; create it")
    assert applied_names(p, "Deployment") == []
    assert "staging/inventory-service" in p.status.message


def test_copy_with_source_not_yet_read_is_not_applied() -> None:
    p = run_plan(make_spec(services=[COPIED]))
    assert applied_names(p, "Deployment") == []
    assert "not found" in component_status(p, "inventory").message


def test_copy_with_source_applies_the_rehomed_deployment() -> None:
    p = run_plan(make_spec(services=[COPIED]), observed=Observed(copy_sources={"inventory": SOURCE}))
    [deployment] = applied(p, "Deployment")
    assert deployment["metadata"]["name"] == "inventory"
    assert deployment["metadata"]["namespace"] == NS
    assert "uid" not in deployment["metadata"] and "status" not in deployment
    assert component_status(p, "inventory").message == "starting"


# --- datastore Secrets -------------------------------------------------------------


def test_datastore_secret_is_created_never_applied() -> None:
    p = run_plan(make_spec(datastores=[POSTGRES]))
    assert applied(p, "Secret") == []
    assert [(o["kind"], o["metadata"]["name"]) for o in p.create] == [("Secret", "orders-db-connection")]
    assert p.create[0]["stringData"]["password"] == PASSWORD


def test_every_datastore_gets_its_secret_created() -> None:
    p = run_plan(make_spec(datastores=[POSTGRES, REDIS]))
    assert sorted(o["metadata"]["name"] for o in p.create) == ["cache-connection", "orders-db-connection"]


def test_password_appears_nowhere_in_what_is_applied_or_in_status() -> None:
    spec = make_spec(
        datastores=[POSTGRES, REDIS],
        services=[service("api", dependsOn=["orders-db", "cache"])],
        seed=[SCHEMA_SEED, {"name": "fixtures", "image": "ghcr.io/acme/fixtures:1", "needs": ["schema"]}],
        tests=[suite("smoke")],
    )
    p, _ = settle(spec)
    assert applied(p, "Job"), "the suite Job should be applied by now"
    assert PASSWORD not in json.dumps(p.apply)
    assert PASSWORD not in json.dumps(p.status.wire())
    assert PASSWORD not in json.dumps([e.message for e in p.events])


# --- seeds -------------------------------------------------------------------------


def test_seed_waits_for_its_datastore() -> None:
    p = run_plan(make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED]))
    assert seed_status(p, "schema").phase == PENDING
    assert seed_status(p, "schema").message == "waiting for orders-db"
    assert applied(p, "Job") == []


def test_seed_starts_when_its_datastore_is_ready() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert applied_names(p, "Job") == ["schema-r1"]
    assert applied_names(p, "ConfigMap") == ["schema-script-r1"]
    assert seed_status(p, "schema").message == "starting"
    assert p.status.phase == Phase.SEEDING


def test_seed_waits_for_its_needs_to_succeed() -> None:
    fixtures = {"name": "fixtures", "datastore": "orders-db", "image": "ghcr.io/acme/fixtures:1", "needs": ["schema"]}
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED, fixtures])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", RUNNING, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert seed_status(p, "schema").phase == RUNNING
    assert seed_status(p, "fixtures").message == "waiting for schema"
    assert applied_names(p, "Job") == []


def test_seed_starts_after_its_needs_succeeded() -> None:
    fixtures = {"name": "fixtures", "datastore": "orders-db", "image": "ghcr.io/acme/fixtures:1", "needs": ["schema"]}
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED, fixtures])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", SUCCEEDED, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert applied_names(p, "Job") == ["fixtures-r1"]


def test_seed_whose_need_failed_is_skipped() -> None:
    fixtures = {"name": "fixtures", "datastore": "orders-db", "image": "ghcr.io/acme/fixtures:1", "needs": ["schema"]}
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED, fixtures])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", FAILED, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert seed_status(p, "fixtures").phase == SKIPPED
    assert seed_status(p, "fixtures").message == "needs schema, which failed"
    assert applied(p, "Job") == []


def test_service_using_a_seeded_datastore_waits_for_the_seed() -> None:
    spec = make_spec(datastores=[POSTGRES], services=[service("api", dependsOn=["orders-db"])], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", RUNNING, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert component_status(p, "api").message == "waiting for seed schema"
    assert "api" not in applied_names(p, "Deployment")
    assert p.status.phase == Phase.SEEDING


def test_service_waits_for_both_its_datastore_and_the_seed_before_either_is_ready() -> None:
    spec = make_spec(datastores=[POSTGRES], services=[service("api", dependsOn=["orders-db"])], seed=[SCHEMA_SEED])
    assert component_status(run_plan(spec), "api").message == "waiting for orders-db, seed schema"


def test_service_starts_once_the_seed_succeeded() -> None:
    spec = make_spec(datastores=[POSTGRES], services=[service("api", dependsOn=["orders-db"])], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", SUCCEEDED, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert "api" in applied_names(p, "Deployment")
    assert component_status(p, "api").message == "starting"


def seed_pod(job: str, exit_code: int | None) -> dict:
    """A seed's pod as the pods index has it: its container ended (or not);
    the results collector, a sidecar, still to stop."""
    state = {"terminated": {"exitCode": exit_code}} if exit_code is not None else {"running": {}}
    return {"metadata": {"name": f"{job}-x", "labels": {"job-name": job}},
            "status": {"phase": "Running", "containerStatuses": [{"name": "seed", "state": state}]}}


@pytest.mark.parametrize(("exit_code", "starts"), [(0, True), (1, False), (None, False)])
def test_a_seed_whose_container_exited_0_is_done_before_its_job_completes(exit_code, starts) -> None:
    spec = make_spec(datastores=[POSTGRES], services=[service("api", dependsOn=["orders-db"])], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", RUNNING, kind="seed")),
                        pods=(seed_pod("schema-r1", exit_code),))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert ("api" in applied_names(p, "Deployment")) is starts
    assert (seed_status(p, "schema").phase == SUCCEEDED) is starts


def test_service_not_using_the_seeded_datastore_does_not_wait_for_the_seed() -> None:
    spec = make_spec(datastores=[POSTGRES, REDIS], services=[service("api", dependsOn=["cache"])], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert "api" in applied_names(p, "Deployment")


def test_seed_bound_to_no_datastore_gates_every_component_depending_on_a_datastore() -> None:
    fixtures = {"name": "fixtures", "image": "ghcr.io/acme/fixtures:1"}
    spec = make_spec(
        datastores=[POSTGRES, REDIS],
        stubs=[{"name": "payments"}],
        services=[
            service("orders", dependsOn=["orders-db"]),
            service("carts", dependsOn=["cache"]),
            service("gateway", dependsOn=["payments"]),
        ],
        seed=[fixtures],
    )
    first = run_plan(spec)
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    assert component_status(p, "orders").message == "waiting for seed fixtures"
    assert component_status(p, "carts").message == "waiting for seed fixtures"
    assert "gateway" in applied_names(p, "Deployment")


def test_seed_bound_to_no_datastore_waits_for_every_datastore() -> None:
    fixtures = {"name": "fixtures", "image": "ghcr.io/acme/fixtures:1"}
    spec = make_spec(datastores=[POSTGRES, REDIS], seed=[fixtures])
    first = run_plan(spec)
    only_cache = ready_workloads(first, ["cache"])
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=only_cache))
    assert seed_status(p, "fixtures").message == "waiting for orders-db"
    assert applied(p, "Job") == []


def test_seed_filling_a_datastore_through_its_needs_gates_that_datastores_users() -> None:
    fixtures = {"name": "fixtures", "image": "ghcr.io/acme/fixtures:1", "needs": ["schema"]}
    spec = make_spec(
        datastores=[POSTGRES, REDIS],
        services=[service("orders", dependsOn=["orders-db"]), service("carts", dependsOn=["cache"])],
        seed=[SCHEMA_SEED, fixtures],
    )
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", SUCCEEDED, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert component_status(p, "orders").message == "waiting for seed fixtures"
    assert "carts" in applied_names(p, "Deployment")


def test_image_seed_runs_the_seeds_image() -> None:
    fixtures = {"name": "fixtures", "image": "ghcr.io/acme/fixtures:1"}
    p = run_plan(make_spec(seed=[fixtures]))
    [job] = applied(p, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/fixtures:1"


def test_sql_seed_runs_the_datastores_engine_image() -> None:
    spec = make_spec(datastores=[{**POSTGRES, "version": "15"}], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)))
    [job] = applied(p, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:15"


def test_a_failed_seed_fails_the_run() -> None:
    spec = make_spec(
        datastores=[POSTGRES],
        services=[service("api", dependsOn=["orders-db"])],
        seed=[SCHEMA_SEED],
        tests=[suite("smoke")],
    )
    p, _ = settle(spec, seed_phase=FAILED)
    assert p.status.phase == Phase.FAILED
    assert p.status.message.startswith("seed schema failed")
    assert seed_status(p, "schema").phase == FAILED
    assert component_status(p, "api").message == "waiting for seed schema"
    assert applied_names(p, "Job") == []
    tests_passed = conditions(p)["TestsPassed"]
    assert (tests_passed.status, tests_passed.reason) == (ConditionStatus.FALSE, "SuitesFailed")
    assert p.status.finished_at == ts(NOW)


def test_failed_seed_message_comes_from_the_job() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    failed = job_seen(
        "schema",
        FAILED,
        kind="seed",
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
    )
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first), jobs=jobs(failed)))
    assert seed_status(p, "schema").message == "Job has reached the specified backoff limit"
    assert p.status.message == "seed schema failed: Job has reached the specified backoff limit"


def test_failed_seed_without_message_falls_back_to_the_reason() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    failed = job_seen("schema", FAILED, kind="seed", reason="DeadlineExceeded")
    p = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first), jobs=jobs(failed)))
    assert seed_status(p, "schema").message == "DeadlineExceeded"


def test_seed_failure_emits_seed_failed_and_a_log_tail_once() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    running = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", RUNNING, kind="seed")))
    before = run_plan(spec, previous=first.status, observed=running)
    failed = replace(running, jobs=jobs(job_seen("schema", FAILED, kind="seed", message="syntax error")))
    p = run_plan(spec, previous=before.status, observed=failed)
    [seed_failed] = [e for e in p.events if e.reason == "SeedFailed"]
    assert seed_failed.type == "Warning" and "schema" in seed_failed.message and "syntax error" in seed_failed.message
    assert p.log_tails == ["schema-r1"]
    again = run_plan(spec, previous=p.status, observed=failed)
    assert "SeedFailed" not in event_reasons(again)
    assert again.log_tails == []


def test_seed_failure_events_are_not_repeated_for_a_previous_status_that_already_failed_it() -> None:
    # A status written mid-run (phase Seeding) that already shows the seed failed.
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED])
    first = run_plan(spec)
    failed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", FAILED, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=failed)
    previous = p.status.model_copy(update={"phase": Phase.SEEDING})
    again = run_plan(spec, previous=previous, observed=failed)
    assert "SeedFailed" not in event_reasons(again)
    assert again.log_tails == []


# --- phases ------------------------------------------------------------------------


def test_phase_is_provisioning_while_components_start() -> None:
    assert run_plan(make_spec(datastores=[REDIS], tests=[suite("smoke")])).status.phase == Phase.PROVISIONING


def test_phase_is_seeding_while_a_seed_runs() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("schema", RUNNING, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed)
    assert p.status.phase == Phase.SEEDING
    assert p.status.message == "seeding: schema"


def test_phase_is_testing_once_ready_and_seeded() -> None:
    p, _ = settle(make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")]))
    assert p.status.phase == Phase.TESTING
    assert p.status.message == "testing: smoke"
    assert conditions(p)["TestsPassed"].reason == "Running"


def test_environment_without_tests_is_ready_as_a_preview() -> None:
    p, _ = settle(make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED]))
    assert p.status.phase == Phase.READY
    assert "preview" in p.status.message
    tests_passed = conditions(p)["TestsPassed"]
    assert (tests_passed.status, tests_passed.reason) == (ConditionStatus.UNKNOWN, "NoTests")
    assert p.status.finished_at is None and p.status.test_counts is None


def test_empty_environment_is_ready_at_once() -> None:
    p = run_plan(make_spec())
    assert p.status.phase == Phase.READY
    assert p.status.ready_components == "0/0"


def test_preview_environment_stays_ready_on_later_reconciles() -> None:
    p, observed = settle(make_spec(datastores=[REDIS]))
    again = run_plan(make_spec(datastores=[REDIS]), previous=p.status, observed=observed, now=later(3600))
    assert again.status.phase == Phase.READY
    assert again.events == []


def test_phases_advance_provisioning_seeding_testing_succeeded() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")])
    phases = []
    p = run_plan(spec)
    phases.append(p.status.phase)
    observed = Observed(workloads=ready_workloads(p))
    p = run_plan(spec, previous=p.status, observed=observed)
    phases.append(p.status.phase)
    observed = replace(observed, jobs=jobs(job_seen("schema", SUCCEEDED, kind="seed")))
    p = run_plan(spec, previous=p.status, observed=observed)
    phases.append(p.status.phase)
    observed = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=3)})
    p = run_plan(spec, previous=p.status, observed=observed)
    phases.append(p.status.phase)
    assert phases == [Phase.PROVISIONING, Phase.SEEDING, Phase.TESTING, Phase.SUCCEEDED]


# --- suites ------------------------------------------------------------------------


def at_testing_start(spec_fields: dict) -> tuple[object, Observed]:
    """The moment testing starts: components ready, seeds done, no suite Job seen."""
    return settle(make_spec(datastores=[REDIS], **spec_fields))


def test_suites_start_in_needs_order() -> None:
    p, _ = at_testing_start({"tests": [suite("contract"), suite("component", needs=["contract"])]})
    assert applied_names(p, "Job") == ["contract-r1"]
    assert suite_status(p, "contract").message == "starting"
    assert suite_status(p, "component").message == "waiting for contract"
    assert suite_status(p, "component").phase == PENDING


def test_independent_suites_start_in_parallel() -> None:
    p, _ = at_testing_start({"tests": [suite("a"), suite("b"), suite("c", needs=["a"])]})
    assert sorted(applied_names(p, "Job")) == ["a-r1", "b-r1"]


def test_suite_starts_once_its_need_succeeded() -> None:
    spec = {"tests": [suite("contract"), suite("component", needs=["contract"])]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("contract", SUCCEEDED), results={"contract-r1": result(passed=12)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert applied_names(p, "Job") == ["component-r1"]
    assert suite_status(p, "contract").phase == SUCCEEDED


def test_suite_waits_while_its_need_runs() -> None:
    spec = {"tests": [suite("contract"), suite("component", needs=["contract"])]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("contract", RUNNING))
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "contract").phase == RUNNING
    assert suite_status(p, "contract").message == "running"
    assert suite_status(p, "component").message == "waiting for contract"
    assert applied(p, "Job") == []


def test_suites_are_listed_in_spec_order() -> None:
    p, _ = at_testing_start({"tests": [suite("z", needs=["a"]), suite("a")]})
    assert [s.name for s in p.status.tests] == ["z", "a"]


def test_suites_wait_for_the_environment_before_it_is_ready() -> None:
    p = run_plan(make_spec(datastores=[REDIS], tests=[suite("smoke")]))
    assert suite_status(p, "smoke").message == "waiting for the environment"
    assert applied(p, "Job") == []


def test_fail_fast_skips_suites_not_started() -> None:
    spec = {"tests": [suite("unit"), suite("e2e", needs=["slow"]), suite("slow")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(
        observed, job_seen("unit", FAILED), job_seen("slow", RUNNING), results={"unit-r1": result(8, 2)}
    )
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "unit").phase == FAILED
    assert suite_status(p, "slow").phase == RUNNING  # already running: it finishes
    e2e = suite_status(p, "e2e")
    assert e2e.phase == SKIPPED and "failFast" in e2e.message
    assert applied(p, "Job") == []


def test_fail_fast_cancels_an_independent_suite_that_would_start_now() -> None:
    spec = {"tests": [suite("a"), suite("b", needs=["a"]), suite("c")]}
    p, observed = at_testing_start(spec)
    # c is not started yet (e.g. it was added by a later reconcile): a's failure cancels it.
    observed = with_jobs(observed, job_seen("a", FAILED), results={"a-r1": result(failed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "c").phase == SKIPPED
    assert "c-r1" not in applied_names(p, "Job")


def test_without_fail_fast_independent_suites_still_run() -> None:
    spec = {"tests": [suite("flaky", failFast=False), suite("later"), suite("after-later", needs=["later"])]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(
        observed,
        job_seen("flaky", FAILED),
        job_seen("later", SUCCEEDED),
        results={"flaky-r1": result(failed=1), "later-r1": result(passed=1)},
    )
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert applied_names(p, "Job") == ["after-later-r1"]
    assert suite_status(p, "after-later").phase == PENDING
    assert p.status.phase == Phase.TESTING


def test_without_fail_fast_dependents_of_the_failed_suite_are_skipped() -> None:
    spec = {"tests": [suite("flaky", failFast=False), suite("next", needs=["flaky"])]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("flaky", FAILED), results={"flaky-r1": result(failed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "next").phase == SKIPPED
    assert suite_status(p, "next").message == "needs flaky, which did not pass"
    assert p.status.phase == Phase.FAILED


def test_skipped_suite_skips_its_dependents_too() -> None:
    spec = {"tests": [suite("a", failFast=False), suite("b", needs=["a"]), suite("c", needs=["b"])]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("a", FAILED), results={"a-r1": result(failed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "c").phase == SKIPPED
    assert suite_status(p, "c").message == "needs b, which did not pass"


def test_a_failed_job_trips_fail_fast_even_before_its_results_are_read() -> None:
    spec = {"tests": [suite("unit"), suite("lint"), suite("e2e", needs=["lint"])]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(
        observed, job_seen("unit", FAILED), job_seen("lint", SUCCEEDED), results={"lint-r1": result(passed=1)}
    )
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert p.read_results == ["unit-r1"]
    assert "e2e-r1" not in applied_names(p, "Job")


def test_running_suite_has_phase_running() -> None:
    spec = {"tests": [suite("smoke")]}
    p, observed = at_testing_start(spec)
    p = run_plan(
        make_spec(datastores=[REDIS], **spec), previous=p.status, observed=with_jobs(observed, job_seen("smoke"))
    )
    assert suite_status(p, "smoke").phase == RUNNING
    assert p.status.phase == Phase.TESTING


def test_suite_past_its_timeout_says_timed_out() -> None:
    spec = {"tests": [suite("stuck", timeoutSeconds=2)]}
    p, observed = at_testing_start(spec)
    stuck = job_seen(
        "stuck", FAILED, reason="DeadlineExceeded", message="Job was active longer than specified deadline"
    )
    observed = with_jobs(observed, stuck, results={"stuck-r1": result(failed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "stuck").phase == FAILED
    assert suite_status(p, "stuck").message == "timed out (timeoutSeconds)"


def test_an_attempt_stopped_at_its_pod_deadline_says_timed_out() -> None:
    spec = {"tests": [suite("stuck", timeoutSeconds=2)]}
    p, observed = at_testing_start(spec)
    failed = job_seen("stuck", FAILED, reason="BackoffLimitExceeded",
                      message="Job has reached the specified backoff limit")
    pod = {"metadata": {"name": "stuck-r1-x", "labels": {"job-name": "stuck-r1"}},
           "status": {"phase": "Failed", "reason": "DeadlineExceeded"}}
    observed = replace(with_jobs(observed, failed, results={"stuck-r1": result(failed=1)}), pods=(pod,))
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "stuck").message == "timed out (timeoutSeconds)"


def test_failed_suite_message_comes_from_the_job() -> None:
    spec = {"tests": [suite("unit")]}
    p, observed = at_testing_start(spec)
    failed = job_seen(
        "unit", FAILED, reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit"
    )
    observed = with_jobs(observed, failed, results={"unit-r1": result(failed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert suite_status(p, "unit").message == "Job has reached the specified backoff limit"


def test_suite_duration_is_the_jobs_completion_minus_start() -> None:
    spec = {"tests": [suite("smoke")]}
    p, observed = at_testing_start(spec)
    done = job_seen("smoke", SUCCEEDED, start="2024-05-01T12:00:00Z", end="2024-05-01T12:00:14Z")
    p = run_plan(
        make_spec(datastores=[REDIS], **spec),
        previous=p.status,
        observed=with_jobs(observed, done, results={"smoke-r1": result(passed=1)}),
    )
    assert suite_status(p, "smoke").duration_seconds == 14.0


def test_counts_come_from_observed_results_and_are_summed() -> None:
    spec = {"tests": [suite("contract"), suite("component")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(
        observed,
        job_seen("contract", SUCCEEDED),
        job_seen("component", SUCCEEDED),
        results={"contract-r1": result(passed=12), "component-r1": result(passed=30, skipped=2)},
    )
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    contract, component = suite_status(p, "contract"), suite_status(p, "component")
    assert (contract.passed, component.passed, component.skipped) == (12, 30, 2)
    assert p.status.summary.wire() == {"passed": 42, "failed": 0, "skipped": 2}
    assert p.status.test_counts == "42/0"
    assert p.status.phase == Phase.SUCCEEDED
    assert p.status.message == "all 2 suite(s) passed"


def test_failed_counts_and_failure_names_are_reported() -> None:
    spec = {"tests": [suite("unit")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(
        observed, job_seen("unit", FAILED), results={"unit-r1": result(8, 2, failures=["test_refund", "test_void"])}
    )
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    unit = suite_status(p, "unit")
    assert (unit.passed, unit.failed, unit.failures) == (8, 2, ["test_refund", "test_void"])
    assert p.status.test_counts == "8/2"
    assert p.status.phase == Phase.FAILED
    assert p.status.message == "1 suite(s) failed: unit"
    tests_passed = conditions(p)["TestsPassed"]
    assert tests_passed.status == ConditionStatus.FALSE and "unit" in tests_passed.message


def test_all_suites_passed_sets_tests_passed_true() -> None:
    spec = {"tests": [suite("smoke")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    tests_passed = conditions(p)["TestsPassed"]
    assert (tests_passed.status, tests_passed.reason) == (ConditionStatus.TRUE, "AllSuitesPassed")


def test_finished_job_with_unknown_results_asks_to_read_them() -> None:
    spec = {"tests": [suite("smoke")]}
    p, observed = at_testing_start(spec)
    p = run_plan(
        make_spec(datastores=[REDIS], **spec),
        previous=p.status,
        observed=with_jobs(observed, job_seen("smoke", SUCCEEDED)),
    )
    assert p.read_results == ["smoke-r1"]
    # The Job's outcome shows at once; the run waits for the counts.
    assert suite_status(p, "smoke").phase == SUCCEEDED
    assert suite_status(p, "smoke").message == "collecting results"
    assert p.status.phase == Phase.TESTING


def test_results_already_known_are_not_read_again() -> None:
    spec = {"tests": [suite("smoke")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert p.read_results == []


def test_counts_are_kept_from_the_previous_status_after_a_restart() -> None:
    spec = {"tests": [suite("contract"), suite("component", needs=["contract"])]}
    p, observed = at_testing_start(spec)
    with_results = with_jobs(observed, job_seen("contract", SUCCEEDED), results={"contract-r1": result(12, 0, 1)})
    before = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=with_results)
    # The operator restarts: results are no longer in memory, the status has them.
    restarted = replace(with_results, results={})
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=before.status, observed=restarted)
    contract = suite_status(p, "contract")
    assert (contract.phase, contract.passed, contract.skipped) == (SUCCEEDED, 12, 1)
    assert p.read_results == []
    assert p.status.summary.passed == 12


def test_counts_of_a_previous_run_are_never_reused_for_the_new_run() -> None:
    spec_fields = {"tests": [suite("smoke")]}
    spec = make_spec(datastores=[REDIS], **spec_fields)
    p, observed = at_testing_start(spec_fields)
    done = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=99)})
    run_one = run_plan(spec, previous=p.status, observed=done)
    assert suite_status(run_one, "smoke").passed == 99
    # Generation 2: the run-2 Job is seen finished before its results were read.
    run_two_observed = replace(done, jobs=jobs(job_seen("smoke", SUCCEEDED, run=2)), results={})
    p = run_plan(spec, previous=run_one.status, observed=run_two_observed, generation=2)
    assert p.status.run == 2
    assert p.read_results == ["smoke-r2"]
    assert suite_status(p, "smoke").passed != 99


# --- stub verification -------------------------------------------------------------


STUB = {
    "name": "payments",
    "mappings": [{"request": {"method": "POST", "urlPath": "/charge"}, "response": {"status": 200}}],
    "verify": [{"request": {"method": "POST", "urlPath": "/charge"}}],
}


def test_stub_verification_waits_until_every_suite_finished() -> None:
    spec = make_spec(stubs=[STUB], tests=[suite("smoke")])
    p, observed = settle(spec)
    running = run_plan(spec, previous=p.status, observed=with_jobs(observed, job_seen("smoke")))
    assert running.verify_stubs == []
    assert suite_status(running, "stubs/payments").message == "checked after the suites"
    done = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    finished = run_plan(spec, previous=running.status, observed=done)
    assert finished.verify_stubs == ["payments"]
    assert finished.status.phase == Phase.TESTING


def test_stubs_without_verify_are_not_checked() -> None:
    spec = make_spec(stubs=[{"name": "payments"}], tests=[suite("smoke")])
    p, observed = settle(spec)
    done = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    p = run_plan(spec, previous=p.status, observed=done)
    assert p.verify_stubs == []
    assert [s.name for s in p.status.tests] == ["smoke"]
    assert p.status.phase == Phase.SUCCEEDED


def test_stub_check_is_reported_like_a_suite() -> None:
    spec = make_spec(stubs=[STUB], tests=[suite("smoke")])
    p, observed = settle(spec)
    check = SuiteStatus(name="stubs/payments", phase=FAILED, failed=1, message="POST /charge: expected >= 1, got 0")
    done = replace(
        with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)}),
        stub_checks={"payments": check},
    )
    p = run_plan(spec, previous=p.status, observed=done)
    assert p.verify_stubs == []
    assert suite_status(p, "stubs/payments").phase == FAILED
    assert p.status.summary.wire() == {"passed": 1, "failed": 1, "skipped": 0}
    assert p.status.phase == Phase.FAILED
    failed_event = next(e for e in p.events if e.reason == "SuiteFailed")
    assert "stubs/payments" in failed_event.message
    assert p.log_tails == []  # a stub check has no Job to read logs from


# --- run bookkeeping ---------------------------------------------------------------


def test_same_generation_keeps_the_run() -> None:
    p, observed = settle(make_spec(datastores=[REDIS]))
    again = run_plan(make_spec(datastores=[REDIS]), previous=p.status, observed=observed, now=later(60))
    assert again.status.run == 1
    assert again.status.started_at == ts(NOW)
    assert again.delete == []


def test_generation_change_starts_the_next_run() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")])
    p, observed = settle(spec)
    done = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    finished = run_plan(spec, previous=p.status, observed=done)
    assert finished.status.phase == Phase.SUCCEEDED
    rerun = run_plan(spec, previous=finished.status, observed=done, generation=2, now=later(300))
    status = rerun.status
    assert (status.run, status.observed_generation) == (2, 2)
    assert status.started_at == ts(later(300))
    assert status.finished_at is None and status.expires_at is None
    assert suite_status(rerun, "smoke").phase == PENDING and suite_status(rerun, "smoke").passed == 0
    # The run starts from a fresh, empty datastore: a new pod (and emptyDir)
    # rolls out, and the suites wait for it.
    [deployment] = applied(rerun, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["testenv.dev/run"] == "2"
    assert status.phase == Phase.PROVISIONING and applied_names(rerun, "Job") == []
    settled, _ = settle(spec, previous=status, observed=done, generation=2, now=later(300))
    assert settled.status.phase == Phase.TESTING
    assert applied_names(settled, "Job") == ["smoke-r2"]


def test_new_run_deletes_the_old_runs_jobs_and_seed_configmaps() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")])
    p, observed = settle(spec)
    old = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    finished = run_plan(spec, previous=p.status, observed=old)
    rerun = run_plan(spec, previous=finished.status, observed=old, generation=2)
    assert set(rerun.delete) == {
        ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="schema-r1"),
        ObjectRef(api_version="v1", kind="ConfigMap", namespace=NS, name="schema-script-r1"),
        ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="smoke-r1"),
    }


def test_new_run_re_seeds_before_testing() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")])
    p, observed = settle(spec)
    rerun = run_plan(spec, previous=p.status, observed=observed, generation=2)
    # The seed waits for the new run's fresh datastore, then fills it again.
    assert applied_names(rerun, "Job") == []
    assert rerun.status.phase == Phase.PROVISIONING
    fresh = replace(observed, workloads={**observed.workloads, **ready_workloads(rerun)})
    seeding = run_plan(spec, previous=rerun.status, observed=fresh, generation=2)
    assert applied_names(seeding, "Job") == ["schema-r2"]
    assert seed_status(seeding, "schema").message == "starting"
    assert seeding.status.phase == Phase.SEEDING


def test_jobs_of_the_current_run_are_not_deleted() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")])
    p, observed = settle(spec)
    again = run_plan(spec, previous=p.status, observed=with_jobs(observed, job_seen("smoke")))
    assert again.delete == []


def test_a_fixed_spec_after_an_error_starts_a_new_run() -> None:
    spec = make_spec(services=[service("a")])
    error = run_plan(spec, errors=[SpecError("spec.services[0].dependsOn", "'nope' is unknown")])
    assert error.status.phase == Phase.ERROR
    fixed = run_plan(spec, previous=error.status, generation=2)
    assert fixed.status.run == 2
    assert fixed.status.phase == Phase.PROVISIONING
    assert applied_names(fixed, "Deployment") == ["a"]


def test_a_finished_run_is_not_replanned_on_the_same_generation() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")])
    p, observed = settle(spec)
    done = with_jobs(observed, job_seen("smoke", FAILED), results={"smoke-r1": result(failed=1)})
    finished = run_plan(spec, previous=p.status, observed=done)
    again = run_plan(spec, previous=finished.status, observed=done, now=later(10))
    assert again.status.phase == Phase.FAILED
    assert again.apply == [] and again.create == [] and again.delete == []
    assert again.events == [] and again.log_tails == []
    assert again.status.finished_at == finished.status.finished_at


# --- the run's deadline -------------------------------------------------------------


DEADLINE = {"activeDeadlineSeconds": 1800}


def test_deadline_passed_times_the_run_out() -> None:
    spec = make_spec(lifecycle=DEADLINE, datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("a"), suite("b")])
    p, observed = settle(spec)
    observed = with_jobs(observed, job_seen("a", RUNNING), job_seen("b", SUCCEEDED))
    timed_out = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    status = timed_out.status
    assert status.phase == Phase.TIMED_OUT
    assert "activeDeadlineSeconds (1800s)" in status.message
    assert timed_out.apply == []
    assert timed_out.delete == [ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="a-r1")]
    assert status.finished_at == ts(later(1800))
    [event] = [e for e in timed_out.events if e.reason == "TimedOut"]
    assert event.type == "Warning"


# A suite running at the deadline is stopped the way its own timeout stops
# it (its pods' deadline brought forward), so its collector hands over what
# it wrote so far; the run times out once those pods have stopped.


def at_the_deadline(*pods: dict) -> tuple:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS], tests=[suite("a"), suite("b", needs=["a"])])
    p, observed = settle(spec)
    return spec, p, replace(with_jobs(observed, job_seen("a")), pods=pods)


def test_a_suite_running_at_the_deadline_is_stopped_before_the_run_times_out() -> None:
    spec, p, observed = at_the_deadline(suite_pod("a-r1-x", "a-r1", started=60))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    assert stopping.status.phase == Phase.TESTING
    assert stopping.stop_pods == ["a-r1-x"] and stopping.delete == [] and stopping.apply == []
    assert suite_status(stopping, "a").message == STOPPING
    assert "activeDeadlineSeconds (1800s) reached: stopping a" in stopping.status.message
    assert stopping.wake_after == STOP_GRACE_SECONDS and "TimedOut" not in event_reasons(stopping)


def test_once_stopped_the_suite_counts_what_it_reported_and_the_run_times_out() -> None:
    spec, p, observed = at_the_deadline(suite_pod("a-r1-x", "a-r1", started=60))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    stopped = replace(observed, pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=60, reason="DeadlineExceeded"),))
    reading = run_plan(spec, previous=stopping.status, observed=stopped, now=later(1810))
    assert reading.read_results == ["a-r1"] and reading.stop_pods == []
    read = replace(stopped, results={"a-r1": result(passed=7, failed=1)})
    ended = run_plan(spec, previous=stopping.status, observed=read, now=later(1810))
    a = suite_status(ended, "a")
    assert (a.phase, a.message, a.passed, a.failed) == (FAILED, STOPPED, 7, 1)
    assert ended.status.phase == Phase.TIMED_OUT and "activeDeadlineSeconds (1800s)" in ended.status.message
    assert suite_status(ended, "b").phase == JobPhase.SKIPPED
    assert ended.delete == [ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="a-r1")]
    assert event_reasons(ended)[0] == "TimedOut" and "SuiteFailed" in event_reasons(ended)
    # Planned again from what was written, nothing is read or announced twice.
    again = run_plan(spec, previous=ended.status, observed=stopped, now=later(1820))
    assert suite_status(again, "a").passed == 7 and again.read_results == [] and again.events == []


def test_a_job_failed_by_the_stop_is_stopped_not_timed_out_by_its_own_timeout() -> None:
    spec, p, observed = at_the_deadline(suite_pod("a-r1-x", "a-r1", started=60))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    failed = replace(with_jobs(observed, job_seen("a", FAILED, reason="BackoffLimitExceeded")),
                     pods=(suite_pod("a-r1-x", "a-r1", "Failed", started=60, reason="DeadlineExceeded"),),
                     results={"a-r1": result(passed=2)})
    ended = run_plan(spec, previous=stopping.status, observed=failed, now=later(1805))
    assert suite_status(ended, "a").message == STOPPED and ended.status.phase == Phase.TIMED_OUT


def test_a_retry_started_after_the_deadline_and_a_pod_never_started_are_not_waited_for() -> None:
    spec, p, observed = at_the_deadline(suite_pod("a-r1-x", "a-r1", "Failed", started=60, reason="DeadlineExceeded"),
                                        suite_pod("a-r1-y", "a-r1", started=1801),
                                        suite_pod("a-r1-z", "a-r1", "Pending", started=None))
    previous = p.status.model_copy(deep=True)
    previous.tests[0].message = STOPPING
    p2 = run_plan(spec, previous=previous, observed=observed, now=later(1802))
    assert p2.stop_pods == [] and p2.read_results == ["a-r1"]


def test_a_stop_is_known_from_the_pods_when_the_stopping_status_was_never_written() -> None:
    """The chaos soak's deadline-0138 ended Failed, not TimedOut: the pass
    that stopped the pod had its STOPPING status held back (pacing), so the
    next pass saw only a suite that failed at a deadline."""
    spec, p, observed = at_the_deadline()
    stopped = suite_pod("a-r1-x", "a-r1", "Failed", started=60, reason="DeadlineExceeded")
    failed = replace(with_jobs(observed, job_seen("a", FAILED, reason="BackoffLimitExceeded")),
                     pods=(stopped,), results={"a-r1": result(passed=3)})
    ended = run_plan(spec, previous=p.status, observed=failed, now=later(1803))
    assert suite_status(ended, "a").message == STOPPED and suite_status(ended, "a").passed == 3
    assert ended.status.phase == Phase.TIMED_OUT


def test_a_suite_that_hit_its_own_timeout_before_the_deadline_is_not_called_stopped() -> None:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS], tests=[suite("a", timeoutSeconds=600)])
    p, observed = settle(spec)
    own = suite_pod("a-r1-x", "a-r1", "Failed", started=60, reason="DeadlineExceeded")
    failed = replace(with_jobs(observed, job_seen("a", FAILED, reason="BackoffLimitExceeded")),
                     pods=(own,), results={"a-r1": result(passed=1)})
    ended = run_plan(spec, previous=p.status, observed=failed, now=later(1805))
    assert suite_status(ended, "a").message == "timed out (timeoutSeconds)"
    assert ended.status.phase == Phase.FAILED


def test_a_pod_whose_containers_have_ended_is_waited_for_not_stopped() -> None:
    """Its test container ended (just at the deadline, or stopped a moment
    ago): the collector is handing over, and the pod is still Running until
    it has. Taken as stopped then, the run once deleted its Job first."""
    done = suite_pod("a-r1-x", "a-r1", started=60)
    done["status"]["containerStatuses"] = [{"name": "tests", "state": {"terminated": {"exitCode": 143}}}]
    spec, p, observed = at_the_deadline(done)
    waiting = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    assert waiting.stop_pods == [] and suite_status(waiting, "a").message == STOPPING
    assert waiting.status.phase == Phase.TESTING and waiting.delete == []


def seeding_at_the_deadline(*pods: dict) -> tuple:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS], seed=[{"name": "load", "image": "ghcr.io/acme/load:1"}],
                     tests=[suite("a")])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first), jobs=jobs(job_seen("load", RUNNING, kind="seed")))
    p = run_plan(spec, previous=first.status, observed=observed, now=later(10))
    return spec, p, replace(observed, pods=pods)


def test_a_seed_running_at_the_deadline_is_stopped_and_its_failed_job_kept_before_the_run_times_out() -> None:
    spec, p, observed = seeding_at_the_deadline(suite_pod("load-r1-x", "load-r1", started=20))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    assert stopping.stop_pods == ["load-r1-x"] and seed_status(stopping, "load").message == STOPPING
    assert stopping.status.phase == Phase.SEEDING and stopping.delete == []
    pod_stopped = replace(observed, pods=(suite_pod("load-r1-x", "load-r1", "Failed", started=20,
                                                    reason="DeadlineExceeded"),))
    # The pod has stopped, its Job not failed yet: its results are kept once it has.
    waiting = run_plan(spec, previous=stopping.status, observed=pod_stopped, now=later(1801))
    assert seed_status(waiting, "load").message == STOPPING and waiting.status.phase == Phase.SEEDING
    failed = replace(pod_stopped, jobs=jobs(job_seen("load", FAILED, kind="seed", reason="BackoffLimitExceeded")))
    ended = run_plan(spec, previous=waiting.status, observed=failed, now=later(1802))
    load = seed_status(ended, "load")
    assert (load.phase, load.message) == (FAILED, SEED_STOPPED)
    assert ended.status.phase == Phase.TIMED_OUT and "SeedFailed" in event_reasons(ended)


def test_a_seed_stopped_at_the_deadline_is_not_a_failed_container() -> None:
    """The real-node test's seed: its container exited 143 as the kubelet
    stopped it, which diagnosis reads as a seed that failed; the stop is
    what happened, and the run times out."""
    stopped = suite_pod("load-r1-x", "load-r1", "Failed", started=20, reason="DeadlineExceeded")
    spec, p, observed = seeding_at_the_deadline(stopped)
    failed = replace(observed, jobs=jobs(job_seen("load", FAILED, kind="seed", reason="BackoffLimitExceeded")),
                     diagnoses={PodOwner("seed", "load", 1): Diagnosis(
                         Reason.CONTAINER_FAILED, "container seed exited 143 (Error)", True, None, pod="load-r1-x")})
    ended = run_plan(spec, previous=p.status, observed=failed, now=later(1802))
    assert seed_status(ended, "load").message == SEED_STOPPED and ended.status.phase == Phase.TIMED_OUT


def test_pods_that_do_not_stop_within_the_grace_leave_the_suite_unread() -> None:
    spec, p, observed = at_the_deadline(suite_pod("a-r1-x", "a-r1", started=60))
    stopping = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    ended = run_plan(spec, previous=stopping.status, observed=observed, now=later(1800 + STOP_GRACE_SECONDS))
    assert ended.status.phase == Phase.TIMED_OUT and ended.stop_pods == [] and ended.read_results == []
    assert suite_status(ended, "a").message == NOT_HANDED_OVER
    assert ended.delete == [ObjectRef(api_version="batch/v1", kind="Job", namespace=NS, name="a-r1")]


def test_without_a_collector_a_suite_running_at_the_deadline_just_goes() -> None:
    spec, p, observed = at_the_deadline(suite_pod("a-r1-x", "a-r1", started=60))
    ended = run_plan(spec, previous=p.status, observed=observed, now=later(1800),
                     settings=SETTINGS.model_copy(update={"collector_image": ""}))
    assert ended.status.phase == Phase.TIMED_OUT and ended.stop_pods == []


def test_the_longest_durations_are_planned_without_overflow() -> None:
    """int32 seconds (models.INT32_MAX), the most the schema admits, added to
    the start and the finish: past about 7,900 years a date overflows."""
    longest = INT32_MAX
    spec = make_spec(lifecycle={"activeDeadlineSeconds": longest, "retainOnFailureSeconds": longest,
                                "ttlSecondsAfterFinished": longest},
                     datastores=[REDIS], tests=[suite("a", timeoutSeconds=longest)])
    p, observed = settle(spec)
    running = run_plan(spec, previous=p.status, observed=replace(
        with_jobs(observed, job_seen("a")), pods=(suite_pod("a-r1-x", "a-r1", started=5),)), now=later(60))
    assert running.status.expires_at == ts(later(2 * longest))
    failed = with_jobs(observed, job_seen("a", FAILED), results={"a-r1": result(failed=1)})
    done = run_plan(spec, previous=running.status, observed=failed, now=later(120))
    assert done.status.phase == Phase.FAILED and done.status.expires_at == ts(later(120 + longest))


def test_deadline_passed_during_provisioning_starts_nothing() -> None:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first))
    p = run_plan(spec, previous=first.status, observed=observed, now=later(2000))
    assert p.status.phase == Phase.TIMED_OUT
    assert p.apply == []


def test_before_the_deadline_the_planner_wakes_when_it_passes() -> None:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS], tests=[suite("smoke")])
    p, observed = settle(spec)
    p = run_plan(spec, previous=p.status, observed=with_jobs(observed, job_seen("smoke")), now=later(600))
    assert p.status.phase == Phase.TESTING
    assert p.wake_after == 1200


def test_a_run_finished_before_its_deadline_is_not_timed_out_later() -> None:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS], tests=[suite("smoke")])
    p, observed = settle(spec)
    done = with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=1)})
    finished = run_plan(spec, previous=p.status, observed=done, now=later(100))
    later_on = run_plan(spec, previous=finished.status, observed=done, now=later(1900))
    assert later_on.status.phase == Phase.SUCCEEDED


def test_a_preview_environment_ends_normally_at_its_deadline() -> None:
    spec = make_spec(lifecycle={**DEADLINE, "ttlSecondsAfterFinished": 60, "retainOnFailureSeconds": 7200},
                     datastores=[REDIS])
    p, observed = settle(spec)
    assert p.status.phase == Phase.READY
    ended = run_plan(spec, previous=p.status, observed=observed, now=later(1800))
    assert ended.status.phase == Phase.SUCCEEDED
    assert "preview ended" in ended.status.message and "1800s" in ended.status.message
    # Collected as a finished run is, not kept for the failure retention.
    assert ended.status.expires_at == ts(later(1800 + 60))
    [event] = [e for e in ended.events if e.reason == "Succeeded"]
    assert event.type == "Normal"
    tests = next(c for c in ended.status.conditions if c.type == "TestsPassed")
    assert tests.reason == "PreviewEnded"


def test_a_ready_preview_shows_when_it_will_end() -> None:
    spec = make_spec(lifecycle={**DEADLINE, "ttlSecondsAfterFinished": 60, "retainOnFailureSeconds": 7200},
                     datastores=[REDIS])
    p, _ = settle(spec)
    assert p.status.phase == Phase.READY
    assert p.status.expires_at == ts(later(1800 + 60))
    assert p.wake_after == 1800


def test_a_preview_that_never_came_up_times_out_at_its_deadline() -> None:
    spec = make_spec(lifecycle=DEADLINE, datastores=[REDIS])
    first = run_plan(spec)
    p = run_plan(spec, previous=first.status, observed=Observed(), now=later(1800))
    assert p.status.phase == Phase.TIMED_OUT


def test_without_a_deadline_an_unfinished_run_sets_no_wake_up() -> None:
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")])
    p, _ = settle(spec)
    assert p.wake_after is None and p.status.expires_at is None


# --- expiry and collection ----------------------------------------------------------


def finish(spec_fields: dict, outcome: JobPhase, at: float = 60) -> tuple[object, Observed]:
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")], **spec_fields)
    p, observed = settle(spec)
    counts = result(passed=1) if outcome == SUCCEEDED else result(failed=1)
    done = with_jobs(observed, job_seen("smoke", outcome), results={"smoke-r1": counts})
    return run_plan(spec, previous=p.status, observed=done, now=later(at)), done


def test_success_expires_ttl_after_finishing() -> None:
    p, _ = finish({"lifecycle": {"ttlSecondsAfterFinished": 300}}, SUCCEEDED)
    assert p.status.finished_at == ts(later(60))
    assert p.status.expires_at == ts(later(360))
    assert p.wake_after == 300
    assert p.collect_namespace is False


def test_failure_expires_retain_on_failure_after_finishing() -> None:
    p, _ = finish({"lifecycle": {"ttlSecondsAfterFinished": 300, "retainOnFailureSeconds": 7200}}, FAILED)
    assert p.status.expires_at == ts(later(60 + 7200))
    assert p.wake_after == 7200


def test_unset_lifecycle_uses_the_operators_defaults() -> None:
    succeeded, _ = finish({}, SUCCEEDED)
    failed, _ = finish({}, FAILED)
    assert succeeded.status.expires_at == ts(later(60 + SETTINGS.default_ttl_seconds_after_finished))
    assert failed.status.expires_at == ts(later(60 + SETTINGS.default_retain_on_failure_seconds))


def test_timed_out_run_is_retained_like_a_failure() -> None:
    spec = make_spec(
        lifecycle={"activeDeadlineSeconds": 100, "retainOnFailureSeconds": 50},
        datastores=[REDIS],
        tests=[suite("smoke")],
    )
    p, observed = settle(spec)
    p = run_plan(spec, previous=p.status, observed=observed, now=later(100))
    assert p.status.expires_at == ts(later(150))


def test_unfinished_run_with_a_deadline_shows_when_it_would_expire() -> None:
    spec = make_spec(
        lifecycle={"activeDeadlineSeconds": 100, "retainOnFailureSeconds": 50},
        datastores=[REDIS],
        tests=[suite("smoke")],
    )
    p, _ = settle(spec)
    assert p.status.expires_at == ts(later(150))


def test_namespace_is_collected_once_now_reaches_expires_at() -> None:
    spec_fields = {"lifecycle": {"ttlSecondsAfterFinished": 300}}
    finished, done = finish(spec_fields, SUCCEEDED)
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")], **spec_fields)
    before = run_plan(spec, previous=finished.status, observed=done, now=later(359))
    assert before.collect_namespace is False and before.wake_after == 1
    at = run_plan(spec, previous=finished.status, observed=done, now=later(360))
    assert at.collect_namespace is True
    assert at.apply == [] and at.create == []
    assert at.status.phase == Phase.SUCCEEDED
    assert at.status.message.startswith("collected")
    assert at.wake_after is None
    # What the delete handler reads to skip a DELETE of a namespace long gone.
    assert was_collected(at.status.wire()) and not was_collected(before.status.wire())


def test_zero_ttl_collects_in_the_reconcile_that_finishes() -> None:
    p, _ = finish({"lifecycle": {"ttlSecondsAfterFinished": 0}}, SUCCEEDED)
    assert p.collect_namespace is True


def test_collected_status_is_stable_across_reconciles() -> None:
    spec_fields = {"lifecycle": {"ttlSecondsAfterFinished": 300}}
    finished, done = finish(spec_fields, SUCCEEDED)
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")], **spec_fields)
    first = run_plan(spec, previous=finished.status, observed=done, now=later(400))
    second = run_plan(spec, previous=first.status, observed=done, now=later(401))
    # A changing status would be patched, wake the loop and be planned again, forever.
    assert second.status.message == first.status.message
    assert second.status.wire() == first.status.wire()
    assert second.collect_namespace is True and second.events == []


def test_collected_message_says_when_and_keeps_the_outcome() -> None:
    spec_fields = {"lifecycle": {"ttlSecondsAfterFinished": 300}}
    finished, done = finish(spec_fields, SUCCEEDED)
    spec = make_spec(datastores=[REDIS], tests=[suite("smoke")], **spec_fields)
    p = run_plan(spec, previous=finished.status, observed=done, now=later(400))
    assert ts(later(360)) in p.status.message
    assert finished.status.message in p.status.message


# --- events ------------------------------------------------------------------------


def test_every_phase_change_is_an_event_with_the_phase_as_reason() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], tests=[suite("smoke")])
    first = run_plan(spec)
    assert [(e.type, e.reason) for e in first.events] == [("Normal", "Provisioning")]
    assert first.events[0].message == first.status.message
    observed = Observed(workloads=ready_workloads(first))
    seeding = run_plan(spec, previous=first.status, observed=observed)
    assert [(e.type, e.reason) for e in seeding.events] == [("Normal", "Seeding")]


def test_no_phase_event_when_the_phase_is_unchanged() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    first = run_plan(spec)
    again = run_plan(spec, previous=first.status)
    assert again.status.phase == first.status.phase
    assert again.events == []


def test_failed_phase_event_is_a_warning() -> None:
    p, _ = finish({}, FAILED)
    phase_event = p.events[0]
    assert (phase_event.type, phase_event.reason) == ("Warning", "Failed")


def test_succeeded_phase_event_is_normal() -> None:
    p, _ = finish({}, SUCCEEDED)
    assert (p.events[0].type, p.events[0].reason) == ("Normal", "Succeeded")


def test_error_phase_event_is_a_warning_naming_the_field() -> None:
    p = run_plan(make_spec(), errors=[SpecError("spec.services[0].dependsOn", "'nope' is unknown")])
    assert (p.events[0].type, p.events[0].reason) == ("Warning", "Error")
    assert "spec.services[0].dependsOn" in p.events[0].message


def test_suite_passing_is_an_event_with_its_counts() -> None:
    p, _ = finish({}, SUCCEEDED)
    [passed] = [e for e in p.events if e.reason == "SuitePassed"]
    assert passed.type == "Normal"
    assert passed.message == "suite smoke: 1 passed, 0 failed, 0 skipped"


def test_suite_failing_is_a_warning_event_with_a_log_tail() -> None:
    p, _ = finish({}, FAILED)
    [failed] = [e for e in p.events if e.reason == "SuiteFailed"]
    assert failed.type == "Warning" and failed.message.startswith("suite smoke: 0 passed, 1 failed")
    assert p.log_tails == ["smoke-r1"]


def test_suite_events_are_not_repeated_while_the_phase_is_unchanged() -> None:
    spec = {"tests": [suite("a"), suite("b")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("a", SUCCEEDED), job_seen("b"), results={"a-r1": result(passed=1)})
    first = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert event_reasons(first) == ["SuitePassed"]
    again = run_plan(make_spec(datastores=[REDIS], **spec), previous=first.status, observed=observed)
    assert again.events == []


def test_collecting_results_emits_no_suite_event_yet() -> None:
    spec = {"tests": [suite("a"), suite("b")]}
    p, observed = at_testing_start(spec)
    observed = with_jobs(observed, job_seen("a", FAILED), job_seen("b"))
    p = run_plan(make_spec(datastores=[REDIS], **spec), previous=p.status, observed=observed)
    assert p.events == [] and p.log_tails == []


# --- invalid specs -----------------------------------------------------------------


ERRORS = [
    SpecError("spec.services[0].dependsOn", "'nope' is not a datastore, stub or service; remove it"),
    SpecError("spec.seed[0].datastore", "'missing-db' is not a datastore"),
]


def test_errors_set_phase_error_and_apply_nothing() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("a")], tests=[suite("smoke")])
    p = run_plan(spec, errors=ERRORS)
    assert p.status.phase == Phase.ERROR
    assert p.apply == [] and p.create == [] and p.delete == []
    assert p.read_results == [] and p.verify_stubs == []
    assert p.status.components == [] and p.status.tests == []


def test_error_message_and_condition_name_every_field() -> None:
    p = run_plan(make_spec(), errors=ERRORS)
    assert "spec.services[0].dependsOn: 'nope'" in p.status.message
    assert "spec.seed[0].datastore" in p.status.message
    ready = conditions(p)["Ready"]
    assert (ready.status, ready.reason) == (ConditionStatus.FALSE, "InvalidSpec")
    assert ready.message == p.status.message


def test_error_is_finished_and_never_collected() -> None:
    p = run_plan(make_spec(), errors=ERRORS)
    assert p.status.finished_at == ts(NOW)
    assert p.status.expires_at is None and p.collect_namespace is False and p.wake_after is None


def test_error_is_reported_once() -> None:
    first = run_plan(make_spec(), errors=ERRORS)
    again = run_plan(make_spec(), previous=first.status, errors=ERRORS, now=later(30))
    assert again.status.phase == Phase.ERROR
    assert again.events == []
    assert again.status.finished_at == first.status.finished_at


def test_error_after_a_successful_run_does_not_show_its_old_counts() -> None:
    p, _ = finish({}, SUCCEEDED)
    assert (p.status.ready_components, p.status.test_counts) == ("1/1", "1/0")
    error = run_plan(make_spec(), previous=p.status, generation=2, errors=ERRORS)
    assert error.status.components == []
    assert error.status.ready_components in (None, "0/0")
    assert error.status.test_counts in (None, "0/0")


# --- conditions --------------------------------------------------------------------


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    spec = make_spec(datastores=[REDIS], services=[service("api", dependsOn=["cache"])])
    first = run_plan(spec)
    observed = Observed(workloads=ready_workloads(first))
    second = run_plan(spec, previous=first.status, observed=observed, now=later(30))
    # Still not ready (api is starting), with another message: same transition time.
    ready = conditions(second)["Ready"]
    assert ready.status == ConditionStatus.FALSE
    assert ready.message != conditions(first)["Ready"].message
    assert ready.last_transition_time == ts(NOW)


def test_conditions_get_a_new_transition_time_when_their_status_changes() -> None:
    spec = make_spec(datastores=[REDIS])
    first = run_plan(spec)
    second = run_plan(spec, previous=first.status, observed=Observed(workloads=ready_workloads(first)), now=later(30))
    ready = conditions(second)["Ready"]
    assert ready.status == ConditionStatus.TRUE
    assert ready.last_transition_time == ts(later(30))


# --- readiness lost mid-run ----------------------------------------------------------


def test_a_service_turning_unready_after_the_suites_finished_still_completes_the_run() -> None:
    spec = make_spec(datastores=[POSTGRES], seed=[SCHEMA_SEED], services=[service("api")], tests=[suite("smoke")])
    p, observed = settle(spec)
    crashed = WorkloadObservation("api", False, observed.workloads["api"].spec_hash, "0/1 replicas ready")
    observed = replace(
        with_jobs(observed, job_seen("smoke", SUCCEEDED), results={"smoke-r1": result(passed=5)}),
        workloads={**observed.workloads, "api": crashed},
    )
    p = run_plan(spec, previous=p.status, observed=observed)
    assert suite_status(p, "smoke").phase == SUCCEEDED and suite_status(p, "smoke").passed == 5
    assert p.status.phase == Phase.SUCCEEDED


# --- the guide's example, end to end -------------------------------------------------


GUIDE = guide_spec()


def test_guide_example_runs_to_success_in_needs_order() -> None:
    spec = make_spec(**GUIDE)
    p, observed = settle(spec)
    assert p.status.ready_components == "5/5"
    assert [s.phase for s in p.status.seeds] == [SUCCEEDED, SUCCEEDED]
    started = []
    counts = {"contract": 12, "component": 30, "e2e": 5}
    for name in ("contract", "component", "e2e"):
        assert applied_names(p, "Job") == [f"{name}-r1"]
        started.append(name)
        observed = with_jobs(observed, job_seen(name, SUCCEEDED), results={f"{name}-r1": result(passed=counts[name])})
        p = run_plan(spec, previous=p.status, observed=observed)
    assert started == ["contract", "component", "e2e"]
    assert p.status.phase == Phase.SUCCEEDED
    assert p.status.summary.passed == 47  # from the results observed above, not the annotations
    assert p.status.expires_at == ts(later(300))


# --- concurrency limits ----------------------------------------------------------------


def test_environment_not_admitted_is_queued_and_nothing_is_applied() -> None:
    from plan_fixtures import ENV
    from testenv.plan import Admission, PlanInput, plan

    given = PlanInput(
        env=ENV,
        spec=make_spec(datastores=[REDIS]),
        generation=1,
        previous=TestEnvironmentStatus(),
        observed=Observed(),
        now=NOW,
        settings=SETTINGS,
        admission=Admission(admitted=False, message="3 of 3 environments are active; waiting for one to finish"),
    )
    p = plan(given)
    assert p.status.phase == Phase.QUEUED
    assert p.status.message == "3 of 3 environments are active; waiting for one to finish"
    assert p.apply == [] and p.create == [] and p.delete == []
    assert [(e.type, e.reason) for e in p.events] == [("Normal", "Queued")]


def test_invalid_spec_is_an_error_even_when_not_admitted() -> None:
    from plan_fixtures import ENV
    from testenv.plan import Admission, PlanInput, plan

    given = PlanInput(
        env=ENV,
        spec=make_spec(),
        generation=1,
        previous=TestEnvironmentStatus(),
        observed=Observed(),
        now=NOW,
        settings=SETTINGS,
        errors=ERRORS,
        admission=Admission(admitted=False, message="queued"),
    )
    assert plan(given).status.phase == Phase.ERROR


def test_a_missing_copy_source_is_looked_for_again_later() -> None:
    spec = make_spec(services=[{"name": "inventory", "copyFrom": {"namespace": "staging", "deployment": "inventory"}}])
    p = run_plan(spec)
    assert p.wake_after == 30.0
